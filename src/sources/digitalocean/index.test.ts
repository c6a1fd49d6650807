/**
 * The `digitalocean` source against the emulator: seed 000's metrics over its 4-minute window,
 * per droplet, in documented units, with missing data reported and blocking scale-down.
 */
import assert from 'node:assert/strict'
import { after, before, beforeEach, describe, it } from 'node:test'
import { DigitalOceanEmulator } from '../../../test/emulators/digitalocean/index.js'
import type { Instance } from '../../core/types.js'
import { buildPolicy, policySchema } from '../../policies/index.js'
import { createDigitalOceanSource, digitaloceanSourceSchema } from './index.js'

const signal = new AbortController().signal

describe('digitalocean source', () => {
  const em = new DigitalOceanEmulator()
  let a: number
  let b: number
  let instances: Instance[]

  function source(extra: Record<string, unknown> = {}) {
    return createDigitalOceanSource(
      digitaloceanSourceSchema.parse({ kind: 'digitalocean', token: em.token, api_url: em.url, ...extra }),
    )
  }
  // A whole minute, so the 4-minute window holds 5 points of the emulator's one-a-minute series.
  const minute = () => Math.floor(Date.now() / 60_000) * 60_000
  const ctx = (now = minute()) => ({ group: 'web', now, instances, signal })

  before(async () => {
    await em.start()
    a = em.addDroplet({ name: 'web-base', tags: ['web'] }).id
    b = em.addDroplet({ name: 'web-001', tags: ['web'] }).id
    instances = [
      { id: String(a), state: 'ready', createdAt: 0 },
      { id: String(b), state: 'ready', createdAt: 0 },
      { id: '99', state: 'starting', createdAt: 0 }, // booting: neither a value nor missing
    ]
  })
  after(() => em.close())
  beforeEach(() => {
    em.clearFaults()
    for (const id of [a, b]) {
      for (const m of [
        'load_1',
        'memory_free',
        'memory_available',
        'cpu',
        'bandwidth_public_outbound',
        'bandwidth_private_outbound',
      ] as const) {
        em.setMetric(id, m, undefined)
      }
    }
  })

  it('averages each droplet over the window, in MB and Mbps (public + private)', async () => {
    em.setMetrics(a, {
      load_1: [0.1, 0.2, 0.3, 0.4, 0.5],
      memory_free: 235_450_000,
      bandwidth_public_outbound: 2,
      bandwidth_private_outbound: 0.5,
    })
    em.setMetrics(b, { load_1: 1, memory_free: 1_000_000_000 }) // no bandwidth series: 0
    const m = await source().collect(ctx())
    assert.ok(Math.abs(m.load_1!.perInstance[String(a)]! - 0.3) < 1e-9, 'mean of the window')
    assert.equal(m.load_1!.perInstance[String(b)], 1)
    assert.ok(Math.abs(m.memory_free!.perInstance[String(a)]! - 235.45) < 1e-9, 'MB = 10^6 bytes')
    assert.equal(m.bandwidth_out!.perInstance[String(a)], 2.5)
    assert.equal(m.bandwidth_out!.perInstance[String(b)], 0, 'no traffic yet counts 0 (seed 000)')
    assert.deepEqual(m.load_1!.missing, [])
    assert.deepEqual(em.violations, [])
  })

  it('puts a droplet without load or memory data in missing, which blocks scale-down', async () => {
    em.setMetrics(a, { load_1: 0.01, memory_free: 2e9 })
    em.setMetrics(b, { memory_free: 2e9 }) // no load_1 data
    const m = await source().collect(ctx())
    assert.deepEqual(m.load_1!.missing, [String(b)])
    assert.match(m.load_1!.errors![0]!, /load_1: no data in the window/)
    // Seed 000's default thresholds.
    const policy = buildPolicy(
      policySchema.parse({
        kind: 'threshold',
        up: { conditions: ['load_1 > 0.35', 'memory_free < 800', 'bandwidth_out > 2.5'] },
        down: { conditions: ['load_1 < 0.15', 'memory_free > 900', 'bandwidth_out < 1.5'] },
      }),
    )
    const input = {
      now: Date.now(),
      group: 'web',
      current: 2,
      ready: 2,
      min: 1,
      max: 5,
      metrics: m,
      staleAfter: 60_000,
    }
    const rec = policy(input)
    assert.notEqual(
      rec.kind === 'scale' ? rec.to : 2,
      1,
      `no scale-down on missing data: ${JSON.stringify(rec)}`,
    )
    em.setMetric(b, 'load_1', 0.01)
    const complete = await source().collect(ctx())
    const down = policy({ ...input, metrics: complete })
    assert.equal(down.kind === 'scale' ? down.to : undefined, 1, JSON.stringify(down))
  })

  it('reads cpu as percent busy from the per-mode CPU seconds', async () => {
    em.setMetric(a, 'cpu', 40)
    em.setMetric(b, 'cpu', [10, 10, 10, 30, 30])
    const m = await source({ metrics: ['cpu'] }).collect(ctx())
    assert.ok(Math.abs(m.cpu!.perInstance[String(a)]! - 40) < 1e-6)
    assert.ok(Math.abs(m.cpu!.perInstance[String(b)]! - 20) < 1e-6, String(m.cpu!.perInstance[String(b)]))
  })

  it('reads the API at most once per refresh, and again at once after a failure', async () => {
    em.setMetrics(a, { load_1: 1 })
    em.setMetrics(b, { load_1: 1 })
    const s = source({ metrics: ['load_1'] })
    const now = minute()
    await s.collect(ctx(now))
    const calls = em.requests.length
    await s.collect(ctx(now + 30_000))
    assert.equal(em.requests.length, calls, 'cached within refresh')
    await s.collect(ctx(now + 61_000))
    assert.equal(em.requests.length, calls + 2, 'one call per droplet after refresh')
  })

  it('reports an API that keeps failing as missing, never as a crash', async () => {
    em.inject({ path: '/v2/monitoring', times: 100, fault: { kind: 'status', status: 500 } })
    const s = createDigitalOceanSource(
      digitaloceanSourceSchema.parse({
        kind: 'digitalocean',
        token: em.token,
        api_url: em.url,
        metrics: ['load_1'],
      }),
      {
        client: (await import('../../targets/digitalocean/client.js')).createDigitalOceanClient({
          token: em.token,
          apiUrl: em.url,
          retries: 1,
          sleep: async () => {},
        }),
      },
    )
    const m = await s.collect(ctx())
    assert.deepEqual(m.load_1!.missing.sort(), [String(a), String(b)].sort())
    assert.match(m.load_1!.errors![0]!, /answered 500/)
  })

  it('names a bad metric and a window under a minute', () => {
    const r = digitaloceanSourceSchema.safeParse({ kind: 'digitalocean', metrics: ['load'], window: '30s' })
    assert.equal(r.success, false)
    assert.deepEqual(r.error!.issues.map((i) => i.path.join('.')).sort(), ['metrics.0', 'window'])
  })
})
