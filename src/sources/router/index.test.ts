import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { CollectContext, Instance } from '../../core/types.js'
import type { Router, RouterCounters, RouterStats } from '../../router/index.js'
import { LATENCY_BUCKETS_MS, windowOf } from '../../router/index.js'
import { emptyCounters, emptyHistogram } from '../../router/stats.js'
import { createRouterSource, routerSourceSchema } from './index.js'

function counters(at: number, patch: Partial<RouterCounters>): RouterCounters {
  return { ...emptyCounters(0), at, ...patch }
}

/** A router whose counters the test sets by hand. */
function fakeRouter(): { router: Router; set(c: RouterCounters): void } {
  let current = counters(0, {})
  const router = {
    address: '127.0.0.1:1',
    start: async () => {},
    setBackends: () => {},
    drain: async () => ({ inFlight: 0, timedOut: false }),
    onDemand: () => {},
    close: async () => {},
    stats: (): RouterStats => ({
      at: current.at,
      inFlight: current.inFlight,
      perBackend: {},
      queued: current.queued,
      requests: current.requests,
      errors: current.errors,
      window: windowOf(undefined, current),
      counters: current,
    }),
  } satisfies Router
  return { router, set: (c) => (current = c) }
}

const ready = (id: string): Instance => ({ id, state: 'ready', createdAt: 0 })
function ctx(now: number, instances: Instance[]): CollectContext {
  return { group: 'web', now, instances, signal: new AbortController().signal }
}

describe('router source', () => {
  test('without a router it reports nothing rather than failing', async () => {
    const source = createRouterSource(routerSourceSchema.parse({ kind: 'router' }), {
      router: () => undefined,
    })
    assert.deepEqual(await source.collect(ctx(0, [])), {})
  })

  test('concurrency is the average over the interval since the previous collect, per instance and in total', async () => {
    const fake = fakeRouter()
    const source = createRouterSource(routerSourceSchema.parse({ kind: 'router' }), {
      router: () => fake.router,
    })
    const b = (busy: number, requests: number) => ({
      gen: 1,
      inFlight: 0,
      requests,
      errors: 0,
      busy,
      draining: false,
    })
    fake.set(counters(1000, { busy: 1000, backends: { a: b(1000, 10), c: b(0, 0) } }))
    await source.collect(ctx(1000, [ready('a'), ready('c')]))
    // Over the next 2 s: a averaged 3 in flight, c 1, and 0.5 requests waited on average.
    const latency = emptyHistogram()
    latency[30] = 100
    fake.set(
      counters(3000, {
        busy: 9000,
        queueBusy: 1000,
        requests: 110,
        latency,
        backends: { a: b(7000, 90), c: b(2000, 20) },
      }),
    )
    const m = await source.collect(
      ctx(3000, [ready('a'), ready('c'), { id: 'd', state: 'starting', createdAt: 0 }]),
    )
    assert.deepEqual(m.concurrency?.perInstance, { a: 3, c: 1 })
    assert.equal(m.concurrency?.total, 4.5)
    assert.deepEqual(m.request_rate?.perInstance, { a: 40, c: 10 })
    assert.equal(m.request_rate?.total, 55)
    assert.ok(m.latency_p50?.group !== undefined && m.latency_p50.group <= LATENCY_BUCKETS_MS[30]!)
    assert.ok(m.latency_p99?.group !== undefined && m.latency_p99.total === undefined)
  })

  test('at zero instances the total is the demand: requests waiting for an instance', async () => {
    const fake = fakeRouter()
    const source = createRouterSource(routerSourceSchema.parse({ kind: 'router' }), {
      router: () => fake.router,
    })
    fake.set(counters(0, {}))
    await source.collect(ctx(0, []))
    fake.set(counters(1000, { queued: 3, queueBusy: 2000 }))
    const m = await source.collect(ctx(1000, []))
    assert.equal(m.concurrency?.total, 2)
    assert.deepEqual(m.concurrency?.perInstance, {})
  })
})
