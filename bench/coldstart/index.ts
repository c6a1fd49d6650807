/**
 * bench/coldstart: how long the first request to a group at zero takes through Tide, next to the
 * app's own time from spawn to answering, measured in the same run, interleaved.
 *
 *   node --import tsx bench/coldstart/index.ts [--runs 40] [--probe 5ms] [--json]
 *
 * Reference ("app alone"): spawn `node examples/app/server.js` directly and GET /healthz every
 * millisecond until it answers 200: the app's own spawn-to-listening time (plus at most ~1 ms of
 * polling granularity, which flatters the app, not Tide).
 *
 * Tide ("cold start"): a Tide daemon in this process runs examples/scale-to-zero.yaml (ports 0,
 * store in a temp dir, `route.workers: 1`, health probe interval `--probe`, idle policy off so
 * only the bench moves the group). Each run puts the group at zero, waits for it to settle, then
 * times one `GET /?work=0` from sending to the last byte of the response: the router holds it,
 * wakes the group (intent in the store, spawn through `sh -c exec`, health checks), and releases
 * it to the new instance. The response's `Tide-Cold-Start` header (the router's own measure of the
 * wait) is recorded too.
 *
 * Overhead = cold start − app alone: everything Tide adds to the app's own start. Printed as the
 * difference of the medians and the median of the per-run differences (steadier on a shared
 * machine), with p99 of each. Runs alternate (app, Tide, app, Tide, …) so both see the same load.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { Agent, request } from 'undici'
import { parse, stringify } from 'yaml'
import { parseDuration } from '../../src/core/duration.js'
import { startDaemon } from '../../src/engine/daemon.js'
import { silentLogger } from '../../src/engine/log.js'

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '40' },
    probe: { type: 'string', default: '5ms' },
    json: { type: 'boolean', default: false },
  },
})
const RUNS = Number(args.runs)
const PROBE_MS = parseDuration(args.probe!)
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`--runs must be a whole number ≥ 1, got ${args.runs}`)
if (PROBE_MS === undefined || PROBE_MS <= 0) throw new Error(`--probe must be a duration like 5ms, got ${args.probe}`)

const root = resolve(import.meta.dirname, '../..')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const s = createServer()
    s.once('error', fail)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      s.close(() => done(typeof a === 'object' && a ? a.port : 0))
    })
  })
}

/** The app's own spawn → first 200 from /healthz, ms. */
async function appAlone(): Promise<number> {
  const port = await freePort()
  const dispatcher = new Agent({ pipelining: 0 })
  const t0 = performance.now()
  const child = spawn(process.execPath, [join(root, 'examples/app/server.js')], {
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', WORK_MS: '5' },
    stdio: 'ignore',
  })
  try {
    for (;;) {
      const ok = await request(`http://127.0.0.1:${port}/healthz`, { dispatcher })
        .then(async (r) => (await r.body.text(), r.statusCode === 200))
        .catch(() => false)
      if (ok) return performance.now() - t0
      if (performance.now() - t0 > 30_000) throw new Error('the app did not start within 30s')
      await sleep(1)
    }
  } finally {
    const exited = new Promise((r) => child.once('exit', r))
    child.kill('SIGKILL')
    await exited
    await dispatcher.close()
  }
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[i]!
}
const sortNum = (xs: number[]) => [...xs].sort((a, b) => a - b)
const ms = (x: number) => `${x.toFixed(1)} ms`

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tide-coldstart-'))
  const raw = parse(readFileSync(join(root, 'examples/scale-to-zero.yaml'), 'utf8')) as {
    api: Record<string, unknown>
    store?: unknown
    groups: {
      hello: {
        target: Record<string, unknown> & { health: Record<string, unknown> }
        route: Record<string, unknown>
        policies: Array<Record<string, unknown>>
      }
    }
  }
  raw.api = { listen: '127.0.0.1:0' }
  raw.store = { path: join(dir, 'tide.db') }
  const hello = raw.groups.hello
  hello.target.cwd = join(root, 'examples')
  hello.target.health = { ...hello.target.health, interval: `${PROBE_MS}ms` }
  hello.route.listen = '127.0.0.1:0'
  hello.route.workers = 1
  // Only the bench moves the group: no idle policy racing it to zero, no scale-up on load.
  hello.policies = [{ kind: 'target', metric: 'concurrency', per_instance: 1000 }]
  const configPath = join(dir, 'tide.yaml')
  writeFileSync(configPath, stringify(raw))
  const tide = await startDaemon({ configPath, logger: silentLogger() })
  const url = `http://${tide.routes.hello}/?work=0`
  const app: number[] = []
  const cold: number[] = []
  const header: number[] = []
  const diffs: number[] = []
  try {
    // One warm-up of each: the first spawn of node pays for the file cache.
    await appAlone()
    for (let run = 0; run <= RUNS; run++) {
      await tide.controller.scale('hello', { to: 0, force: true, wait: true })
      const group = tide.controller.getGroup('hello')
      if (group.desired !== 0 || group.ready !== 0) throw new Error(`the group is not at zero: ${JSON.stringify(group)}`)
      await sleep(150)
      const a = await appAlone()
      await sleep(150)
      const dispatcher = new Agent({ pipelining: 0 })
      const t0 = performance.now()
      const res = await request(url, { dispatcher })
      await res.body.text()
      const t = performance.now() - t0
      await dispatcher.close()
      if (res.statusCode !== 200) throw new Error(`the cold request got ${res.statusCode}`)
      if (run === 0) continue // warm-up
      app.push(a)
      cold.push(t)
      diffs.push(t - a)
      header.push(Number(/^(\d+)ms$/.exec(String(res.headers['tide-cold-start']))?.[1]))
      if (!args.json) process.stderr.write(`run ${run}/${RUNS}: app ${ms(a)}, Tide ${ms(t)}\n`)
    }
  } finally {
    await tide.close()
    rmSync(dir, { recursive: true, force: true })
  }
  const [sa, sc, sh, sd] = [sortNum(app), sortNum(cold), sortNum(header), sortNum(diffs)]
  const result = {
    runs: RUNS,
    probeMs: PROBE_MS,
    app: { median: quantile(sa, 0.5), p99: quantile(sa, 0.99) },
    coldStart: { median: quantile(sc, 0.5), p99: quantile(sc, 0.99) },
    coldStartHeader: { median: quantile(sh, 0.5), p99: quantile(sh, 0.99) },
    overhead: {
      differenceOfMedians: quantile(sc, 0.5) - quantile(sa, 0.5),
      medianOfDifferences: quantile(sd, 0.5),
      p99OfDifferences: quantile(sd, 0.99),
    },
  }
  if (args.json) {
    console.log(JSON.stringify(result, null, 2))
    return
  }
  console.log(`\ncold start through Tide vs the app alone, ${RUNS} runs each, health probe every ${PROBE_MS} ms\n`)
  console.log('| | median | p99 |')
  console.log('|---|---:|---:|')
  console.log(`| app alone: spawn → first 200 | ${ms(result.app.median)} | ${ms(result.app.p99)} |`)
  console.log(`| Tide: first request at zero → its response | ${ms(result.coldStart.median)} | ${ms(result.coldStart.p99)} |`)
  console.log(`| Tide-Cold-Start header (the router's wait) | ${result.coldStartHeader.median} ms | ${result.coldStartHeader.p99} ms |`)
  console.log(
    `| overhead (per-run Tide − app) | ${ms(result.overhead.medianOfDifferences)} | ${ms(result.overhead.p99OfDifferences)} |`,
  )
  console.log(`\ndifference of the medians: ${ms(result.overhead.differenceOfMedians)}`)
}

await main()
