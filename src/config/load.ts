/**
 * Loading a config: YAML → `${ENV}` interpolation → schema → checks that span fields.
 * Every problem is reported at once with its path and the bad value
 * (`groups.web.policies[1].per_instance: must be > 0 (got -2)`), then the config is frozen.
 */
import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { parseDocument } from 'yaml'
import type { z } from 'zod'
import { formatDuration, parseDuration } from '../core/duration.js'
import { ConfigError, type ConfigProblem } from '../core/errors.js'
import { isLoopback, splitHostPort } from '../core/schema.js'
import { policyMetrics, policyName, policySchema } from '../policies/index.js'
import { predictiveHistory } from '../policies/predictive.js'
import { SOURCES_AT_ZERO, type SourceConfig, sourceMetrics, sourceSchema } from '../sources/index.js'
import { noteInterpolated } from './interpolated.js'
import { type Config, configSchema, type GroupConfig } from './schema.js'

export interface LoadedConfig {
  config: Config
  /** Absolute path of the file, or '(inline)'. */
  path: string
  /** Directory relative paths in the config are resolved against. */
  dir: string
}

/** Loads, interpolates and validates a YAML config file; throws ConfigError listing every problem. */
export async function loadConfigFile(
  path: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<LoadedConfig> {
  const absolute = resolve(path)
  let text: string
  try {
    text = await readFile(absolute, 'utf8')
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : String(err)
    throw new ConfigError([{ path: '', message: `cannot read ${absolute}: ${reason}` }], absolute)
  }
  return { config: parseConfigText(text, absolute, env), path: absolute, dir: dirname(absolute) }
}

/** Parses YAML text into a validated config (the file name only labels errors). */
export function parseConfigText(
  text: string,
  label = 'config',
  env: NodeJS.ProcessEnv = process.env,
): Config {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true })
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({ path: '', message: `YAML: ${e.message.split('\n')[0]}` })),
      label,
    )
  }
  return parseConfig(doc.toJS() ?? {}, label, env)
}

/** Validates an already parsed object (YAML or JSON). */
export function parseConfig(raw: unknown, label = 'config', env: NodeJS.ProcessEnv = process.env): Config {
  const problems: ConfigProblem[] = []
  const interpolated = interpolate(raw, [], env, problems)
  const result = configSchema.safeParse(interpolated)
  if (!result.success)
    problems.push(...result.error.issues.flatMap((issue) => toProblems(issue, interpolated)))
  problems.push(...crossCheck(interpolated))
  if (problems.length > 0) throw new ConfigError(problems, label)
  return deepFreeze(result.data!)
}

// ─── ${ENV} interpolation ────────────────────────────────────────────────────

const REF = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g

/**
 * Replaces `${NAME}` and `${NAME:-default}` in every string value; `$${` is a literal `${`.
 * A value that is exactly one reference and reads as a number or boolean becomes one, so
 * `max: ${MAX}` works.
 */
function interpolate(
  value: unknown,
  path: Array<string | number>,
  env: NodeJS.ProcessEnv,
  problems: ConfigProblem[],
): unknown {
  if (typeof value === 'string') {
    if (!value.includes('${')) return value
    const whole = /^\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}$/.test(value)
    const out = value.replace(REF, (match, name: string | undefined, fallback: string | undefined) => {
      if (match === '$${') return '${'
      noteInterpolated(name!) // withheld from process instances (targets/process/env.ts)
      const got = env[name!]
      if (got !== undefined && got !== '') return got
      if (fallback !== undefined) return fallback
      problems.push({ path: formatPath(path), message: `environment variable ${name} is not set`, value })
      return ''
    })
    if (whole) {
      if (/^-?\d+(\.\d+)?$/.test(out)) return Number(out)
      if (out === 'true' || out === 'false') return out === 'true'
    }
    return out
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, [...path, i], env, problems))
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = interpolate(v, [...path, k], env, problems)
    return out
  }
  return value
}

// ─── zod issues → problems people read ───────────────────────────────────────

type Issue = z.core.$ZodIssue

function toProblems(issue: Issue, input: unknown): ConfigProblem[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol')
  const value = valueAt(input, path)
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => ({ path: formatPath([...path, key]), message: 'unknown key' }))
    case 'invalid_union':
      if ('discriminator' in issue && 'options' in issue) {
        const options = (issue.options as unknown[]).map(String).join(', ')
        return [{ path: formatPath(path), message: `must be one of: ${options}`, value }]
      }
      return [{ path: formatPath(path), message: issue.message, value }]
    case 'invalid_type':
      if (value === undefined) return [{ path: formatPath(path), message: `is required (${issue.expected})` }]
      return [{ path: formatPath(path), message: `must be ${article(issue.expected)}`, value }]
    case 'invalid_value':
      return [
        {
          path: formatPath(path),
          message: `must be one of: ${issue.values.map((v) => String(v)).join(', ')}`,
          value,
        },
      ]
    case 'too_small':
      return [{ path: formatPath(path), message: boundMessage(issue, '>'), value }]
    case 'too_big':
      return [{ path: formatPath(path), message: boundMessage(issue, '<'), value }]
    case 'invalid_key': {
      const inner = issue.issues[0]?.message ?? issue.message
      return [{ path: formatPath(path), message: `bad name: ${inner}` }]
    }
    default:
      return [{ path: formatPath(path), message: issue.message, value }]
  }
}

function boundMessage(
  issue: Issue & { minimum?: unknown; maximum?: unknown; inclusive?: boolean; origin?: string },
  dir: '>' | '<',
): string {
  if (issue.code === 'custom' || (issue.message && !issue.message.startsWith('Too '))) return issue.message
  const limit = dir === '>' ? issue.minimum : issue.maximum
  const op = `${dir}${issue.inclusive ? '=' : ''}`
  if (issue.origin === 'array')
    return `needs ${dir === '>' ? 'at least' : 'at most'} ${String(limit)} item(s)`
  if (issue.origin === 'string')
    return `must be ${dir === '>' ? 'at least' : 'at most'} ${String(limit)} characters`
  return `must be ${op} ${String(limit)}`
}

function article(type: string): string {
  if (type === 'int') return 'an integer'
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`
}

function valueAt(input: unknown, path: Array<string | number>): unknown {
  let v: unknown = input
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined
    v = (v as Record<string | number, unknown>)[key]
  }
  return v
}

/** `groups.web.policies[1].target` */
export function formatPath(path: Array<string | number>): string {
  let out = ''
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(key)) out += out ? `.${key}` : key
    else out += `[${JSON.stringify(key)}]`
  }
  return out
}

// ─── checks across fields ────────────────────────────────────────────────────

/** The sources a group uses: its own list, or the defaults for its target and route. */
export function effectiveSources(group: GroupConfig): SourceConfig[] {
  return group.sources ?? defaultSources(group.route !== undefined, group.target)
}

/**
 * `router` for a routed group, `process` for local processes, the Monitoring API (with the
 * target's token and endpoint) for droplets.
 */
function defaultSources(routed: boolean, target: unknown): SourceConfig[] {
  const sources: SourceConfig[] = []
  const kind = isRecord(target) ? target.kind : undefined
  if (routed) sources.push({ kind: 'router' } as SourceConfig)
  if (kind === 'process') sources.push({ kind: 'process' } as SourceConfig)
  if (kind === 'digitalocean' && isRecord(target)) {
    const parsed = sourceSchema.safeParse({
      kind: 'digitalocean',
      token: target.token,
      api_url: target.api_url,
    })
    if (parsed.success) sources.push(parsed.data)
  }
  return sources
}

/**
 * Checks that span keys. They run on the raw (interpolated) input, each part parsed on its
 * own, so they are reported together with the schema's problems: a user sees every problem
 * in one pass, not a second list after fixing the first.
 */
function crossCheck(raw: unknown): ConfigProblem[] {
  const problems: ConfigProblem[] = []
  const root = isRecord(raw) ? raw : {}
  const api = isRecord(root.api) ? root.api : {}
  const apiListen = typeof api.listen === 'string' ? api.listen : '127.0.0.1:7070'
  const apiHost = trySplit(apiListen)?.host
  if (apiHost !== undefined && !isLoopback(apiHost) && !api.token) {
    problems.push({
      path: 'api.token',
      message: `is required when api.listen (${apiListen}) is not a loopback address: anyone who can reach it could scale your groups`,
    })
  }
  const routes = new Map<string, string>()
  // store.history as written (default 1h); a value that is not a duration is reported by the schema.
  const store = isRecord(root.store) ? root.store : {}
  const historyValue = store.history ?? '1h'
  const kept =
    typeof historyValue === 'string' || typeof historyValue === 'number'
      ? parseDuration(historyValue)
      : undefined
  const groups = isRecord(root.groups) ? root.groups : {}
  for (const [name, value] of Object.entries(groups)) {
    if (!isRecord(value)) continue
    const at = `groups.${name}`
    const min = typeof value.min === 'number' ? value.min : 1
    const max = value.max
    const route =
      isRecord(value.route) && typeof value.route.listen === 'string' ? value.route.listen : undefined
    if (typeof max === 'number' && min > max) {
      problems.push({ path: `${at}.min`, message: `must be <= max (${max})`, value: min })
    }
    if (min === 0 && value.route === undefined) {
      // Something must see demand while there is no instance to ask: the router (it holds the
      // request and wakes the group at once), or a source that reads an outside system.
      const sources = parsedSources(value)
      if (sources !== undefined && !sources.some((s) => SOURCES_AT_ZERO.has(s.kind))) {
        const kinds = sources.length > 0 ? sources.map((s) => s.kind).join(', ') : 'none'
        problems.push({
          path: `${at}.min`,
          message:
            `is 0 but nothing can wake group ${name} from zero: add a route (Tide's router holds the first request ` +
            `and wakes the group), or a source that reports demand while the group has no instance ` +
            `(its sources: ${kinds}; they read the instances, and at zero there are none)`,
          value: 0,
        })
      }
    }
    const target = isRecord(value.target) ? value.target : undefined
    if (min === 0 && target?.kind === 'digitalocean' && target.base_droplet !== undefined) {
      problems.push({
        path: `${at}.min`,
        message:
          `is 0 but group ${name} clones the base droplet ${JSON.stringify(target.base_droplet)}, which is never ` +
          'removed, so the group never goes below 1: set min: 1, or create droplets from `target.template` to let it reach zero',
        value: 0,
      })
    }
    // Port 0 (any free port, used by tests) never collides.
    const routePort = route === undefined ? undefined : trySplit(route)?.port
    if (route !== undefined && routePort !== undefined && routePort !== 0) {
      const other = routes.get(route)
      if (other)
        problems.push({
          path: `${at}.route.listen`,
          message: `is already used by group ${other}`,
          value: route,
        })
      if (route === apiListen)
        problems.push({ path: `${at}.route.listen`, message: 'is the API address', value: route })
      routes.set(route, name)
    }
    const sources = parsedSources(value)
    if (sources === undefined) continue // a broken source is already reported; metrics cannot be checked
    sources.forEach((source, i) => {
      if (source.kind === 'router' && value.route === undefined) {
        problems.push({
          path: `${at}.sources[${i}]`,
          message: 'the router source needs the group to have a route',
        })
      }
    })
    const providers = new Map<string, number>()
    sources.forEach((source, i) => {
      for (const metric of sourceMetrics(source)) {
        const first = providers.get(metric)
        if (first === undefined) providers.set(metric, i)
        else if (first !== i) {
          problems.push({
            path: `${at}.sources[${i}]`,
            message: `provides metric "${metric}", which sources[${first}] (${sources[first]!.kind}) provides too; rename one so policies know which they read`,
          })
        }
      }
    })
    const provided = new Set(providers.keys())
    const policies = Array.isArray(value.policies) ? value.policies : []
    policies.forEach((raw, i) => {
      const parsed = policySchema.safeParse(raw)
      if (!parsed.success) return
      if (parsed.data.kind === 'idle' && min !== 0) {
        problems.push({
          path: `${at}.policies[${i}]`,
          message: `policy ${policyName(parsed.data, i)} takes the group to zero, but ${at}.min is ${min}: set min: 0, or remove the policy`,
        })
      }
      if (parsed.data.kind === 'predictive' && kept !== undefined) {
        // The forecast reads two weeks back; a shorter store.history quietly loses its seasonality.
        const needs = predictiveHistory(parsed.data)
        if (kept < needs) {
          const day = 86_400_000
          const back =
            needs >= day
              ? `${Math.floor(needs / day)} days${needs % day > 0 ? ` and ${formatDuration(needs % day)}` : ''}`
              : formatDuration(needs)
          const setting =
            store.history === undefined ? 'is 1h (the default)' : `is ${JSON.stringify(store.history)}`
          problems.push({
            path: `${at}.policies[${i}]`,
            message: `policy ${policyName(parsed.data, i)} (predictive) of group ${name} reads its ${parsed.data.metric} history ${back} back (daily and weekly seasonality), but store.history ${setting}: set store.history to ${needs >= day ? `${Math.ceil(needs / day)}d` : formatDuration(needs)} or more`,
          })
        }
      }
      for (const metric of policyMetrics(parsed.data)) {
        if (!provided.has(metric)) {
          const offer = provided.size > 0 ? [...provided].sort().join(', ') : 'none: add a source'
          problems.push({
            path: `${at}.policies[${i}]`,
            message: `policy ${policyName(parsed.data, i)} reads metric "${metric}", which no source of the group provides (available: ${offer})`,
          })
        }
      }
    })
  }
  return problems
}

/** The group's sources as effectiveSources() would give them, or undefined if one does not parse. */
function parsedSources(group: Record<string, unknown>): SourceConfig[] | undefined {
  if (group.sources === undefined) {
    return defaultSources(group.route !== undefined, group.target)
  }
  if (!Array.isArray(group.sources)) return undefined
  const out: SourceConfig[] = []
  for (const raw of group.sources) {
    const parsed = sourceSchema.safeParse(raw)
    if (!parsed.success) return undefined
    out.push(parsed.data)
  }
  return out
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/** splitHostPort for raw input that may not be an address (the schema reports that). */
function trySplit(address: string): { host: string; port: number } | undefined {
  try {
    return splitHostPort(address)
  } catch {
    return undefined
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}

/** True when two loaded configs are the same (for reload). */
export function sameConfig(a: Config, b: Config): boolean {
  return isDeepStrictEqual(a, b)
}
