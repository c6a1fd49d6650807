/**
 * Config: one YAML file, validated with every problem reported at once.
 * See docs/config.md (generated from the schemas by scripts/gen-config-docs.ts).
 */
import { z } from 'zod'
import { configSchema } from './schema.js'

export {
  effectiveSources,
  formatPath,
  type LoadedConfig,
  loadConfigFile,
  parseConfig,
  parseConfigText,
} from './load.js'
export { type Config, type ConfigInput, configSchema, type GroupConfig, groupSchema } from './schema.js'

export interface ApiConfig {
  /** host:port, default 127.0.0.1:7070 */
  listen: string
  /** Bearer token for mutating calls; required when `listen` is not loopback. */
  token?: string
}

/** The JSON Schema of the config file (what a user writes), for editors. */
export function configJsonSchema(): object {
  return {
    ...z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }),
    $id: 'https://github.com/tide-autoscaler/tide/schema/tide.schema.json',
    title: 'Tide configuration',
  }
}
