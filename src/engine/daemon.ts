/**
 * `tide run`: loads the config, starts the store, targets, routers, engine and API.
 * (stub: being written by the engine work; the signature is final)
 */
import type { Controller } from './controller.js'

export interface DaemonOptions {
  configPath: string
  /** Overrides api.listen from the config. */
  listen?: string
  /** Print human progress (false under --json). */
  logLevel?: string
}

export interface Daemon {
  controller: Controller
  /** The API's actual address (port 0 resolved). */
  apiUrl: string
  /** Stops loops, routers, API; stops local processes it started. */
  close(): Promise<void>
}

export async function startDaemon(_options: DaemonOptions): Promise<Daemon> {
  throw new Error('not implemented yet')
}
