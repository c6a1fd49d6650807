/**
 * Seed 000's `/scale?op=…` served by a running daemon for a `digitalocean` group, against the
 * DigitalOcean API emulator (test/emulators/digitalocean, checked against the official API
 * definition): the `info` answer is filled from the target's own reading of the cluster
 * (Target.describe()), `status` names droplets as the seed did, and `up`/`down`/`auto` change
 * the real (emulated) cluster. An exec action (seed 002's custom actions) gets the droplets
 * each change added and removed.
 */
import assert from 'node:assert/strict'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import {
  DigitalOceanEmulator,
  type EmDroplet,
  type EmLoadBalancer,
} from '../../test/emulators/digitalocean/index.js'
import { startTestDaemon, type TestDaemon, waitFor } from '../../test/support/daemon.js'

/** Parsed JSON and raw config, read and edited field by field in the assertions. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON of the shapes under test
type Json = Record<string, any>

const EXAMPLE = fileURLToPath(new URL('../../examples/digitalocean.yaml', import.meta.url))

/** Seed 000's example thresholds: between them nothing happens. */
const CALM = { load_1: 0.25, memory_free: 850e6 }
const BUSY = { load_1: 0.9, memory_free: 850e6 }

describe('/scale?op=… on a digitalocean group, through a running daemon', () => {
  const em = new DigitalOceanEmulator({ bootDelay: 30, region: 'ams3' })
  let daemon: TestDaemon
  let base: EmDroplet
  let legacy: EmDroplet
  let lb: EmLoadBalancer
  let snapshot: number

  const call = async (op: string, method = 'GET') => {
    const res = await fetch(`${daemon.apiUrl}/scale?op=${op}`, { method })
    const text = await res.text()
    return { status: res.status, text, body: JSON.parse(text) as Json }
  }
  const calm = (id: number) => em.setMetrics(id, CALM)
  const hooks = mkdtempSync(join(tmpdir(), 'tide-do-hooks-'))
  /** The TIDE_* variables of the action's runs, one file per run, in order. */
  const runs = (): Array<Record<string, string>> => {
    const out: Array<Record<string, string>> = []
    for (let i = 1; existsSync(join(hooks, `run-${i}.env`)); i++) {
      const lines = readFileSync(join(hooks, `run-${i}.env`), 'utf8')
        .trim()
        .split('\n')
      out.push(
        Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])),
      )
    }
    return out
  }

  before(async () => {
    await em.start()
    // A tagged droplet that is not the base comes first in the API's order: the seed took
    // region and size from droplets[0] (seeds.md §1.12 item 6).
    legacy = em.addDroplet({ name: 'legacy', tags: ['web'], region: 'nyc1', size: 's-1vcpu-1gb' })
    base = em.addDroplet({ name: 'scale-me', tags: ['web'], region: 'ams3', size: 's-2vcpu-4gb' })
    // The snapshot is on the second page of private images (seed bug 3 lost it).
    for (let i = 0; i < 210; i++) em.addSnapshot({ name: `other-${i}` })
    snapshot = em.addSnapshot({ name: 'web-snapshot' }).id
    lb = em.addLoadBalancer({ name: 'web-lb', dropletIds: [legacy.id, base.id] })
    calm(legacy.id)
    calm(base.id)
    const action = join(hooks, 'on-scale.sh')
    writeFileSync(
      action,
      '#!/bin/sh\nn=$(ls "$HOOKS" | grep -c "^run-")\nenv | grep "^TIDE_" > "$HOOKS/tmp.env"\nmv "$HOOKS/tmp.env" "$HOOKS/run-$((n + 1)).env"\n',
    )
    chmodSync(action, 0o755)
    daemon = await startTestDaemon(EXAMPLE, (raw) => {
      const web = raw.groups.web as Json
      web.notify = [{ kind: 'exec', command: action, on: ['applied'], env: { HOOKS: hooks } }]
      web.interval = '1h' // evaluated at start, then only by op=auto
      web.cooldown = '45s'
      web.scale_down = { stabilization: '0s' }
      Object.assign(web.target, {
        token: em.token,
        api_url: em.url,
        base_droplet: 'scale-me',
        poll: '20ms',
        drain: '0s',
      })
      Object.assign(web.sources[0], { token: em.token, api_url: em.url, refresh: '0s' })
    })
    await waitFor('the first evaluation', 20_000, async () => {
      const group = (await (await fetch(`${daemon.apiUrl}/v1/groups/web`)).json()) as Json
      return group.lastDecision !== undefined
    })
  })
  after(async () => {
    await daemon?.stop()
    await em.close()
    rmSync(hooks, { recursive: true, force: true })
  })

  test('op=info: the seed keys, filled from the cluster as the target read it', async () => {
    const { status, text, body } = await call('info')
    assert.equal(status, 200)
    assert.ok(text.startsWith('{\n "config": {\n  "tag": "web",'), text.slice(0, 80))
    assert.ok(text.endsWith('}\n'))
    assert.deepEqual(body.config, {
      tag: 'web',
      baseDropletName: 'scale-me',
      snapshotName: 'web-snapshot',
      cloneNamePrefix: 'web-',
      LoadBalancerName: 'web-lb',
      maxDropletsInCluster: 5,
      scalingInterval: 45,
      scaleUpWhen: { ID: '', valid: false, load: 0, freeMemory: 0, outboundBandwidth: 0 },
      scaleDownWhen: { ID: '', valid: false, load: 0, freeMemory: 0, outboundBandwidth: 0 },
    })
    const info = body.info
    assert.equal(info.dropletCount, 2)
    assert.deepEqual(
      info.droplets.map((d: { name: string }) => d.name),
      ['legacy', 'scale-me'],
    )
    // Full API droplet objects, as godo's were: networks, image, size, region…
    for (const key of ['id', 'name', 'status', 'networks', 'region', 'size_slug', 'tags', 'created_at']) {
      assert.ok(key in info.droplets[1], `droplet has ${key}`)
    }
    assert.equal(info.baseDroplet.id, base.id)
    assert.equal(info.region, 'ams3', "the base's region, not droplets[0]'s")
    assert.equal(info.dropletSize, 's-2vcpu-4gb')
    assert.equal(info.snapshotImageID, snapshot)
    assert.equal(info.loadBalancerID, lb.id)
  })

  test('op=status: droplets by name, valid metrics, the recommendation', async () => {
    const { status, body } = await call('status')
    assert.equal(status, 200)
    assert.deepEqual(
      body.dropletMetrics.map((m: { ID: string; valid: boolean }) => [m.ID, m.valid]),
      [
        ['legacy', true],
        ['scale-me', true],
      ],
    )
    assert.equal(body.clusterMetrics.ID, '')
    assert.ok(Math.abs(body.clusterMetrics.load - 0.25) < 1e-9)
    assert.ok(Math.abs(body.clusterMetrics.freeMemory - 850) < 1e-9, 'MB (10^6 bytes)')
    assert.equal(body.scaleUp, false)
    assert.equal(body.scaleDown, false)
    assert.equal(body.recommendation, 'no change')
  })

  test('op=auto on a busy cluster adds one clone; the answer has both shapes and the recommendation', async () => {
    for (const d of [legacy, base]) em.setMetrics(d.id, BUSY)
    const { status, body } = await call('auto', 'POST')
    assert.equal(status, 200, JSON.stringify(body))
    assert.deepEqual(Object.keys(body), ['status', 'scaleUp', 'scaleDown'])
    assert.equal(body.status.recommendation, 'scale up')
    assert.equal(body.status.scaleUp, true)
    assert.ok(Math.abs(body.status.clusterMetrics.load - 0.9) < 1e-9, 'the metrics this evaluation read')
    assert.equal(body.scaleUp.success, true)
    assert.deepEqual(body.scaleDown, { success: false, msg: '' })
    await waitFor('web-001 in the load balancer', 10_000, () => {
      const clone = em.dropletByName('web-001')
      return clone !== undefined && em.members(em.loadBalancer(lb.id)!).includes(clone.id)
    })
    assert.equal(em.droplets({ tag: 'web' }).length, 3, 'exactly one droplet added')
    await waitFor('the action to run', 10_000, () => runs().length === 1)
    const run = runs()[0]!
    assert.equal(run.TIDE_EVENT, 'applied')
    assert.equal(run.TIDE_DIRECTION, 'up')
    assert.equal(run.TIDE_ADDED, String(em.dropletByName('web-001')!.id), 'the created droplet')
    assert.equal(run.TIDE_REMOVED, '')
  })

  test('during the cooldown op=status says the metrics are not valid and op=auto changes nothing', async () => {
    const s = (await call('status')).body
    assert.equal(s.clusterMetrics.valid, false)
    assert.equal(
      s.recommendation,
      'Recommendation: no change (cluster metrics are not valid, cluster may be in the process of scaling)',
    )
    const { status, body } = await call('auto', 'POST')
    assert.equal(status, 200, JSON.stringify(body))
    assert.deepEqual(body.scaleUp, { success: false, msg: '' })
    assert.deepEqual(body.scaleDown, { success: false, msg: '' })
    assert.equal(em.droplets({ tag: 'web' }).length, 3)
  })

  test('op=up ignores the cooldown (as the seed), adds a clone to the load balancer; op=info shows it', async () => {
    const { status, body } = await call('up', 'POST')
    assert.equal(status, 200, JSON.stringify(body))
    assert.deepEqual(body, { success: true, msg: 'droplet created and added to load balancer' })
    const clone = em.dropletByName('web-002')!
    assert.ok(clone, 'web-002 exists')
    assert.ok(em.members(em.loadBalancer(lb.id)!).includes(clone.id))
    await waitFor(
      'info to show the clone',
      10_000,
      async () => (await call('info')).body.info.dropletCount === 4,
    )
    const info = (await call('info')).body.info
    const shown = info.droplets.find((d: { name: string }) => d.name === 'web-002')
    assert.equal(shown.region.slug, 'ams3', "a clone of the base: the base's region")
    assert.equal(shown.size_slug, 's-2vcpu-4gb')
  })

  test('op=down removes the newest clone, never the base nor a droplet that is not a clone', async () => {
    const removedId = em.dropletByName('web-002')!.id
    const { status, body } = await call('down', 'POST')
    assert.equal(status, 200, JSON.stringify(body))
    assert.deepEqual(body, { success: true, msg: 'clone droplet deleted' })
    assert.equal(em.dropletByName('web-002'), undefined, 'the newest clone went')
    assert.ok(em.dropletByName('web-001'))
    assert.ok(em.droplet(base.id), 'the base droplet is never deleted')
    assert.ok(em.droplet(legacy.id), 'a tagged droplet that is not a clone is never deleted')
    await waitFor('the action to run for the removal', 10_000, () => runs().length === 3)
    const removal = runs()[2]!
    assert.equal(removal.TIDE_DIRECTION, 'down')
    assert.equal(removal.TIDE_ADDED, '')
    assert.equal(removal.TIDE_REMOVED, String(removedId), 'the deleted droplet')
    assert.deepEqual(em.violations, [], 'every request and answer follows the API definition')
  })
})
