/**
 * Seed 002 (do-scaler) on a droplet cluster: the `scrape` source reads each droplet's do-agent
 * (node_exporter names) on the address the `digitalocean` target reports (the private IPv4)
 * and the port the scrape config gives, and seed 002's any/all policies decide. The emulator
 * serves a real HTTP do-agent endpoint per active droplet on its 127.x address.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { buildPolicy, policySchema } from '../../../src/policies/index.js'
import { createScrapeSource, scrapeSourceSchema } from '../../../src/sources/scrape/index.js'
import {
  createDigitalOceanTarget,
  digitaloceanTargetSchema,
} from '../../../src/targets/digitalocean/index.js'
import { DigitalOceanEmulator } from './index.js'

const signal = new AbortController().signal
const GiB = 1024 ** 3

describe('do-agent scraping on a droplet cluster (seed 002)', () => {
  const em = new DigitalOceanEmulator({ agents: true, bootDelay: 0 })
  let ids: number[] = []

  before(async () => {
    await em.start()
    ids = ['web-base', 'web-001', 'web-002'].map((name) => em.addDroplet({ name, tags: ['web'] }).id)
    em.addSnapshot({ name: 'web-snapshot' })
    for (let i = 0; i < 100 && ids.some((id) => !em.agentAddress(id)); i++)
      await new Promise((r) => setTimeout(r, 20))
  })
  after(() => em.close())

  const policies = [
    { kind: 'threshold', name: 'mem_avail', up: { conditions: ['mean(mem_avail) <= 2068099072'] } },
    {
      kind: 'threshold',
      name: 'loadavg',
      up: { match: 'all', conditions: ['load1 >= 2', 'load5 >= 2', 'load15 >= 2'] },
    },
    {
      kind: 'threshold',
      name: 'down',
      down: {
        match: 'all',
        conditions: [
          'min(mem_avail) >= 3102148608',
          'max(load1) <= 0.5',
          'max(load5) <= 0.5',
          'max(load15) <= 0.5',
        ],
      },
    },
  ].map((p) => buildPolicy(policySchema.parse(p)))

  async function evaluate() {
    const target = createDigitalOceanTarget(
      'web',
      digitaloceanTargetSchema.parse({
        kind: 'digitalocean',
        token: em.token,
        api_url: em.url,
        tag: 'web',
        base_droplet: 'web-base',
        snapshot: 'web-snapshot',
      }),
    )
    const status = await target.status(signal)
    const source = createScrapeSource(
      scrapeSourceSchema.parse({
        kind: 'scrape',
        port: em.agentPort,
        path: '/',
        timeout: '1s',
        metrics: {
          mem_avail: { samples: ['node_memory_MemFree_bytes', 'node_memory_Cached_bytes'], reducer: '+' },
          load1: { family: 'node_load1' },
          load5: { family: 'node_load5' },
          load15: { family: 'node_load15' },
        },
      }),
    )
    try {
      const metrics = await source.collect({
        group: 'web',
        now: Date.now(),
        instances: status.instances,
        signal,
      })
      const input = {
        now: Date.now(),
        group: 'web',
        current: status.desired,
        ready: status.ready,
        min: 1,
        max: 8,
        metrics,
        staleAfter: 60_000,
      }
      return { status, metrics, recs: policies.map((p) => p(input)) }
    } finally {
      await source.close?.()
    }
  }

  function setAll(values: { free: number; cached: number; load: number }) {
    for (const id of ids) {
      em.setMetrics(id, {
        memory_free: values.free,
        memory_cached: values.cached,
        load_1: values.load,
        load_5: values.load,
        load_15: values.load,
      })
    }
  }

  it('scrapes every droplet at its private address and port, with the node_exporter names', async () => {
    setAll({ free: 1 * GiB, cached: 0.5 * GiB, load: 0.2 })
    const { status, metrics } = await evaluate()
    for (const id of ids) {
      const instance = status.instances.find((i) => i.id === String(id))!
      assert.equal(`${instance.address}:${em.agentPort}`, em.agentAddress(id))
      assert.equal(metrics.mem_avail!.perInstance[String(id)], 1.5 * GiB, 'MemFree + Cached')
      assert.equal(metrics.load1!.perInstance[String(id)], 0.2)
    }
  })

  it('scales up when ANY up policy holds (mem_avail), down only when ALL down conditions hold', async () => {
    setAll({ free: 1 * GiB, cached: 0.5 * GiB, load: 0.2 }) // 1.5 GiB ≤ 1.93 GiB
    let { recs } = await evaluate()
    assert.deepEqual(recs[0], { ...recs[0], kind: 'scale', to: 4 }, JSON.stringify(recs[0]))
    setAll({ free: 3 * GiB, cached: 0.5 * GiB, load: 0.2 }) // plenty of memory, low load
    ;({ recs } = await evaluate())
    assert.equal(recs[0]!.kind === 'scale' ? recs[0]!.to : 3, 3, 'mem_avail no longer fires')
    assert.equal(recs[2]!.kind, 'scale')
    assert.equal(recs[2]!.kind === 'scale' && recs[2]!.to, 2)
    em.setMetric(ids[1]!, 'load_15', 0.9) // one droplet's load15 above 0.5: not ALL
    ;({ recs } = await evaluate())
    assert.notEqual(recs[2]!.kind === 'scale' ? recs[2]!.to : 3, 2)
    em.setMetric(ids[1]!, 'load_15', 0.2)
  })

  it('reports an unreachable droplet as missing, never fatal, and does not scale down on it', async () => {
    setAll({ free: 3 * GiB, cached: 0.5 * GiB, load: 0.2 })
    em.agentDown(ids[2]!)
    await new Promise((r) => setTimeout(r, 100))
    const { metrics, recs } = await evaluate()
    assert.deepEqual(metrics.load1!.missing, [String(ids[2])])
    assert.match(metrics.load1!.errors![0]!, /connection refused/)
    assert.equal(metrics.load1!.perInstance[String(ids[0])], 0.2, 'the others still read')
    assert.notEqual(
      recs[2]!.kind === 'scale' ? recs[2]!.to : 3,
      2,
      `no scale-down: ${JSON.stringify(recs[2])}`,
    )
    em.agentDown(ids[2]!, false)
  })
})
