/** Messages between the router's primary (in Tide's process) and its worker processes. */
import type { BackendSpec } from './backend.js'
import type { RouteConfig } from './schema.js'
import type { RouterCounters } from './stats.js'

/** The environment variable that carries a worker's settings (JSON of WorkerInit). */
export const WORKER_ENV = 'TIDE_ROUTER_WORKER'

export interface WorkerInit {
  group: string
  config: RouteConfig
  host: string
  port: number
  /** This worker's share of `queue.depth`. */
  queueDepth: number
  /** Epoch ms the router started. */
  since: number
}

export type ToWorker =
  | { t: 'backends'; backends: BackendSpec[]; draining: string[] }
  | { t: 'drain'; id: string; seq: number; timeoutMs: number }
  | { t: 'undrain'; id: string }
  | { t: 'close'; timeoutMs: number }
  | { t: 'wakeFailed'; message: string }

export type FromWorker =
  | { t: 'listening'; address: string }
  | { t: 'error'; message: string }
  | { t: 'counters'; counters: RouterCounters }
  | { t: 'demand' }
  /** Requests that stopped waiting for a backend since the last such message, in ms. */
  | { t: 'waits'; served: number[]; failed: number[] }
  | { t: 'drained'; seq: number; inFlight: number; timedOut: boolean }
  | { t: 'log'; level: 'info' | 'warn' | 'error'; obj: Record<string, unknown>; msg: string }
