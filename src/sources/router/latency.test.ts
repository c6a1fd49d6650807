/**
 * The router source's latency percentiles are group values, not sums (MetricReading.group).
 * Kept apart from index.test.ts, which another change was editing at the same time.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { Instance } from '../../core/types.js'
import type { Router, RouterWindow } from '../../router/index.js'
import { createRouterSource, routerSourceSchema } from './index.js'

const ready = (id: string): Instance => ({ id, state: 'ready', createdAt: 0 })

/** With `window` set, the source uses `stats().window` as it is. */
async function collect(window: RouterWindow, instances: Instance[]) {
  const router = { stats: () => ({ window, counters: {} }) } as unknown as Router
  const source = createRouterSource(routerSourceSchema.parse({ kind: 'router', window: '10s' }), {
    router: () => router,
  })
  return source.collect({ group: 'web', now: 5000, instances, signal: new AbortController().signal })
}

const window: RouterWindow = {
  ms: 10_000,
  concurrency: 30,
  queued: 3,
  perBackend: { 'web-1': 9, 'web-2': 9, 'web-3': 9 },
  requestRate: 120,
  perBackendRate: { 'web-1': 40, 'web-2': 40, 'web-3': 40 },
  latency: { p50: 40, p90: 120, p99: 250 },
}

describe('router source: latency', () => {
  test('percentiles are reported as `group`, never as `total` (they are not a sum of instances)', async () => {
    const metrics = await collect(window, [ready('web-1'), ready('web-2'), ready('web-3')])
    assert.deepEqual(metrics.latency_p50, { at: 5000, perInstance: {}, missing: [], group: 40 })
    assert.deepEqual(metrics.latency_p90, { at: 5000, perInstance: {}, missing: [], group: 120 })
    assert.deepEqual(metrics.latency_p99, { at: 5000, perInstance: {}, missing: [], group: 250 })
    // Concurrency and request rate stay sums: per instance, plus the total with the queue.
    assert.equal(metrics.concurrency?.total, 30)
    assert.equal(metrics.concurrency?.group, undefined)
  })

  test('no latency metrics when no request finished in the window', async () => {
    const { latency: _latency, ...quiet } = window
    const metrics = await collect(quiet, [ready('web-1')])
    assert.deepEqual(Object.keys(metrics).sort(), ['concurrency', 'request_rate'])
  })
})
