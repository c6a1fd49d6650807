/**
 * What a target plugin is written against: `import type { PluginFactory } from 'tide/plugin'`
 * (package.json `exports["./plugin"]`). The same Target interface the built-in targets implement
 * (src/core/types.ts), the context a plugin gets, and the two errors it may throw. Nothing here
 * imports the engine: a plugin sees only this vocabulary (Nomad Autoscaler's sdk package).
 *
 * @example
 * // my-scaler.js
 * /** @type {import('tide/plugin').PluginFactory} *\/
 * export function createTarget(options, context) {
 *   let desired = 0
 *   return {
 *     kind: 'my-scaler',
 *     async status() { return { desired, instances: [], ready: 0 } },
 *     async scale(to) { const from = desired; desired = to; return { from, to, added: [], removed: [] } },
 *   }
 * }
 */
export type {
  GroupStatus,
  Instance,
  InstanceState,
  ScalePlan,
  ScaleResult,
  Target,
} from '../../core/types.js'
export { NoChangeError, TargetError } from '../../core/errors.js'

import type { Target } from '../../core/types.js'

/** A pino-compatible logger, already labelled with the group. */
export interface PluginLogger {
  debug(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

/** What Tide hands the plugin's factory. */
export interface PluginContext {
  /** The group this target serves. */
  group: string
  /** The directory of the config file: resolve the plugin's own relative paths against it. */
  configDir: string
  logger: PluginLogger
}

/**
 * The function a plugin module exports as `createTarget` (or as its default export). `options`
 * is the `options` map of the group's `target`, as written. Validate it here and throw an Error
 * naming the bad option: Tide reports it with the module's name and refuses to start. Do no slow
 * I/O here; do it in the target's `start()`, which may fail and be tried again.
 */
export type PluginFactory = (
  options: Record<string, unknown>,
  context: PluginContext,
) => Target | Promise<Target>

/** Types a factory in a JavaScript file without JSDoc: `export const createTarget = definePlugin((options, ctx) => …)`. */
export function definePlugin(factory: PluginFactory): PluginFactory {
  return factory
}
