/**
 * bench/coldstart: how long the first request to a group at zero takes through Tide, next to the
 * app's own time from spawn to answering, measured in the same run, interleaved.
 *
 *   node --import tsx bench/coldstart/index.ts [--runs 40] [--probe 5ms] [--json]
 *
 * The app (bench/coldstart/app.js) is a minimal HTTP server that puts in every response when its
 * process began (`performance.timeOrigin`) and when it started listening.
 *
 * App alone: spawn `node app.js` and GET /healthz every millisecond until it answers: the app's
 * own time from spawn to answering (plus ≤ 1 ms of polling).
 *
 * Cold start: a Tide daemon in this process runs examples/scale-to-zero.yaml with this app (ports 0,
 * store in a temp dir, `route.workers: 1`, health probe interval `--probe`, and only a `target`
 * policy so that nothing but the bench moves the group). Each run puts the group at zero, waits,
 * then times one `GET /` from sending to the last byte: the router holds it, wakes the group
 * (intent in the store, spawn through `sh -c exec`, health checks) and releases it to the new
 * instance. The response's `Tide-Cold-Start` header (the router's own measure) is kept too.
 *
 * Overhead, two ways:
 * - raw: cold start − app alone, per run (runs alternate app, Tide, app, Tide… so both see the
 *   same machine). On a busy machine Node's own boot varies by hundreds of ms and drowns this.
 * - net of the app's own boot: in both kinds of run, the time from the process's start to its
 *   listening (reported by the app itself) is taken out, leaving what is outside the app: spawning
 *   and polling for the app alone; the router, the engine, the store, the spawn and the health
 *   checks for Tide. Overhead = (Tide − its app's boot) − (alone − its app's boot), per run.
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
if (!Number.isInteger(RUNS) || RUNS < 1)
  throw new Error(`--runs must be a whole number ≥ 1, got ${args.runs}`)
if (PROBE_MS === undefined || PROBE_MS <= 0)
  throw new Error(`--probe must be a duration like 5ms, got ${args.probe}`)

const root = resolve(import.meta.dirname, '../..')
const APP = join(root, 'bench/coldstart/app.js')
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

/** The app's own process start → listening, ms, from its response headers. */
function boot(headers: Record<string, string | string[] | undefined>): number {
  return Number(headers['x-listening-at']) - Number(headers['x-time-origin'])
}

/** The app's own spawn → first 200 from /healthz, ms, and its boot (process start → listening). */
async function appAlone(): Promise<{ total: number; boot: number; before: number; after: number }> {
  const port = await freePort()
  const dispatcher = new Agent({ pipelining: 0 })
  const t0 = performance.now()
  const child = spawn(process.execPath, [APP], {
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: 'ignore',
  })
  try {
    for (;;) {
      const res = await request(`http://127.0.0.1:${port}/healthz`, { dispatcher })
        .then(async (r) => (await r.body.text(), r))
        .catch(() => undefined)
      if (res?.statusCode === 200) {
        const end = performance.now()
        const origin = Number(res.headers['x-time-origin'])
        const listening = Number(res.headers['x-listening-at'])
        return {
          total: end - t0,
          boot: boot(res.headers),
          before: origin - (performance.timeOrigin + t0),
          after: performance.timeOrigin + end - listening,
        }
      }
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
  hello.target.command = [process.execPath, APP]
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
  const net: number[] = []
  try {
    // One warm-up of each: the first spawn of node pays for the file cache.
    await appAlone()
    for (let run = 0; run <= RUNS; run++) {
      await tide.controller.scale('hello', { to: 0, force: true, wait: true })
      const group = tide.controller.getGroup('hello')
      if (group.desired !== 0 || group.ready !== 0)
        throw new Error(`the group is not at zero: ${JSON.stringify(group)}`)
      await sleep(150)
      const alone = await appAlone()
      await sleep(150)
      const dispatcher = new Agent({ pipelining: 0 })
      const t0 = performance.now()
      const res = await request(url, { dispatcher })
      await res.body.text()
      const end = performance.now()
      const t = end - t0
      const before = Number(res.headers['x-time-origin']) - (performance.timeOrigin + t0)
      const after = performance.timeOrigin + end - Number(res.headers['x-listening-at'])
      await dispatcher.close()
      if (res.statusCode !== 200) throw new Error(`the cold request got ${res.statusCode}`)
      if (run === 0) continue // warm-up
      app.push(alone.total)
      cold.push(t)
      diffs.push(t - alone.total)
      net.push(t - boot(res.headers) - (alone.total - alone.boot))
      header.push(Number(/^(\d+)ms$/.exec(String(res.headers['tide-cold-start']))?.[1]))
      if (!args.json)
        process.stderr.write(
          `run ${run}/${RUNS}: app alone ${ms(alone.total)} (boot ${ms(alone.boot)}), Tide ${ms(t)} (boot ${ms(boot(res.headers))}), overhead net of boot ${ms(net.at(-1)!)}; before the app's process: alone ${ms(alone.before)}, Tide ${ms(before)}; after it listens: alone ${ms(alone.after)}, Tide ${ms(after)}\n`,
        )
    }
  } finally {
    await tide.close()
    rmSync(dir, { recursive: true, force: true })
  }
  const [sa, sc, sh, sd, sn] = [sortNum(app), sortNum(cold), sortNum(header), sortNum(diffs), sortNum(net)]
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
      netOfBoot: { median: quantile(sn, 0.5), p99: quantile(sn, 0.99) },
    },
  }
  if (args.json) {
    console.log(JSON.stringify(result, null, 2))
    return
  }
  console.log(
    `\ncold start through Tide vs the app alone, ${RUNS} runs each, health probe every ${PROBE_MS} ms\n`,
  )
  console.log('| | median | p99 |')
  console.log('|---|---:|---:|')
  console.log(`| app alone: spawn → first 200 | ${ms(result.app.median)} | ${ms(result.app.p99)} |`)
  console.log(
    `| Tide: first request at zero → its response | ${ms(result.coldStart.median)} | ${ms(result.coldStart.p99)} |`,
  )
  console.log(
    `| Tide-Cold-Start header (the router's wait) | ${result.coldStartHeader.median} ms | ${result.coldStartHeader.p99} ms |`,
  )
  console.log(
    `| overhead, raw (per run: Tide − app alone) | ${ms(result.overhead.medianOfDifferences)} | ${ms(result.overhead.p99OfDifferences)} |`,
  )
  console.log(
    `| **overhead net of the app's own boot** (per run) | **${ms(result.overhead.netOfBoot.median)}** | ${ms(result.overhead.netOfBoot.p99)} |`,
  )
  console.log(`\ndifference of the medians: ${ms(result.overhead.differenceOfMedians)}`)
}

await main()
