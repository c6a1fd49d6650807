/**
 * The `plugin` target: a user's ES module implementing the same Target interface as the built-in
 * targets — the TypeScript form of seed 004's resource-scaler Go plugins (§4.2), without their
 * brittleness (no exact toolchain match, one module per group, named in the config).
 *
 * ```yaml
 * target:
 *   kind: plugin
 *   module: ./plugins/my-scaler.js     # relative to the config file; or a package name
 *   options: { region: eu-1 }          # handed to the module's createTarget(options, context)
 * ```
 *
 * Loaded and checked when Tide starts (`start()`): the module must import, export a
 * `createTarget` function (or a default one), and that must return an object with `status()` and
 * `scale()`; anything else stops `tide run` with an error naming the module and what is missing.
 *
 * Isolated: every call into the plugin goes through this wrapper, which turns a throw, a hang (of
 * `status()`, bounded by `status_timeout`) or a malformed answer into a TargetError naming the
 * module and the call. The engine already confines a target's errors to its group, so a broken
 * plugin fails its own group and nothing else. (A plugin runs in Tide's process: a plugin that
 * throws from its own timers, outside any call, is beyond what a wrapper can catch.)
 */
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { isAbsolute, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { z } from 'zod'
import { errorMessage, NoChangeError, TargetError, TideError } from '../../core/errors.js'
import { formatDuration } from '../../core/duration.js'
import { duration } from '../../core/schema.js'
import type { GroupStatus, ScalePlan, ScaleResult, Target } from '../../core/types.js'
import type { PluginContext, PluginFactory, PluginLogger } from './api.js'

export const pluginTargetSchema = z
  .object({
    kind: z
      .literal('plugin')
      .describe("A user's ES module implementing the Target interface (see docs/plugins.md)."),
    module: z
      .string()
      .min(1)
      .describe(
        'The module: a path (`./plugins/my-scaler.js`, relative to the config file) or an installed package name.',
      ),
    options: z
      .record(z.string(), z.unknown())
      .default({})
      .describe("Passed as is to the module's `createTarget(options, context)`; the plugin validates them."),
    status_timeout: duration('30s')
      .refine((ms) => ms > 0, { message: 'must be longer than 0' })
      .describe("The longest one call of the plugin's `status()` may take before it counts as failed."),
    scale_timeout: duration('15m')
      .refine((ms) => ms > 0, { message: 'must be longer than 0' })
      .describe(
        "The longest one call of the plugin's `scale()` may take (seed 004 capped a wake at 15 minutes). Past it the signal given to `scale()` is aborted and the operation fails, so a plugin that hangs cannot hold its group's operations for good; requests held for a wake are answered 503 at once.",
      ),
  })
  .strict()

export type PluginTargetConfig = z.output<typeof pluginTargetSchema>

export interface PluginTargetDeps {
  logger: PluginLogger & { child?(bindings: object): PluginLogger }
  /** The config file's directory: relative module paths are resolved against it. */
  configDir: string
}

/** The module could not be found or imported. */
export class PluginLoadError extends TideError {
  constructor(message: string, cause?: unknown) {
    super('E_PLUGIN_LOAD', message, { status: 500, cause })
  }
}

/** The module imported but is not a plugin: no factory, or a target without status()/scale(). */
export class PluginInvalidError extends TideError {
  constructor(message: string, cause?: unknown) {
    super('E_PLUGIN_INVALID', message, { status: 500, cause })
  }
}

const STATES = ['starting', 'ready', 'draining', 'stopping', 'failed'] as const

/** What `status()` must answer; checked so that a plugin's mistake stops at its own group. */
const statusSchema = z.object({
  desired: z.number().int().min(0),
  instances: z.array(
    z.looseObject({
      id: z.string().min(1),
      state: z.enum(STATES),
      address: z.string().optional(),
      createdAt: z.number(),
      readyAt: z.number().optional(),
      pid: z.number().optional(),
      detail: z.string().optional(),
      protected: z.boolean().optional(),
    }),
  ),
  ready: z.number().int().min(0),
  message: z.string().optional(),
})

const resultSchema = z.object({
  from: z.number().int().min(0),
  to: z.number().int().min(0),
  added: z.array(z.string()),
  removed: z.array(z.string()),
})

/** `instances[0].state: must be one of …` — the first problem of a malformed answer. */
function firstProblem(error: z.ZodError): string {
  const issue = error.issues[0]!
  const path = issue.path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`))
    .join('')
  return `${path || '(the answer)'}: ${issue.message}`
}

/** Resolves `module` as the config writes it: a path against the config's directory, or a package. */
export function resolvePluginModule(module: string, configDir: string): string {
  if (module.startsWith('.') || isAbsolute(module)) {
    const path = isAbsolute(module) ? module : resolve(configDir, module)
    if (!existsSync(path)) throw new PluginLoadError(`plugin module ${module} not found: no file ${path}`)
    return pathToFileURL(path).href
  }
  try {
    return pathToFileURL(createRequire(resolve(configDir, 'tide.yaml')).resolve(module)).href
  } catch (err) {
    throw new PluginLoadError(
      `plugin module ${module} not found: it is not a path (start it with ./) and no package of that name is installed where the config is (${configDir})`,
      err,
    )
  }
}

/**
 * Imports a group's plugin module and checks it as `tide run` does, without starting it: the
 * module must import, export `createTarget` (or a default function), and that must return an
 * object with `status()` and `scale()` (and `start`/`watch`/`close`, if present, functions).
 * `tide validate` calls this. The target made is closed again (a factory does no I/O, see api.ts).
 * Throws PluginLoadError or PluginInvalidError naming the module and what is wrong.
 */
export async function checkPlugin(
  group: string,
  config: PluginTargetConfig,
  configDir: string,
): Promise<void> {
  const quiet: PluginLogger = { debug() {}, info() {}, warn() {}, error() {} }
  const target = await loadPlugin(group, config, { logger: quiet, configDir })
  try {
    await target.close?.()
  } catch {
    // Nothing was started; a close that throws says nothing about the module's shape.
  }
}

async function loadPlugin(
  group: string,
  config: PluginTargetConfig,
  deps: PluginTargetDeps,
): Promise<Target> {
  const { module, options } = config
  const url = resolvePluginModule(module, deps.configDir)
  let exports: Record<string, unknown>
  try {
    exports = (await import(url)) as Record<string, unknown>
  } catch (err) {
    throw new PluginLoadError(`plugin module ${module} cannot be imported: ${errorMessage(err)}`, err)
  }
  const factory = (typeof exports.createTarget === 'function' ? exports.createTarget : exports.default) as
    PluginFactory | undefined
  if (typeof factory !== 'function') {
    const names = Object.keys(exports).filter((k) => k !== 'default')
    throw new PluginInvalidError(
      `plugin module ${module} exports no createTarget function (it exports ${names.length > 0 ? names.join(', ') : 'nothing'}${'default' in exports ? ' and a default that is not a function' : ''}): ` +
        'a plugin exports `createTarget(options, context)` returning an object with status() and scale()',
    )
  }
  const context: PluginContext = { group, configDir: deps.configDir, logger: deps.logger }
  let target: unknown
  try {
    target = await factory({ ...options }, context)
  } catch (err) {
    throw new PluginInvalidError(
      `plugin module ${module}: createTarget(options) threw: ${errorMessage(err)}`,
      err,
    )
  }
  if (target === null || typeof target !== 'object') {
    throw new PluginInvalidError(
      `plugin module ${module}: createTarget(options) returned ${target === null ? 'null' : typeof target}, not a target object with status() and scale()`,
    )
  }
  const t = target as Record<string, unknown>
  const missing = ['status', 'scale'].filter((m) => typeof t[m] !== 'function')
  const wrong = ['start', 'watch', 'close'].filter((m) => t[m] !== undefined && typeof t[m] !== 'function')
  if (missing.length > 0 || wrong.length > 0) {
    const has = Object.keys(t).filter((k) => typeof t[k] === 'function')
    const parts = [
      ...(missing.length > 0 ? [`has no ${missing.map((m) => `${m}()`).join(' and no ')} method`] : []),
      ...wrong.map((m) => `has a ${m} that is not a function`),
    ]
    throw new PluginInvalidError(
      `plugin module ${module}: the target from createTarget() ${parts.join(', ')} (its methods: ${has.length > 0 ? has.join(', ') : 'none'})`,
    )
  }
  deps.logger.info({}, `plugin ${module} loaded`)
  return target as Target
}

export function createPluginTarget(
  group: string,
  config: PluginTargetConfig,
  deps: PluginTargetDeps,
): Target {
  return new PluginTarget(group, config, deps)
}

class PluginTarget implements Target {
  readonly kind = 'plugin'
  private plugin?: Target
  private started = false
  private starting?: Promise<void>
  private readonly log: PluginLogger
  /** The last good answer, so a scale result can be filled in when the plugin returns nothing. */
  private lastDesired = 0

  constructor(
    private readonly group: string,
    private readonly config: PluginTargetConfig,
    private readonly deps: PluginTargetDeps,
  ) {
    this.log = deps.logger.child?.({ group, plugin: config.module }) ?? deps.logger
  }

  private get name(): string {
    return `plugin ${this.config.module}`
  }

  /** Loads and checks the module; then starts the plugin (a failure there is retried at the next call). */
  async start(signal: AbortSignal): Promise<void> {
    this.plugin = await loadPlugin(this.group, this.config, { ...this.deps, logger: this.log })
    await this.ensureStarted(signal).catch((err) => {
      this.log.warn({ err }, `${this.name}: start() failed; trying again at the next evaluation`)
    })
  }

  private ensureStarted(signal: AbortSignal): Promise<void> {
    if (this.started) return Promise.resolve()
    this.starting ??= (async () => {
      try {
        await this.call('start()', () => this.plugin!.start?.(signal))
        this.started = true
      } finally {
        this.starting = undefined
      }
    })()
    return this.starting
  }

  /** One call into the plugin: a throw becomes a TargetError naming the module and the call. */
  private async call<T>(what: string, fn: () => T | Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      if (err instanceof NoChangeError || (err as { code?: unknown })?.code === 'E_NO_CHANGE')
        throw new NoChangeError(errorMessage(err))
      if (err instanceof PluginLoadError || err instanceof PluginInvalidError) throw err
      throw new TargetError(`${this.name}: ${what} failed: ${errorMessage(err)}`, {
        cause: err,
        code: 'E_PLUGIN_FAILED',
      })
    }
  }

  private checkStatus(answer: unknown): GroupStatus {
    const parsed = statusSchema.safeParse(answer)
    if (!parsed.success) {
      throw new TargetError(
        `${this.name}: status() answered something that is not a group status: ${firstProblem(parsed.error)}`,
        {
          code: 'E_PLUGIN_FAILED',
        },
      )
    }
    this.lastDesired = parsed.data.desired
    return answer as GroupStatus
  }

  async status(signal: AbortSignal): Promise<GroupStatus> {
    if (!this.plugin) throw new TargetError(`${this.name} is not loaded yet`, { code: 'E_PLUGIN_FAILED' })
    await this.ensureStarted(signal)
    const timeout = this.config.status_timeout
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new TargetError(`${this.name}: status() did not answer within ${Math.round(timeout / 1000)}s`, {
              code: 'E_PLUGIN_FAILED',
            }),
          ),
        timeout,
      )
      timer.unref?.()
    })
    try {
      const answer = await Promise.race([this.call('status()', () => this.plugin!.status(signal)), late])
      return this.checkStatus(answer)
    } finally {
      clearTimeout(timer)
    }
  }

  async scale(to: number, plan: ScalePlan, signal: AbortSignal): Promise<ScaleResult> {
    if (!this.plugin) throw new TargetError(`${this.name} is not loaded yet`, { code: 'E_PLUGIN_FAILED' })
    await this.ensureStarted(signal)
    const from = this.lastDesired
    const timeout = this.config.scale_timeout
    const late = new AbortController()
    const timer = setTimeout(
      () =>
        late.abort(
          new TargetError(
            `${this.name}: scale(${to}) did not finish within ${formatDuration(timeout)}; its signal was aborted`,
            { code: 'E_PLUGIN_FAILED' },
          ),
        ),
      timeout,
    )
    timer.unref?.()
    const both = AbortSignal.any([signal, late.signal])
    const gaveUp = new Promise<never>((_, reject) => {
      both.addEventListener('abort', () => reject(both.reason), { once: true })
    })
    gaveUp.catch(() => {})
    let answer: ScaleResult | undefined
    try {
      answer = await Promise.race([
        this.call(`scale(${to})`, () => this.plugin!.scale(to, plan, both)),
        gaveUp,
      ])
    } finally {
      clearTimeout(timer)
    }
    // A plugin may return nothing; the engine only needs to know the call succeeded.
    if (answer === undefined) return { from, to, added: [], removed: [] }
    const parsed = resultSchema.safeParse(answer)
    if (!parsed.success) {
      throw new TargetError(
        `${this.name}: scale(${to}) answered something that is not a scale result: ${firstProblem(parsed.error)}`,
        { code: 'E_PLUGIN_FAILED' },
      )
    }
    return parsed.data
  }

  watch(listener: (status: GroupStatus) => void): () => void {
    const watch = this.plugin?.watch
    if (!watch) return () => {}
    try {
      const unwatch = watch.call(this.plugin, (status) => {
        try {
          listener(this.checkStatus(status))
        } catch (err) {
          this.log.warn({ err }, `${this.name}: ignored a watch update: ${errorMessage(err)}`)
        }
      })
      return () => {
        try {
          unwatch?.()
        } catch (err) {
          this.log.warn({ err }, `${this.name}: unwatch failed`)
        }
      }
    } catch (err) {
      this.log.warn({ err }, `${this.name}: watch() threw; changes are seen at each evaluation only`)
      return () => {}
    }
  }

  async close(options?: { stopInstances?: boolean }): Promise<void> {
    if (!this.plugin?.close) return
    try {
      await this.plugin.close(options)
    } catch (err) {
      this.log.warn({ err }, `${this.name}: close() failed: ${errorMessage(err)}`)
    }
  }
}
