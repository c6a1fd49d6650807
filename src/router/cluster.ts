/**
 * `workers` > 1: the data path runs in that many processes sharing the listening port, the way
 * nginx runs worker processes. node:cluster makes the primary (Tide's process) own the socket
 * and hand accepted connections to the workers in turn, so connections spread evenly (the
 * kernel's own spreading between processes that accept on one socket is lopsided; Node's cluster
 * docs). The primary touches a connection once, at accept; requests flow in the workers.
 *
 * The primary keeps the truth about backends and drains and sends it to every worker; workers
 * report counters a few times a second and signal demand; the primary adds the counters up. A
 * worker that dies is replaced after a second and told the current backends.
 */
import cluster, { type Worker } from 'node:cluster'
import { createServer } from 'node:net'
import { extname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { errorMessage } from '../core/errors.js'
import { splitHostPort } from '../core/schema.js'
import type { BackendSpec } from './backend.js'
import { Demand, Generations, History, Waits } from './control.js'
import { routerError, wakeFailedMessage } from './errors.js'
import { type FromWorker, type ToWorker, WORKER_ENV, type WorkerInit } from './ipc.js'
import type { RouterLogger } from './proxy.js'
import type { RouteConfig } from './schema.js'
import {
  CounterHistory,
  emptyCounters,
  mergeCounters,
  type RouterCounters,
  type RouterStats,
  statsFrom,
} from './stats.js'
import {
  type Backend,
  DEFAULT_STATS_WINDOW_MS,
  type DrainResult,
  type Router,
  type RouterDeps,
} from './types.js'

/**
 * The worker module next to this one, with this module's extension: `worker.ts` when Tide runs
 * from source through tsx (tests), `worker.js` in dist/.
 */
export function workerFile(): string {
  const self = fileURLToPath(import.meta.url)
  return fileURLToPath(new URL(`./worker${extname(self)}`, import.meta.url))
}

/**
 * The flags a worker inherits: the loader (`--import tsx`) and tuning flags such as `--cpu-prof`,
 * but not the test runner's or the inspector's, which would clash.
 */
export function workerExecArgv(execArgv: string[] = process.execArgv): string[] {
  const out: string[] = []
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i]!
    if (arg.startsWith('--test') || arg.startsWith('--inspect') || arg.startsWith('--watch')) continue
    if (arg === '-e' || arg === '--eval' || arg === '-p' || arg === '--print') {
      i++
      continue
    }
    out.push(arg)
  }
  return out
}

/** Asks the kernel for a free port, so several routers on port 0 never share a cluster handle. */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen({ host, port: 0 }, () => {
      const a = server.address()
      server.close(() => resolve(a !== null && typeof a === 'object' ? a.port : 0))
    })
  })
}

interface WorkerSlot {
  worker: Worker
  counters: RouterCounters | null
}

interface PendingDrain {
  waiting: Set<number>
  inFlight: number
  timedOut: boolean
  resolve: (result: DrainResult) => void
  timer: NodeJS.Timeout
}

export class ClusterRouter implements Router {
  address = ''
  private readonly logger: RouterLogger | undefined
  private readonly demand: Demand
  private readonly waits: Waits
  private readonly gens = new Generations()
  private readonly slots = new Map<number, WorkerSlot>()
  private readonly since = Date.now()
  /** Counters of workers that exited, so totals never go backwards. */
  private retired: RouterCounters
  private backends: BackendSpec[] = []
  private readonly draining = new Set<string>()
  private readonly drains = new Map<number, PendingDrain>()
  private seq = 0
  private history: History | null = null
  private closing = false
  private init: WorkerInit | null = null

  private readonly workers: number

  constructor(
    private readonly group: string,
    private readonly config: RouteConfig,
    deps: RouterDeps = {},
  ) {
    this.workers = config.workers ?? 2
    this.logger = deps.logger
    this.demand = new Demand(group, deps.logger)
    this.waits = new Waits(group, deps.logger)
    this.retired = emptyCounters(this.since)
  }

  async start(): Promise<void> {
    const { host, port } = splitHostPort(this.config.listen)
    try {
      const actual = port === 0 ? await freePort(host) : port
      this.init = {
        group: this.group,
        config: this.config,
        host,
        port: actual,
        queueDepth: Math.ceil(this.config.queue.depth / this.workers),
        since: this.since,
      }
      const started = Array.from({ length: this.workers }, () => this.fork())
      const addresses = await Promise.all(started)
      this.address = addresses[0]!
    } catch (err) {
      await this.close()
      throw routerError(
        'E_ROUTER_LISTEN',
        `the router of ${this.group} cannot listen on ${this.config.listen}: ${errorMessage(err)}`,
        err,
      )
    }
    this.history = new History(() => this.counters())
  }

  /** Starts a worker; resolves with its address once it listens. */
  private fork(): Promise<string> {
    cluster.setupPrimary({ exec: workerFile(), execArgv: workerExecArgv(), args: [] })
    const worker = cluster.fork({ [WORKER_ENV]: JSON.stringify(this.init) })
    const slot: WorkerSlot = { worker, counters: null }
    this.slots.set(worker.id, slot)
    return new Promise((resolve, reject) => {
      let listening = false
      worker.on('message', (message: FromWorker) => {
        switch (message.t) {
          case 'listening':
            listening = true
            this.send(worker, { t: 'backends', backends: this.backends, draining: [...this.draining] })
            resolve(message.address)
            break
          case 'error':
            reject(new Error(message.message))
            break
          default:
            this.onMessage(slot, message)
        }
      })
      worker.on('exit', (code, signal) => {
        this.slots.delete(worker.id)
        this.retire(slot)
        for (const [seq, drain] of this.drains) {
          drain.waiting.delete(worker.id)
          if (drain.waiting.size === 0) this.settle(seq)
        }
        if (!listening)
          reject(new Error(`router worker exited with ${signal ?? `code ${code}`} before listening`))
        else if (!this.closing) {
          this.logger?.warn({ group: this.group, code, signal }, 'router: worker exited; starting another')
          setTimeout(() => {
            if (!this.closing) this.fork().catch(() => {})
          }, 1000).unref()
        }
      })
    })
  }

  private onMessage(slot: WorkerSlot, message: FromWorker): void {
    switch (message.t) {
      case 'counters':
        slot.counters = message.counters
        break
      case 'demand':
        this.demand.signal()
        break
      case 'waits':
        for (const ms of message.served) this.waits.emit(ms, true)
        for (const ms of message.failed) this.waits.emit(ms, false)
        break
      case 'drained': {
        const drain = this.drains.get(message.seq)
        if (drain === undefined) return
        drain.inFlight += message.inFlight
        drain.timedOut ||= message.timedOut
        drain.waiting.delete(slot.worker.id)
        if (drain.waiting.size === 0) this.settle(message.seq)
        break
      }
      case 'log':
        this.logger?.[message.level](message.obj, message.msg)
        break
    }
  }

  private retire(slot: WorkerSlot): void {
    const last = slot.counters
    if (last === null) return
    const backends: RouterCounters['backends'] = {}
    for (const [id, b] of Object.entries(last.backends)) backends[id] = { ...b, inFlight: 0 }
    this.retired = mergeCounters(
      [this.retired, { ...last, inFlight: 0, queued: 0, backends }],
      Math.max(this.retired.at, last.at),
      this.since,
    )
  }

  private send(worker: Worker, message: ToWorker): void {
    if (worker.isConnected()) worker.send(message)
  }

  private broadcast(message: ToWorker): void {
    for (const slot of this.slots.values()) this.send(slot.worker, message)
  }

  setBackends(backends: Backend[]): void {
    this.backends = this.gens.assign(backends)
    for (const id of this.draining) if (!this.backends.some((b) => b.id === id)) this.draining.delete(id)
    if (this.backends.some((b) => !this.draining.has(b.id))) this.demand.reset()
    this.broadcast({ t: 'backends', backends: this.backends, draining: [...this.draining] })
  }

  drain(id: string, timeoutMs = this.config.drain_timeout): Promise<DrainResult> {
    if (this.backends.some((b) => b.id === id)) this.draining.add(id)
    const seq = ++this.seq
    const waiting = new Set([...this.slots.values()].map((s) => s.worker.id))
    if (waiting.size === 0) return Promise.resolve({ inFlight: 0, timedOut: false })
    return new Promise((resolve) => {
      // Workers time out on their own; this only covers one that stops answering.
      const timer = setTimeout(() => {
        const drain = this.drains.get(seq)
        if (drain !== undefined) drain.timedOut = true
        this.settle(seq)
      }, timeoutMs + 2000)
      timer.unref()
      this.drains.set(seq, { waiting, inFlight: 0, timedOut: false, resolve, timer })
      this.broadcast({ t: 'drain', id, seq, timeoutMs })
    })
  }

  undrain(id: string): void {
    if (!this.draining.delete(id)) return
    if (this.backends.some((b) => b.id === id)) this.demand.reset()
    this.broadcast({ t: 'undrain', id })
  }

  private settle(seq: number): void {
    const drain = this.drains.get(seq)
    if (drain === undefined) return
    this.drains.delete(seq)
    clearTimeout(drain.timer)
    drain.resolve({ inFlight: drain.inFlight, timedOut: drain.timedOut })
  }

  private counters(): RouterCounters {
    const parts = [this.retired]
    for (const slot of this.slots.values()) if (slot.counters !== null) parts.push(slot.counters)
    return mergeCounters(parts, Date.now(), this.since)
  }

  stats(options: { windowMs?: number } = {}): RouterStats {
    const counters = this.counters()
    const ring = this.history?.ring ?? new CounterHistory()
    return statsFrom(counters, ring, options.windowMs ?? DEFAULT_STATS_WINDOW_MS)
  }

  onDemand(listener: () => void): void {
    this.demand.add(listener)
  }

  onWait(listener: (waitedMs: number, served: boolean) => void): void {
    this.waits.add(listener)
  }

  /** Each worker answers its own held requests; the count is not known here, so 0 is returned. */
  wakeFailed(reason: string): number {
    this.demand.reset()
    this.broadcast({ t: 'wakeFailed', message: wakeFailedMessage(this.group, reason) })
    return 0
  }

  async close(): Promise<void> {
    if (this.closing) return
    this.closing = true
    this.history?.stop()
    const exits = [...this.slots.values()].map(
      ({ worker }) =>
        new Promise<void>((resolve) => {
          if (worker.isDead()) return resolve()
          const timer = setTimeout(() => {
            // It did not stop in time: end it (a process this router started, by its pid).
            if (worker.process.pid !== undefined) process.kill(worker.process.pid, 'SIGKILL')
          }, this.config.drain_timeout + 5000)
          timer.unref()
          worker.once('exit', () => {
            clearTimeout(timer)
            resolve()
          })
        }),
    )
    this.broadcast({ t: 'close', timeoutMs: this.config.drain_timeout })
    await Promise.all(exits)
    for (const seq of [...this.drains.keys()]) this.settle(seq)
  }
}
