/** The router's public shape, shared by the in-process and the multi-process implementations. */
import type { RouterLogger } from './proxy.js'
import type { RouterStats } from './stats.js'

/** A ready instance: `id` is the Instance id, `address` its host:port. */
export interface Backend {
  id: string
  address: string
}

export interface DrainResult {
  /** Requests still in flight on the backend when the drain ended (0 unless it timed out). */
  inFlight: number
  timedOut: boolean
}

export interface Router {
  /** Listening when it resolves; rejects with E_ROUTER_LISTEN. */
  start(): Promise<void>
  /** The actual host:port (port 0 resolved), once started. */
  readonly address: string
  /** The group's ready instances; replaces the set. Removed ones finish their requests in flight. */
  setBackends(backends: Backend[]): void
  /**
   * Sends no new request to `id`; resolves when its requests in flight are done, or after
   * `timeoutMs` (default `drain_timeout`) with how many were left.
   */
  drain(id: string, timeoutMs?: number): Promise<DrainResult>
  /**
   * Takes a drained backend back into rotation: the target kept the instance it was about to
   * remove (Kubernetes chose another pod), or the operation failed before removing it. Without
   * this a backend that stays in `setBackends` after a drain would stay out of rotation for good.
   * A drain still waiting on it resolves at once. Nothing happens for an id that is not draining.
   * (Optional so that test doubles of the router need not have it.)
   */
  undrain?(id: string): void
  /** Counters now, and figures over the last `windowMs` (default 10 s). */
  stats(options?: { windowMs?: number }): RouterStats
  /** Called once per demand episode: a request arrived while no backend was ready. */
  onDemand(listener: () => void): void
  /**
   * Called each time a request stops waiting for a backend, with how long it waited in ms and
   * whether it was then sent to one (`served`) or answered 503. Feeds the cold-start histogram.
   * (Optional so that test doubles of the router need not have it.)
   */
  onWait?(listener: (waitedMs: number, served: boolean) => void): void
  /**
   * The wake the waiting requests were for failed: answers every one of them 503
   * (`E_ROUTER_WAKE_FAILED`, with `Retry-After`) and ends the demand episode, so the next request
   * signals `onDemand` again. Nothing is cached. Returns how many requests were answered.
   */
  wakeFailed?(reason: string): number
  /** Stops listening, answers queued requests 503, lets requests in flight finish (up to `drain_timeout`). */
  close(): Promise<void>
}

export interface RouterDeps {
  logger?: RouterLogger
}

/** The window `stats()` reports when none is asked for. */
export const DEFAULT_STATS_WINDOW_MS = 10_000
