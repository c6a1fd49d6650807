/**
 * Alert-group cooldowns: in memory for the drop-in, in the SQLite store for `tide run` (and the
 * drop-in with TIDE_STORE), where they must survive the process (Alertmanager re-sends the same
 * group at repeat_interval, and a restart in between must not scale twice).
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { Registry } from 'prom-client'
import { Store } from '../engine/store.js'
import { receiverMetrics } from './metrics.js'
import { type CooldownStore, memoryCooldowns } from './receiver.js'

function behavesAsACooldown(make: () => CooldownStore) {
  const cooldowns = make()
  const t0 = 1_000_000
  assert.equal(cooldowns.cooldownUntil('a', t0), undefined, 'nothing cools down at first')
  cooldowns.setCooldown('a', t0 + 60_000, t0)
  assert.equal(cooldowns.cooldownUntil('a', t0 + 1), t0 + 60_000)
  assert.equal(cooldowns.cooldownUntil('b', t0 + 1), undefined, 'keys are separate')
  // It ends exactly at `until`.
  assert.equal(cooldowns.cooldownUntil('a', t0 + 59_999), t0 + 60_000)
  assert.equal(cooldowns.cooldownUntil('a', t0 + 60_000), undefined)
  // A later one replaces it; `until` ≤ now ends it.
  cooldowns.setCooldown('a', t0 + 120_000, t0 + 1000)
  assert.equal(cooldowns.cooldownUntil('a', t0 + 61_000), t0 + 120_000)
  cooldowns.setCooldown('a', t0, t0 + 2000)
  assert.equal(cooldowns.cooldownUntil('a', t0 + 2001), undefined)
}

describe('alert-group cooldowns', () => {
  test('in memory: start, expire at `until`, replace, end', () => {
    behavesAsACooldown(memoryCooldowns)
  })

  test('in the store: the same rules', () => {
    const store = Store.open(':memory:')
    try {
      behavesAsACooldown(() => store)
    } finally {
      store.close()
    }
  })

  test('in a store file: a cooldown survives closing and reopening (a restart); an ended one is gone', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tide-cooldown-'))
    try {
      const path = join(dir, 'tide.db')
      const t0 = Date.UTC(2026, 0, 1)
      let store = Store.open(path)
      store.setCooldown('{}:{service="web"}|2026-01-01T00:00:00Z|service|web||up', t0 + 180_000, t0)
      store.setCooldown('old', t0 + 1000, t0)
      store.close()
      store = Store.open(path)
      assert.equal(
        store.cooldownUntil('{}:{service="web"}|2026-01-01T00:00:00Z|service|web||up', t0 + 5000),
        t0 + 180_000,
      )
      assert.equal(store.cooldownUntil('old', t0 + 5000), undefined)
      store.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('receiver metrics', () => {
  test('operations, durations, the node wait and notifications are exposed in Prometheus text', async () => {
    const registry = new Registry()
    let waiting = true
    const m = receiverMetrics(registry, () => waiting)
    m.operation('scale_service', 'applied', 250)
    m.operation('scale_service', 'ignored')
    m.operation('scale_nodes', 'failed', 1500)
    m.notification('alertmanager', 'ok')
    // A second receiver on the same registry shares the metrics instead of failing to register.
    receiverMetrics(registry, () => waiting).operation('scale_service', 'applied', 10)
    const text = await registry.metrics()
    assert.match(text, /tide_receiver_operations_total\{operation="scale_service",result="applied"\} 2/)
    assert.match(text, /tide_receiver_operations_total\{operation="scale_service",result="ignored"\} 1/)
    assert.match(text, /tide_receiver_operations_total\{operation="scale_nodes",result="failed"\} 1/)
    assert.match(
      text,
      /tide_receiver_operation_duration_seconds_sum\{operation="scale_nodes",result="failed"\} 1.5/,
    )
    assert.match(text, /tide_receiver_node_wait_active 1/)
    assert.match(text, /tide_notifications_total\{group="receiver",notifier="alertmanager",result="ok"\} 1/)
    waiting = false
    assert.match(await registry.metrics(), /tide_receiver_node_wait_active 0/)
  })
})
