/**
 * Conditions on metrics, as seed 002's policy files have them (metric, cross-instance function,
 * operator, threshold), in a compact string form for config files:
 *
 *   "load > 0.8"                the group's mean load (the policy's default function)
 *   "min(free_memory) > 512"    the smallest free memory of any instance
 *   { metric: free_memory, op: ">", value: 512, aggregate: min }   the same, spelled out
 *
 * Evaluation is three-valued: a condition whose metric has no usable value (no instance reported
 * it and it has no group-level value, or the reading is stale) is `unknown`, never false, so
 * "missing data" cannot pass for "low load".
 */
import { z } from 'zod'
import {
  AGGREGATES,
  aggregate,
  coverage,
  describeGap,
  formatNumber,
  groupLevel,
  type MetricView,
} from './aggregate.js'
import type { Aggregate } from './types.js'

/** Seed 002's operators. */
export const OPERATORS = ['<', '<=', '>', '>=', '=='] as const
export type Operator = (typeof OPERATORS)[number]

export interface Condition {
  metric: string
  op: Operator
  value: number
  /** Cross-instance function; when absent the policy's default applies. */
  aggregate?: Aggregate
}

/** Metric names as Prometheus spells them, plus `.` for sources that namespace with dots. */
export const METRIC_NAME = /^[A-Za-z_:][A-Za-z0-9_:.]*$/
const NAME = '[A-Za-z_:][A-Za-z0-9_:.]*'
const NUMBER = '[-+]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][-+]?\\d+)?'
const CONDITION_TEXT = new RegExp(
  `^\\s*(?:(${AGGREGATES.join('|')})\\(\\s*(${NAME})\\s*\\)|(${NAME}))\\s*(<=|>=|==|<|>)\\s*(${NUMBER})\\s*$`,
)

/** The right form, shown in every error about a condition. */
export const CONDITION_FORM =
  '"<metric> <op> <number>" such as "load > 0.8" or "min(free_memory) > 512" (op is one of < <= > >= ==)'

/** Parses the string form; undefined when the text is not a condition. */
export function parseCondition(text: string): Condition | undefined {
  const m = CONDITION_TEXT.exec(text)
  if (!m) return undefined
  const value = Number(m[5])
  if (!Number.isFinite(value)) return undefined
  const condition: Condition = { metric: (m[2] ?? m[3])!, op: m[4] as Operator, value }
  if (m[1] !== undefined) condition.aggregate = m[1] as Aggregate
  return condition
}

/** The string form of a condition ("min(free_memory) > 512"). */
export function formatCondition(condition: Condition): string {
  const subject = condition.aggregate ? `${condition.aggregate}(${condition.metric})` : condition.metric
  return `${subject} ${condition.op} ${condition.value}`
}

export function compare(left: number, op: Operator, right: number): boolean {
  switch (op) {
    case '<':
      return left < right
    case '<=':
      return left <= right
    case '>':
      return left > right
    case '>=':
      return left >= right
    case '==':
      return left === right
  }
}

export const aggregateSchema = z
  .enum(AGGREGATES)
  .meta({ description: 'How per-instance values combine into one number: mean, median, min, max or sum.' })

const conditionObjectSchema = z
  .object({
    metric: z
      .string()
      .regex(METRIC_NAME, { message: 'must be a metric name such as "load" or "node_load1"' })
      .describe('The metric to compare, as a source provides it.'),
    op: z
      .enum(OPERATORS, { message: `must be one of ${OPERATORS.join(' ')}` })
      .describe('Comparison operator: <, <=, >, >= or ==.'),
    value: z
      .number({ message: 'must be a number' })
      .describe('The threshold to compare the aggregated value with.'),
    aggregate: aggregateSchema.optional().describe("Overrides the policy's cross-instance function."),
  })
  .strict()

/**
 * A condition in either form; parses to `Condition`. A bad string is one issue that quotes it
 * and shows the right form; a bad object names the field and its value (zod's own union message
 * would only say "Invalid input").
 */
export const conditionSchema = z
  .union(
    [
      z.string().describe(`A condition: ${CONDITION_FORM}.`),
      conditionObjectSchema.describe('A condition spelled out: { metric, op, value, aggregate? }.'),
    ],
    {
      error: (issue) =>
        issue.code === 'invalid_union' ? unionMessage(issue.input, issue.errors) : undefined,
    },
  )
  .transform((input, ctx): Condition => {
    if (typeof input !== 'string') return input
    const parsed = parseCondition(input)
    if (parsed === undefined) {
      ctx.addIssue({ code: 'custom', message: `must be ${CONDITION_FORM}, not ${JSON.stringify(input)}` })
      return z.NEVER
    }
    return parsed
  })
  .meta({ description: `A condition: ${CONDITION_FORM}, or { metric, op, value, aggregate? }.` })

function unionMessage(
  input: unknown,
  errors: ReadonlyArray<ReadonlyArray<{ path: PropertyKey[]; message: string }>>,
): string {
  const objectIssues = errors[1]
  if (input === null || typeof input !== 'object' || Array.isArray(input) || objectIssues === undefined) {
    return `must be ${CONDITION_FORM}, or { metric, op, value, aggregate? }`
  }
  const record = input as Record<string, unknown>
  const parts = objectIssues.map((i) => {
    const key = String(i.path[0] ?? '')
    const got = key !== '' && key in record ? ` (got ${JSON.stringify(record[key])})` : ''
    return key === '' ? i.message : `${key}: ${i.message}${got}`
  })
  return `must be { metric, op, value, aggregate? }: ${parts.join('; ')}`
}

/** What one condition says about one evaluation. */
export interface ConditionOutcome {
  condition: Condition
  /** `unknown` when the metric has no usable value (no instance reported it, no group value) or is stale. */
  state: 'true' | 'false' | 'unknown'
  /** Every expected instance reported a fresh value, or a group-level value decided it. */
  complete: boolean
  observed?: number
  /**
   * "load 0.91 > 0.8 (mean of 3 of 3 instances)", "load 0.5 is not > 0.8 (…)", "load has no data (…)",
   * "latency_p99 250 (group) > 200", "concurrency 30 (group total) > 25 (sum of 3 of 3 instances: 27)".
   */
  sentence: string
}

/**
 * Evaluates a condition on the instances that reported.
 * - A metric with no per-instance values uses its group-level value (`group`, else `total`),
 *   whatever the aggregate: a latency percentile, or the requests waiting at zero instances.
 * - `sum` uses the reading's `total` where it has one: the router's concurrency counts the
 *   requests queued while no instance is ready, which no instance reports.
 * - Otherwise the aggregate runs over the per-instance values that were reported.
 * Precondition: `view` is the metric the condition names, read with `readMetric`.
 */
export function evaluateCondition(
  condition: Condition,
  fallback: Aggregate,
  view: MetricView,
  staleAfter: number,
): ConditionOutcome {
  const fn = condition.aggregate ?? fallback
  const level = groupLevel(view)
  if (level !== undefined) {
    const label = level.of === 'group' ? 'group' : 'group total'
    return decide(condition, level.value, true, `(${label})`, '')
  }
  const values = Object.values(view.values)
  const complete = view.missing.length === 0
  const missing = complete ? '' : `; ${describeMissing(view)}`
  if (fn === 'sum' && view.total !== undefined) {
    const instances = aggregate(values, 'sum')
    const sum =
      instances === undefined
        ? `${coverage(view)} reporting`
        : `sum of ${coverage(view)}: ${formatNumber(instances)}`
    return decide(condition, view.total, complete, '(group total)', ` (${sum}${missing})`)
  }
  const observed = aggregate(values, fn)
  if (observed === undefined) {
    return { condition, state: 'unknown', complete: false, sentence: describeGap(view, staleAfter) }
  }
  return decide(condition, observed, complete, '', ` (${fn} of ${coverage(view)}${missing})`)
}

/** "<metric> <value>[ <label>] <op> <threshold><detail>", with the state it gives. */
function decide(
  condition: Condition,
  observed: number,
  complete: boolean,
  label: string,
  detail: string,
): ConditionOutcome {
  const holds = compare(observed, condition.op, condition.value)
  const shown = `${formatNumber(observed, condition.value)}${label === '' ? '' : ` ${label}`}`
  const relation = holds ? condition.op : `is not ${condition.op}`
  return {
    condition,
    state: holds ? 'true' : 'false',
    complete,
    observed,
    sentence: `${condition.metric} ${shown} ${relation} ${formatNumber(condition.value)}${detail}`,
  }
}

function describeMissing(view: MetricView): string {
  const names = view.missing.length <= 3 ? view.missing.join(', ') : `${view.missing.length} instances`
  return `${names} missing`
}
