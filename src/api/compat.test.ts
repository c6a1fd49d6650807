import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { DecisionRecord } from '../engine/controller.js'
import { RECOMMENDATION, recommend, statusResponse, UNKNOWN_OP } from './compat.js'
import { FakeController, fakeGroup, fakeInstance } from './fake-controller.js'
import { type ApiServer, createApiServer } from './index.js'

const NOW = 1_700_000_000_000

function dropletGroup() {
  return fakeGroup('droplets', {
    min: 1,
    max: 5,
    desired: 2,
    ready: 2,
    target: 'digitalocean',
    instances: [fakeInstance('scale-me', { protected: true }), fakeInstance('auto001')],
    metrics: {
      load_1: { perInstance: { 'scale-me': 0, auto001: 0.5 }, missing: [], at: NOW },
      memory_free: { perInstance: { 'scale-me': 235.454464, auto001: 300 }, missing: [], at: NOW },
      bandwidth_out: { perInstance: { 'scale-me': 0.002357839671014176 }, missing: ['auto001'], at: NOW },
    },
  })
}

function decision(fields: Partial<DecisionRecord>): DecisionRecord {
  return {
    id: 1,
    group: 'droplets',
    at: NOW,
    kind: 'hold',
    from: 2,
    to: 2,
    reason: 'hold',
    steps: [],
    recommendations: [],
    trigger: 'auto',
    outcome: 'held',
    ...fields,
  }
}

describe('seed 000 status shape', () => {
  test('keys in the seed order, one entry per instance, the metric mapping', () => {
    const status = statusResponse(dropletGroup(), undefined, NOW, false)
    assert.deepEqual(Object.keys(status), [
      'dropletMetrics',
      'clusterMetrics',
      'scaleUp',
      'scaleDown',
      'recommendation',
      'reason',
    ])
    assert.deepEqual(status.dropletMetrics, [
      {
        ID: 'scale-me',
        valid: true,
        load: 0,
        freeMemory: 235.454464,
        outboundBandwidth: 0.002357839671014176,
      },
      // Missing bandwidth counts as 0 and keeps the droplet valid, as in the seed (seeds.md §1.5).
      { ID: 'auto001', valid: true, load: 0.5, freeMemory: 300, outboundBandwidth: 0 },
    ])
    assert.deepEqual(Object.keys(status.clusterMetrics), [
      'ID',
      'valid',
      'load',
      'freeMemory',
      'outboundBandwidth',
    ])
    assert.equal(status.clusterMetrics.ID, '')
    assert.equal(status.clusterMetrics.load, 0.25)
    assert.equal(status.clusterMetrics.freeMemory, (235.454464 + 300) / 2)
    // Averaged over the instances that reported (seeds.md §1.12 item 11).
    assert.equal(status.clusterMetrics.outboundBandwidth, 0.002357839671014176)
    assert.equal(status.clusterMetrics.valid, true)
  })

  test('a missing load or memory makes the droplet and the cluster invalid, with 0', () => {
    const group = dropletGroup()
    delete group.metrics.memory_free!.perInstance.auto001
    const status = statusResponse(group, undefined, NOW, false)
    assert.deepEqual(status.dropletMetrics[1], {
      ID: 'auto001',
      valid: false,
      load: 0.5,
      freeMemory: 0,
      outboundBandwidth: 0,
    })
    assert.equal(status.clusterMetrics.valid, false)
  })

  test('load falls back to `load`, then `cpu`', () => {
    const group = fakeGroup('g', {
      instances: [fakeInstance('a')],
      metrics: { cpu: { perInstance: { a: 0.7 }, missing: [], at: NOW } },
    })
    assert.equal(statusResponse(group, undefined, NOW, false).dropletMetrics[0]!.load, 0.7)
  })

  test('cooling down makes the cluster invalid, as the seed does', () => {
    const group = dropletGroup()
    group.cooldownUntil = NOW + 30_000
    const status = statusResponse(group, decision({ kind: 'scale', to: 3 }), NOW, false)
    assert.equal(status.clusterMetrics.valid, false)
    assert.equal(status.recommendation, RECOMMENDATION.invalid)
    assert.equal(status.scaleUp, false)
    assert.match(status.reason, /cooling down for 30s more/)
  })
})

describe('seed 000 recommendation strings', () => {
  const group = dropletGroup()
  const want = (to: number) => ({ kind: 'scale' as const, to, reason: 'r', policy: 'threshold' })
  const cases: Array<[string, DecisionRecord | undefined, Partial<ReturnType<typeof recommend>>]> = [
    ['scale up', decision({ kind: 'scale', to: 3 }), { recommendation: 'scale up', scaleUp: true }],
    ['scale down', decision({ kind: 'scale', to: 1 }), { recommendation: 'scale down', scaleDown: true }],
    [
      'no change',
      decision({ recommendations: [{ kind: 'hold', reason: 'ok', policy: 't' }] }),
      { recommendation: 'no change' },
    ],
    [
      'at max',
      decision({ from: 5, to: 5, recommendations: [want(6)] }),
      { recommendation: "no change (can't scale up, reached max droplet count)" },
    ],
    [
      'only one droplet',
      decision({ from: 1, to: 1, recommendations: [want(0)] }),
      { recommendation: "no change (can't scale down, only 1 droplet in cluster)" },
    ],
    [
      'no data',
      decision({ recommendations: [{ kind: 'unknown', reason: 'no data', policy: 't' }] }),
      {
        recommendation:
          'Recommendation: no change (cluster metrics are not valid, cluster may be in the process of scaling)',
      },
    ],
    ['never evaluated', undefined, { recommendation: RECOMMENDATION.invalid }],
  ]
  for (const [name, d, expected] of cases) {
    test(name, () => {
      const got = recommend(group, d, NOW, false)
      for (const [key, value] of Object.entries(expected))
        assert.equal(got[key as keyof typeof got], value, key)
    })
  }
})

describe('GET|POST /scale (seed-compatible route)', () => {
  let controller: FakeController
  let server: ApiServer
  let base: string
  before(async () => {
    controller = new FakeController([dropletGroup()])
    server = createApiServer(controller, { listen: '127.0.0.1:0' })
    base = await server.start()
  })
  after(() => server.close())

  test('op=status is pretty-printed with one space, ending in a newline', async () => {
    controller.record('droplets', {
      kind: 'scale',
      from: 2,
      to: 3,
      reason: 'scale up 2 → 3: mean load 0.9 > 0.35',
    })
    const res = await fetch(`${base}/scale?op=status`)
    assert.equal(res.status, 200)
    const text = await res.text()
    assert.ok(text.startsWith('{\n "dropletMetrics": [\n  {\n   "ID": "scale-me",\n   "valid": true,'), text)
    assert.ok(text.endsWith('}\n'))
    const body = JSON.parse(text)
    assert.equal(body.recommendation, 'scale up')
    assert.equal(body.scaleUp, true)
    assert.equal(body.reason, 'scale up 2 → 3: mean load 0.9 > 0.35')
  })

  test('op=info has the seed keys', async () => {
    const body = (await (await fetch(`${base}/scale?op=info&group=droplets`)).json()) as {
      config: Record<string, unknown>
      info: Record<string, unknown>
    }
    assert.deepEqual(Object.keys(body), ['config', 'info'])
    assert.deepEqual(Object.keys(body.config), [
      'tag',
      'baseDropletName',
      'snapshotName',
      'cloneNamePrefix',
      'LoadBalancerName',
      'maxDropletsInCluster',
      'scalingInterval',
      'scaleUpWhen',
      'scaleDownWhen',
    ])
    assert.deepEqual(Object.keys(body.info), [
      'dropletCount',
      'droplets',
      'baseDroplet',
      'region',
      'dropletSize',
      'snapshotImageID',
      'loadBalancerID',
    ])
    assert.equal(body.config.baseDropletName, 'scale-me')
    assert.equal(body.config.maxDropletsInCluster, 5)
    assert.equal(body.info.dropletCount, 2)
  })

  test('op=up scales by one with force and wait, answering {success, msg}', async () => {
    const res = await fetch(`${base}/scale?op=up`, { method: 'POST' })
    assert.equal(res.status, 200)
    assert.equal(
      await res.text(),
      '{\n "success": true,\n "msg": "droplet created and added to load balancer"\n}\n',
    )
    const call = controller.calls.at(-1)!
    assert.deepEqual([call.request?.by, call.request?.force, call.request?.wait], [1, true, true])
  })

  test('op=down scales by minus one', async () => {
    const res = await fetch(`${base}/scale?op=down&group=droplets`)
    assert.deepEqual(await res.json(), { success: true, msg: 'clone droplet deleted' })
    assert.equal(controller.calls.at(-1)?.request?.by, -1)
  })

  test('op=down at one droplet is the seed error, with a real status', async () => {
    controller.getGroup('droplets').desired = 1
    const res = await fetch(`${base}/scale?op=down`)
    assert.equal(res.status, 409)
    assert.equal(await res.text(), '{"error":"cluster has no autoscaled droplets","code":"E_AT_BOUNDS"}\n')
    controller.getGroup('droplets').desired = 2
  })

  test('op=up at max is the seed error', async () => {
    controller.getGroup('droplets').desired = 5
    const res = await fetch(`${base}/scale?op=up`)
    assert.equal(res.status, 409)
    assert.deepEqual(await res.json(), { error: 'cluster is at maximum size', code: 'E_AT_BOUNDS' })
    controller.getGroup('droplets').desired = 2
  })

  test('op=auto answers {status, scaleUp, scaleDown}; the one not attempted is empty', async () => {
    controller.nextAuto.set('droplets', {
      kind: 'scale',
      from: 2,
      to: 3,
      outcome: 'pending',
      reason: 'scale up 2 → 3: mean load 0.9 > 0.35',
    })
    const res = await fetch(`${base}/scale?op=auto`, { method: 'POST' })
    assert.equal(res.status, 200)
    const body = (await res.json()) as Record<
      string,
      { success?: boolean; msg?: string; recommendation?: string }
    >
    assert.deepEqual(Object.keys(body), ['status', 'scaleUp', 'scaleDown'])
    assert.equal(body.status!.recommendation, 'scale up')
    assert.deepEqual(body.scaleUp, { success: true, msg: 'scale up 2 → 3: mean load 0.9 > 0.35 (under way)' })
    assert.deepEqual(body.scaleDown, { success: false, msg: '' })
  })

  test('op=auto whose scaling failed is 502 with success false', async () => {
    controller.nextAuto.set('droplets', {
      kind: 'scale',
      from: 2,
      to: 1,
      outcome: 'failed',
      error: "couldn't delete last droplet: 404",
    })
    const res = await fetch(`${base}/scale?op=auto`)
    assert.equal(res.status, 502)
    const body = (await res.json()) as Record<string, unknown>
    assert.deepEqual(body.scaleDown, { success: false, msg: "couldn't delete last droplet: 404" })
  })

  test('an unknown or missing op is 400 with the seed message', async () => {
    for (const query of ['', '?op=explode']) {
      const res = await fetch(`${base}/scale${query}`)
      assert.equal(res.status, 400)
      assert.deepEqual(await res.json(), { error: UNKNOWN_OP, code: 'E_BAD_REQUEST' })
    }
  })

  test('op and group may come in a JSON body', async () => {
    const res = await fetch(`${base}/scale`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ op: 'status', group: 'droplets' }),
    })
    assert.equal(res.status, 200)
    assert.ok('dropletMetrics' in ((await res.json()) as object))
  })

  test('an unknown group is 404 in the seed shape', async () => {
    const res = await fetch(`${base}/scale?op=status&group=nope`)
    assert.equal(res.status, 404)
    assert.deepEqual(await res.json(), { error: "group 'nope' does not exist", code: 'E_NOT_FOUND' })
  })

  test('with several groups, group is required', async () => {
    controller.groups.set('other', fakeGroup('other'))
    try {
      const res = await fetch(`${base}/scale?op=status`)
      assert.equal(res.status, 400)
      const body = (await res.json()) as { error: string }
      assert.equal(body.error, 'group: required when there is more than one group (one of: droplets, other)')
    } finally {
      controller.groups.delete('other')
    }
  })
})
