/**
 * Real Prometheus and Alertmanager (Debian's `prometheus` and `prometheus-alertmanager`) for
 * tests: each started on a free loopback port with its own temporary directory, waited for
 * until ready, and stopped by PID (also when the test process exits on a failure).
 *
 * @example
 * const skip = requirePrometheus() || requireAlertmanager()
 * describe('chain', { skip }, () => {
 *   let am: RunningAlertmanager
 *   before(async () => (am = await startAlertmanager({ config: { route: { receiver: 'x' }, receivers: [{ name: 'x' }] } })))
 *   after(() => am?.stop())
 * })
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { findCommand, requireCommand } from './requires.js'

/** The Alertmanager binary: Debian names it prometheus-alertmanager, upstream alertmanager. */
export function alertmanagerCommand(): string | undefined {
  return findCommand('prometheus-alertmanager') ?? findCommand('alertmanager')
}

/** Skip message (or false) for suites that need Prometheus; throws under CI=true when missing. */
export function requirePrometheus(): string | false {
  return requireCommand('prometheus', 'Prometheus', 'apt-get install prometheus')
}

/** Skip message (or false) for suites that need Alertmanager; throws under CI=true when missing. */
export function requireAlertmanager(): string | false {
  return requireCommand(
    alertmanagerCommand() ?? 'prometheus-alertmanager',
    'Alertmanager',
    'apt-get install prometheus-alertmanager',
  )
}

/** A free TCP port on 127.0.0.1 (closed again before it is returned; the caller binds it soon). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

const running = new Set<ChildProcess>()
let exitHook = false

/** Kills every child still running when the test process exits (a failed `before`, a crash). */
function track(child: ChildProcess): void {
  running.add(child)
  child.once('exit', () => running.delete(child))
  if (exitHook) return
  exitHook = true
  process.once('exit', () => {
    for (const c of running) c.kill('SIGKILL')
  })
}

/** What a started Prometheus and a started Alertmanager have alike. */
export interface RunningServer {
  /** `http://127.0.0.1:<port>` */
  url: string
  pid: number
  dir: string
  /** The process's output so far (for assertion messages). */
  log(): string
  /** Stops the process (SIGTERM, then SIGKILL after 5s) and removes `dir`. */
  stop(): Promise<void>
}

/** How Prometheus and Alertmanager are started: their flags differ only in these. */
interface ServerFlags {
  configFile: string
  /** The flag naming the data directory (`storage.path`, `storage.tsdb.path`). */
  storageFlag: string
  /** Flags after the listen address. */
  extra: string[]
}

/**
 * Spawns `command` in `dir` (its data in `dir/data`, listening on a free loopback port, logging at
 * debug) until it answers `GET /-/ready` (a free port may be taken meanwhile, so up to three ports
 * are tried). If it never does, the process is killed, `dir` removed, and the error carries the
 * end of its output.
 */
async function startServer(
  what: string,
  command: string,
  dir: string,
  flags: ServerFlags,
  timeoutMs: number,
): Promise<RunningServer> {
  const args = (port: number) => [
    `--config.file=${flags.configFile}`,
    `--${flags.storageFlag}=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    ...flags.extra,
    '--log.level=debug',
  ]
  try {
    return await spawnReady(what, command, dir, args, timeoutMs)
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
}

async function spawnReady(
  what: string,
  command: string,
  dir: string,
  args: (port: number) => string[],
  timeoutMs: number,
): Promise<RunningServer> {
  let lastError = ''
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    const log = join(dir, `${what.toLowerCase()}-${attempt}.log`)
    const out = openSync(log, 'w')
    const child = spawn(command, args(port), { cwd: dir, stdio: ['ignore', out, out] })
    track(child)
    const url = `http://127.0.0.1:${port}`
    let exited = false
    child.once('exit', () => (exited = true))
    const end = Date.now() + timeoutMs
    while (Date.now() < end && !exited) {
      try {
        const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) })
        await res.arrayBuffer()
        if (res.ok) {
          return {
            url,
            pid: child.pid!,
            dir,
            log: () => readFileSync(log, 'utf8'),
            async stop() {
              await stopChild(child)
              rmSync(dir, { recursive: true, force: true })
            },
          }
        }
      } catch {}
      await new Promise((r) => setTimeout(r, 100))
    }
    lastError = readFileSync(log, 'utf8').split('\n').slice(-15).join('\n')
    child.kill('SIGKILL')
    if (!exited) await new Promise((r) => child.once('exit', r))
    if (!/address already in use/i.test(lastError)) break
  }
  throw new Error(`${what} did not become ready:\n${lastError}`)
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((r) => child.once('exit', r))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
  await exited
  clearTimeout(timer)
}

async function postOk(url: string): Promise<void> {
  const res = await fetch(url, { method: 'POST' })
  const body = await res.text()
  if (!res.ok) throw new Error(`POST ${url} answered ${res.status}: ${body}`)
}

// ─── Alertmanager ────────────────────────────────────────────────────────────

/** An alert as Alertmanager's API v2 lists it (GET /api/v2/alerts). */
export interface AlertmanagerAlert {
  labels: Record<string, string>
  annotations: Record<string, string>
  startsAt: string
  endsAt: string
  fingerprint: string
  status: { state: string; silencedBy: string[]; inhibitedBy: string[] }
  receivers: Array<{ name: string }>
}

export interface AlertmanagerOptions {
  /** alertmanager.yml as an object (written as YAML) or as YAML text. */
  config: object | string
  /** @default 20000 */
  startTimeoutMs?: number
}

export interface RunningAlertmanager extends RunningServer {
  /** GET /api/v2/alerts, optionally only those whose labels include every `match` pair. */
  alerts(match?: Record<string, string>): Promise<AlertmanagerAlert[]>
  /** POST /api/v2/alerts. */
  post(alerts: Array<Partial<AlertmanagerAlert> & { labels: Record<string, string> }>): Promise<void>
  /** Rewrites the config and POSTs /-/reload. */
  reload(config: object | string): Promise<void>
}

function writeConfig(path: string, config: object | string): void {
  writeFileSync(path, typeof config === 'string' ? config : stringify(config))
}

export async function startAlertmanager(options: AlertmanagerOptions): Promise<RunningAlertmanager> {
  const command = alertmanagerCommand()
  if (!command) throw new Error('no prometheus-alertmanager or alertmanager on PATH')
  const dir = mkdtempSync(join(tmpdir(), 'tide-am-'))
  const configFile = join(dir, 'alertmanager.yml')
  writeConfig(configFile, options.config)
  const started = await startServer(
    'Alertmanager',
    command,
    dir,
    {
      configFile,
      storageFlag: 'storage.path',
      // No gossip cluster: one instance, nothing listening beyond the web port.
      extra: ['--cluster.listen-address='],
    },
    options.startTimeoutMs ?? 20_000,
  )
  const { url } = started
  return {
    ...started,
    async alerts(match = {}) {
      const res = await fetch(`${url}/api/v2/alerts`)
      if (!res.ok) throw new Error(`GET /api/v2/alerts answered ${res.status}`)
      const all = (await res.json()) as AlertmanagerAlert[]
      return all.filter((a) => Object.entries(match).every(([k, v]) => a.labels[k] === v))
    },
    async post(alerts) {
      const res = await fetch(`${url}/api/v2/alerts`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(alerts),
      })
      const body = await res.text()
      if (!res.ok) throw new Error(`POST /api/v2/alerts answered ${res.status}: ${body}`)
    },
    async reload(config) {
      writeConfig(configFile, config)
      await postOk(`${url}/-/reload`)
    },
  }
}

// ─── Prometheus ──────────────────────────────────────────────────────────────

export interface PrometheusOptions {
  /**
   * Scrape targets: `host:port` addresses scraped at `/metrics` under job `test`
   * (one job; pass `config` for anything else).
   */
  targets?: string[]
  /** The rule file's contents (`groups: [...]`), as an object or YAML text. */
  rules?: object | string
  /** Alertmanager base URLs (`http://127.0.0.1:9093`) that firing alerts are sent to. */
  alertmanagers?: string[]
  /**
   * Scrape and rule evaluation interval.
   * @default '1s'
   */
  interval?: string
  /** A whole prometheus.yml instead; `targets`, `alertmanagers` and `interval` are then ignored (`rules` is still written to `rules.yml`). */
  config?: object | string
  /** @default 30000 */
  startTimeoutMs?: number
}

/** One series of an instant query. */
export interface PromSample {
  metric: Record<string, string>
  value: [number, string]
}

export interface RunningPrometheus extends RunningServer {
  /** An instant query; throws on an API error. */
  query(expr: string): Promise<PromSample[]>
  /** GET /api/v1/alerts: the alerts the rules have now (pending and firing). */
  alerts(): Promise<Array<{ labels: Record<string, string>; state: string; activeAt?: string }>>
  /** Rewrites the rule file and POSTs /-/reload. */
  reloadRules(rules: object | string): Promise<void>
}

export async function startPrometheus(options: PrometheusOptions = {}): Promise<RunningPrometheus> {
  const command = findCommand('prometheus')
  if (!command) throw new Error('no prometheus on PATH')
  const dir = mkdtempSync(join(tmpdir(), 'tide-prom-'))
  const rulesFile = join(dir, 'rules.yml')
  const configFile = join(dir, 'prometheus.yml')
  writeConfig(rulesFile, options.rules ?? { groups: [] })
  const interval = options.interval ?? '1s'
  const config = options.config ?? {
    global: { scrape_interval: interval, evaluation_interval: interval },
    rule_files: [rulesFile],
    ...(options.alertmanagers?.length
      ? {
          alerting: {
            alertmanagers: [
              {
                static_configs: [{ targets: options.alertmanagers.map((u) => new URL(u).host) }],
              },
            ],
          },
        }
      : {}),
    scrape_configs: options.targets?.length
      ? [{ job_name: 'test', static_configs: [{ targets: options.targets }] }]
      : [],
  }
  writeConfig(configFile, config)
  const started = await startServer(
    'Prometheus',
    command,
    dir,
    {
      configFile,
      storageFlag: 'storage.tsdb.path',
      extra: [
        '--web.enable-lifecycle',
        // Alerts are re-sent to Alertmanager every second, not every minute, so tests are quick.
        '--rules.alert.resend-delay=1s',
      ],
    },
    options.startTimeoutMs ?? 30_000,
  )
  const { url } = started
  return {
    ...started,
    async query(expr) {
      const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`)
      const body = (await res.json()) as {
        status: string
        error?: string
        data?: { resultType: string; result: PromSample[] }
      }
      if (body.status !== 'success') throw new Error(`query ${expr} failed: ${body.error ?? res.status}`)
      return body.data?.result ?? []
    },
    async alerts() {
      const res = await fetch(`${url}/api/v1/alerts`)
      const body = (await res.json()) as {
        data: { alerts: Array<{ labels: Record<string, string>; state: string; activeAt?: string }> }
      }
      return body.data.alerts
    },
    async reloadRules(rules) {
      writeConfig(rulesFile, rules)
      await postOk(`${url}/-/reload`)
    },
  }
}
