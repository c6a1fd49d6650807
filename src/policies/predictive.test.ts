import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
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

  test('with less than a day of history it is exactly target', () => {
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
  })
})
