import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { MetricReading, Metrics, PolicyInput, Recommendation } from '../core/types.js'
import { decideThreshold, type ThresholdConfig, thresholdMetrics, thresholdSchema } from './threshold.js'

const STALE_AFTER = 30_000

function input(current: number, metrics: Metrics, now = 0): PolicyInput {
  return { now, group: 'web', current, ready: current, min: 1, max: 10, metrics, staleAfter: STALE_AFTER }
}

function reading(perInstance: Record<string, number>, missing: string[] = [], at = 0): MetricReading {
  return { at, perInstance, missing }
}

/** Seed 000's defaults: load 0.35/0.15, free memory 800/900 MB; up on any, down on all. */
const seed000 = thresholdSchema.parse({
  kind: 'threshold',
  up: { conditions: ['load > 0.35', 'free_memory < 800'] },
  down: { conditions: ['load < 0.15', 'free_memory > 900'] },
})

const three = (load: number[], memory: number[]): Metrics => ({
  load: reading({ 'web-1': load[0]!, 'web-2': load[1]!, 'web-3': load[2]! }),
  free_memory: reading({ 'web-1': memory[0]!, 'web-2': memory[1]!, 'web-3': memory[2]! }),
})

interface Case {
  name: string
  config?: ThresholdConfig
  current?: number
  metrics: Metrics
  now?: number
  kind: Recommendation['kind']
  to?: number
  reason: RegExp | string
}

const cases: Case[] = [
  {
    name: 'scales up when any up-condition holds (load)',
    metrics: three([0.5, 0.4, 0.3], [1000, 1000, 1000]),
    kind: 'scale',
    to: 4,
    reason: 'load 0.4 > 0.35 (mean of 3 of 3 instances)',
  },
  {
    name: 'scales up when any up-condition holds (memory alone)',
    metrics: three([0.2, 0.2, 0.2], [700, 700, 760]),
    kind: 'scale',
    to: 4,
    reason: 'free_memory 720 < 800 (mean of 3 of 3 instances)',
  },
  {
    name: 'scales down only when every down-condition holds',
    metrics: three([0.1, 0.1, 0.1], [1000, 1000, 1000]),
    kind: 'scale',
    to: 2,
    reason:
      'load 0.1 < 0.15 (mean of 3 of 3 instances) and free_memory 1000 > 900 (mean of 3 of 3 instances)',
  },
  {
    name: 'holds in the hysteresis band and says which condition failed each rule',
    metrics: three([0.1, 0.1, 0.1], [850, 850, 850]),
    kind: 'hold',
    reason:
      'no up condition holds: load 0.1 is not > 0.35 (mean of 3 of 3 instances), free_memory 850 is not < 800 (mean of 3 of 3 instances); ' +
      'not every down condition holds: free_memory 850 is not > 900 (mean of 3 of 3 instances)',
  },
  {
    name: 'checks up before down (seed 000)',
    config: thresholdSchema.parse({
      kind: 'threshold',
      up: { conditions: ['load > 0.1'] },
      down: { conditions: ['load < 0.9'] },
    }),
    metrics: three([0.5, 0.5, 0.5], [0, 0, 0]),
    kind: 'scale',
    to: 4,
    reason: /^load 0.5 > 0.1/,
  },
  {
    name: 'scales up on the instances that reported and says how many did',
    metrics: {
      load: reading({ 'web-1': 0.9, 'web-2': 0.7 }, ['web-3']),
      free_memory: reading({ 'web-1': 1000, 'web-2': 1000, 'web-3': 1000 }),
    },
    kind: 'scale',
    to: 4,
    reason: 'load 0.8 > 0.35 (mean of 2 of 3 instances; web-3 missing)',
  },
  {
    name: 'never scales down when an instance is missing',
    metrics: {
      load: reading({ 'web-1': 0.1, 'web-2': 0.1 }, ['web-3']),
      free_memory: reading({ 'web-1': 1000, 'web-2': 1000, 'web-3': 1000 }),
    },
    kind: 'unknown',
    reason:
      /^the down rule holds on the instances that reported \(.*\), but load is missing from web-3 \(2 of 3 instances reporting\): missing data never scales down$/,
  },
  {
    name: 'never scales down on a stale reading',
    metrics: {
      load: reading({ 'web-1': 0.1, 'web-2': 0.1, 'web-3': 0.1 }, [], 0),
      free_memory: reading({ 'web-1': 1000, 'web-2': 1000, 'web-3': 1000 }, [], 50_000),
    },
    now: 50_000,
    kind: 'unknown',
    reason: /load is stale \(read 50s ago, older than 30s\): missing data never scales down/,
  },
  {
    name: 'never scales down when an up-only metric is missing: the silent instance may be the busy one',
    config: thresholdSchema.parse({
      kind: 'threshold',
      up: { conditions: ['load > 0.8'] },
      down: { conditions: ['free_memory > 900'] },
    }),
    metrics: {
      load: reading({ 'web-1': 0.1, 'web-2': 0.1 }, ['web-3']),
      free_memory: reading({ 'web-1': 1000, 'web-2': 1000, 'web-3': 1000 }),
    },
    kind: 'unknown',
    reason: /load is missing from web-3.*missing data never scales down/,
  },
  {
    name: 'cannot tell when an up-condition has no data and down does not hold',
    metrics: {
      load: reading({}, ['web-1', 'web-2', 'web-3']),
      free_memory: reading({ 'web-1': 850, 'web-2': 850, 'web-3': 850 }),
    },
    kind: 'unknown',
    reason: 'load has no data (0 of 3 instances reporting), so this policy cannot tell whether to scale up',
  },
  {
    name: 'match all on up needs every condition',
    config: thresholdSchema.parse({
      kind: 'threshold',
      up: { match: 'all', conditions: ['load1 >= 2', 'load5 >= 2'] },
    }),
    metrics: { load1: reading({ a: 3 }), load5: reading({ a: 1 }) },
    current: 1,
    kind: 'hold',
    reason: 'not every up condition holds: load5 1 is not >= 2 (mean of 1 of 1 instance)',
  },
  {
    name: 'match any on down is enough with one condition',
    config: thresholdSchema.parse({
      kind: 'threshold',
      down: { match: 'any', step: 2, conditions: ['load1 < 0.1', 'load5 < 0.1'] },
    }),
    metrics: { load1: reading({ a: 3, b: 3, c: 3, d: 3 }), load5: reading({ a: 0, b: 0, c: 0, d: 0 }) },
    current: 4,
    kind: 'scale',
    to: 2,
    reason: 'load5 0 < 0.1 (mean of 4 of 4 instances)',
  },
  {
    name: 'a condition may use its own function (seed 002: min of free memory)',
    config: thresholdSchema.parse({
      kind: 'threshold',
      up: { step: 2, conditions: ['min(free_memory) < 256'] },
    }),
    metrics: { free_memory: reading({ a: 1000, b: 200 }) },
    current: 2,
    kind: 'scale',
    to: 4,
    reason: 'free_memory 200 < 256 (min of 2 of 2 instances)',
  },
  {
    name: 'the policy default function applies where a condition has none',
    config: thresholdSchema.parse({
      kind: 'threshold',
      aggregate: 'max',
      up: { conditions: ['load > 0.8'] },
    }),
    metrics: { load: reading({ a: 0.1, b: 0.9 }) },
    current: 2,
    kind: 'scale',
    to: 3,
    reason: 'load 0.9 > 0.8 (max of 2 of 2 instances)',
  },
  {
    name: 'an up-only policy holds when up does not hold',
    config: thresholdSchema.parse({ kind: 'threshold', up: { conditions: ['load > 0.8'] } }),
    metrics: { load: reading({ a: 0.1 }) },
    current: 1,
    kind: 'hold',
    reason: 'the up condition does not hold: load 0.1 is not > 0.8 (mean of 1 of 1 instance)',
  },
  {
    name: 'down at zero instances holds',
    config: thresholdSchema.parse({ kind: 'threshold', down: { conditions: ['queue < 1'] } }),
    metrics: { queue: reading({ a: 0 }) },
    current: 0,
    kind: 'hold',
    reason: /there is no instance to remove/,
  },
  {
    name: 'a latency condition (group value) decides instead of blocking every scale-down',
    config: thresholdSchema.parse({
      kind: 'threshold',
      up: { conditions: ['latency_p99 > 200'] },
      down: { conditions: ['latency_p99 < 50', 'load < 0.15'] },
    }),
    metrics: {
      latency_p99: { at: 0, perInstance: {}, missing: [], group: 30 },
      load: reading({ 'web-1': 0.1, 'web-2': 0.1, 'web-3': 0.1 }),
    },
    kind: 'scale',
    to: 2,
    reason: 'latency_p99 30 (group) < 50 and load 0.1 < 0.15 (mean of 3 of 3 instances)',
  },
  {
    name: 'a latency condition scales up on the group value',
    config: thresholdSchema.parse({ kind: 'threshold', up: { conditions: ['latency_p99 > 200'] } }),
    metrics: { latency_p99: { at: 0, perInstance: {}, missing: [], group: 250 } },
    kind: 'scale',
    to: 4,
    reason: 'latency_p99 250 (group) > 200',
  },
  {
    name: 'a stale group value counts as missing: never scales down',
    config: thresholdSchema.parse({ kind: 'threshold', down: { conditions: ['latency_p99 < 50'] } }),
    metrics: { latency_p99: { at: 0, perInstance: {}, missing: [], group: 30 } },
    now: 40_000,
    kind: 'unknown',
    reason: /latency_p99 is stale \(read 40s ago, older than 30s\): missing data never scales down$/,
  },
  {
    name: 'sum(concurrency) sees the group total, requests queued included',
    config: thresholdSchema.parse({ kind: 'threshold', up: { conditions: ['sum(concurrency) > 25'] } }),
    metrics: {
      concurrency: { at: 0, perInstance: { 'web-1': 9, 'web-2': 9, 'web-3': 9 }, missing: [], total: 30 },
    },
    kind: 'scale',
    to: 4,
    reason: 'concurrency 30 (group total) > 25 (sum of 3 of 3 instances: 27)',
  },
  {
    name: 'mean(concurrency) keeps the per-instance values',
    config: thresholdSchema.parse({ kind: 'threshold', up: { conditions: ['concurrency > 9.5'] } }),
    metrics: {
      concurrency: { at: 0, perInstance: { 'web-1': 9, 'web-2': 9, 'web-3': 9 }, missing: [], total: 30 },
    },
    kind: 'hold',
    reason: 'the up condition does not hold: concurrency 9 is not > 9.5 (mean of 3 of 3 instances)',
  },
]

describe('threshold policy', () => {
  for (const c of cases) {
    test(c.name, () => {
      const result = decideThreshold(c.config ?? seed000, input(c.current ?? 3, c.metrics, c.now ?? 0))
      assert.equal(result.kind, c.kind, result.reason)
      if (c.to !== undefined) assert.equal(result.kind === 'scale' ? result.to : undefined, c.to)
      if (typeof c.reason === 'string') assert.equal(result.reason, c.reason)
      else assert.match(result.reason, c.reason)
    })
  }

  test('the same input gives the same answer', () => {
    const metrics = three([0.5, 0.4, 0.3], [1000, 1000, 1000])
    assert.deepEqual(decideThreshold(seed000, input(3, metrics)), decideThreshold(seed000, input(3, metrics)))
  })
})

describe('threshold schema', () => {
  test('defaults follow seed 000: up on any, down on all, one instance per step, mean', () => {
    assert.equal(seed000.aggregate, 'mean')
    assert.deepEqual([seed000.up?.match, seed000.up?.step], ['any', 1])
    assert.deepEqual([seed000.down?.match, seed000.down?.step], ['all', 1])
  })

  test('a policy with neither rule is refused', () => {
    const result = thresholdSchema.safeParse({ kind: 'threshold' })
    assert.equal(result.error?.issues[0]?.message, 'needs an up rule, a down rule, or both')
  })

  const bad: Array<[string, unknown, string]> = [
    ['a bad condition string names the value', { up: { conditions: ['load >> 1'] } }, 'up.conditions.0'],
    ['no conditions', { up: { conditions: [] } }, 'up.conditions'],
    ['a step of zero', { up: { step: 0, conditions: ['a > 1'] } }, 'up.step'],
    ['an unknown match', { down: { match: 'some', conditions: ['a > 1'] } }, 'down.match'],
    ['an unknown key', { up: { conditions: ['a > 1'] }, cooldown: '3m' }, ''],
  ]
  for (const [name, config, path] of bad) {
    test(`refuses ${name}`, () => {
      const result = thresholdSchema.safeParse({ kind: 'threshold', ...(config as object) })
      assert.equal(result.success, false)
      assert.ok(
        result.error?.issues.some((i) => i.path.join('.') === path),
        JSON.stringify(result.error?.issues),
      )
    })
  }

  test('lists each metric it reads once', () => {
    assert.deepEqual(thresholdMetrics(seed000), ['load', 'free_memory'])
  })
})

describe('single-direction threshold policies (seed 002: each policy fires on its own)', () => {
  const upOnly = thresholdSchema.parse({ kind: 'threshold', up: { conditions: ['load > 0.8'] } })
  const downOnly = thresholdSchema.parse({ kind: 'threshold', down: { conditions: ['load < 0.2'] } })
  const load = (v: number): Metrics => ({ load: reading({ 'web-1': v, 'web-2': v }) })

  test('an up-only rule that does not hold has no opinion, rather than a vote to stay', () => {
    const r = decideThreshold(upOnly, input(2, load(0.1)))
    assert.equal(r.kind, 'hold')
    assert.equal(r.kind === 'hold' && r.abstain, true)
  })

  test('a down-only rule that does not hold has no opinion either', () => {
    const r = decideThreshold(downOnly, input(2, load(0.5)))
    assert.equal(r.kind === 'hold' && r.abstain, true)
  })

  test('a policy with both rules in its band still votes to stay', () => {
    const r = decideThreshold(seed000, input(3, three([0.2, 0.2, 0.2], [850, 850, 850])))
    assert.equal(r.kind, 'hold')
    assert.equal(r.kind === 'hold' && r.abstain, undefined)
  })

  test('an up-only rule with missing data still blocks a scale-down (unknown)', () => {
    const r = decideThreshold(upOnly, input(2, { load: reading({ 'web-1': 0.1 }, ['web-2']) }))
    assert.equal(r.kind, 'unknown')
  })
})
