/**
 * Reading a metric honestly: which instances reported, which did not, whether the reading is
 * too old to trust, and how per-instance values combine into one number for the group.
 * Pure; no I/O.
 */
import { formatDuration } from './duration.js'
import type { Aggregate, MetricReading, Metrics } from './types.js'

/** Every cross-instance function, in the order the docs list them (seed 002's `function` plus `sum`). */
export const AGGREGATES = ['mean', 'median', 'min', 'max', 'sum'] as const satisfies readonly Aggregate[]

/**
 * Combines per-instance values into one number. `undefined` for no values: "no data" is a
 * value, never a NaN that would compare false everywhere.
 * The median of an even count is the mean of the two middle values (Python's `statistics.median`,
 * which seed 002 uses).
 */
export function aggregate(values: readonly number[], fn: Aggregate): number | undefined {
  if (values.length === 0) return undefined
  switch (fn) {
    case 'sum':
      return sum(values)
    case 'mean':
      return sum(values) / values.length
    case 'min':
      return values.reduce((a, b) => Math.min(a, b))
    case 'max':
      return values.reduce((a, b) => Math.max(a, b))
    case 'median': {
      const sorted = [...values].sort((a, b) => a - b)
      const mid = sorted.length >> 1
      return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
    }
  }
}

function sum(values: readonly number[]): number {
  let total = 0
  for (const v of values) total += v
  return total
}

/** One metric as a policy may use it, after the staleness and validity checks. */
export interface MetricView {
  metric: string
  /** Usable values by instance id; empty when the reading is stale or absent. */
  values: Record<string, number>
  /** How many instances have a usable value. */
  reported: number
  /** Instances expected but without a usable value (every instance when the reading is stale). */
  missing: string[]
  /** reported + missing. */
  expected: number
  /** The group's sum (router concurrency, queued requests included); undefined when absent or stale. */
  total?: number
  /** A group-level value that is not a sum (a latency percentile); undefined when absent or stale. */
  group?: number
  /** The reading is older than `staleAfter`: it counts as all missing. */
  stale: boolean
  /** The source returned nothing at all for this metric. */
  absent: boolean
  /** How old the reading is, in ms (undefined when absent). */
  age?: number
  /** The source's explanations for missing instances. */
  errors: string[]
}

/**
 * Reads `metric` out of one evaluation's metrics.
 * A value that is not a finite number is treated as missing (a NaN from a broken exporter is not
 * data). A reading older than `staleAfter` ms counts as entirely missing: seed 000 marks the
 * cluster invalid when any droplet's metrics fail, and an old number is no better than none.
 */
export function readMetric(metrics: Metrics, metric: string, now: number, staleAfter: number): MetricView {
  const reading: MetricReading | undefined = metrics[metric]
  if (reading === undefined) {
    return {
      metric,
      values: {},
      reported: 0,
      missing: [],
      expected: 0,
      stale: false,
      absent: true,
      errors: [],
    }
  }
  const values: Record<string, number> = {}
  const missing: string[] = []
  for (const [id, value] of Object.entries(reading.perInstance)) {
    if (Number.isFinite(value)) values[id] = value
    else missing.push(id)
  }
  for (const id of reading.missing) if (!(id in values) && !missing.includes(id)) missing.push(id)
  const age = now - reading.at
  const stale = age > staleAfter
  const errors = reading.errors ?? []
  const total = finite(reading.total)
  const group = finite(reading.group)
  if (stale) {
    const all = [...Object.keys(values), ...missing]
    return {
      metric,
      values: {},
      reported: 0,
      missing: all,
      expected: all.length,
      stale,
      absent: false,
      age,
      errors,
    }
  }
  const reported = Object.keys(values).length
  const view: MetricView = {
    metric,
    values,
    reported,
    missing,
    expected: reported + missing.length,
    stale,
    absent: false,
    age,
    errors,
  }
  if (total !== undefined) view.total = total
  if (group !== undefined) view.group = group
  return view
}

function finite(n: number | undefined): number | undefined {
  return n !== undefined && Number.isFinite(n) ? n : undefined
}

/**
 * The value of a metric that has no per-instance values at all (no instance reported it and
 * none is missing) but a fresh group-level one: its `group` value, else its `total`.
 * Undefined when the metric has per-instance values, or no usable group-level value.
 */
export function groupLevel(view: MetricView): { value: number; of: 'group' | 'total' } | undefined {
  if (view.reported > 0 || view.missing.length > 0) return undefined
  if (view.group !== undefined) return { value: view.group, of: 'group' }
  if (view.total !== undefined) return { value: view.total, of: 'total' }
  return undefined
}

/**
 * True when the reading is fresh and nothing is missing: every expected instance reported (and
 * at least one did), or the metric has no per-instance values and a group-level value
 * (`groupLevel`: a latency percentile, or the router's total at zero instances).
 */
export function isComplete(view: MetricView): boolean {
  if (view.stale || view.absent || view.missing.length > 0) return false
  return view.reported > 0 || groupLevel(view) !== undefined
}

/** "3 of 3 instances", "1 of 1 instance". */
export function coverage(view: MetricView): string {
  return `${view.reported} of ${view.expected} instance${view.expected === 1 ? '' : 's'}`
}

/**
 * Why a metric is not (fully) usable, as a clause: "has no data (no source provides it)",
 * "is stale (read 45s ago, older than 30s)", "is missing from web-3 (web-3: connection refused)".
 * Empty string when the view is complete.
 */
export function describeGap(view: MetricView, staleAfter: number): string {
  if (view.absent) return `${view.metric} has no data (no reading this evaluation)`
  if (view.stale) {
    return `${view.metric} is stale (read ${formatDuration(view.age ?? 0)} ago, older than ${formatDuration(staleAfter)})`
  }
  if (isComplete(view)) return ''
  const because = view.errors.length > 0 ? `; ${listNames(view.errors, 2)}` : ''
  if (view.reported === 0) {
    if (view.expected === 0) return `${view.metric} has no data (no instance to report it${because})`
    return `${view.metric} has no data (0 of ${view.expected} instances reporting${because})`
  }
  if (view.missing.length === 0) return ''
  return `${view.metric} is missing from ${listNames(view.missing, 3)} (${coverage(view)} reporting${because})`
}

/** "a, b and 3 more". */
export function listNames(names: readonly string[], limit: number): string {
  if (names.length <= limit) return names.join(', ')
  return `${names.slice(0, limit).join(', ')} and ${names.length - limit} more`
}

/**
 * A number the way a person reads it in a sentence: integers as they are, others to 3
 * significant digits (or the whole integer part). When `distinctFrom` is given and differs from `n`, more digits are used
 * until the two print differently, so a sentence never says "0.8 > 0.8".
 */
export function formatNumber(n: number, distinctFrom?: number): string {
  if (!Number.isFinite(n)) return String(n)
  if (Number.isInteger(n)) return String(n)
  const other = distinctFrom === undefined ? undefined : formatNumber(distinctFrom)
  // Never fewer digits than the integer part has: 3102148608.5 prints as 3102148609, not 3.1e9.
  const start = Math.min(17, Math.max(3, Math.floor(Math.log10(Math.abs(n))) + 1))
  for (let digits = start; digits <= 17; digits++) {
    const text = String(Number(n.toPrecision(digits)))
    if (other === undefined || n === distinctFrom || text !== other) return text
  }
  return String(n)
}
