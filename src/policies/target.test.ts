import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { MetricReading, PolicyInput, Recommendation } from '../core/types.js'
import { decideTarget, type TargetConfig, targetSchema } from './target.js'

const concurrency8 = targetSchema.parse({ kind: 'target', metric: 'concurrency', per_instance: 8 })

function input(current: number, reading: MetricReading | undefined, now = 0): PolicyInput {
  return {
    now,
    group: 'web',
    current,
    ready: current,
    min: 0,
    max: 100,
    metrics: reading ? { concurrency: reading } : {},
    staleAfter: 30_000,
  }
}

function perInstance(values: number[], missing: string[] = []): MetricReading {
  return { at: 0, perInstance: Object.fromEntries(values.map((v, i) => [`web-${i + 1}`, v])), missing }
}

interface Case {
  name: string
  config?: TargetConfig
  current: number
  reading: MetricReading | undefined
  now?: number
  kind: Recommendation['kind']
  to?: number
  reason: RegExp | string
}

const cases: Case[] = [
  {
    name: 'scales up to ceil(current × observed / target)',
    current: 4,
    reading: perInstance([11, 12, 11, 12]),
    kind: 'scale',
    to: 6,
    reason: 'concurrency 11.5 per instance > target 8 +10% (4 of 4 instances reporting) → 6 instances',
  },
  {
    name: 'scales down the same way',
    current: 4,
    reading: perInstance([2, 2, 2, 2]),
    kind: 'scale',
    to: 1,
    reason: 'concurrency 2 per instance < target 8 −10% (4 of 4 instances reporting) → 1 instance',
  },
  {
    name: 'holds within tolerance (HPA 0.1)',
    current: 3,
    reading: perInstance([8.5, 8.8, 8.7]),
    kind: 'hold',
    reason: 'concurrency 8.67 per instance is within 10% of target 8 (3 of 3 instances reporting)',
  },
  {
    name: 'the tolerance edge is inclusive (HPA: |1 − ratio| ≤ tolerance holds)',
    config: targetSchema.parse({ kind: 'target', metric: 'concurrency', per_instance: 10, tolerance: 0.5 }),
    current: 2,
    reading: perInstance([15, 15]),
    kind: 'hold',
    reason: /within 50% of target 10/,
  },
  {
    name: 'outside tolerance but the same size still fits: hold',
    current: 1,
    reading: perInstance([6.5]),
    kind: 'hold',
    reason: 'concurrency 6.5 per instance < target 8 −10% (1 of 1 instance reporting), still 1 instance',
  },
  {
    name: 'float noise does not add an instance (0.3 / 0.1 is 2.9999…)',
    config: targetSchema.parse({ kind: 'target', metric: 'concurrency', per_instance: 0.1, tolerance: 0 }),
    current: 1,
    reading: perInstance([0.3]),
    kind: 'scale',
    to: 3,
    reason: /→ 3 instances$/,
  },
  {
    name: 'a router total sizes the group from zero',
    current: 0,
    reading: { at: 0, perInstance: {}, missing: [], total: 17 },
    kind: 'scale',
    to: 3,
    reason: 'concurrency 17 in total with no instances, target 8 each → 3 instances',
  },
  {
    name: 'a router total of zero at zero instances holds',
    current: 0,
    reading: { at: 0, perInstance: {}, missing: [], total: 0 },
    kind: 'hold',
    reason: 'concurrency 0 in total and the group has no instances',
  },
  {
    name: 'a router total counts requests queued while instances start',
    current: 2,
    reading: { at: 0, perInstance: { 'web-1': 3 }, missing: ['web-2'], total: 40 },
    kind: 'scale',
    to: 5,
    reason: 'concurrency 40 in total, 20 per instance over 2 > target 8 +10% → 5 instances',
  },
  {
    name: 'a router total of zero recommends zero (the governor applies min)',
    current: 2,
    reading: { at: 0, perInstance: {}, missing: [], total: 0 },
    kind: 'scale',
    to: 0,
    reason: /< target 8 −10% → 0 instances/,
  },
  {
    name: 'a stale reading is unknown',
    current: 3,
    reading: { at: 0, perInstance: { a: 1, b: 1, c: 1 }, missing: [], total: 3 },
    now: 31_000,
    kind: 'unknown',
    reason: 'concurrency is stale (read 31s ago, older than 30s), so the size it needs is unknown',
  },
  {
    name: 'no reading at all is unknown',
    current: 3,
    reading: undefined,
    kind: 'unknown',
    reason: /^concurrency has no data/,
  },
  {
    name: 'no reporting instance is unknown',
    current: 2,
    reading: perInstance([], ['web-1', 'web-2']),
    kind: 'unknown',
    reason: 'concurrency has no data (0 of 2 instances reporting), so the size it needs is unknown',
  },
  {
    name: 'missing instances count as 0 on the way up (HPA)',
    current: 4,
    reading: perInstance([20, 20, 20], ['web-4']),
    kind: 'scale',
    to: 8,
    reason:
      'concurrency 20 per instance > target 8 +10% (3 of 4 instances reporting); counting web-4 at 0 it is 15 per instance → 8 instances',
  },
  {
    name: 'counting the missing at 0 lands within tolerance: hold (HPA)',
    current: 4,
    reading: perInstance([11, 11, 11], ['web-4']),
    kind: 'hold',
    reason: /counting web-4 at 0 it is 8.25 per instance, within 10% of target 8: holding \(HPA\)$/,
  },
  {
    name: 'counting the missing at 0 flips the direction: hold (HPA)',
    current: 4,
    reading: perInstance([9, 9, 9], ['web-4']),
    kind: 'hold',
    reason: /counting web-4 at 0 it is 6.75 per instance, below target 8: holding \(HPA\)$/,
  },
  {
    name: 'counting the missing at target still needs the same size: hold (HPA)',
    current: 2,
    reading: perInstance([7], ['web-2']),
    config: targetSchema.parse({ kind: 'target', metric: 'concurrency', per_instance: 8, tolerance: 0.05 }),
    kind: 'hold',
    reason: /counting web-2 at target it is 7.5 per instance, which 2 instances still fit: holding \(HPA\)$/,
  },
  {
    name: 'where HPA would scale down with instances missing, Tide cannot tell: missing data never scales down',
    current: 4,
    reading: perInstance([0, 0], ['web-3', 'web-4']),
    kind: 'unknown',
    reason:
      'concurrency 0 per instance < target 8 −10% (2 of 4 instances reporting), but counting web-3, web-4 at target it is 4 per instance → 2 instances; missing data never scales down',
  },
]

describe('target policy', () => {
  for (const c of cases) {
    test(c.name, () => {
      const result = decideTarget(c.config ?? concurrency8, input(c.current, c.reading, c.now ?? 0))
      assert.equal(result.kind, c.kind, result.reason)
      if (c.to !== undefined) assert.equal(result.kind === 'scale' ? result.to : undefined, c.to)
      if (typeof c.reason === 'string') assert.equal(result.reason, c.reason)
      else assert.match(result.reason, c.reason)
    })
  }
  test('explain: false gives the same answer with no sentence (what tide simulate relies on)', () => {
    for (const c of cases) {
      const told = decideTarget(c.config ?? concurrency8, input(c.current, c.reading, c.now ?? 0))
      const quiet = decideTarget(c.config ?? concurrency8, {
        ...input(c.current, c.reading, c.now ?? 0),
        explain: false,
      })
      assert.deepEqual(quiet, { ...told, reason: '' }, c.name)
      assert.notEqual(told.reason, '', c.name)
    }
  })
})

describe('target policy on a group value that is not a sum (HPA Object metric)', () => {
  const p99 = targetSchema.parse({ kind: 'target', metric: 'latency_p99', per_instance: 200 })
  const at = (current: number, group: number, now = 0) => ({
    ...input(current, undefined, now),
    metrics: { latency_p99: { at: 0, perInstance: {}, missing: [], group } },
  })
  const gcases: Array<[string, number, number, Recommendation['kind'], number | undefined, string]> = [
    [
      'p99 above target scales up to ceil(current × value / target), never down',
      4,
      250,
      'scale',
      5,
      'latency_p99 250 (group) > target 200 +10% → 5 instances (4 × 250 / 200)',
    ],
    [
      'p99 below target scales down in proportion',
      4,
      100,
      'scale',
      2,
      'latency_p99 100 (group) < target 200 −10% → 2 instances (4 × 100 / 200)',
    ],
    [
      'within tolerance holds',
      4,
      210,
      'hold',
      undefined,
      'latency_p99 210 (group) is within 10% of target 200',
    ],
    [
      'rounding keeps the size: hold',
      1,
      150,
      'hold',
      undefined,
      'latency_p99 150 (group) < target 200 −10%, still needs 1 instance (1 × 150 / 200)',
    ],
    [
      'at zero instances a group value gives no size: hold',
      0,
      900,
      'hold',
      undefined,
      'latency_p99 900 (group) and the group has no instances: a group value gives no size at zero',
    ],
  ]
  for (const [name, current, group, kind, to, reason] of gcases) {
    test(name, () => {
      const result = decideTarget(p99, at(current, group))
      assert.equal(result.kind, kind, result.reason)
      if (to !== undefined) assert.equal(result.kind === 'scale' ? result.to : undefined, to)
      assert.equal(result.reason, reason)
    })
  }

  test('a stale group value counts as missing', () => {
    const result = decideTarget(p99, at(4, 250, 31_000))
    assert.equal(result.kind, 'unknown')
    assert.equal(
      result.reason,
      'latency_p99 is stale (read 31s ago, older than 30s), so the size it needs is unknown',
    )
  })
})

describe('target schema', () => {
  test('tolerance defaults to HPA’s 0.1', () => assert.equal(concurrency8.tolerance, 0.1))

  const bad: Array<[string, object, string, RegExp]> = [
    ['a target of zero', { per_instance: 0 }, 'per_instance', /must be > 0/],
    ['a tolerance of 1', { per_instance: 8, tolerance: 1 }, 'tolerance', /must be < 1/],
    ['a negative tolerance', { per_instance: 8, tolerance: -0.1 }, 'tolerance', /must be ≥ 0/],
    ['an unknown key', { per_instance: 8, target: 8 }, '', /target/],
  ]
  for (const [name, fields, path, message] of bad) {
    test(`refuses ${name}`, () => {
      const result = targetSchema.safeParse({ kind: 'target', metric: 'concurrency', ...fields })
      const issue = result.error?.issues.find((i) => i.path.join('.') === path)
      assert.ok(issue, JSON.stringify(result.error?.issues))
      assert.match(issue.message, message)
    })
  }
})
