/**
 * A backend as one router process sees it: its requests in flight, its counters, its pool of idle
 * keep-alive connections, and whether it is draining. Also the choice of a backend per request.
 */

import type { ClientConn } from './client.js'
import type { BackendCounters } from './stats.js'
import type { UpstreamConn } from './upstream.js'

/** An instance the router may send requests to, as passed between primary and workers. */
export interface BackendSpec {
  id: string
  /** host:port */
  address: string
  /** Incarnation: a new number each time the id (re)appears, so counters never mix. */
  gen: number
}

/** After a failed connect, a backend is skipped this long unless nothing else is left (nginx: fail_timeout). */
export const FAIL_BACKOFF_MS = 2000

export class BackendState {
  readonly id: string
  readonly address: string
  readonly host: string
  readonly port: number
  readonly gen: number
  inFlight = 0
  /** ∫ inFlight dt (request·ms) up to `lastT` (performance.now()). */
  busy = 0
  lastT: number
  requests = 0
  errors = 0
  draining = false
  /** No longer in the set: finishes what it has, then forgotten. */
  removed = false
  /** Coarse time before which it is skipped after a failed connect. */
  failedUntil = 0
  /** Idle keep-alive connections, most recently used last (taken first, so surplus ones age out). */
  readonly idle: UpstreamConn[] = []
  /** Resolved when inFlight reaches 0. */
  readonly waiters: Array<() => void> = []
  /** Ends the drains waiting on this backend when it is taken back into rotation (undrain). */
  readonly undrains = new Set<() => void>()
  /** Client connections tunnelled to this backend after a 101 (each counts one in flight). */
  readonly tunnels = new Set<ClientConn>()

  constructor(spec: BackendSpec, host: string, port: number, now: number) {
    this.id = spec.id
    this.address = spec.address
    this.gen = spec.gen
    this.host = host
    this.port = port
    this.lastT = now
  }

  /** Moves the in-flight count by `delta` at time `now`, keeping the integral exact. */
  adjust(delta: number, now: number): void {
    this.busy += this.inFlight * (now - this.lastT)
    this.lastT = now
    this.inFlight += delta
    if (this.inFlight === 0 && this.waiters.length > 0) {
      for (const resolve of this.waiters.splice(0)) resolve()
    }
  }

  counters(now: number): BackendCounters {
    this.adjust(0, now)
    return {
      gen: this.gen,
      inFlight: this.inFlight,
      requests: this.requests,
      errors: this.errors,
      busy: this.busy,
      draining: this.draining,
    }
  }

  closeIdle(): void {
    for (const conn of this.idle.splice(0)) conn.destroy()
  }
}

/**
 * Least outstanding requests: the fewest in flight wins; ties go round the list from a moving
 * start so equal backends share a light load too. `p2c` compares two picked at random (Knative's
 * activator, anchors.md §2), which avoids herding when many routers share backends.
 * Backends that just refused a connection, or `avoid`, are chosen only when nothing else is left.
 */
export class Balancer {
  private turn = 0
  constructor(private readonly p2c: boolean) {}

  pick(list: BackendState[], avoid: BackendState | null, now: number): BackendState | null {
    const n = list.length
    if (n === 0) return null
    if (n === 1) return list[0]!
    let best: BackendState | null = null
    if (this.p2c) {
      const i = Math.floor(Math.random() * n)
      let j = Math.floor(Math.random() * (n - 1))
      if (j >= i) j++
      const a = list[i]!
      const b = list[j]!
      const aOk = a !== avoid && a.failedUntil <= now
      const bOk = b !== avoid && b.failedUntil <= now
      if (aOk && bOk) return a.inFlight <= b.inFlight ? a : b
      if (aOk) return a
      if (bOk) return b
    }
    const start = this.turn++ % n
    if (this.turn > 1e9) this.turn = 0
    for (let k = 0; k < n; k++) {
      const b = list[(start + k) % n]!
      if (b === avoid || b.failedUntil > now) continue
      if (best === null || b.inFlight < best.inFlight) best = b
    }
    if (best !== null) return best
    for (let k = 0; k < n; k++) {
      const b = list[(start + k) % n]!
      if (b !== avoid) return b
    }
    return list[start]!
  }
}
