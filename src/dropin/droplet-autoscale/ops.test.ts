/**
 * The drop-in against the DigitalOcean emulator: every operation of seed 000, its JSON shapes,
 * and the seed's bugs fixed (reference/seeds.md §1.12), one test per behaviour.
 */
import assert from 'node:assert/strict'
import { afterEach, describe, test } from 'node:test'
import { DigitalOceanEmulator, type EmDroplet } from '../../../test/emulators/digitalocean/index.js'
import { type DropinAuto, type DropinStatus, renderBody, runDropin } from './ops.js'
import { LOCK_LEASE_S } from './lease.js'

const emulators: DigitalOceanEmulator[] = []
afterEach(async () => {
  for (const em of emulators.splice(0)) {
    assert.deepEqual(em.violations, [], 'the emulator saw nothing outside the API definition')
    await em.close()
  }
})

interface Fixture {
  em: DigitalOceanEmulator
  base: EmDroplet
  env: Record<string, string>
  lbId: string
}

/** A base droplet `scale-me` tagged `cluster`, its snapshot, and a load balancer holding it. */
async function cluster(options: { bootDelay?: number; env?: Record<string, string> } = {}): Promise<Fixture> {
  const em = new DigitalOceanEmulator({ bootDelay: options.bootDelay ?? 100 })
  emulators.push(em)
  await em.start()
  const base = em.addDroplet({
    name: 'scale-me',
    tags: ['cluster', 'firewall-web'],
    region: 'lon1',
    size: 's-2vcpu-4gb',
  })
  em.addSnapshot({ name: 'scale-me-snap', regions: ['lon1'] })
  const lb = em.addLoadBalancer({ name: 'cluster-lb', dropletIds: [base.id], region: 'lon1' })
  const env = {
    API_TOKEN: em.token,
    CLUSTER_TAG: 'cluster',
    BASE_DROPLET: 'scale-me',
    SNAPSHOT: 'scale-me-snap',
    CLONE_PREFIX: 'auto',
    LOAD_BALANCER: 'cluster-lb',
    DIGITALOCEAN_API_URL: em.url,
    TIDE_DRAIN: '0s',
    ...options.env,
  }
  return { em, base, env, lbId: lb.id }
}

const fast = { targetOverrides: { poll: '50ms' } }

/** Metrics that make every droplet idle (seed 000's down rule holds). */
function idle(em: DigitalOceanEmulator, id: number) {
  em.setMetrics(id, {
    load_1: 0.05,
    memory_free: 2_000e6,
    bandwidth_public_outbound: 0.1,
    bandwidth_private_outbound: 0.1,
  })
}
/** Metrics that make a droplet busy (load above 0.35). */
function busy(em: DigitalOceanEmulator, id: number) {
  em.setMetrics(id, { load_1: 0.9, memory_free: 2_000e6, bandwidth_public_outbound: 0.1 })
}

function tagged(em: DigitalOceanEmulator) {
  return em.droplets({ tag: 'cluster' })
}

function cooldownTags(d: EmDroplet) {
  return d.tags.filter((t) => /^scaling-[A-Za-z0-9-]+-\d+$/.test(t) && !t.includes('-lock-'))
}

describe('droplet-autoscale: op parameter and environment', () => {
  test('an unknown or missing op answers 400 with the seed message', async () => {
    for (const op of [undefined, '', 'scale']) {
      const r = await runDropin(op, {})
      assert.equal(r.status, 400)
      assert.deepEqual(r.body, {
        error: 'unknown or missing op parameter (i.e. /scale?op=[info|up|down|status|auto])',
        code: 'E_BAD_REQUEST',
      })
      // Errors are compact, as the seed printed them.
      assert.equal(renderBody(r), `${JSON.stringify(r.body)}\n`)
    }
  })

  test('missing variables are all named, by their real names', async () => {
    const r = await runDropin('info', { API_TOKEN: 'x' })
    assert.equal(r.status, 400)
    const error = (r.body as { error: string }).error
    for (const name of ['CLUSTER_TAG', 'BASE_DROPLET', 'SNAPSHOT', 'CLONE_PREFIX', 'LOAD_BALANCER']) {
      assert.match(error, new RegExp(`${name}: is required`))
    }
    // The seed's wrong names never appear.
    assert.doesNotMatch(error, /\bTAG environment|SNAPSHOT_NAME|DROPLET_NAME_PREFIX|LOAD_BALANCER_NAME/)
  })
})

describe('droplet-autoscale: info', () => {
  test('config and discovery in seed 000 shape; region and size from the base, every page read', async () => {
    const { em, base, env, lbId } = await cluster()
    // Listed before the base, in another region and size (seed bug 6 took droplets[0]'s).
    em.addDroplet({
      name: 'odd-one',
      tags: ['cluster'],
      region: 'ams3',
      size: 's-1vcpu-1gb',
      createdAt: Date.now() - 60_000,
    })
    // The snapshot and the load balancer on a later page (seed bug 3 lost matches on other pages).
    for (let i = 0; i < 230; i++) em.addSnapshot({ name: `other-${i}` })
    const snap = em.addSnapshot({ name: 'scale-me-snap-2' })
    for (let i = 0; i < 210; i++) em.addLoadBalancer({ name: `lb-${i}` })
    const late = em.addLoadBalancer({ name: 'late-lb', dropletIds: [base.id], region: 'lon1' })
    const r = await runDropin('info', { ...env, SNAPSHOT: 'scale-me-snap-2', LOAD_BALANCER: 'late-lb' })
    assert.equal(r.status, 200)
    const body = r.body as { config: Record<string, unknown>; info: Record<string, unknown> }
    assert.deepEqual(Object.keys(body), ['config', 'info'])
    assert.deepEqual(body.config, {
      tag: 'cluster',
      baseDropletName: 'scale-me',
      snapshotName: 'scale-me-snap-2',
      cloneNamePrefix: 'auto',
      LoadBalancerName: 'late-lb',
      maxDropletsInCluster: 5,
      scalingInterval: 120, // the README's default (the seed's code had 180)
      scaleUpWhen: { ID: '', valid: false, load: 0.35, freeMemory: 800, outboundBandwidth: 2.5 },
      scaleDownWhen: { ID: '', valid: false, load: 0.15, freeMemory: 900, outboundBandwidth: 1.5 },
    })
    assert.deepEqual(Object.keys(body.info), [
      'dropletCount',
      'droplets',
      'baseDroplet',
      'region',
      'dropletSize',
      'snapshotImageID',
      'loadBalancerID',
    ])
    assert.equal(body.info.dropletCount, 2)
    assert.equal((body.info.baseDroplet as { id: number }).id, base.id)
    assert.equal(body.info.region, 'lon1')
    assert.equal(body.info.dropletSize, 's-2vcpu-4gb')
    assert.equal(body.info.snapshotImageID, snap.id)
    assert.equal(body.info.loadBalancerID, late.id)
    assert.notEqual(late.id, lbId)
    for (const path of ['/v2/images', '/v2/load_balancers']) {
      assert.ok(
        em.calls('GET', path).some((c) => c.query.page === '2'),
        `the second page of ${path} was read`,
      )
    }
    // Pretty-printed with one space, as the seed.
    assert.match(renderBody(r), /^\{\n "config": \{\n {2}"tag": "cluster",/)
  })

  test('what cannot be found is named with the variable to check, 404', async () => {
    const { env } = await cluster()
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ BASE_DROPLET: 'nope' }, /can't get cluster info: can't find base droplet named nope.*BASE_DROPLET/],
      [{ SNAPSHOT: 'nope' }, /no snapshot with name nope.*SNAPSHOT/],
      [{ LOAD_BALANCER: 'nope' }, /no load balancer with name.*nope.*LOAD_BALANCER/],
    ]
    for (const [change, message] of cases) {
      const r = await runDropin('info', { ...env, ...change })
      assert.equal(r.status, 404, JSON.stringify(r.body))
      assert.match((r.body as { error: string }).error, message)
    }
  })

  test('the load balancer may be given by id', async () => {
    const { env, lbId } = await cluster()
    const r = await runDropin('info', { ...env, LOAD_BALANCER: lbId })
    assert.equal(r.status, 200)
  })
})

describe('droplet-autoscale: status', () => {
  test("the tutorial's sample: free memory below 800 MB recommends scaling up, with the recommendation text", async () => {
    const { em, base, env } = await cluster()
    em.setMetrics(base.id, {
      load_1: 0,
      memory_free: 235_454_464,
      bandwidth_public_outbound: 0.002357839671014176,
    })
    const r = await runDropin('status', env)
    assert.equal(r.status, 200)
    const s = r.body as DropinStatus
    assert.deepEqual(Object.keys(s), [
      'dropletMetrics',
      'clusterMetrics',
      'scaleUp',
      'scaleDown',
      'recommendation',
      'reason',
    ])
    assert.deepEqual(s.dropletMetrics, [
      {
        ID: 'scale-me',
        valid: true,
        load: 0,
        freeMemory: 235.454464,
        outboundBandwidth: 0.002357839671014176,
      },
    ])
    assert.equal(s.clusterMetrics.ID, '')
    assert.equal(s.clusterMetrics.valid, true)
    assert.equal(s.scaleUp, true)
    assert.equal(s.scaleDown, false)
    assert.equal(s.recommendation, 'scale up')
    assert.match(s.reason, /memory_free 235(\.\d+)? < 800/)
    // status changes nothing.
    assert.equal(tagged(em).length, 1)
    assert.deepEqual(cooldownTags(em.droplet(base.id)!), [])
  })

  test('a droplet without load data is invalid and blocks a scale-down; cluster means use the droplets that reported', async () => {
    const { em, base, env } = await cluster()
    idle(em, base.id)
    const clone = em.addDroplet({ name: 'auto001', tags: ['cluster'] })
    em.setMetrics(clone.id, { memory_free: 2_000e6 }) // no load_1
    const s = (await runDropin('status', env)).body as DropinStatus
    assert.equal(s.dropletMetrics[1]!.valid, false)
    assert.equal(s.clusterMetrics.valid, false)
    assert.equal(s.clusterMetrics.load, 0.05, 'the mean of the droplets that reported (seed bug 11)')
    assert.equal(s.scaleDown, false)
    assert.equal(
      s.recommendation,
      'Recommendation: no change (cluster metrics are not valid, cluster may be in the process of scaling)',
    )
  })

  test('during the cooldown the metrics are invalid; an expired cooldown tag is left alone by status', async () => {
    const { em, base, env } = await cluster()
    busy(em, base.id)
    const now = Math.floor(Date.now() / 1000)
    em.addTag(`scaling-auto-${now - 10}`)
    em.droplet(base.id)!.tags.push(`scaling-auto-${now - 10}`)
    const s = (await runDropin('status', env)).body as DropinStatus
    assert.equal(s.clusterMetrics.valid, false)
    assert.equal(s.scaleUp, false)
    assert.match(s.recommendation, /not valid/)
    assert.match(s.reason, /cooling down/)
    // After the interval: valid again, and status did not delete the tag (the seed did).
    const later = (await runDropin('status', env, { now: () => Date.now() + 200_000 })).body as DropinStatus
    assert.equal(later.scaleUp, true)
    assert.deepEqual(cooldownTags(em.droplet(base.id)!), [`scaling-auto-${now - 10}`])
  })

  test('at the maximum, a wanted scale-up is "no change (can\'t scale up, reached max droplet count)"', async () => {
    const { em, base, env } = await cluster()
    busy(em, base.id)
    em.addDroplet({ name: 'auto001', tags: ['cluster'] })
    const s = (await runDropin('status', { ...env, MAX_DROPLETS_IN_CLUSTER: '2' })).body as DropinStatus
    assert.equal(s.scaleUp, false)
    assert.equal(s.recommendation, "no change (can't scale up, reached max droplet count)")
  })

  test('only the base left: a wanted scale-down is "no change (can\'t scale down, only 1 droplet in cluster)"', async () => {
    const { em, base, env } = await cluster()
    idle(em, base.id)
    const s = (await runDropin('status', env)).body as DropinStatus
    assert.equal(s.scaleDown, false)
    assert.equal(s.recommendation, "no change (can't scale down, only 1 droplet in cluster)")
  })
})

describe('droplet-autoscale: up and down', () => {
  test('up clones the base (region, size, VPC, tags, monitoring), attaches it, marks the cooldown, leaves no lock', async () => {
    const { em, base, env, lbId } = await cluster()
    const r = await runDropin('up', env, fast)
    assert.equal(r.status, 200, JSON.stringify(r.body))
    assert.deepEqual(r.body, { success: true, msg: 'droplet created and added to load balancer' })
    const clone = em.dropletByName('auto001')!
    assert.ok(clone)
    assert.equal(clone.region, 'lon1')
    assert.equal(clone.size, 's-2vcpu-4gb')
    assert.equal(clone.vpcUuid, base.vpcUuid)
    assert.equal(clone.monitoring, true)
    assert.ok(clone.tags.includes('cluster') && clone.tags.includes('firewall-web'))
    assert.ok(
      !clone.tags.some((t) => t.startsWith('scaling-')),
      'no cooldown or lock tag copied to the clone',
    )
    assert.deepEqual(em.members(em.loadBalancer(lbId)!).sort(), [base.id, clone.id].sort())
    const baseNow = em.droplet(base.id)!
    assert.equal(cooldownTags(baseNow).length, 1)
    assert.match(cooldownTags(baseNow)[0]!, /^scaling-auto-\d+$/)
    assert.ok(!baseNow.tags.some((t) => t.startsWith('scaling-auto-lock-')), 'the lock is released')
    assert.ok(!em.tags().some((t) => t.startsWith('scaling-auto-lock-')), 'the lock tag is deleted')
    // Manual up ignores the cooldown (seed 000) and names the next clone.
    const again = await runDropin('up', env, fast)
    assert.equal(again.status, 200, JSON.stringify(again.body))
    assert.ok(em.dropletByName('auto002'))
    // One cooldown tag at a time.
    assert.equal(cooldownTags(em.droplet(base.id)!).length, 1)
  })

  test('up at the maximum is refused with the seed message and a 409', async () => {
    const { em, env } = await cluster()
    em.addDroplet({ name: 'auto001', tags: ['cluster'] })
    const r = await runDropin('up', { ...env, MAX_DROPLETS_IN_CLUSTER: '2' }, fast)
    assert.equal(r.status, 409)
    assert.deepEqual(r.body, { error: 'cluster is at maximum size', code: 'E_AT_BOUNDS' })
    assert.equal(tagged(em).length, 2)
  })

  test('clone names never collide: a gap or a foreign droplet with the next name is skipped', async () => {
    const { em, env } = await cluster()
    em.addDroplet({ name: 'auto002', tags: ['cluster'] })
    em.addDroplet({ name: 'auto003', tags: ['elsewhere'] }) // not ours, but the name is taken
    const r = await runDropin('up', env, fast)
    assert.equal(r.status, 200, JSON.stringify(r.body))
    const names = tagged(em).map((d) => d.name)
    assert.equal(new Set(names).size, names.length, `no duplicate names: ${names.join(', ')}`)
    assert.ok(names.includes('auto004'))
  })

  test('down removes the newest clone from the load balancer, then deletes it; never the base', async () => {
    const { em, base, env, lbId } = await cluster()
    await runDropin('up', env, fast)
    await runDropin('up', env, fast)
    const newest = em.dropletByName('auto002')!
    const r = await runDropin('down', env, fast)
    assert.equal(r.status, 200, JSON.stringify(r.body))
    assert.deepEqual(r.body, { success: true, msg: 'clone droplet deleted' })
    assert.deepEqual(
      em.deleted.map((d) => d.name),
      ['auto002'],
    )
    assert.ok(!em.members(em.loadBalancer(lbId)!).includes(newest.id))
    const detach = em.calls('DELETE', `/v2/load_balancers/${lbId}/droplets`)
    assert.equal(detach.length, 1, 'detached from the load balancer before the delete')
    assert.ok(em.droplet(base.id), 'the base is still there')
    await runDropin('down', env, fast)
    const last = await runDropin('down', env, fast)
    assert.equal(last.status, 409)
    assert.deepEqual(last.body, { error: 'cluster has no autoscaled droplets', code: 'E_AT_BOUNDS' })
    assert.ok(em.droplet(base.id))
  })

  test('an old cooldown tag is taken off the base, not deleted from every resource (seed bug 7)', async () => {
    const { em, base, env } = await cluster()
    const old = 'scaling-auto-1000'
    em.addTag(old)
    em.droplet(base.id)!.tags.push(old)
    const other = em.addDroplet({ name: 'unrelated', tags: [old] })
    await runDropin('up', env, fast)
    assert.ok(!em.droplet(base.id)!.tags.includes(old))
    assert.ok(em.droplet(other.id)!.tags.includes(old), 'the other droplet keeps its tag')
  })

  test('a prefix with "-" works (the seed forbade it because its tag parser broke)', async () => {
    const { em, base, env } = await cluster({ env: { CLONE_PREFIX: 'web-clone-' } })
    const r = await runDropin('up', env, fast)
    assert.equal(r.status, 200, JSON.stringify(r.body))
    assert.ok(em.dropletByName('web-clone-001'))
    busy(em, base.id)
    const s = (await runDropin('status', env)).body as DropinStatus
    assert.match(s.reason, /cooling down/)
  })
})

describe('droplet-autoscale: auto', () => {
  test('busy → one clone, then the cooldown holds; idle after the cooldown → the clone goes', async () => {
    const { em, base, env } = await cluster()
    busy(em, base.id)
    const first = await runDropin('auto', env, fast)
    assert.equal(first.status, 200, JSON.stringify(first.body))
    const a = first.body as DropinAuto
    assert.deepEqual(Object.keys(a), ['status', 'scaleUp', 'scaleDown'])
    assert.equal(a.status.scaleUp, true)
    assert.equal(a.status.recommendation, 'scale up')
    assert.deepEqual(a.scaleUp, { success: true, msg: 'droplet created and added to load balancer' })
    assert.deepEqual(a.scaleDown, { success: false, msg: '' })
    assert.equal(tagged(em).length, 2)

    const clone = em.dropletByName('auto001')!
    busy(em, clone.id)
    const second = (await runDropin('auto', env, fast)).body as DropinAuto
    assert.equal(second.status.scaleUp, false, 'cooling down')
    assert.match(second.status.reason, /cooling down/)
    assert.equal(tagged(em).length, 2)

    idle(em, base.id)
    idle(em, clone.id)
    const later = Date.now() + 130_000
    const third = (await runDropin('auto', env, { ...fast, now: () => later })).body as DropinAuto
    assert.equal(third.status.recommendation, 'scale down')
    assert.deepEqual(third.scaleDown, { success: true, msg: 'clone droplet deleted' })
    assert.deepEqual(
      tagged(em).map((d) => d.name),
      ['scale-me'],
    )
  })

  test('missing data never scales down, but a busy cluster still scales up', async () => {
    const { em, base, env } = await cluster()
    idle(em, base.id)
    em.addDroplet({ name: 'auto001', tags: ['cluster'] }) // no metrics at all
    const idleRun = (await runDropin('auto', env, fast)).body as DropinAuto
    assert.equal(idleRun.status.scaleDown, false)
    assert.equal(tagged(em).length, 2)
    busy(em, base.id)
    const busyRun = (await runDropin('auto', env, fast)).body as DropinAuto
    assert.equal(busyRun.status.scaleUp, true)
    assert.equal(busyRun.scaleUp.success, true)
    assert.equal(tagged(em).length, 3)
  })

  test('two auto invocations racing: one clone, no orphan, base untouched, no lock left', async () => {
    const { em, base, env, lbId } = await cluster()
    busy(em, base.id)
    const [a, b] = await Promise.all([runDropin('auto', env, fast), runDropin('auto', env, fast)])
    const results = [a.body as DropinAuto, b.body as DropinAuto]
    const created = results.filter((r) => r.scaleUp.success)
    assert.equal(created.length, 1, `exactly one scaled: ${JSON.stringify(results.map((r) => r.scaleUp))}`)
    const clones = tagged(em).filter((d) => d.id !== base.id)
    assert.equal(clones.length, 1, `one clone: ${clones.map((d) => d.name).join(', ')}`)
    assert.deepEqual(
      em.deleted.filter((d) => d.id === base.id),
      [],
    )
    // No orphan: every droplet that exists is in the cluster and in the load balancer.
    assert.deepEqual(
      em.members(em.loadBalancer(lbId)!).sort(),
      tagged(em)
        .map((d) => d.id)
        .sort(),
    )
    assert.ok(!em.tags().some((t) => t.startsWith('scaling-auto-lock-')))
  })

  test('a stale lock from a killed invocation is cleared, a live one makes the other back off', async () => {
    const { em, base, env } = await cluster()
    busy(em, base.id)
    const now = Math.floor(Date.now() / 1000)
    const live = `scaling-auto-lock-${now}-abcdef012345`
    em.addTag(live)
    em.droplet(base.id)!.tags.push(live)
    const blocked = await runDropin('auto', env, fast)
    assert.equal(blocked.status, 409)
    assert.match((blocked.body as DropinAuto).scaleUp.msg, /another invocation is scaling the cluster/)
    assert.equal(tagged(em).length, 1)
    // The same claim, seen after the lease: cleared, and the scale goes ahead.
    const later = Date.now() + (LOCK_LEASE_S + 60) * 1000
    const r = await runDropin('auto', env, { ...fast, now: () => later })
    assert.equal((r.body as DropinAuto).scaleUp.success, true, JSON.stringify(r.body))
    assert.ok(!em.tags().includes(live))
  })
})

describe('droplet-autoscale: faults', () => {
  test('a clone that never becomes active is deleted and reported; the cooldown is still marked', async () => {
    const { em, base, env } = await cluster({ env: { TIDE_BOOT_TIMEOUT: '1s' } })
    em.neverActive('auto001')
    const r = await runDropin('up', env, fast)
    assert.equal(r.status, 502)
    assert.match((r.body as { error: string }).error, /^can't create droplet: .*never became active.*deleted/)
    assert.deepEqual(
      tagged(em).map((d) => d.name),
      ['scale-me'],
    )
    assert.equal(cooldownTags(em.droplet(base.id)!).length, 1)
  })

  test('429 storms and 5xx answers are waited out', async () => {
    const { em, env } = await cluster()
    em.throttle(6, 0)
    em.inject({ path: '/v2/droplets', method: 'GET', times: 2, fault: { kind: 'status', status: 503 } })
    const r = await runDropin('up', env, fast)
    assert.equal(r.status, 200, JSON.stringify(r.body))
    assert.equal(tagged(em).length, 2)
  })

  test('the deadline comes while a clone boots: it is handed over, and the next invocation attaches it', async () => {
    const { em, base, env, lbId } = await cluster({ bootDelay: 1500 })
    const deadline = new AbortController()
    const r = runDropin('up', env, { ...fast, signal: deadline.signal })
    // Abort once the create has been sent.
    while (em.calls('POST', '/v2/droplets').length === 0) await new Promise((res) => setTimeout(res, 10))
    deadline.abort(new Error('function time limit'))
    const handed = await r
    assert.equal(handed.status, 200, JSON.stringify(handed.body))
    assert.match(
      (handed.body as { msg: string }).msg,
      /auto001 created; .*next invocation adds it to the load balancer/,
    )
    const clone = em.dropletByName('auto001')!
    assert.ok(!em.members(em.loadBalancer(lbId)!).includes(clone.id), 'not attached yet')
    assert.ok(
      !em.tags().some((t) => t.startsWith('scaling-auto-lock-')),
      'the lock is released even on abort',
    )
    // The next invocation, once the clone is active, finishes the job (and changes nothing else).
    await new Promise((res) => setTimeout(res, 1600))
    idle(em, base.id)
    em.setMetrics(clone.id, { load_1: 0.2, memory_free: 2_000e6 })
    const next = await runDropin('auto', env, fast)
    assert.equal(next.status, 200, JSON.stringify(next.body))
    assert.ok(em.members(em.loadBalancer(lbId)!).includes(clone.id), 'attached by the next run')
    assert.equal(tagged(em).length, 2)
    assert.ok(
      !em.tags().some((t) => t.startsWith('tide-create-')),
      'a create marker the abort left behind is removed by the next run',
    )
  })

  test('the API refusing the token: "can\'t get cluster info: …" naming the call, never a 200', async () => {
    const { env } = await cluster()
    const r = await runDropin('info', { ...env, API_TOKEN: 'not-the-token' })
    assert.notEqual(r.status, 200)
    const body = r.body as { error: string; code: string }
    assert.match(body.error, /^can't get cluster info: DigitalOcean API GET \/v2\/\S+ answered 401/)
    assert.equal(body.code, 'E_DO_API')
    assert.match(renderBody(r), /^\{"error":"can't get cluster info: [^\n]*\}\n$/, 'compact, as the seed')
  })

  test('status reads 4 minutes of load_1, memory_free and public + private outbound bandwidth per droplet', async () => {
    const { em, base, env } = await cluster()
    idle(em, base.id)
    await runDropin('status', env)
    const reads = em.requests.filter((r) => r.path.startsWith('/v2/monitoring/metrics/droplet/'))
    const kinds = reads.map((r) =>
      r.path.endsWith('/bandwidth')
        ? `bandwidth:${r.query.interface}:${r.query.direction}`
        : r.path.split('/').pop(),
    )
    assert.deepEqual([...kinds].sort(), [
      'bandwidth:private:outbound',
      'bandwidth:public:outbound',
      'load_1',
      'memory_free',
    ])
    for (const r of reads) {
      assert.equal(r.query.host_id, String(base.id))
      assert.equal(Number(r.query.end) - Number(r.query.start), 240, 'a 4-minute window')
    }
  })

  test('marking the cooldown fails: "couldn\'t mark cluster: …", nothing created, no lock left', async () => {
    const { em, env } = await cluster()
    em.inject({
      method: 'POST',
      path: /^\/v2\/tags\/scaling-auto-\d+\/resources$/,
      fault: { kind: 'status', status: 422 },
    })
    const r = await runDropin('up', env, fast)
    assert.equal(r.status, 502, JSON.stringify(r.body))
    assert.match(
      (r.body as { error: string }).error,
      /^couldn't mark cluster: DigitalOcean API POST .* answered 422/,
    )
    assert.equal(tagged(em).length, 1, 'no droplet was created')
    assert.ok(!em.tags().some((t) => t.startsWith('scaling-auto-lock-')), 'the lock is released')
  })

  test("the load balancer refuses the clone: the seed's message, the clone kept, and the next run adds it", async () => {
    const { em, base, env, lbId } = await cluster()
    em.inject({
      method: 'POST',
      path: `/v2/load_balancers/${lbId}/droplets`,
      fault: { kind: 'status', status: 422 },
    })
    const r = await runDropin('up', env, fast)
    assert.equal(r.status, 502, JSON.stringify(r.body))
    assert.match(
      (r.body as { error: string }).error,
      /^can't create droplet: .*could not add droplet auto001 \(\d+\) to load balancer cluster-lb: .*422.*the next run adds it/,
    )
    const clone = em.dropletByName('auto001')!
    assert.ok(clone, 'the clone is kept, not orphaned: it carries the cluster tag')
    assert.ok(!em.members(em.loadBalancer(lbId)!).includes(clone.id))
    // The next operation (here an auto that changes nothing: the clone has no metrics yet).
    idle(em, base.id)
    const next = await runDropin('auto', env, fast)
    assert.equal(next.status, 200, JSON.stringify(next.body))
    assert.ok(em.members(em.loadBalancer(lbId)!).includes(clone.id), 'attached by the next run')
    assert.equal(tagged(em).length, 2)
  })

  test('deleting the clone fails: "couldn\'t delete last droplet: …" with a real status; the base untouched', async () => {
    const { em, base, env } = await cluster()
    await runDropin('up', env, fast)
    const clone = em.dropletByName('auto001')!
    em.inject({ method: 'DELETE', path: `/v2/droplets/${clone.id}`, fault: { kind: 'status', status: 422 } })
    const r = await runDropin('down', env, fast)
    assert.equal(r.status, 502, JSON.stringify(r.body))
    assert.match((r.body as { error: string }).error, /^couldn't delete last droplet: .*auto001.*422/)
    assert.ok(em.droplet(clone.id), 'still there')
    assert.ok(em.droplet(base.id))
    assert.ok(!em.tags().some((t) => t.startsWith('scaling-auto-lock-')))
  })
})
