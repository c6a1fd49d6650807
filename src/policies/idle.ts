/**
 * `idle`: takes a `min: 0` group to zero when it is quiet, and back to one when demand shows
 * while it is at zero. It only decides between zero and one instance (KEDA's activation
 * threshold, seed 004's autoscaler); pair it with `target` or `threshold` for the sizes above one.
 *
 *   - { kind: idle, after: 10s }                  # the router saw no request for 10 s
 *   - kind: idle                                  # seed 004's scale resources
 *     metrics:
 *       - { metric: request_rate, window: 5m, threshold: 0 }
 *       - { metric: queue_depth, window: 10m, threshold: 2 }
 *
 * Quiet means: with `after`, the router's `request_rate` and `concurrency` (requests in flight
 * and held) were 0 at every evaluation for `after`; with `metrics`, every listed metric stayed at
 * or under its threshold for its window (seed 004 §4.4: ALL metrics idle, a missing value keeps
 * the group up). Either one being quiet is enough. Windows are read from the group's recorded
 * history (`PolicyInput.history`): a window is covered only when a reading exists at or before its
 * start, so a group Tide has watched for less than the window is never called idle.
 *
 * Votes, for the governor (largest wins):
 * - at one or more instances and quiet: 0 ("scale to zero");
 * - at one or more instances and not quiet: 1, a floor that keeps other policies from taking the
 *   group to zero but lets them scale it down to one;
 * - after a wake: 1 until every window has passed since the group was last seen at zero (seed
 *   004's debounce after `scaleFromZeroCompleted`), so a group that just woke is not put back to sleep;
 * - at zero: 1 when a metric shows demand (the router's held requests, or a listed metric above its
 *   threshold: a source that reports while the group is at zero wakes it), else stay at 0.
 *
 * Pure: the same input gives the same answer.
 */
import { z } from 'zod'
import { formatNumber, readMetric } from '../core/aggregate.js'
import { METRIC_NAME } from '../core/condition.js'
import { formatDuration } from '../core/duration.js'
import { duration } from '../core/schema.js'
import type { Policy, PolicyInput, Recommendation } from '../core/types.js'

const windowSchema = z
  .object({
    metric: z
      .string()
      .regex(METRIC_NAME, { message: 'must be a metric name such as "request_rate"' })
      .describe(
        'The metric to watch (its group value: the total, a group value, or the mean of the instances).',
      ),
    window: duration()
      .refine((ms) => ms > 0, { message: 'must be longer than 0' })
      .describe('How long the metric must stay at or under `threshold` (seed 004: `windowSize`).'),
    threshold: z
      .number()
      .min(0, { message: 'must be ≥ 0' })
      .default(0)
      .describe(
        'At or under this the metric counts as idle; above it, as demand. In the metric’s own units (not milli-units, unlike seed 004). @default 0',
      ),
  })
  .strict()

export const idleSchema = z
  .object({
    kind: z.literal('idle').describe('Scale to zero when quiet, to one on demand (needs `min: 0`).'),
    name: z.string().min(1).optional().describe('Name in decisions and logs. @default "idle[<index>]"'),
    after: duration()
      .refine((ms) => ms > 0, { message: 'must be longer than 0' })
      .optional()
      .describe(
        "Go to zero when the group's router saw no request for this long (its `request_rate` and `concurrency` stayed 0). Needs a route.",
      ),
    metrics: z
      .array(windowSchema)
      .min(1, { message: 'needs at least one metric (or leave it out and use `after`)' })
      .optional()
      .describe(
        'Go to zero when every one of these metrics stayed at or under its threshold for its window (seed 004).',
      ),
  })
  .strict()
  .refine((c) => c.after !== undefined || c.metrics !== undefined, {
    message:
      'needs `after` (no request for that long) or `metrics` (each under its threshold for its window), or both',
  })

export type IdleConfig = z.output<typeof idleSchema>

/** One metric's quiet rule. */
interface Rule {
  metric: string
  window: number
  threshold: number
}

/** The router's metrics `after` reads. */
const ROUTER_QUIET = ['request_rate', 'concurrency']

function afterRules(config: IdleConfig): Rule[] {
  return config.after === undefined
    ? []
    : ROUTER_QUIET.map((metric) => ({ metric, window: config.after!, threshold: 0 }))
}

function metricRules(config: IdleConfig): Rule[] {
  return (config.metrics ?? []).map((m) => ({ metric: m.metric, window: m.window, threshold: m.threshold }))
}

export function idleMetrics(config: IdleConfig): string[] {
  return [...afterRules(config), ...metricRules(config)].map((r) => r.metric)
}

export function buildIdle(config: IdleConfig): Policy {
  return (input) => decideIdle(config, input)
}

/** A recorded group value (the store's metric history; `desired` is recorded as a metric too). */
export interface HistoryPoint {
  at: number
  value: number
}

type IdleInput = PolicyInput

/** The group value of a metric now, or undefined when absent or stale. */
function valueNow(input: PolicyInput, metric: string): number | undefined {
  const view = readMetric(input.metrics, metric, input.now, input.staleAfter)
  if (view.stale || view.absent) return undefined
  if (view.total !== undefined) return view.total
  if (view.group !== undefined) return view.group
  if (view.reported === 0) return undefined
  let sum = 0
  for (const v of Object.values(view.values)) sum += v
  return sum / view.reported
}

/** Whether `rule` held for its whole window; when not, why (a sentence fragment). */
function quietFor(
  rule: Rule,
  input: IdleInput,
): { quiet: true; why: string } | { quiet: false; why: string } {
  const { metric, window, threshold } = rule
  const span = formatDuration(window)
  const now = valueNow(input, metric)
  if (now === undefined)
    return { quiet: false, why: `${metric} has no current reading (missing data keeps the group up)` }
  if (now > threshold)
    return { quiet: false, why: `${metric} is ${formatNumber(now)} > ${formatNumber(threshold)}` }
  const history = input.history
  if (!history) return { quiet: false, why: `no history to check ${metric} over ${span}` }
  const start = input.now - window
  const points = history(metric, start - input.staleAfter)
  // The window is covered when a reading exists at or before its start (readings are evaluations,
  // so one just before the start vouches for the time up to the next one).
  if (!points.some((p) => p.at <= start)) {
    const first = points[0]
    const seen = first
      ? `only ${formatDuration(Math.max(0, input.now - first.at))} of readings`
      : 'no readings yet'
    return { quiet: false, why: `${metric} has ${seen}, needs ${span}` }
  }
  const busy = points.filter((p) => p.at > start && p.value > threshold)
  if (busy.length > 0) {
    const last = busy[busy.length - 1]!
    return {
      quiet: false,
      why: `${metric} was ${formatNumber(last.value)} > ${formatNumber(threshold)} ${formatDuration(Math.max(0, input.now - last.at))} ago (needs ${span} at or under it)`,
    }
  }
  return { quiet: true, why: `${metric} ≤ ${formatNumber(threshold)} for ${span}` }
}

/** The longest window: how long after a wake the group is not put back to zero. */
function longestWindow(config: IdleConfig): number {
  return Math.max(0, ...[...afterRules(config), ...metricRules(config)].map((r) => r.window))
}

/** Pure: same config and input, same answer. */
export function decideIdle(config: IdleConfig, input: IdleInput): Recommendation {
  const after = afterRules(config)
  const listed = metricRules(config)

  if (input.current === 0) {
    // At zero: any sign of demand wakes the group (the router also wakes it at once on a request).
    for (const rule of [...after, ...listed]) {
      const value = valueNow(input, rule.metric)
      if (value !== undefined && value > rule.threshold) {
        return {
          kind: 'scale',
          to: 1,
          reason: `${rule.metric} ${formatNumber(value)} > ${formatNumber(rule.threshold)} while the group is at zero: waking it`,
        }
      }
    }
    return { kind: 'hold', reason: 'no demand while the group is at zero' }
  }

  // Not again to zero until every window has passed since the group was last at zero.
  const longest = longestWindow(config)
  const zeroes = input.history?.('desired', input.now - longest).filter((p) => p.value === 0) ?? []
  if (zeroes.length > 0) {
    const ago = formatDuration(Math.max(0, input.now - zeroes[zeroes.length - 1]!.at))
    return {
      kind: 'scale',
      to: 1,
      reason: `the group was at zero ${ago} ago: not considered for zero again until ${formatDuration(longest)} have passed`,
    }
  }

  const results: string[] = []
  if (after.length > 0) {
    const checks = after.map((rule) => quietFor(rule, input))
    const blocking = checks.find((c) => !c.quiet)
    if (blocking === undefined) {
      return {
        kind: 'scale',
        to: 0,
        reason: `no request for ${formatDuration(config.after!)}: scale to zero`,
      }
    }
    results.push(blocking.why)
  }
  if (listed.length > 0) {
    const checks = listed.map((rule) => quietFor(rule, input))
    const blocking = checks.filter((c) => !c.quiet)
    if (blocking.length === 0) {
      return { kind: 'scale', to: 0, reason: `idle: ${checks.map((c) => c.why).join(', ')}: scale to zero` }
    }
    results.push(...blocking.map((c) => c.why))
  }
  return { kind: 'scale', to: 1, reason: `not idle (${results.join('; ')}): at least one instance` }
}
