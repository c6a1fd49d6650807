#!/usr/bin/env node
// Sends load to a local Tide route so you can watch a group scale:
//   node examples/load.js [--url http://127.0.0.1:8080/] [--clients 50] [--duration 40s] [--max-requests 1000000]
// Each client sends one request at a time on a keep-alive connection. It stops by itself
// after --duration or --max-requests, and only sends to loopback addresses.
// Prints a line a second and a summary; exits 1 if any request failed.
import http from 'node:http'
import { parseArgs } from 'node:util'

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://127.0.0.1:8080/' },
    clients: { type: 'string', default: '50' },
    duration: { type: 'string', default: '40s' },
    'max-requests': { type: 'string', default: '1000000' },
    json: { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
  },
})

const url = new URL(values.url)
if (!/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/.test(url.hostname)) {
  console.error(`load: refusing to send load to ${url.hostname}: only loopback addresses`)
  process.exit(2)
}
const clients = Number(values.clients)
const durationMs = parseDuration(values.duration)
const maxRequests = Number(values['max-requests'])
if (!Number.isInteger(clients) || clients < 1 || clients > 10_000) fail('--clients', values.clients)
if (!(durationMs > 0) || durationMs > 3_600_000) fail('--duration', values.duration)
if (!Number.isInteger(maxRequests) || maxRequests < 1) fail('--max-requests', values['max-requests'])

function fail(flag, value) {
  console.error(`load: ${flag} is invalid (got ${JSON.stringify(value)})`)
  process.exit(2)
}

function parseDuration(text) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text)
  if (!m) return Number.NaN
  return Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000 }[m[2] ?? 's'] ?? 1000)
}

const agent = new http.Agent({ keepAlive: true, maxSockets: clients })
const stats = { ok: 0, failed: 0, statuses: {}, errors: {}, latencies: [] }
let sent = 0
let windowOk = 0
const started = Date.now()
const deadline = started + durationMs

function once() {
  return new Promise((resolve) => {
    const t0 = performance.now()
    const req = http.get(url, { agent }, (res) => {
      res.resume()
      res.on('end', () => {
        const ms = performance.now() - t0
        if (res.statusCode && res.statusCode < 400) {
          stats.ok++
          windowOk++
          if (stats.latencies.length < 200_000) stats.latencies.push(ms)
        } else {
          stats.failed++
          stats.statuses[res.statusCode] = (stats.statuses[res.statusCode] ?? 0) + 1
        }
        resolve()
      })
      res.on('error', (err) => {
        stats.failed++
        stats.errors[err.code ?? err.message] = (stats.errors[err.code ?? err.message] ?? 0) + 1
        resolve()
      })
    })
    req.setTimeout(60_000, () => req.destroy(new Error('timeout')))
    req.on('error', (err) => {
      stats.failed++
      stats.errors[err.code ?? err.message] = (stats.errors[err.code ?? err.message] ?? 0) + 1
      resolve()
    })
  })
}

async function client() {
  while (Date.now() < deadline && sent < maxRequests) {
    sent++
    await once()
  }
}

const ticker = setInterval(() => {
  if (!values.quiet && !values.json) {
    const elapsed = Math.round((Date.now() - started) / 1000)
    console.log(`load: ${elapsed}s  ${windowOk} req/s  ok ${stats.ok}  failed ${stats.failed}`)
  }
  windowOk = 0
}, 1000)

await Promise.all(Array.from({ length: clients }, client))
clearInterval(ticker)
agent.destroy()

const sorted = stats.latencies.sort((a, b) => a - b)
const pct = (p) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : 0
const seconds = (Date.now() - started) / 1000
const summary = {
  ok: stats.ok,
  failed: stats.failed,
  statuses: stats.statuses,
  errors: stats.errors,
  seconds: Number(seconds.toFixed(1)),
  rps: Math.round(stats.ok / seconds),
  p50: Number(pct(50).toFixed(1)),
  p99: Number(pct(99).toFixed(1)),
}
if (values.json) console.log(JSON.stringify(summary))
else {
  console.log(
    `load: done in ${summary.seconds}s: ${summary.ok} ok, ${summary.failed} failed, ${summary.rps} req/s, p50 ${summary.p50}ms, p99 ${summary.p99}ms`,
  )
  if (summary.failed) console.log(`load: failures: ${JSON.stringify({ ...stats.statuses, ...stats.errors })}`)
}
process.exitCode = summary.failed > 0 ? 1 : 0
