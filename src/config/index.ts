/**
 * Config loading (stub: being written by the engine work; signatures are final).
 */
export interface ApiConfig {
  /** host:port, default 127.0.0.1:7070 */
  listen: string
  /** Bearer token for mutating calls; required when `listen` is not loopback. */
  token?: string
}

/** Loads, interpolates and validates a YAML config file; throws ConfigError listing every problem. */
export async function loadConfigFile(_path: string): Promise<unknown> {
  throw new Error('not implemented yet')
}

/** The JSON Schema of the config file, for editors. */
export function configJsonSchema(): object {
  return {}
}
