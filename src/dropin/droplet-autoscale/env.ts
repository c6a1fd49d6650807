/**
 * Seed 000's environment variables (reference/seeds.md §1.3), read the way its README documents
 * them, with every problem reported at once under the variable's own name.
 *
 * Differences from the seed, each deliberate:
 * - `SCALING_INTERVAL` defaults to 120 s as the README says; the seed's code used 180 s
 *   (seeds.md §1.12 item 12). docs/migrate/droplet-autoscale.md says so.
 * - Error messages name the variable the user sets (`CLUSTER_TAG`, not the seed's `TAG`;
 *   `SNAPSHOT`, not `SNAPSHOT_NAME`; …) and say what a good value looks like.
 * - `CLONE_PREFIX` may contain `-`: the seed forbade it only because its cooldown-tag parser
 *   broke on it; Tide matches the tag against the exact prefix. It must still be usable in a
 *   droplet name and a tag (letters, digits and `-`).
 * - Numbers are parsed strictly: "5.5" for an integer or "0.3x" for a float is an error, not 0.
 */
import { parseDuration } from '../../core/duration.js'
import { ConfigError, type ConfigProblem } from '../../core/errors.js'

/** The public API; `DIGITALOCEAN_API_URL` replaces it (the emulator, a proxy). */
export const DEFAULT_API_URL = 'https://api.digitalocean.com'

/** Seed 000's `Metrics` fields a threshold applies to. */
export interface Thresholds {
  /** Cluster-average `load_1`. */
  load: number
  /** Cluster-average free memory, MB (10^6 bytes). */
  freeMemory: number
  /** Cluster-average outbound bandwidth, public + private, Mbit/s. */
  outboundBandwidth: number
}

export interface DropinConfig {
  token: string
  apiUrl: string
  tag: string
  baseDroplet: string
  snapshot: string
  clonePrefix: string
  loadBalancer: string
  /** Most droplets, the base included. */
  maxDroplets: number
  /** Seconds of cooldown after any add or remove. */
  scalingInterval: number
  scaleUpWhen: Thresholds
  scaleDownWhen: Thresholds
  /** Tide's additions (TIDE_DRAIN, TIDE_BOOT_TIMEOUT, TIDE_REMOVE): ms, ms, victim order. */
  drain: number
  bootTimeout: number
  remove: 'newest' | 'oldest' | 'least-busy'
  /** Settings that are valid but probably not meant (thresholds with no gap between them). */
  warnings: string[]
}

interface RequiredVar {
  name: string
  what: string
}

/** In the seed's order of checking (seeds.md §1.3). */
const REQUIRED: RequiredVar[] = [
  { name: 'API_TOKEN', what: 'a DigitalOcean API token with read and write scope' },
  { name: 'CLUSTER_TAG', what: 'the droplet tag of the cluster (base and clones carry it)' },
  { name: 'BASE_DROPLET', what: 'the name of the base droplet, which carries CLUSTER_TAG' },
  { name: 'SNAPSHOT', what: 'the name of the snapshot clones boot from' },
  { name: 'CLONE_PREFIX', what: 'the prefix of clone names, such as "auto" for auto001, auto002, …' },
  { name: 'LOAD_BALANCER', what: 'the name (or id) of the load balancer the base droplet is attached to' },
]

interface NumberVar {
  name: string
  default: number
  min: number
  max: number
  integer: boolean
  unit: string
}

export const OPTIONAL: NumberVar[] = [
  { name: 'MAX_DROPLETS_IN_CLUSTER', default: 5, min: 2, max: 1000, integer: true, unit: 'droplets' },
  { name: 'SCALING_INTERVAL', default: 120, min: 30, max: 2400, integer: true, unit: 'seconds' },
  { name: 'SCALE_UP_WHEN_LOAD', default: 0.35, min: 0.01, max: 200, integer: false, unit: 'load average' },
  { name: 'SCALE_UP_WHEN_FREE_MEMORY', default: 800, min: 0.01, max: 50000, integer: false, unit: 'MB' },
  {
    name: 'SCALE_UP_WHEN_OUTBOUND_BANDWIDTH',
    default: 2.5,
    min: 0.01,
    max: 100000,
    integer: false,
    unit: 'Mbit/s',
  },
  { name: 'SCALE_DOWN_WHEN_LOAD', default: 0.15, min: 0.01, max: 200, integer: false, unit: 'load average' },
  { name: 'SCALE_DOWN_WHEN_FREE_MEMORY', default: 900, min: 0.01, max: 50000, integer: false, unit: 'MB' },
  {
    name: 'SCALE_DOWN_WHEN_OUTBOUND_BANDWIDTH',
    default: 1.5,
    min: 0.01,
    max: 100000,
    integer: false,
    unit: 'Mbit/s',
  },
]

/** Tide's own optional variables (not in the seed). */
export const TIDE_VARS = ['DIGITALOCEAN_API_URL', 'TIDE_DRAIN', 'TIDE_BOOT_TIMEOUT', 'TIDE_REMOVE'] as const

/** Every variable the drop-in reads, for the Functions package and the docs. */
export const ENV_VARS: readonly string[] = [
  ...REQUIRED.map((r) => r.name),
  ...OPTIONAL.map((o) => o.name),
  ...TIDE_VARS,
]

const REMOVE = ['newest', 'oldest', 'least-busy'] as const

function readDuration(
  env: Record<string, string | undefined>,
  name: string,
  fallback: string,
  min: number,
  problems: ConfigProblem[],
): number {
  const raw = env[name]?.trim() || fallback
  const ms = parseDuration(raw)
  if (ms === undefined || ms < min) {
    problems.push({
      path: name,
      message: `must be a duration like "30s" or "5m"${min > 0 ? ` of at least ${min}ms` : ''} (default ${fallback}), not ${JSON.stringify(raw)}`,
    })
    return parseDuration(fallback)!
  }
  return ms
}

/** Letters, digits and `-`, starting with a letter or digit: valid in droplet names and in tags. */
const PREFIX = /^[A-Za-z0-9][A-Za-z0-9-]*$/
/** A DigitalOcean tag name: letters, digits, `:`, `-`, `_`; at most 255 characters. */
const TAG = /^[A-Za-z0-9:_-]{1,255}$/

function readNumber(
  env: Record<string, string | undefined>,
  v: NumberVar,
  problems: ConfigProblem[],
): number {
  const raw = env[v.name]?.trim() ?? ''
  if (raw === '') return v.default
  const shape = v.integer ? /^\d+$/ : /^[+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/
  const value = Number(raw)
  if (!shape.test(raw) || !Number.isFinite(value) || value < v.min || value > v.max) {
    const kind = v.integer ? 'a whole number' : 'a number'
    problems.push({
      path: v.name,
      message: `must be ${kind} from ${v.min} to ${v.max} (${v.unit}; default ${v.default}), not ${JSON.stringify(raw)}`,
    })
    return v.default
  }
  return value
}

/**
 * Reads the configuration from `env`. Throws ConfigError (E_CONFIG) listing every missing or
 * bad variable by name.
 */
export function readDropinEnv(env: Record<string, string | undefined>): DropinConfig {
  const problems: ConfigProblem[] = []
  const text: Record<string, string> = {}
  for (const r of REQUIRED) {
    const value = env[r.name]?.trim() ?? ''
    if (value === '') problems.push({ path: r.name, message: `is required: ${r.what}` })
    text[r.name] = value
  }
  const prefix = text.CLONE_PREFIX!
  if (prefix !== '' && !PREFIX.test(prefix)) {
    problems.push({
      path: 'CLONE_PREFIX',
      message: `must be letters, digits and "-", starting with a letter or digit (it names droplets and a tag), not ${JSON.stringify(prefix)}`,
    })
  } else if (prefix.length > 50) {
    problems.push({ path: 'CLONE_PREFIX', message: `must be at most 50 characters, not ${prefix.length}` })
  }
  const tag = text.CLUSTER_TAG!
  if (tag !== '' && !TAG.test(tag)) {
    problems.push({
      path: 'CLUSTER_TAG',
      message: `must be a DigitalOcean tag name (letters, digits, ":", "-", "_"), not ${JSON.stringify(tag)}`,
    })
  }
  const n: Record<string, number> = {}
  for (const v of OPTIONAL) n[v.name] = readNumber(env, v, problems)

  const apiUrl = env.DIGITALOCEAN_API_URL?.trim() || DEFAULT_API_URL
  try {
    const url = new URL(apiUrl)
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('not http(s)')
  } catch {
    problems.push({
      path: 'DIGITALOCEAN_API_URL',
      message: `must be an http(s) URL such as ${DEFAULT_API_URL}, not ${JSON.stringify(apiUrl)}`,
    })
  }
  const drain = readDuration(env, 'TIDE_DRAIN', '30s', 0, problems)
  const bootTimeout = readDuration(env, 'TIDE_BOOT_TIMEOUT', '5m', 1000, problems)
  const remove = env.TIDE_REMOVE?.trim() || 'newest'
  if (!(REMOVE as readonly string[]).includes(remove)) {
    problems.push({
      path: 'TIDE_REMOVE',
      message: `must be one of ${REMOVE.join(', ')}, not ${JSON.stringify(remove)}`,
    })
  }
  if (problems.length > 0) throw new ConfigError(problems, 'the environment')

  const config: DropinConfig = {
    token: text.API_TOKEN!,
    apiUrl: apiUrl.replace(/\/+$/, ''),
    tag,
    baseDroplet: text.BASE_DROPLET!,
    snapshot: text.SNAPSHOT!,
    clonePrefix: prefix,
    loadBalancer: text.LOAD_BALANCER!,
    maxDroplets: n.MAX_DROPLETS_IN_CLUSTER!,
    scalingInterval: n.SCALING_INTERVAL!,
    scaleUpWhen: {
      load: n.SCALE_UP_WHEN_LOAD!,
      freeMemory: n.SCALE_UP_WHEN_FREE_MEMORY!,
      outboundBandwidth: n.SCALE_UP_WHEN_OUTBOUND_BANDWIDTH!,
    },
    scaleDownWhen: {
      load: n.SCALE_DOWN_WHEN_LOAD!,
      freeMemory: n.SCALE_DOWN_WHEN_FREE_MEMORY!,
      outboundBandwidth: n.SCALE_DOWN_WHEN_OUTBOUND_BANDWIDTH!,
    },
    drain,
    bootTimeout,
    remove: remove as DropinConfig['remove'],
    warnings: [],
  }
  config.warnings = bandWarnings(config)
  return config
}

/**
 * Seed 000 checks up first, so overlapping thresholds never do both at once; but with no gap
 * between them the cluster scales down, and the next run's averages (over fewer droplets) cross
 * the up threshold again. Valid, so a warning, not an error.
 */
function bandWarnings(c: DropinConfig): string[] {
  const out: string[] = []
  const { scaleUpWhen: up, scaleDownWhen: down } = c
  if (down.load >= up.load)
    out.push(
      `SCALE_DOWN_WHEN_LOAD (${down.load}) is not below SCALE_UP_WHEN_LOAD (${up.load}): the cluster may flap`,
    )
  if (down.freeMemory <= up.freeMemory)
    out.push(
      `SCALE_DOWN_WHEN_FREE_MEMORY (${down.freeMemory}) is not above SCALE_UP_WHEN_FREE_MEMORY (${up.freeMemory}): the cluster may flap`,
    )
  if (down.outboundBandwidth >= up.outboundBandwidth)
    out.push(
      `SCALE_DOWN_WHEN_OUTBOUND_BANDWIDTH (${down.outboundBandwidth}) is not below SCALE_UP_WHEN_OUTBOUND_BANDWIDTH (${up.outboundBandwidth}): the cluster may flap`,
    )
  return out
}
