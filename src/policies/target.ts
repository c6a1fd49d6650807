/**
 * `target`: target tracking, as Kubernetes HPA does it (replica_calculator.go).
 *
 *   - { kind: target, metric: concurrency, per_instance: 8, tolerance: 0.1 }
 *
 * desired = ceil(instances × observed / per_instance), where observed is the mean per instance;
 * no change while observed / per_instance is within 1 ± tolerance (HPA's 0.1, inclusive).
 * When the reading has a group `total` (the router's concurrency, which counts requests queued
 * while no instance is ready) desired = ceil(total / per_instance): the same number when every
 * instance reports, and the right one at zero instances or while instances start.
 *
 * A metric that only has a `group` value (not a sum: the router's latency percentiles) follows
 * HPA's Object metric: desired = ceil(current × value / per_instance), with the same tolerance;
 * `per_instance` is then the value the group metric should have. At zero instances it holds:
 * a value that is not divided among instances says nothing about how many are needed.
 *
 * Missing instances follow HPA: they count as 0 % of target when the result would scale up
 * (dampens scale-up), and as 100 % when it would scale down; if that flips the direction or lands
 * within tolerance, hold. Where HPA would still scale down, Tide answers `unknown` instead:
 * missing data never scales down (DESIGN.md), and the sentence gives HPA's figure.
 */
import { z } from 'zod'
import { coverage, describeGap, formatNumber, groupLevel, listNames, readMetric } from '../core/aggregate.js'
import { METRIC_NAME } from '../core/condition.js'
import type { Policy, PolicyInput, Recommendation } from '../core/types.js'

export const targetSchema = z
  .object({
    kind: z.literal('target').describe('Target tracking: keep a metric near a value per instance (HPA).'),
    name: z.string().min(1).optional().describe('Name in decisions and logs. @default "target[<index>]"'),
    metric: z
      .string()
      .regex(METRIC_NAME, { message: 'must be a metric name such as "concurrency"' })
      .describe('The metric to track, e.g. concurrency or rps.'),
    per_instance: z
      .number()
      .positive({ message: 'must be > 0' })
      .describe('The value each instance should carry, e.g. 8 requests in flight.'),
    tolerance: z
      .number()
      .min(0, { message: 'must be ≥ 0' })
      .lt(1, { message: 'must be < 1 (0.1 means ±10%)' })
      .default(0.1)
      .describe('No change while observed / per_instance is within 1 ± tolerance (HPA: 0.1). @default 0.1'),
  })
  .strict()

export type TargetConfig = z.output<typeof targetSchema>

export function targetMetrics(config: TargetConfig): string[] {
  return [config.metric]
}

export function buildTarget(config: TargetConfig): Policy {
  return (input) => decideTarget(config, input)
}

/**
 * `Math.ceil` that ignores float noise: 0.3 / 0.1 is 2.9999999999999996 and must not become
 * 3, nor 3.0000000000000004 become 4.
 */
function ceil(x: number): number {
  return Math.ceil(x - 1e-9 * Math.max(1, Math.abs(x)))
}

function instances(n: number): string {
  return `${n} instance${n === 1 ? '' : 's'}`
}

/**
 * Whether the caller reads the sentences: true unless it set `PolicyInput.explain` to false
 * (`tide simulate`), in which case the answer's `reason` is empty and the answer otherwise the same.
 */
export function explains(input: PolicyInput): boolean {
  return input.explain !== false
}

function within(ratio: number, tolerance: number): boolean {
  return ratio >= 1 - tolerance && ratio <= 1 + tolerance
}

/** The words every sentence of one config shares. */
function words(config: TargetConfig) {
  const tol = `${formatNumber(config.tolerance * 100)}%`
  const goal = `target ${formatNumber(config.per_instance)}`
  return { tol, goal, above: `> ${goal} +${tol}`, below: `< ${goal} −${tol}` }
}

const QUIET = { tol: '', goal: '', above: '', below: '' }

/** Pure: same config and input, same answer. */
export function decideTarget(config: TargetConfig, input: PolicyInput): Recommendation {
  const { metric, per_instance: target, tolerance } = config
  const { current } = input
  const view = readMetric(input.metrics, metric, input.now, input.staleAfter)
  const say = explains(input)
  const { tol, goal, above, below } = say ? words(config) : QUIET

  if (view.stale || view.absent) {
    return {
      kind: 'unknown',
      reason: say ? `${describeGap(view, input.staleAfter)}, so the size it needs is unknown` : '',
    }
  }

  const level = groupLevel(view)
  if (level?.of === 'group') {
    // HPA's GetObjectMetricReplicas: the ratio scales the current size.
    const value = level.value
    const shown = say ? `${metric} ${formatNumber(value, target)} (group)` : ''
    if (current === 0) {
      return {
        kind: 'hold',
        reason: say ? `${shown} and the group has no instances: a group value gives no size at zero` : '',
      }
    }
    const ratio = value / target
    if (within(ratio, tolerance)) {
      return { kind: 'hold', reason: say ? `${shown} is within ${tol} of ${goal}` : '' }
    }
    const desired = Math.max(0, ceil(current * ratio))
    const formula = say ? `(${current} × ${formatNumber(value)} / ${formatNumber(target)})` : ''
    const side = ratio > 1 ? above : below
    if (desired === current) {
      return {
        kind: 'hold',
        reason: say ? `${shown} ${side}, still needs ${instances(current)} ${formula}` : '',
      }
    }
    return {
      kind: 'scale',
      to: desired,
      reason: say ? `${shown} ${side} → ${instances(desired)} ${formula}` : '',
    }
  }

  if (view.total !== undefined) {
    const total = view.total
    const desired = Math.max(0, ceil(total / target))
    const shown = say ? `${metric} ${formatNumber(total)} in total` : ''
    if (current === 0) {
      if (desired === 0) {
        return { kind: 'hold', reason: say ? `${shown} and the group has no instances` : '' }
      }
      return {
        kind: 'scale',
        to: desired,
        reason: say ? `${shown} with no instances, ${goal} each → ${instances(desired)}` : '',
      }
    }
    const ratio = total / (current * target)
    const per = say ? `${shown}, ${formatNumber(total / current, target)} per instance over ${current}` : ''
    if (within(ratio, tolerance)) {
      return { kind: 'hold', reason: say ? `${per}, is within ${tol} of ${goal}` : '' }
    }
    if (desired === current) {
      return { kind: 'hold', reason: say ? `${per}, still needs ${instances(current)}` : '' }
    }
    return {
      kind: 'scale',
      to: desired,
      reason: say ? `${per} ${ratio > 1 ? above : below} → ${instances(desired)}` : '',
    }
  }

  if (view.reported === 0) {
    return {
      kind: 'unknown',
      reason: say ? `${describeGap(view, input.staleAfter)}, so the size it needs is unknown` : '',
    }
  }
  let sum = 0
  for (const v of Object.values(view.values)) sum += v
  const usage = sum / view.reported
  const ratio = usage / target
  const reporting = say ? `${coverage(view)} reporting` : ''
  const per = say ? `${metric} ${formatNumber(usage, target)} per instance` : ''
  if (within(ratio, tolerance)) {
    return { kind: 'hold', reason: say ? `${per} is within ${tol} of ${goal} (${reporting})` : '' }
  }

  if (view.missing.length === 0) {
    const desired = ceil(sum / target)
    if (desired === current) {
      return {
        kind: 'hold',
        reason: say ? `${per} ${ratio > 1 ? above : below} (${reporting}), still ${instances(current)}` : '',
      }
    }
    return {
      kind: 'scale',
      to: desired,
      reason: say ? `${per} ${ratio > 1 ? above : below} (${reporting}) → ${instances(desired)}` : '',
    }
  }

  // Some instances did not report: recompute conservatively (HPA's replica_calculator).
  const missing = say ? listNames(view.missing, 3) : ''
  const n = view.expected
  const direction = ratio > 1 ? above : below
  // Scale-down counts the missing at 100 % of target, scale-up at 0 %.
  const filled = ratio < 1 ? (sum + view.missing.length * target) / (n * target) : sum / (n * target)
  const desired = ceil(filled * n)
  const estimate = say
    ? `counting ${missing} at ${ratio < 1 ? 'target' : '0'} it is ${formatNumber(filled * target, target)} per instance`
    : ''
  const why = within(filled, tolerance)
    ? `within ${tol} of ${goal}`
    : ratio < 1 !== filled < 1
      ? `${filled < 1 ? 'below' : 'above'} ${goal}`
      : (ratio < 1 && desired >= current) || (ratio > 1 && desired <= current)
        ? `which ${instances(current)} still fit`
        : undefined
  const observed = say ? `${per} ${direction} (${reporting}), but ${estimate}` : ''
  if (why !== undefined) return { kind: 'hold', reason: say ? `${observed}, ${why}: holding (HPA)` : '' }
  if (ratio < 1) {
    return {
      kind: 'unknown',
      reason: say ? `${observed} → ${instances(desired)}; missing data never scales down` : '',
    }
  }
  return {
    kind: 'scale',
    to: desired,
    reason: say ? `${per} ${direction} (${reporting}); ${estimate} → ${instances(desired)}` : '',
  }
}
