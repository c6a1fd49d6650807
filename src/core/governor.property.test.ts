/**
 * Properties the governor and the policies keep for every input (fast-check):
 * bounds, determinism, no scale-down on missing data, tolerance, step limits, cooldown.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { decideTarget, targetSchema } from '../policies/target.js'
import { decideThreshold, thresholdSchema } from '../policies/threshold.js'
import { cooldownLeft, govern } from './governor.js'
import type {
  GovernorConfig,
  GovernorState,
  MetricReading,
  NamedRecommendation,
  PolicyInput,
  Recommendation,
} from './types.js'

const RUNS = { numRuns: 300 }
const NOW = 10_000_000

const configArb: fc.Arbitrary<GovernorConfig> = fc
  .record({
    min: fc.integer({ min: 0, max: 5 }),
    span: fc.integer({ min: 0, max: 15 }),
    cooldown: fc.integer({ min: 0, max: 120_000 }),
    cooldownUp: fc.option(fc.integer({ min: 0, max: 120_000 }), { nil: undefined }),
    cooldownDown: fc.option(fc.integer({ min: 0, max: 600_000 }), { nil: undefined }),
    stabilizationDown: fc.integer({ min: 0, max: 600_000 }),
    stabilizationUp: fc.integer({ min: 0, max: 120_000 }),
    maxStepUp: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }),
    maxStepDown: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }),
  })
  .map(({ span, ...c }) => ({ ...c, max: c.min + span }))

const recommendationArb: fc.Arbitrary<NamedRecommendation> = fc
  .oneof(
    fc.record({
      kind: fc.constant('scale' as const),
      to: fc.integer({ min: 0, max: 30 }),
      reason: fc.constant('r'),
    }),
    fc.record({ kind: fc.constant('hold' as const), reason: fc.constant('r') }),
    fc.record({ kind: fc.constant('unknown' as const), reason: fc.constant('r') }),
  )
  .map((r) => ({ ...r, policy: 'p' }))

const stateArb: fc.Arbitrary<GovernorState> = fc.record(
  {
    history: fc
      .array(
        fc.record({ at: fc.integer({ min: NOW - 700_000, max: NOW }), to: fc.integer({ min: 0, max: 30 }) }),
        { maxLength: 12 },
      )
      .map((h) => h.sort((a, b) => a.at - b.at)),
    lastChange: fc.record({
      at: fc.integer({ min: NOW - 700_000, max: NOW }),
      direction: fc.constantFrom('up' as const, 'down' as const),
    }),
  },
  { requiredKeys: ['history'], noNullPrototype: true },
)

const governArb = fc.record({
  config: configArb,
  current: fc.integer({ min: 0, max: 25 }),
  recommendations: fc.array(recommendationArb, { maxLength: 4 }),
  state: stateArb,
})

const inBounds = (n: number, c: GovernorConfig) => n >= c.min && n <= c.max

describe('governor properties', () => {
  test('the result is always within [min, max], even from outside them or in cooldown', () => {
    fc.assert(
      fc.property(governArb, ({ config, current, recommendations, state }) => {
        const { decision } = govern({ now: NOW, current, config, recommendations, state })
        assert.ok(inBounds(decision.to, config), decision.reason)
      }),
      RUNS,
    )
  })

  test('the same inputs give the same answer, and the inputs are not changed', () => {
    fc.assert(
      fc.property(governArb, (input) => {
        // Compared as JSON: fast-check builds some records without a prototype.
        const before = JSON.stringify(input)
        const a = govern({ now: NOW, ...input })
        const b = govern({ now: NOW, ...JSON.parse(before) })
        assert.equal(JSON.stringify(a), JSON.stringify(b))
        assert.equal(JSON.stringify(input), before)
      }),
      RUNS,
    )
  })

  test('never below the current size when any recommendation is unknown (within bounds)', () => {
    fc.assert(
      fc.property(governArb, recommendationArb, ({ config, current, recommendations, state }, extra) => {
        fc.pre(inBounds(current, config))
        const withUnknown = [...recommendations, { ...extra, kind: 'unknown' as const, reason: 'no data' }]
        const { decision } = govern({ now: NOW, current, config, recommendations: withUnknown, state })
        assert.ok(decision.to >= current, decision.reason)
      }),
      RUNS,
    )
  })

  test('the step limits hold from within bounds', () => {
    fc.assert(
      fc.property(governArb, ({ config, current, recommendations, state }) => {
        fc.pre(inBounds(current, config))
        const { decision } = govern({ now: NOW, current, config, recommendations, state })
        if (config.maxStepUp !== undefined)
          assert.ok(decision.to - current <= config.maxStepUp, decision.reason)
        if (config.maxStepDown !== undefined)
          assert.ok(current - decision.to <= config.maxStepDown, decision.reason)
      }),
      RUNS,
    )
  })

  test('no change within the cooldown of that direction, from within bounds', () => {
    fc.assert(
      fc.property(governArb, ({ config, current, recommendations, state }) => {
        fc.pre(inBounds(current, config))
        const { decision } = govern({ now: NOW, current, config, recommendations, state })
        if (decision.to !== current) {
          assert.equal(
            cooldownLeft(config, state, NOW, decision.to > current ? 'up' : 'down'),
            0,
            decision.reason,
          )
        }
      }),
      RUNS,
    )
  })

  test('with every policy holding, the size stays (within bounds)', () => {
    fc.assert(
      fc.property(governArb, fc.integer({ min: 1, max: 4 }), ({ config, current, state }, n) => {
        fc.pre(inBounds(current, config))
        const holds = Array.from({ length: n }, (_, i) => ({
          kind: 'hold' as const,
          reason: 'ok',
          policy: `p${i}`,
        }))
        assert.equal(
          govern({ now: NOW, current, config, recommendations: holds, state }).decision.to,
          current,
        )
      }),
      RUNS,
    )
  })

  test('every decision has a reason sentence that names the sizes', () => {
    fc.assert(
      fc.property(governArb, ({ config, current, recommendations, state }) => {
        const { decision } = govern({ now: NOW, current, config, recommendations, state })
        const expected =
          decision.kind === 'hold'
            ? `hold at ${current}: `
            : `scale ${decision.to > current ? 'up' : 'down'} ${current} → ${decision.to}: `
        assert.ok(
          decision.reason.startsWith(expected) && decision.reason.length > expected.length,
          decision.reason,
        )
      }),
      RUNS,
    )
  })
})

// ─── Policies ────────────────────────────────────────────────────────────────

function policyInput(current: number, metrics: Record<string, MetricReading>): PolicyInput {
  return { now: 0, group: 'g', current, ready: current, min: 0, max: 100, metrics, staleAfter: 30_000 }
}

const isDown = (r: Recommendation, current: number) => r.kind === 'scale' && r.to < current

/** Per-instance values for `n` instances, some of which may be missing. */
const readingArb = (n: number, allowMissing: boolean) => {
  const value = fc.double({ min: 0, max: 100, noNaN: true })
  return fc
    .array(allowMissing ? fc.option(value, { nil: undefined, freq: 4 }) : value, {
      minLength: n,
      maxLength: n,
    })
    .map((values): MetricReading => {
      const perInstance: Record<string, number> = {}
      const missing: string[] = []
      values.forEach((v, i) => {
        if (v === undefined) missing.push(`i${i}`)
        else perInstance[`i${i}`] = v
      })
      return { at: 0, perInstance, missing }
    })
}

describe('target policy properties', () => {
  const configArb = fc.record({
    per_instance: fc.double({ min: 0.5, max: 100, noNaN: true }),
    tolerance: fc.double({ min: 0, max: 0.9, noNaN: true }),
  })

  test('within 1 ± tolerance of the target it holds, per instance, from a total or from a group value', () => {
    fc.assert(
      fc.property(
        configArb,
        fc.integer({ min: 1, max: 20 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.constantFrom('perInstance' as const, 'total' as const, 'group' as const),
        ({ per_instance, tolerance }, current, position, form) => {
          const config = targetSchema.parse({ kind: 'target', metric: 'm', per_instance, tolerance })
          // A ratio strictly inside the band (the edges are float-sensitive; the unit test covers them).
          const margin = 1e-6
          const ratio = 1 - tolerance + margin + position * (2 * tolerance - 2 * margin)
          fc.pre(ratio > 0 && 2 * tolerance > 2 * margin)
          const value = per_instance * ratio
          const perInstance = Object.fromEntries(Array.from({ length: current }, (_, i) => [`i${i}`, value]))
          const reading: MetricReading =
            form === 'total'
              ? { at: 0, perInstance: {}, missing: [], total: value * current }
              : form === 'group'
                ? { at: 0, perInstance: {}, missing: [], group: value }
                : { at: 0, perInstance, missing: [] }
          const result = decideTarget(config, policyInput(current, { m: reading }))
          assert.equal(result.kind, 'hold', result.reason)
        },
      ),
      RUNS,
    )
  })

  test('on a group value above target × (1 + tolerance) never below the current size', () => {
    fc.assert(
      fc.property(
        configArb,
        fc.integer({ min: 0, max: 20 }),
        fc.double({ min: 1e-6, max: 50, noNaN: true }),
        ({ per_instance, tolerance }, current, excess) => {
          const config = targetSchema.parse({ kind: 'target', metric: 'm', per_instance, tolerance })
          const value = per_instance * (1 + tolerance) * (1 + excess)
          fc.pre(value > per_instance * (1 + tolerance))
          const reading: MetricReading = { at: 0, perInstance: {}, missing: [], group: value }
          const result = decideTarget(config, policyInput(current, { m: reading }))
          assert.notEqual(result.kind, 'unknown', result.reason)
          assert.ok(!isDown(result, current), result.reason)
          if (current > 0) assert.ok(result.kind === 'scale' && result.to > current, result.reason)
        },
      ),
      RUNS,
    )
  })

  test('never below the current size when an instance is missing', () => {
    fc.assert(
      fc.property(
        configArb,
        fc.integer({ min: 1, max: 12 }).chain((n) => fc.tuple(fc.constant(n), readingArb(n, true))),
        (config, [current, reading]) => {
          fc.pre(reading.missing.length > 0)
          const parsed = targetSchema.parse({ kind: 'target', metric: 'm', ...config })
          const result = decideTarget(parsed, policyInput(current, { m: reading }))
          assert.ok(!isDown(result, current), result.reason)
        },
      ),
      RUNS,
    )
  })

  test('the same inputs give the same answer', () => {
    fc.assert(
      fc.property(
        configArb,
        fc.integer({ min: 0, max: 12 }).chain((n) => readingArb(n, true)),
        (config, reading) => {
          const parsed = targetSchema.parse({ kind: 'target', metric: 'm', ...config })
          const current = reading.missing.length + Object.keys(reading.perInstance).length
          assert.deepEqual(
            decideTarget(parsed, policyInput(current, { m: reading })),
            decideTarget(parsed, policyInput(current, { m: structuredClone(reading) })),
          )
        },
      ),
      RUNS,
    )
  })
})

describe('threshold policy properties', () => {
  const policy = thresholdSchema.parse({
    kind: 'threshold',
    up: { conditions: ['load > 70', 'mem < 10'] },
    down: { conditions: ['load < 30', 'min(mem) > 20'] },
  })

  test('never below the current size when any instance is missing from any metric', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 8 })
          .chain((n) => fc.tuple(fc.constant(n), readingArb(n, true), readingArb(n, true))),
        ([current, load, mem]) => {
          fc.pre(load.missing.length + mem.missing.length > 0)
          const result = decideThreshold(policy, policyInput(current, { load, mem }))
          assert.ok(!isDown(result, current), result.reason)
        },
      ),
      RUNS,
    )
  })

  test('with complete data the answer is up, down or hold, by exactly one step', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 8 })
          .chain((n) => fc.tuple(fc.constant(n), readingArb(n, false), readingArb(n, false))),
        ([current, load, mem]) => {
          const result = decideThreshold(policy, policyInput(current, { load, mem }))
          assert.notEqual(result.kind, 'unknown', result.reason)
          if (result.kind === 'scale') assert.equal(Math.abs(result.to - current), 1)
        },
      ),
      RUNS,
    )
  })
})
