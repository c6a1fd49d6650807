import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { parseConfigText } from '../config/index.js'
import type { ConfigError } from '../core/errors.js'
import type { PolicyInput, Recommendation } from '../core/types.js'
import { buildPolicy, policySchema } from './index.js'
import { forecast, type PredictiveConfig, predictiveSchema } from './predictive.js'
import { decideTarget } from './target.js'

const MIN = 60_000
const DAY = 86_400_000

/** A validated config; `extra` as written in YAML ("90s"). */
function config(extra: Record<string, unknown> = {}): PredictiveConfig {
  return predictiveSchema.parse({ kind: 'predictive', metric: 'request_rate', per_instance: 10, ...extra })
}

function policy(extra: Record<string, unknown> = {}) {
  return buildPolicy(
    policySchema.parse({ kind: 'predictive', metric: 'request_rate', per_instance: 10, ...extra }),
  )
}

/** History sampled every 10 s from `from` to `now` by `rate(t)`. */
function historyOf(rate: (t: number) => number, from: number, now: number) {
  const samples: Array<{ at: number; value: number }> = []
  for (let t = from; t <= now; t += 10_000) samples.push({ at: t, value: rate(t) })
  return (metric: string, since: number, until = now) =>
    metric === 'request_rate' ? samples.filter((s) => s.at >= since && s.at <= until) : []
}

function input(now: number, current: number, total: number, history?: PolicyInput['history']): PolicyInput {
  const perInstance: Record<string, number> = {}
  for (let i = 0; i < current; i++) perInstance[`i${i}`] = total / current
  return {
    now,
    group: 'web',
    current,
    ready: current,
    min: 1,
    max: 100,
    staleAfter: 30_000,
    metrics: { request_rate: { at: now, perInstance, missing: [], total } },
    history,
  }
}

/** Every day: 50 rps, rising to 150 at 12:00 (a step at noon), back to 50 at 13:00. */
const noonStep = (t: number) => {
  const h = (t % DAY) / 3_600_000
  return h >= 12 && h < 13 ? 150 : 50
}

const vote = (r: Recommendation, current: number) =>
  r.kind === 'scale' ? r.to : r.kind === 'hold' ? current : undefined

describe('predictive', () => {
  const now = 3 * DAY + 12 * 3_600_000 - 60_000 // one minute before noon on day 4

  test('scales up ahead of a daily rise it has seen on the previous days', () => {
    const decide = policy({ lead: '90s' })
    const r = decide(input(now, 6, 50, historyOf(noonStep, 0, now)))
    assert.equal(r.kind, 'scale')
    assert.ok(r.kind === 'scale' && r.to >= 10 && r.to <= 15, JSON.stringify(r))
    assert.match(r.reason, /expected in 1m30s .* seasonal growth .*scaling ahead of the load/)
  })

  test('with less than a day of history there is no forecast: on a steady load it is exactly target', () => {
    const decide = policy()
    const short = now - 3 * DAY + 6 * 3_600_000 // 6 h of history
    const i = input(now, 6, 50, historyOf(noonStep, now - short, now))
    const r = decide(i)
    const t = decideTarget({ kind: 'target', metric: 'request_rate', per_instance: 10, tolerance: 0.1 }, i)
    assert.equal(r.kind, t.kind)
    assert.equal(vote(r, 6), vote(t, 6))
    assert.match(r.reason, /no forecast: less than a day of request_rate history/)
    assert.match(decide(input(now, 6, 50)).reason, /no forecast: no history is kept/)
  })

  test('never scales in on a forecast alone', () => {
    // An hour after noon yesterday demand fell from 150 to 50; the load now is still 150.
    const at = 3 * DAY + 13 * 3_600_000 - 60_000
    const decide = policy()
    const r = decide(input(at, 15, 150, historyOf(noonStep, 0, at)))
    assert.ok((vote(r, 15) ?? 15) >= 15, JSON.stringify(r))
  })

  test('holds back a scale-in the load allows when the forecast needs the instances soon', () => {
    // The load dropped early (20 rps) a minute before noon; yesterday noon brought 150.
    const decide = policy()
    const r = decide(input(now, 12, 20, historyOf(noonStep, 0, now)))
    assert.ok(r.kind !== 'unknown' && (vote(r, 12) ?? 0) >= 2, JSON.stringify(r))
    assert.ok((vote(r, 12) ?? 0) > 2, 'more than the 2 instances the load alone needs')
  })

  test('forecast-only acts like target and says what it would have done', () => {
    const i = input(now, 6, 50, historyOf(noonStep, 0, now))
    const r = policy({ mode: 'forecast-only' })(i)
    const t = decideTarget({ kind: 'target', metric: 'request_rate', per_instance: 10, tolerance: 0.1 }, i)
    assert.equal(vote(r, 6), vote(t, 6))
    assert.match(r.reason, /forecast-only: would scale up 6 → \d+ ahead of the load/)
  })

  test('a rising trend is carried one lead ahead', () => {
    const ramp = (t: number) => 20 + (t - (now - DAY - 20 * MIN)) / 6_000 // +10 rps a minute
    const f = forecast(
      config({ lead: '2m' }),
      input(now, 5, ramp(now), historyOf(ramp, now - DAY - 20 * MIN, now)),
    )
    assert.ok(!('none' in f))
    assert.ok(f.value > ramp(now) + 15, `${f.value} vs now ${ramp(now)}`)
  })

  test('property: never below what target asks, never below current unless target goes lower', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 30 }),
        fc.double({ min: 0, max: 400, noNaN: true }),
        fc.double({ min: 0, max: 5, noNaN: true }),
        fc.integer({ min: 0, max: 3 * 24 * 60 }),
        (current, total, amplitude, minute) => {
          const t0 = 2 * DAY + minute * MIN
          const rate = (t: number) => 50 * (1 + amplitude * Math.max(0, Math.sin((2 * Math.PI * t) / DAY)))
          const i = input(t0, current, total, historyOf(rate, t0 - 2 * DAY, t0))
          const r = policy()(i)
          const t = decideTarget(
            { kind: 'target', metric: 'request_rate', per_instance: 10, tolerance: 0.1 },
            i,
          )
          const v = vote(r, current)
          const tv = vote(t, current)
          if (tv !== undefined) assert.ok(v !== undefined && v >= tv, `${v} < target ${tv}`)
          if (v !== undefined && v < current)
            assert.ok(tv !== undefined && tv <= v, 'a scale-in only follows target')
        },
      ),
      { numRuns: 60 },
    )
  })

  test('keeps room for bursts it has seen: the rate + 1 σ of the last 2 h, at capacity', () => {
    const at = 10 * 3_600_000 // 10 h of history: no forecast yet, so this is burst room alone
    // Every other minute 50, then 150: σ = 50. Now 50 rps: target wants 5 at 10 each.
    const bursty = (t: number) => (Math.floor(t / MIN) % 2 === 0 ? 50 : 150)
    const r = policy()(input(at, 5, 50, historyOf(bursty, 0, at)))
    // (50 + 50) / (10 ÷ 0.75 = 13.3 at capacity) → 8 instances.
    assert.equal(vote(r, 5), 8, JSON.stringify(r))
    assert.match(
      r.reason,
      /room for bursts: request_rate 50 \+ 1 × σ 50 \(last 2h\) at 13\.33 each → 8 instances/,
    )
    // A steady service gets no more than target.
    const flat = policy()(
      input(
        at,
        5,
        50,
        historyOf(() => 50, 0, at),
      ),
    )
    assert.equal(vote(flat, 5), 5)
    // deviations: 0 turns it off.
    assert.equal(vote(policy({ burst: { deviations: 0 } })(input(at, 5, 50, historyOf(bursty, 0, at))), 5), 5)
  })

  test('holds a small dip for the hold window, but lets a burst that is over go', () => {
    const at = 10 * 3_600_000
    const off = { burst: { deviations: 0 } }
    // 60 rps until 2 minutes ago, 40 now: target wants 4; the last 5 minutes needed 6.
    const dip = (t: number) => (t < at - 2 * MIN ? 60 : 40)
    const held = policy(off)(input(at, 6, 40, historyOf(dip, 0, at)))
    assert.equal(vote(held, 6), 6, JSON.stringify(held))
    assert.match(held.reason, /holding 6: the highest need of the last 5m is 6/)
    // Once the window has passed, it follows target.
    const later = at + 6 * MIN
    assert.equal(vote(policy(off)(input(later, 6, 40, historyOf(dip, 0, later))), 6), 4)
    // A burst of 200 rps 2 minutes ago: 20 instances; now 40 needs 4, and a hold keeps at most
    // half again (2) above that: 6, not 20.
    const burst = (t: number) => (t >= at - 3 * MIN && t < at - 2 * MIN ? 200 : 40)
    const r = policy(off)(input(at, 20, 40, historyOf(burst, 0, at)))
    assert.equal(vote(r, 20), 6, JSON.stringify(r))
    assert.match(r.reason, /at most 2 instances above the 4 needed now/)
    // hold.window 0s turns it off.
    assert.equal(
      vote(policy({ ...off, hold: { window: '0s' } })(input(at, 20, 40, historyOf(burst, 0, at))), 20),
      4,
    )
  })

  test('forecast-only adds neither burst room nor a hold', () => {
    const at = 10 * 3_600_000
    const bursty = (t: number) => (Math.floor(t / MIN) % 2 === 0 ? 50 : 150)
    const i = input(at, 9, 50, historyOf(bursty, 0, at))
    const t = decideTarget({ kind: 'target', metric: 'request_rate', per_instance: 10, tolerance: 0.1 }, i)
    assert.equal(vote(policy({ mode: 'forecast-only' })(i), 9), vote(t, 9))
  })

  test('property: the per-minute memo only saves work (one policy over time = a fresh one each time)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 300, noNaN: true }), { minLength: 30, maxLength: 30 }),
        fc.integer({ min: 1, max: 20 }),
        (levels, current) => {
          // Two days and a bit of history whose rate changes every 97 minutes.
          const rate = (t: number) => levels[Math.floor(t / (97 * MIN)) % levels.length]!
          const start = 2 * DAY + 3 * 3_600_000
          const remembering = policy()
          for (let t = start; t < start + 12 * MIN; t += 10_000) {
            const h = historyOf(rate, 0, t)
            const i = input(t, current, rate(t), h)
            const a = remembering(i)
            const b = policy()(i)
            assert.equal(vote(a, current), vote(b, current), `at ${t}`)
            assert.equal(a.reason, b.reason)
          }
        },
      ),
      { numRuns: 8 },
    )
  })

  test('property: explain: false gives the same answer with no sentence (what tide simulate relies on)', () => {
    const cases = fc.record({
      current: fc.integer({ min: 1, max: 30 }),
      total: fc.double({ min: 0, max: 400, noNaN: true }),
      // From half a day of history (no forecast yet) to three and a half days.
      at: fc.integer({ min: 12 * 60, max: 84 * 60 }).map((minute) => minute * MIN),
      amplitude: fc.double({ min: 0, max: 5, noNaN: true }),
      mode: fc.constantFrom('scale', 'forecast-only'),
    })
    fc.assert(
      fc.property(cases, ({ current, total, at, amplitude, mode }) => {
        const daily = (t: number) => 50 * (1 + amplitude * Math.max(0, Math.sin((2 * Math.PI * t) / DAY)))
        const i = input(at, current, total, historyOf(daily, 0, at))
        const told = policy({ mode })(i)
        const quiet = policy({ mode })({ ...i, explain: false })
        assert.deepEqual(quiet, { ...told, reason: '' })
        assert.notEqual(told.reason, '')
      }),
      { numRuns: 60 },
    )
  })

  test('bad config names the key', () => {
    const bad = policySchema.safeParse({
      kind: 'predictive',
      metric: 'request_rate',
      per_instance: 0,
      lead: 'soon',
    })
    assert.equal(bad.success, false)
    const paths = bad.error!.issues.map((i) => i.path.join('.'))
    assert.ok(paths.includes('per_instance') && paths.includes('lead'), paths.join(','))
    const burst = policySchema.safeParse({
      kind: 'predictive',
      metric: 'request_rate',
      per_instance: 10,
      burst: { deviations: -1, windw: '1h' },
      hold: { above: -0.5 },
    })
    assert.equal(burst.success, false)
    const issues = burst.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n')
    assert.match(issues, /burst\.deviations: must be ≥ 0/)
    assert.match(issues, /burst: .*windw/)
    assert.match(issues, /hold\.above: must be ≥ 0/)
  })

  test('a config refuses a store.history too short for the seasonality, naming group, policy and value', () => {
    const yaml = (store: string) => `
${store}
groups:
  web:
    max: 4
    target: { kind: process, command: node app.js }
    route: { listen: 127.0.0.1:0 }
    policies:
      - { kind: predictive, name: ahead, metric: request_rate, per_instance: 30 }
`
    const refused = (text: string) => {
      try {
        parseConfigText(text, 'test.yaml', {})
      } catch (err) {
        return (err as ConfigError).problems
      }
      return []
    }
    const byDefault = refused(yaml(''))
    assert.equal(byDefault.length, 1, JSON.stringify(byDefault))
    assert.equal(byDefault[0]!.path, 'groups.web.policies[0]')
    assert.match(
      byDefault[0]!.message,
      /policy ahead \(predictive\) of group web reads its request_rate history 14 days and 5m back .*store\.history is 1h \(the default\): set store\.history to 15d or more/,
    )
    assert.match(refused(yaml('store: { history: 3d }'))[0]!.message, /store\.history is "3d"/)
    assert.deepEqual(refused(yaml('store: { history: 15d }')), [])
  })
})
