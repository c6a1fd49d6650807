#!/usr/bin/env node
// Tide's demo app: a small HTTP server whose requests cost real CPU time, so load shows in
// the process's CPU and in its own Prometheus metrics. Plain Node, no dependencies, no build.
//
//   PORT=3000 HOST=127.0.0.1 WORK_MS=25 STARTUP_MS=0 node examples/app/server.js
//
// Routes: GET / (busy work; ?work=<ms> and ?sleep=<ms> per request), GET /healthz,
// GET /metrics, POST /echo. SIGTERM or SIGINT: stop accepting, finish in-flight, exit 0.
import { createServer } from 'node:http'

const PORT = envNumber('PORT', 3000)
const HOST = process.env.HOST || '127.0.0.1'
const WORK_MS = envNumber('WORK_MS', 25)
const STARTUP_MS = envNumber('STARTUP_MS', 0)
const INSTANCE = process.env.TIDE_INSTANCE || `app-${process.pid}`
const GROUP = process.env.TIDE_GROUP || ''
/** A request may ask for at most this much work or sleep, so one URL cannot wedge an instance. */
const MAX_REQUEST_MS = 60_000
/** Busy work runs in slices this long and yields between them, so concurrent requests interleave. */
const SLICE_MS = 2
/** Echo bodies above this are refused (413): the demo never needs more. */
const MAX_ECHO_BYTES = 1024 * 1024

function envNumber(name, fallback) {
  const text = process.env[name]
  if (text === undefined || text === '') return fallback
  const value = Number(text)
  if (!Number.isFinite(value) || value < 0) {
    console.error(`${name} must be a non-negative number, got ${JSON.stringify(text)}`)
    process.exit(2)
  }
  return value
}

// ─── Metrics (Prometheus text format 0.0.4) ───────────────────────────────────

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] // Prometheus client defaults
const requestsTotal = new Map() // `${path}\u0000${code}` → count
let inFlight = 0
const durationBuckets = BUCKETS.map(() => 0)
let durationCount = 0
let durationSum = 0

function observe(path, code, seconds) {
  const key = `${path}\u0000${code}`
  requestsTotal.set(key, (requestsTotal.get(key) ?? 0) + 1)
  durationCount += 1
  durationSum += seconds
  BUCKETS.forEach((le, i) => {
    if (seconds <= le) durationBuckets[i] += 1
  })
}

function metricsText() {
  const lines = []
  lines.push('# HELP app_requests_total Requests answered, by path and status code.')
  lines.push('# TYPE app_requests_total counter')
  for (const [key, count] of requestsTotal) {
    const [path, code] = key.split('\u0000')
    lines.push(`app_requests_total{path="${path}",code="${code}"} ${count}`)
  }
  lines.push('# HELP app_requests_in_flight Requests being served now.')
  lines.push('# TYPE app_requests_in_flight gauge')
  lines.push(`app_requests_in_flight ${inFlight}`)
  lines.push('# HELP app_request_duration_seconds Time from request to response end.')
  lines.push('# TYPE app_request_duration_seconds histogram')
  BUCKETS.forEach((le, i) => {
    lines.push(`app_request_duration_seconds_bucket{le="${le}"} ${durationBuckets[i]}`)
  })
  lines.push(`app_request_duration_seconds_bucket{le="+Inf"} ${durationCount}`)
  lines.push(`app_request_duration_seconds_sum ${durationSum}`)
  lines.push(`app_request_duration_seconds_count ${durationCount}`)
  const cpu = process.cpuUsage()
  lines.push('# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.')
  lines.push('# TYPE process_cpu_seconds_total counter')
  lines.push(`process_cpu_seconds_total ${(cpu.user + cpu.system) / 1e6}`)
  lines.push('# HELP process_resident_memory_bytes Resident memory size in bytes.')
  lines.push('# TYPE process_resident_memory_bytes gauge')
  lines.push(`process_resident_memory_bytes ${process.memoryUsage.rss()}`)
  return `${lines.join('\n')}\n`
}

// ─── Work ─────────────────────────────────────────────────────────────────────

/** Microseconds of CPU this process has used (user + system). */
function cpuMicros() {
  const { user, system } = process.cpuUsage()
  return user + system
}

/**
 * Burns `ms` of CPU time (measured with process.cpuUsage, so a busy machine makes it slower in
 * wall time, as real work would be), in slices that yield to the event loop between them: health
 * checks and metrics stay answerable under load, and concurrent requests share the CPU.
 */
async function busyWork(ms) {
  let left = ms * 1000
  let sink = 0
  while (left > 0) {
    const start = cpuMicros()
    const slice = Math.min(left, SLICE_MS * 1000)
    let spent = 0
    while (spent < slice) {
      for (let i = 0; i < 2000; i++) sink += Math.sqrt(i * spent + sink) % 7
      spent = cpuMicros() - start
    }
    left -= spent
    await new Promise((resolve) => setImmediate(resolve))
  }
  return sink
}

function requestMs(url, name, fallback) {
  const text = url.searchParams.get(name)
  if (text === null) return fallback
  const value = Number(text)
  if (!Number.isFinite(value) || value < 0) return undefined
  return Math.min(value, MAX_REQUEST_MS)
}

// ─── Server ───────────────────────────────────────────────────────────────────

let shuttingDown = false

function send(res, code, type, body) {
  const headers = { 'content-type': type, 'content-length': Buffer.byteLength(body), 'x-instance': INSTANCE }
  // During shutdown, ask keep-alive clients to go away so the server can close.
  if (shuttingDown) headers.connection = 'close'
  res.writeHead(code, headers)
  res.end(body)
}

async function handle(req, res, url) {
  if (req.method === 'GET' && url.pathname === '/healthz') {
    // Failing health during shutdown tells balancers to stop sending requests here.
    if (shuttingDown) return send(res, 503, 'text/plain', 'shutting down\n')
    return send(res, 200, 'text/plain', 'ok\n')
  }
  if (req.method === 'GET' && url.pathname === '/metrics') {
    return send(res, 200, 'text/plain; version=0.0.4; charset=utf-8', metricsText())
  }
  if (req.method === 'POST' && url.pathname === '/echo') {
    const chunks = []
    let size = 0
    for await (const chunk of req) {
      size += chunk.length
      if (size > MAX_ECHO_BYTES) return send(res, 413, 'text/plain', 'body too large\n')
      chunks.push(chunk)
    }
    return send(res, 200, req.headers['content-type'] || 'application/octet-stream', Buffer.concat(chunks))
  }
  if (req.method === 'GET' && url.pathname === '/') {
    const work = requestMs(url, 'work', WORK_MS)
    const sleep = requestMs(url, 'sleep', 0)
    if (work === undefined || sleep === undefined) {
      return send(res, 400, 'text/plain', 'work and sleep must be non-negative numbers of milliseconds\n')
    }
    const started = performance.now()
    if (sleep > 0) await new Promise((resolve) => setTimeout(resolve, sleep))
    if (work > 0) await busyWork(work)
    const body = {
      instance: INSTANCE,
      group: GROUP,
      pid: process.pid,
      work_ms: work,
      sleep_ms: sleep,
      elapsed_ms: Math.round(performance.now() - started),
    }
    return send(res, 200, 'application/json', `${JSON.stringify(body)}\n`)
  }
  return send(res, 404, 'text/plain', 'not found\n')
}

const server = createServer((req, res) => {
  const started = performance.now()
  const url = new URL(req.url ?? '/', 'http://app')
  // Unknown paths share one label so a scan cannot grow the metric without bound.
  const label = ['/', '/healthz', '/metrics', '/echo'].includes(url.pathname) ? url.pathname : 'other'
  inFlight += 1
  res.on('close', () => {
    inFlight -= 1
    observe(label, res.statusCode, (performance.now() - started) / 1000)
    if (shuttingDown) server.closeIdleConnections()
  })
  handle(req, res, url).catch((err) => {
    console.error(`${INSTANCE}: ${err?.stack ?? err}`)
    if (!res.headersSent) send(res, 500, 'text/plain', 'internal error\n')
    else res.destroy()
  })
})

function shutdown(signal) {
  if (shuttingDown) {
    // A second signal means "now": the first one is still waiting for requests in flight.
    console.log(`${INSTANCE}: ${signal} again, exiting now`)
    process.exit(1)
  }
  shuttingDown = true
  console.log(`${INSTANCE}: ${signal} received, finishing ${inFlight} request(s) in flight`)
  // close() stops accepting and calls back once every connection has ended; idle keep-alive
  // connections are closed now, busy ones after their response (see the 'close' handler above).
  server.close(() => {
    console.log(`${INSTANCE}: stopped`)
    process.exit(0)
  })
  server.closeIdleConnections()
}
process.on('SIGTERM', () => shutdown('SIGTERM'))
process.on('SIGINT', () => shutdown('SIGINT'))

server.on('error', (err) => {
  console.error(`${INSTANCE}: cannot listen on ${HOST}:${PORT}: ${err.message}`)
  process.exit(1)
})

// STARTUP_MS simulates boot time: nothing listens (so /healthz cannot answer) until it has passed.
setTimeout(() => {
  if (shuttingDown) return
  server.listen(PORT, HOST, () => {
    const { address, port } = server.address()
    const shown = address.includes(':') ? `[${address}]` : address
    console.log(
      `${INSTANCE} listening on ${shown}:${port} (pid ${process.pid}, ${WORK_MS}ms of work per request)`,
    )
  })
}, STARTUP_MS)
