import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import {
  emptyCounters,
  emptyHistogram,
  LATENCY_BUCKETS_MS,
  latencyBucket,
  mergeCounters,
  percentile,
  type RouterCounters,
  windowOf,
} from './stats.js'

function counters(at: number, patch: Partial<RouterCounters> = {}): RouterCounters {
  return { ...emptyCounters(0), at, ...patch }
}

describe('latency histogram', () => {
  test('every latency falls in the bucket whose bounds hold it', () => {
    fc.assert(
      fc.property(fc.double({ min: 0.07, max: 100_000, noNaN: true }), (ms) => {
        const i = latencyBucket(ms)
        assert.ok(LATENCY_BUCKETS_MS[i]! >= ms, `${ms} above bucket ${i}`)
        assert.ok(i === 0 || LATENCY_BUCKETS_MS[i - 1]! < ms, `${ms} below bucket ${i}`)
      }),
    )
  })

  test('a latency exactly on a bound belongs to the bucket it bounds', () => {
    for (let i = 0; i < LATENCY_BUCKETS_MS.length; i++) assert.equal(latencyBucket(LATENCY_BUCKETS_MS[i]!), i)
    assert.equal(latencyBucket(0), 0)
    assert.equal(latencyBucket(1e9), LATENCY_BUCKETS_MS.length)
  })

  test('percentiles are within a bucket of the truth', () => {
    const h = emptyHistogram()
    for (let ms = 1; ms <= 100; ms++) h[latencyBucket(ms)]!++
    const p50 = percentile(h, 0.5)!
    const p99 = percentile(h, 0.99)!
    assert.ok(p50 > 50 / 1.19 && p50 < 50 * 1.19, String(p50))
    assert.ok(p99 > 99 / 1.19 && p99 < 99 * 1.19, String(p99))
    assert.equal(percentile(emptyHistogram(), 0.5), undefined)
  })
})

describe('windows and merging', () => {
  test('concurrency over a window is the integral difference over its length', () => {
    const from = counters(1000, { busy: 500, queueBusy: 100, requests: 10 })
    const to = counters(3000, { busy: 4500, queueBusy: 100, requests: 30 })
    const w = windowOf(from, to)
    assert.equal(w.ms, 2000)
    assert.equal(w.concurrency, 2)
    assert.equal(w.queued, 0)
    assert.equal(w.requestRate, 10)
  })

  test('a backend that came back under the same id starts again from zero', () => {
    const from = counters(0, {
      backends: { a: { gen: 1, inFlight: 0, requests: 50, errors: 0, busy: 9000, draining: false } },
    })
    const to = counters(1000, {
      backends: { a: { gen: 2, inFlight: 1, requests: 2, errors: 0, busy: 500, draining: false } },
    })
    const w = windowOf(from, to)
    assert.equal(w.perBackend.a, 0.5)
    assert.equal(w.perBackendRate.a, 2)
  })

  test('merging carries each worker forward with its in-flight count', () => {
    const a = counters(1000, {
      inFlight: 2,
      busy: 100,
      requests: 3,
      backends: { x: { gen: 1, inFlight: 2, requests: 3, errors: 0, busy: 100, draining: false } },
    })
    const b = counters(1500, {
      inFlight: 1,
      busy: 50,
      requests: 4,
      backends: { x: { gen: 1, inFlight: 1, requests: 4, errors: 1, busy: 50, draining: false } },
    })
    const m = mergeCounters([a, b], 2000, 0)
    assert.equal(m.inFlight, 3)
    assert.equal(m.requests, 7)
    assert.equal(m.busy, 100 + 2 * 1000 + 50 + 1 * 500)
    assert.deepEqual(m.backends.x, {
      gen: 1,
      inFlight: 3,
      requests: 7,
      errors: 1,
      busy: 2650,
      draining: false,
    })
  })

  test('readings from another start of the router do not subtract', () => {
    const old = { ...counters(500, { requests: 100 }), since: -1 }
    const w = windowOf(old, counters(1000, { requests: 5 }))
    assert.equal(w.ms, 1000)
    assert.equal(w.requestRate, 5)
  })
})
