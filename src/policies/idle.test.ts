import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import type { Metrics, PolicyInput } from '../core/types.js'
import { decideIdle, type HistoryPoint, idleMetrics, idleSchema } from './idle.js'
import { policySchema } from './index.js'

const STALE = 6_000
const S = 1000

/** A group evaluated every 2 s from `since` to `now`; `values(metric, at)` gives each recorded value. */
function recorded(since: number, now: number, values: (metric: string, at: number) => number) {
  return (metric: string, from: number): HistoryPoint[] => {
    const out: HistoryPoint[] = []
    for (let at = since; at <= now; at += 2 * S) if (at >= from) out.push({ at, value: values(metric, at) })
    return out
  }
}

function routerMetrics(rate: number, concurrency: number, at: number): Metrics {
  return {
    request_rate: { at, perInstance: {}, missing: [], total: rate },
    concurrency: { at, perInstance: {}, missing: [], total: concurrency },
  }
}

function input(
  current: number,
  now: number,
  metrics: Metrics,
  history?: (metric: string, since: number) => HistoryPoint[],
): PolicyInput & { history?: (metric: string, since: number) => HistoryPoint[] } {
  return { now, group: 'hello', current, ready: current, min: 0, max: 3, metrics, staleAfter: STALE, history }
}

const after10s = idleSchema.parse({ kind: 'idle', after: '10s' })

describe('idle policy: after (no request for a while)', () => {
  const now = 100 * S
  test('quiet for longer than `after`: scale to zero', () => {
    const history = recorded(0, now, (m) => (m === 'desired' ? 1 : 0))
    const r = decideIdle(after10s, input(1, now, routerMetrics(0, 0, now), history))
    assert.deepEqual(r, { kind: 'scale', to: 0, reason: 'no request for 10s: scale to zero' })
  })

  test('a request 4 s ago keeps one instance (a floor, not a hold: others may still scale down to one)', () => {
    const history = recorded(0, now, (m, at) =>
      m === 'request_rate' && at === now - 4 * S ? 2 : m === 'desired' ? 3 : 0,
    )
    const r = decideIdle(after10s, input(3, now, routerMetrics(0, 0, now), history))
    assert.equal(r.kind, 'scale')
    assert.equal(r.kind === 'scale' && r.to, 1)
    assert.match(r.reason, /request_rate was 2 > 0 4s ago \(needs 10s at or under it\)/)
  })

  test('a request in flight now (concurrency) keeps it up', () => {
    const history = recorded(0, now, (m) => (m === 'desired' ? 1 : 0))
    const r = decideIdle(after10s, input(1, now, routerMetrics(0, 0.5, now), history))
    assert.equal(r.kind === 'scale' && r.to, 1)
    assert.match(r.reason, /concurrency is 0.5 > 0/)
  })

  test('watched for less than the window: not idle yet', () => {
    const history = recorded(now - 6 * S, now, (m) => (m === 'desired' ? 1 : 0))
    const r = decideIdle(after10s, input(1, now, routerMetrics(0, 0, now), history))
    assert.equal(r.kind === 'scale' && r.to, 1)
    assert.match(r.reason, /request_rate has only 6s of readings, needs 10s/)
  })

  test('a missing reading keeps the group up (seed 004: missing value means keep up)', () => {
    const history = recorded(0, now, (m) => (m === 'desired' ? 1 : 0))
    const r = decideIdle(after10s, input(1, now, {}, history))
    assert.equal(r.kind === 'scale' && r.to, 1)
    assert.match(r.reason, /request_rate has no current reading/)
  })

  test('without history the window cannot be checked: stay up', () => {
    const r = decideIdle(after10s, input(1, now, routerMetrics(0, 0, now)))
    assert.equal(r.kind === 'scale' && r.to, 1)
    assert.match(r.reason, /no history to check request_rate over 10s/)
  })

  test('woken 6 s ago: not considered for zero until its window has passed since it was at zero', () => {
    const history = recorded(0, now, (m, at) => (m === 'desired' ? (at < now - 6 * S ? 0 : 1) : 0))
    const r = decideIdle(after10s, input(1, now, routerMetrics(0, 0, now), history))
    assert.equal(r.kind === 'scale' && r.to, 1)
    assert.match(
      r.reason,
      /the group was at zero 8s ago: not considered for zero again until 10s have passed/,
    )
    // Twelve seconds later the window has passed: to zero.
    const later = now + 12 * S
    const history2 = recorded(0, later, (m, at) => (m === 'desired' ? (at < now - 6 * S ? 0 : 1) : 0))
    assert.equal(decideIdle(after10s, input(1, later, routerMetrics(0, 0, later), history2)).kind, 'scale')
    const r2 = decideIdle(after10s, input(1, later, routerMetrics(0, 0, later), history2))
    assert.equal(r2.kind === 'scale' && r2.to, 0)
  })

  test('at zero: held requests (router concurrency) wake it; nothing keeps it at zero', () => {
    const r = decideIdle(after10s, input(0, now, routerMetrics(0, 3, now)))
    assert.deepEqual(r, {
      kind: 'scale',
      to: 1,
      reason: 'concurrency 3 > 0 while the group is at zero: waking it',
    })
    assert.deepEqual(decideIdle(after10s, input(0, now, routerMetrics(0, 0, now))), {
      kind: 'hold',
      reason: 'no demand while the group is at zero',
    })
  })
})

describe('idle policy: metrics with windows (seed 004)', () => {
  const config = idleSchema.parse({
    kind: 'idle',
    metrics: [
      { metric: 'events', window: '1m', threshold: 0 },
      { metric: 'queue', window: '20s', threshold: 2 },
    ],
  })
  const now = 300 * S
  const group = (events: number, queue: number): Metrics => ({
    events: { at: now, perInstance: {}, missing: [], group: events },
    queue: { at: now, perInstance: {}, missing: [], group: queue },
  })

  test('every metric at or under its threshold for its window: zero', () => {
    const history = recorded(0, now, (m) => (m === 'queue' ? 2 : m === 'desired' ? 1 : 0))
    const r = decideIdle(config, input(1, now, group(0, 2), history))
    assert.deepEqual(r, {
      kind: 'scale',
      to: 0,
      reason: 'idle: events ≤ 0 for 1m, queue ≤ 2 for 20s: scale to zero',
    })
  })

  test('ALL must be idle: one metric over its threshold inside its window keeps it up', () => {
    const history = recorded(0, now, (m, at) =>
      m === 'events' && at === now - 50 * S ? 1 : m === 'desired' ? 1 : 0,
    )
    const r = decideIdle(config, input(1, now, group(0, 0), history))
    assert.equal(r.kind === 'scale' && r.to, 1)
    assert.match(r.reason, /events was 1 > 0 50s ago/)
  })

  test('a value over the threshold outside the window does not count', () => {
    const history = recorded(0, now, (m, at) =>
      m === 'queue' && at === now - 30 * S ? 9 : m === 'desired' ? 1 : 0,
    )
    const r = decideIdle(config, input(1, now, group(0, 0), history))
    assert.equal(r.kind === 'scale' && r.to, 0)
  })

  test("thresholds are in the metric's own units (seed 004 compared milli-units: 0.008 req/s was 8 > 0)", () => {
    const rate = (threshold: number) =>
      idleSchema.parse({ kind: 'idle', metrics: [{ metric: 'rate', window: '1m', threshold }] })
    const history = recorded(0, now, (m) => (m === 'desired' ? 1 : 0.008))
    const metrics: Metrics = { rate: { at: now, perInstance: {}, missing: [], group: 0.008 } }
    // 0.008 requests per second is under a threshold of 0.01 requests per second: idle.
    const idle = decideIdle(rate(0.01), input(1, now, metrics, history))
    assert.equal(idle.kind, 'scale')
    assert.equal((idle as { to: number }).to, 0)
    // Threshold 0 means no activity at all: any rate above 0, however small, keeps the group up.
    const kept = decideIdle(rate(0), input(1, now, metrics, history))
    assert.equal((kept as { to: number }).to, 1)
    assert.match(kept.reason, /rate is 0\.008 > 0/)
  })

  test('at zero, a listed metric above its threshold wakes the group (a source that reports at zero)', () => {
    const r = decideIdle(config, input(0, now, group(0, 5)))
    assert.deepEqual(r, { kind: 'scale', to: 1, reason: 'queue 5 > 2 while the group is at zero: waking it' })
  })
})

describe('idle policy: config', () => {
  test('metrics it reads', () => {
    assert.deepEqual(idleMetrics(after10s), ['request_rate', 'concurrency'])
  })

  const bad: Array<[string, unknown, RegExp]> = [
    ['neither after nor metrics', { kind: 'idle' }, /needs `after`/],
    ['an empty metrics list', { kind: 'idle', metrics: [] }, /needs at least one metric/],
    ['a zero window', { kind: 'idle', metrics: [{ metric: 'x', window: '0s' }] }, /must be longer than 0/],
    ['a bad duration', { kind: 'idle', after: 'soon' }, /must be a duration/],
    [
      'a negative threshold',
      { kind: 'idle', metrics: [{ metric: 'x', window: '1m', threshold: -1 }] },
      /must be ≥ 0/,
    ],
    ['an unknown key', { kind: 'idle', after: '10s', afterr: '5s' }, /afterr/],
  ]
  for (const [name, raw, message] of bad) {
    test(`refuses ${name}`, () => {
      const result = policySchema.safeParse(raw)
      assert.equal(result.success, false)
      assert.match(JSON.stringify(result.error?.issues), message)
    })
  }

  test('property: the vote is always 0 or 1 (or a hold at zero), and the same input gives the same answer', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 5 }),
        fc.array(fc.nat({ max: 3 }), { minLength: 0, maxLength: 40 }),
        fc.nat({ max: 2 }),
        (current, rates, conc) => {
          const now = 100 * S
          const history = (metric: string, since: number) =>
            rates
              .map((v, i) => ({ at: now - i * 2 * S, value: metric === 'desired' ? current : v }))
              .filter((p) => p.at >= since)
              .reverse()
          const a = decideIdle(
            after10s,
            input(current, now, routerMetrics(rates[0] ?? 0, conc, now), history),
          )
          const b = decideIdle(
            after10s,
            input(current, now, routerMetrics(rates[0] ?? 0, conc, now), history),
          )
          assert.deepEqual(a, b)
          if (a.kind === 'scale') assert.ok(a.to === 0 || a.to === 1)
          else assert.equal(current, 0)
          // Demand now never votes for zero.
          if (conc > 0) assert.ok(a.kind === 'scale' && a.to === 1)
        },
      ),
    )
  })
})
