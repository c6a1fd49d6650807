/** `workers: 1`: the data path runs inside Tide's own process. */
import { splitHostPort } from '../core/schema.js'
import { Demand, Generations, History, Waits } from './control.js'
import { routerError, wakeFailedMessage } from './errors.js'
import { ProxyServer } from './proxy.js'
import type { RouteConfig } from './schema.js'
import { CounterHistory, type RouterStats, statsFrom } from './stats.js'
import {
  type Backend,
  DEFAULT_STATS_WINDOW_MS,
  type DrainResult,
  type Router,
  type RouterDeps,
} from './types.js'

export class LocalRouter implements Router {
  address = ''
  private readonly proxy: ProxyServer
  private readonly demand: Demand
  private readonly waits: Waits
  private readonly gens = new Generations()
  private history: History | null = null

  constructor(
    private readonly group: string,
    private readonly config: RouteConfig,
    deps: RouterDeps = {},
  ) {
    this.demand = new Demand(group, deps.logger)
    this.waits = new Waits(group, deps.logger)
    this.proxy = new ProxyServer({
      group,
      p2c: config.balance === 'p2c',
      queueDepth: config.queue.depth,
      queueTimeoutMs: config.queue.timeout,
      maxBody: config.queue.max_body,
      upstreamTimeoutMs: config.upstream_timeout,
      since: Date.now(),
      onDemand: () => this.demand.signal(),
      onWait: (ms, served) => this.waits.emit(ms, served),
      logger: deps.logger,
    })
  }

  async start(): Promise<void> {
    const { host, port } = splitHostPort(this.config.listen)
    try {
      this.address = await this.proxy.listen(host, port)
    } catch (err) {
      throw routerError(
        'E_ROUTER_LISTEN',
        `the router of ${this.group} cannot listen on ${this.config.listen}`,
        err,
      )
    }
    this.history = new History(() => this.proxy.counters())
  }

  setBackends(backends: Backend[]): void {
    const specs = this.gens.assign(backends)
    if (specs.length > 0) this.demand.reset()
    this.proxy.setBackends(specs)
  }

  drain(id: string, timeoutMs = this.config.drain_timeout): Promise<DrainResult> {
    return this.proxy.drain(id, timeoutMs)
  }

  undrain(id: string): void {
    if (this.proxy.undrain(id)) this.demand.reset()
  }

  stats(options: { windowMs?: number } = {}): RouterStats {
    const ring = this.history?.ring ?? new CounterHistory()
    return statsFrom(this.proxy.counters(), ring, options.windowMs ?? DEFAULT_STATS_WINDOW_MS)
  }

  onDemand(listener: () => void): void {
    this.demand.add(listener)
  }

  onWait(listener: (waitedMs: number, served: boolean) => void): void {
    this.waits.add(listener)
  }

  wakeFailed(reason: string): number {
    this.demand.reset()
    return this.proxy.failQueue('E_ROUTER_WAKE_FAILED', wakeFailedMessage(this.group, reason))
  }

  async close(): Promise<void> {
    this.history?.stop()
    await this.proxy.close(this.config.drain_timeout)
  }
}
