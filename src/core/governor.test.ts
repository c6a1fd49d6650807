import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { buildPolicy, policySchema } from '../policies/index.js'
import { ManualClock } from './clock.js'
import { TideError } from './errors.js'
import {
  clampToBounds,
  cooldownLeft,
  govern,
  newGovernorState,
  planManual,
  recordChange,
} from './governor.js'
import type { GovernorConfig, GovernorState, NamedRecommendation } from './types.js'

const NOW = 1_000_000
const base: GovernorConfig = { min: 1, max: 10, cooldown: 0, stabilizationDown: 0, stabilizationUp: 0 }

const scale = (policy: string, to: number, reason = `${policy} wants ${to}`): NamedRecommendation => ({
  kind: 'scale',
  to,
  reason,
  policy,
})
const hold = (policy: string, reason = `${policy} is content`): NamedRecommendation => ({
  kind: 'hold',
  reason,
  policy,
})
const abstain = (policy: string, reason = `${policy}'s up rule does not hold`): NamedRecommendation => ({
  kind: 'hold',
  reason,
  policy,
  abstain: true,
})
const unknown = (policy: string, reason = 'load has no data'): NamedRecommendation => ({
  kind: 'unknown',
  reason,
  policy,
})

interface Case {
  name: string
  current: number
  config?: Partial<GovernorConfig>
  recommendations: NamedRecommendation[]
  state?: GovernorState
  to: number
  reason: string | RegExp
}

const cases: Record<string, Case[]> = {
  '(a) no recommendations': [
    {
      name: 'holds at the current size',
      current: 3,
      recommendations: [],
      to: 3,
      reason: 'hold at 3: no policy made a recommendation',
    },
  ],
  '(c) abstaining policies': [
    {
      name: 'a policy with no opinion does not hold back another policy scaling down',
      current: 3,
      recommendations: [abstain('up-only'), scale('down-only', 2)],
      to: 2,
      reason: /^scale down 3 → 2/,
    },
    {
      name: 'when every policy abstains the group stays, with their reasons',
      current: 3,
      recommendations: [abstain('a', 'load 0.5 is not > 0.8'), abstain('b', 'load 0.5 is not < 0.2')],
      to: 3,
      reason: 'hold at 3: load 0.5 is not > 0.8; load 0.5 is not < 0.2',
    },
    {
      name: 'an abstention next to missing data still never scales down',
      current: 3,
      recommendations: [abstain('a'), unknown('b'), scale('c', 2)],
      to: 3,
      reason: /missing data never scales down/,
    },
  ],
  '(c) combine': [
    {
      name: 'the largest recommendation wins (HPA multi-metric max)',
      current: 3,
      recommendations: [scale('a', 4), scale('b', 6), hold('c')],
      to: 6,
      reason: 'scale up 3 → 6: b wants 6',
    },
    {
      name: 'a hold counts as the current size, so it outvotes a scale-down',
      current: 3,
      recommendations: [scale('a', 1), hold('b', 'b sees 8.2 per instance, within 10% of 8')],
      to: 3,
      reason: 'hold at 3: b sees 8.2 per instance, within 10% of 8',
    },
    {
      name: 'a scale-down wins when every policy agrees',
      current: 5,
      recommendations: [scale('a', 2), scale('b', 3)],
      to: 3,
      reason: 'scale down 5 → 3: b wants 3',
    },
    {
      name: 'with no data anywhere it holds and says why',
      current: 3,
      recommendations: [unknown('a', 'load is stale')],
      to: 3,
      reason: 'hold at 3: not enough data to decide: load is stale',
    },
    {
      name: 'an only policy with partial data is not said to have no data',
      current: 3,
      recommendations: [
        unknown(
          'a',
          'the down rule holds on the instances that reported (load 0.1 < 0.2 (mean of 2 of 3 instances; c missing)), but load is missing from c (2 of 3 instances reporting): missing data never scales down',
        ),
      ],
      to: 3,
      reason:
        'hold at 3: not enough data to decide: the down rule holds on the instances that reported (load 0.1 < 0.2 (mean of 2 of 3 instances; c missing)), but load is missing from c (2 of 3 instances reporting): missing data never scales down',
    },
    {
      name: 'several policies without a vote are each named',
      current: 3,
      recommendations: [unknown('a', 'load is stale'), unknown('b', 'cpu has no data')],
      to: 3,
      reason: 'hold at 3: not enough data to decide: a: load is stale; b: cpu has no data',
    },
  ],
  '(b) missing data': [
    {
      name: 'an unknown recommendation blocks a scale-down',
      current: 4,
      recommendations: [scale('a', 2), unknown('b', 'load is missing from web-3')],
      to: 4,
      reason: 'hold at 4: missing data never scales down (b: load is missing from web-3)',
    },
    {
      name: 'an unknown recommendation does not block a scale-up',
      current: 4,
      recommendations: [scale('a', 6), unknown('b')],
      to: 6,
      reason: 'scale up 4 → 6: a wants 6',
    },
  ],
  '(e) stabilization': [
    {
      name: 'scale-down waits while a higher recommendation is in the window',
      current: 4,
      config: { stabilizationDown: 300_000 },
      recommendations: [scale('a', 2)],
      state: { history: [{ at: NOW - 60_000, to: 5 }] },
      to: 4,
      reason:
        'hold at 4: waiting out the 5m scale-down stabilization window (the highest recommendation in the last 5m is 5)',
    },
    {
      name: 'scale-down goes to the highest recommendation in the window',
      current: 4,
      config: { stabilizationDown: 300_000 },
      recommendations: [scale('a', 2)],
      state: { history: [{ at: NOW - 60_000, to: 3 }] },
      to: 3,
      reason: 'scale down 4 → 3: a wants 2 (stabilized: the highest recommendation in the last 5m is 3)',
    },
    {
      name: 'a recommendation older than the window no longer counts',
      current: 4,
      config: { stabilizationDown: 300_000 },
      recommendations: [scale('a', 2)],
      state: { history: [{ at: NOW - 300_000, to: 9 }] },
      to: 2,
      reason: 'scale down 4 → 2: a wants 2',
    },
    {
      name: 'scale-up goes to the lowest recommendation in its window',
      current: 3,
      config: { stabilizationUp: 30_000 },
      recommendations: [scale('a', 8)],
      state: { history: [{ at: NOW - 10_000, to: 5 }] },
      to: 5,
      reason: 'scale up 3 → 5: a wants 8 (stabilized: the lowest recommendation in the last 30s is 5)',
    },
    {
      name: 'scale-up waits while a lower recommendation is in its window',
      current: 3,
      config: { stabilizationUp: 30_000 },
      recommendations: [scale('a', 8)],
      state: { history: [{ at: NOW - 10_000, to: 3 }] },
      to: 3,
      reason:
        'hold at 3: waiting out the 30s scale-up stabilization window (the lowest recommendation in the last 30s is 3)',
    },
  ],
  '(f) step limits': [
    {
      name: 'at most maxStepUp added',
      current: 3,
      config: { maxStepUp: 2 },
      recommendations: [scale('a', 9)],
      to: 5,
      reason: 'scale up 3 → 5: a wants 9 (at most 2 added per decision)',
    },
    {
      name: 'at most maxStepDown removed',
      current: 6,
      config: { maxStepDown: 1 },
      recommendations: [scale('a', 1)],
      to: 5,
      reason: 'scale down 6 → 5: a wants 1 (at most 1 removed per decision)',
    },
    {
      name: 'a step of 0 turns a direction off',
      current: 6,
      config: { maxStepDown: 0 },
      recommendations: [scale('a', 1)],
      to: 6,
      reason: 'hold at 6: at most 0 removed per decision (a wants 1)',
    },
  ],
  '(g) bounds': [
    {
      name: 'a recommendation above max is held to max',
      current: 3,
      recommendations: [scale('a', 15)],
      to: 10,
      reason: 'scale up 3 → 10: a wants 15 (held to max 10)',
    },
    {
      name: 'at max it holds and says so',
      current: 10,
      recommendations: [scale('a', 15)],
      to: 10,
      reason: 'hold at 10: already at max 10 (a wants 15)',
    },
    {
      name: 'at min it holds and says so',
      current: 1,
      recommendations: [scale('a', 0)],
      to: 1,
      reason: 'hold at 1: already at min 1 (a wants 0)',
    },
    {
      name: 'a group above max is brought back whatever the policies say',
      current: 12,
      recommendations: [hold('a')],
      to: 10,
      reason: 'scale down 12 → 10: 12 is above max 10',
    },
    {
      name: 'a group below min is brought up with no recommendation at all',
      current: 0,
      recommendations: [],
      to: 1,
      reason: 'scale up 0 → 1: 0 is below min 1',
    },
    {
      name: 'from below min, a policy may take it further, held to max',
      current: 0,
      recommendations: [scale('a', 15)],
      to: 10,
      reason: 'scale up 0 → 10: a wants 15 (held to max 10)',
    },
    {
      name: 'when min > max, max wins',
      current: 3,
      config: { min: 5, max: 4 },
      recommendations: [hold('a')],
      to: 4,
      reason: 'scale up 3 → 4: 3 is below min 5',
    },
  ],
  '(h) cooldown': [
    {
      name: 'no change within the cooldown, with the time left',
      current: 3,
      config: { cooldown: 10_000 },
      recommendations: [scale('a', 5)],
      state: { history: [], lastChange: { at: NOW - 3_000, direction: 'up' } },
      to: 3,
      reason: 'hold at 3: cooling down for 7s more after scaling up',
    },
    {
      name: 'the cooldown is over at exactly its length',
      current: 3,
      config: { cooldown: 10_000 },
      recommendations: [scale('a', 5)],
      state: { history: [], lastChange: { at: NOW - 10_000, direction: 'up' } },
      to: 5,
      reason: 'scale up 3 → 5: a wants 5',
    },
    {
      name: 'a per-direction cooldown overrides the shared one (a short one for up)',
      current: 3,
      config: { cooldown: 60_000, cooldownUp: 2_000 },
      recommendations: [scale('a', 5)],
      state: { history: [], lastChange: { at: NOW - 3_000, direction: 'down' } },
      to: 5,
      reason: 'scale up 3 → 5: a wants 5',
    },
    {
      name: 'a per-direction cooldown overrides the shared one (a long one for down)',
      current: 5,
      config: { cooldown: 10_000, cooldownDown: 300_000 },
      recommendations: [scale('a', 3)],
      state: { history: [], lastChange: { at: NOW - 60_000, direction: 'up' } },
      to: 5,
      reason: 'hold at 5: cooling down for 4m more after scaling up',
    },
    {
      name: 'bounds apply during the cooldown, and only the bounds',
      current: 0,
      config: { cooldown: 60_000 },
      recommendations: [scale('a', 4)],
      state: { history: [], lastChange: { at: NOW - 1_000, direction: 'down' } },
      to: 1,
      reason:
        'scale up 0 → 1: 0 is below min 1 (cooling down for 59s more after scaling down: only the bounds apply)',
    },
  ],
}

describe('govern', () => {
  for (const [step, list] of Object.entries(cases)) {
    describe(step, () => {
      for (const c of list) {
        test(c.name, () => {
          const { decision } = govern({
            now: NOW,
            current: c.current,
            config: { ...base, ...c.config },
            recommendations: c.recommendations,
            state: c.state ?? newGovernorState(),
          })
          assert.equal(decision.to, c.to, decision.reason)
          assert.equal(decision.kind, c.to === c.current ? 'hold' : 'scale')
          assert.equal(decision.from, c.current)
          if (typeof c.reason === 'string') assert.equal(decision.reason, c.reason)
          else assert.match(decision.reason, c.reason)
        })
      }
    })
  }

  test('(d) records the raw recommendation and forgets what no window can see', () => {
    const state: GovernorState = {
      history: [
        { at: NOW - 400_000, to: 9 },
        { at: NOW - 100_000, to: 7 },
      ],
      lastChange: { at: NOW - 500_000, direction: 'up' },
    }
    const config = { ...base, stabilizationDown: 300_000, stabilizationUp: 10_000 }
    const result = govern({ now: NOW, current: 4, config, recommendations: [scale('a', 2)], state })
    assert.deepEqual(result.state.history, [
      { at: NOW - 100_000, to: 7 },
      { at: NOW, to: 2 },
    ])
    assert.deepEqual(result.state.lastChange, state.lastChange, 'the governor never sets lastChange')
    assert.equal(state.history.length, 2, 'the input state is not changed')
  })

  test('(b) records the held size, not the blocked scale-down, for later windows', () => {
    const result = govern({
      now: NOW,
      current: 4,
      config: { ...base, stabilizationDown: 60_000 },
      recommendations: [scale('a', 1), unknown('b')],
      state: newGovernorState(),
    })
    assert.deepEqual(result.state.history, [{ at: NOW, to: 4 }])
  })

  test('(i) each step of the pipeline is a sentence in the decision', () => {
    const { decision } = govern({
      now: NOW,
      current: 3,
      config: { ...base, maxStepUp: 2 },
      recommendations: [scale('a', 12), hold('b'), unknown('c')],
      state: newGovernorState(),
    })
    assert.deepEqual(decision.steps, [
      'a recommends 12: a wants 12',
      'b recommends staying at 3: b is content',
      'c cannot tell: load has no data',
      'the largest recommendation wins: 12 from a',
      'at most 2 added per decision: 12 becomes 5',
    ])
    assert.equal(decision.recommendations.length, 3)
  })

  test('a recommendation that is not a number is no vote', () => {
    const { decision } = govern({
      now: NOW,
      current: 4,
      config: base,
      recommendations: [scale('a', Number.NaN), scale('b', 2)],
      state: newGovernorState(),
    })
    assert.equal(decision.to, 4)
    assert.match(decision.reason, /missing data never scales down/)
  })
})

describe('a day in the life (explicit clock, target policy, 5m scale-down window)', () => {
  const policy = buildPolicy(
    policySchema.parse({ kind: 'target', name: 'concurrency', metric: 'concurrency', per_instance: 8 }),
  )
  const config: GovernorConfig = {
    min: 1,
    max: 10,
    cooldown: 60_000,
    cooldownUp: 10_000,
    stabilizationDown: 300_000,
    stabilizationUp: 0,
  }
  const clock = new ManualClock(0)
  let state = newGovernorState()
  let current = 4
  const evaluate = (perInstance: number) => {
    const now = clock.now()
    const values = Object.fromEntries(
      Array.from({ length: current }, (_, i) => [`web-${i + 1}`, perInstance]),
    )
    const recommendation = policy({
      now,
      group: 'web',
      current,
      ready: current,
      min: config.min,
      max: config.max,
      metrics: { concurrency: { at: now, perInstance: values, missing: [] } },
      staleAfter: 30_000,
    })
    const result = govern({
      now,
      current,
      config,
      recommendations: [{ ...recommendation, policy: 'concurrency' }],
      state,
    })
    state = result.state
    return result.decision
  }
  const apply = (to: number) => {
    state = recordChange(state, clock.now(), to > current ? 'up' : 'down')
    current = to
  }

  test('at target load — holds at 4', () => {
    assert.equal(
      evaluate(8).reason,
      'hold at 4: concurrency 8 per instance is within 10% of target 8 (4 of 4 instances reporting)',
    )
  })

  test('load drops; five minutes pass at low load — must not scale down yet', () => {
    for (let t = 15_000; t < 300_000; t += 15_000) {
      clock.set(t)
      const decision = evaluate(1)
      assert.equal(decision.kind, 'hold', `at ${t / 1000}s: ${decision.reason}`)
      assert.match(decision.reason, /waiting out the 5m scale-down stabilization window/)
    }
  })

  test('the window no longer holds the high recommendation — scale down to 1', () => {
    clock.set(300_000)
    const decision = evaluate(1)
    assert.equal(
      decision.reason,
      'scale down 4 → 1: concurrency 1 per instance < target 8 −10% (4 of 4 instances reporting) → 1 instance',
    )
    apply(decision.to)
  })

  test('a burst 5s later — cooling down, the sentence says how long is left', () => {
    clock.advance(5_000)
    assert.equal(evaluate(40).reason, 'hold at 1: cooling down for 5s more after scaling down')
  })

  test('the up cooldown is over — scale up at once (no up stabilization)', () => {
    clock.advance(5_000)
    const decision = evaluate(40)
    assert.equal(decision.to, 5)
    apply(decision.to)
  })
})

describe('planManual', () => {
  const config: GovernorConfig = { ...base, cooldown: 60_000 }
  const cooling: GovernorState = { history: [], lastChange: { at: NOW - 20_000, direction: 'up' } }
  const idle = newGovernorState()

  const plans: Array<{
    name: string
    input: {
      current: number
      to?: number
      by?: number
      force?: boolean
      state?: GovernorState
      note?: string
    }
    expect: { ok: boolean; to?: number; forced?: boolean; reason: string; retryAfter?: number }
  }> = [
    {
      name: 'scales to the size asked for',
      input: { current: 3, to: 5 },
      expect: { ok: true, to: 5, forced: false, reason: 'scale up 3 → 5: manual request, asked for 5' },
    },
    {
      name: 'adds by a number, with a note',
      input: { current: 3, by: -2, note: 'tide down' },
      expect: {
        ok: true,
        to: 1,
        forced: false,
        reason: 'scale down 3 → 1: manual request (tide down), asked for -2',
      },
    },
    {
      name: 'bounds always apply',
      input: { current: 3, by: 20 },
      expect: {
        ok: true,
        to: 10,
        forced: false,
        reason: 'scale up 3 → 10: manual request, asked for +20; limited to max 10',
      },
    },
    {
      name: 'a request that changes nothing holds',
      input: { current: 1, to: 0 },
      expect: { ok: true, to: 1, forced: false, reason: 'hold at 1: asked for 0, but min 1 applies' },
    },
    {
      name: 'the cooldown refuses, with the time left and how to skip it',
      input: { current: 3, to: 5, state: cooling },
      expect: {
        ok: false,
        retryAfter: 40_000,
        reason:
          'refused to scale up 3 → 5: cooling down for 40s more after scaling up; force skips the cooldown',
      },
    },
    {
      name: 'force skips the cooldown and says so',
      input: { current: 3, to: 5, force: true, state: cooling },
      expect: {
        ok: true,
        to: 5,
        forced: true,
        reason: 'scale up 3 → 5: manual request, asked for 5; cooldown skipped (force)',
      },
    },
    {
      name: 'force with no cooldown running is not "forced"',
      input: { current: 3, to: 5, force: true },
      expect: { ok: true, to: 5, forced: false, reason: 'scale up 3 → 5: manual request, asked for 5' },
    },
  ]
  for (const p of plans) {
    test(p.name, () => {
      const plan = planManual({ now: NOW, config, state: idle, ...p.input })
      assert.equal(plan.ok, p.expect.ok, plan.reason)
      assert.equal(plan.reason, p.expect.reason)
      if (plan.ok) {
        assert.equal(plan.to, p.expect.to)
        assert.equal(plan.forced, p.expect.forced)
      } else {
        assert.equal(plan.retryAfter, p.expect.retryAfter)
      }
    })
  }

  const malformed: Array<[string, { to?: number; by?: number }]> = [
    ['neither to nor by', {}],
    ['both to and by', { to: 3, by: 1 }],
    ['a negative size', { to: -1 }],
    ['a fractional size', { to: 2.5 }],
    ['a fractional step', { by: 0.5 }],
  ]
  for (const [name, request] of malformed) {
    test(`refuses ${name} with E_BAD_REQUEST`, () => {
      assert.throws(
        () => planManual({ now: NOW, current: 3, config, state: idle, ...request }),
        (err: unknown) => err instanceof TideError && err.code === 'E_BAD_REQUEST' && err.status === 400,
      )
    })
  }
})

describe('helpers', () => {
  test('recordChange starts the cooldown and keeps the history', () => {
    const state = { history: [{ at: 1, to: 2 }] }
    assert.deepEqual(recordChange(state, 5, 'down'), {
      history: [{ at: 1, to: 2 }],
      lastChange: { at: 5, direction: 'down' },
    })
    assert.equal('lastChange' in state, false)
  })

  test('cooldownLeft uses the direction’s cooldown', () => {
    const config = { ...base, cooldown: 10_000, cooldownDown: 30_000 }
    const state = recordChange(newGovernorState(), 0, 'up')
    assert.equal(cooldownLeft(config, state, 4_000, 'up'), 6_000)
    assert.equal(cooldownLeft(config, state, 4_000, 'down'), 26_000)
    assert.equal(cooldownLeft(config, newGovernorState(), 4_000, 'down'), 0)
  })

  test('clampToBounds never goes below zero', () => {
    assert.equal(clampToBounds(-3, { min: 0, max: 5 }), 0)
    assert.equal(clampToBounds(9, { min: 0, max: 5 }), 5)
  })
})
