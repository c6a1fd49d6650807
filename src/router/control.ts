/** Bookkeeping shared by the in-process and the multi-process routers. */
import { splitHostPort } from '../core/schema.js'
import type { BackendSpec } from './backend.js'
import type { RouterLogger } from './proxy.js'
import { CounterHistory, type RouterCounters } from './stats.js'
import type { Backend } from './types.js'

/**
 * Gives each backend id an incarnation number: a new one when the id appears (again) or moves to
 * another address, so counters of an earlier instance with the same id never mix with the new one's.
 */
export class Generations {
  private next = 1
  private current = new Map<string, BackendSpec>()

  assign(backends: Backend[]): BackendSpec[] {
    const seen = new Map<string, BackendSpec>()
    for (const b of backends) {
      splitHostPort(b.address) // throws on a malformed address before anything changes
      const old = this.current.get(b.id)
      seen.set(
        b.id,
        old !== undefined && old.address === b.address
          ? old
          : { id: b.id, address: b.address, gen: this.next++ },
      )
    }
    this.current = seen
    return [...seen.values()]
  }
}

/** Demand listeners and the once-per-episode rule. */
export class Demand {
  private readonly listeners: Array<() => void> = []
  private signalled = false

  constructor(
    private readonly group: string,
    private readonly logger?: RouterLogger,
  ) {}

  /**
   * A listener added while an episode is already open is told at once: the router listens
   * before its group has started (a target may take seconds to connect), and a request that
   * came in between would otherwise wait for a wake nobody was asked for.
   */
  add(listener: () => void): void {
    this.listeners.push(listener)
    if (this.signalled) this.call(listener)
  }

  private call(listener: () => void): void {
    try {
      listener()
    } catch (err) {
      this.logger?.error({ group: this.group, err }, 'router: onDemand listener threw')
    }
  }

  /** A request found no ready backend. */
  signal(): void {
    if (this.signalled) return
    this.signalled = true
    for (const listener of this.listeners) this.call(listener)
  }

  /** Backends are ready: the episode is over. */
  reset(): void {
    this.signalled = false
  }
}

/** Listeners of waits for an instance (the cold-start histogram); a throwing one is logged. */
export class Waits {
  private readonly listeners: Array<(waitedMs: number, served: boolean) => void> = []

  constructor(
    private readonly group: string,
    private readonly logger?: RouterLogger,
  ) {}

  add(listener: (waitedMs: number, served: boolean) => void): void {
    this.listeners.push(listener)
  }

  emit(waitedMs: number, served: boolean): void {
    for (const listener of this.listeners) {
      try {
        listener(waitedMs, served)
      } catch (err) {
        this.logger?.error({ group: this.group, err }, 'router: onWait listener threw')
      }
    }
  }
}

/** Keeps a reading a second so `stats()` can answer for a trailing window. */
export class History {
  readonly ring = new CounterHistory()
  private readonly timer: NodeJS.Timeout

  constructor(read: () => RouterCounters) {
    this.ring.push(read())
    this.timer = setInterval(() => this.ring.push(read()), 1000)
    this.timer.unref()
  }

  stop(): void {
    clearInterval(this.timer)
  }
}
