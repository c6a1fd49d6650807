/**
 * `threshold`: named conditions on metrics.
 *
 *   - kind: threshold
 *     name: load
 *     aggregate: mean
 *     up:   { match: any, step: 1, conditions: ["load > 0.8", "free_memory < 256"] }
 *     down: { match: all, step: 1, conditions: ["load < 0.3", "min(free_memory) > 512"] }
 *
 * Seed 000's rule by default: up when ANY up-condition holds, down only when ALL down-conditions
 * hold, up checked first, one instance per step. Seed 002's `match: any|all` and per-condition
 * functions (min/max/median/mean) are the general form.
 *
 * Missing data (Tide's rule, from seed 000's "no action on invalid data"):
 *   - up may fire on the instances that reported; the sentence says how many did;
 *   - down fires only when every metric this policy reads, up and down, was reported fresh by
 *     every instance (a metric without per-instance values, such as a latency percentile: has a
 *     fresh group-level value): an instance that stops answering may be the overloaded one.
 *
 * Group-level values (see `evaluateCondition`): a metric with no per-instance values uses its
 * `group` (or `total`) value whatever the aggregate; `sum` uses the reading's `total` where it
 * has one (the router's concurrency, queued requests included).
 */
import { z } from 'zod'
import { describeGap, isComplete, type MetricView, readMetric } from '../core/aggregate.js'
import {
  aggregateSchema,
  type ConditionOutcome,
  conditionSchema,
  evaluateCondition,
} from '../core/condition.js'
import type { Policy, PolicyInput, Recommendation } from '../core/types.js'

type Match = 'any' | 'all'

function ruleSchema(direction: 'up' | 'down', match: Match) {
  return z
    .object({
      match: z
        .enum(['any', 'all'])
        .default(match)
        .describe(`any: one condition is enough; all: every condition must hold. @default ${match}`),
      step: z
        .number()
        .int({ message: 'must be a whole number' })
        .positive({ message: 'must be ≥ 1' })
        .default(1)
        .describe(`Instances to ${direction === 'up' ? 'add' : 'remove'} when the rule holds. @default 1`),
      conditions: z
        .array(conditionSchema)
        .min(1, { message: 'needs at least one condition' })
        .describe('Conditions such as "load > 0.8" or { metric, op, value, aggregate }.'),
    })
    .strict()
    .describe(`When to scale ${direction}.`)
}

export const thresholdSchema = z
  .object({
    kind: z.literal('threshold').describe('Scale on conditions over metrics (seed 000 and 002 semantics).'),
    name: z.string().min(1).optional().describe('Name in decisions and logs. @default "threshold[<index>]"'),
    aggregate: aggregateSchema
      .default('mean')
      .describe('How per-instance values combine when a condition does not say. @default mean'),
    up: ruleSchema('up', 'any').optional().describe('When to add instances; match defaults to any.'),
    down: ruleSchema('down', 'all').optional().describe('When to remove instances; match defaults to all.'),
  })
  .strict()
  .refine((config) => config.up !== undefined || config.down !== undefined, {
    message: 'needs an up rule, a down rule, or both',
  })

export type ThresholdConfig = z.output<typeof thresholdSchema>
type Rule = NonNullable<ThresholdConfig['up']>
type State = ConditionOutcome['state']

/** Metric names this policy reads. */
export function thresholdMetrics(config: ThresholdConfig): string[] {
  const names = [...(config.up?.conditions ?? []), ...(config.down?.conditions ?? [])].map((c) => c.metric)
  return [...new Set(names)]
}

export function buildThreshold(config: ThresholdConfig): Policy {
  return (input) => decideThreshold(config, input)
}

/** Pure: same config and input, same answer. */
export function decideThreshold(config: ThresholdConfig, input: PolicyInput): Recommendation {
  const views = new Map<string, MetricView>()
  const view = (metric: string): MetricView => {
    let v = views.get(metric)
    if (v === undefined) {
      v = readMetric(input.metrics, metric, input.now, input.staleAfter)
      views.set(metric, v)
    }
    return v
  }
  const evaluate = (rule: Rule): ConditionOutcome[] =>
    rule.conditions.map((c) => evaluateCondition(c, config.aggregate, view(c.metric), input.staleAfter))

  // Up first (seed 000).
  const up = config.up ? evaluate(config.up) : []
  const upState: State = config.up ? combine(config.up.match, up) : 'false'
  if (config.up && upState === 'true') {
    return { kind: 'scale', to: input.current + config.up.step, reason: holding(config.up.match, up) }
  }

  const down = config.down ? evaluate(config.down) : []
  const downState: State = config.down ? combine(config.down.match, down) : 'false'
  if (!config.down || downState === 'false') {
    if (upState === 'unknown') {
      const gaps = up.filter((o) => o.state === 'unknown').map((o) => o.sentence)
      return { kind: 'unknown', reason: `${gaps.join('; ')}, so this policy cannot tell whether to scale up` }
    }
    // A policy with a rule for one direction only has no opinion on the other: it must not
    // hold back another policy's scale-down (or stand in for a vote to stay).
    // Only on complete data: a policy that saw part of the group cannot rule out that it
    // would have wanted more, so it keeps others from scaling down (missing data never does).
    const oneWay = !config.up || !config.down
    if (!oneWay) return { kind: 'hold', reason: explainHold(config, up, down) }
    const gaps = thresholdMetrics(config)
      .map(view)
      .filter((v) => !isComplete(v))
      .map((v) => describeGap(v, input.staleAfter))
    if (gaps.length > 0) {
      return {
        kind: 'unknown',
        reason: `${explainHold(config, up, down)}, but ${gaps.join('; ')}: missing data never scales down`,
      }
    }
    return { kind: 'hold', reason: explainHold(config, up, down), abstain: true }
  }

  // The down rule holds (or might): only complete, fresh data everywhere may scale down.
  const gaps = thresholdMetrics(config)
    .map(view)
    .filter((v) => !isComplete(v))
    .map((v) => describeGap(v, input.staleAfter))
  if (gaps.length > 0) {
    const partial =
      downState === 'true'
        ? `the down rule holds on the instances that reported (${holding(config.down.match, down)}), but `
        : ''
    return { kind: 'unknown', reason: `${partial}${gaps.join('; ')}: missing data never scales down` }
  }
  const to = Math.max(0, input.current - config.down.step)
  const reason = holding(config.down.match, down)
  if (to === input.current) return { kind: 'hold', reason: `${reason}, but there is no instance to remove` }
  return { kind: 'scale', to, reason }
}

/** Three-valued any/all: unknown only when the known conditions cannot settle it. */
function combine(match: Match, outcomes: ConditionOutcome[]): State {
  const states = outcomes.map((o) => o.state)
  if (match === 'any') {
    if (states.includes('true')) return 'true'
    return states.includes('unknown') ? 'unknown' : 'false'
  }
  if (states.includes('false')) return 'false'
  return states.includes('unknown') ? 'unknown' : 'true'
}

/** The conditions that made a rule hold: the true ones for any, all of them for all. */
function holding(match: Match, outcomes: ConditionOutcome[]): string {
  const shown = match === 'any' ? outcomes.filter((o) => o.state === 'true') : outcomes
  return shown.map((o) => o.sentence).join(' and ')
}

/** Why neither rule holds, with the numbers: the conditions that failed each rule. */
function explainHold(config: ThresholdConfig, up: ConditionOutcome[], down: ConditionOutcome[]): string {
  const parts: string[] = []
  if (config.up) parts.push(failing('up', config.up.match, up))
  if (config.down) parts.push(failing('down', config.down.match, down))
  return parts.join('; ')
}

function failing(direction: 'up' | 'down', match: Match, outcomes: ConditionOutcome[]): string {
  if (match === 'any') {
    const what =
      outcomes.length === 1 ? `the ${direction} condition does not hold` : `no ${direction} condition holds`
    return `${what}: ${outcomes.map((o) => o.sentence).join(', ')}`
  }
  const failed = outcomes.filter((o) => o.state !== 'true').map((o) => o.sentence)
  const what =
    outcomes.length === 1
      ? `the ${direction} condition does not hold`
      : `not every ${direction} condition holds`
  return `${what}: ${failed.join(', ')}`
}
