/**
 * The `digitalocean` target against the emulator (test/emulators/digitalocean), which checks
 * every request and answer against the official API definition.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { after, afterEach, beforeEach, describe, it } from 'node:test'
import {
  DigitalOceanEmulator,
  type EmDroplet,
  type EmLoadBalancer,
} from '../../../test/emulators/digitalocean/index.js'
import { NoChangeError } from '../../core/errors.js'
import type { Instance, ScaleResult } from '../../core/types.js'
import { CREATE_MARKER, createDigitalOceanClient } from './client.js'
import { createDigitalOceanTarget, digitaloceanTargetSchema } from './index.js'
import { DigitalOceanTarget } from './target.js'

const signal = new AbortController().signal
const CHILD = fileURLToPath(new URL('../../../test/emulators/digitalocean/scale-child.ts', import.meta.url))

interface World {
  em: DigitalOceanEmulator
  base: EmDroplet
  lb: EmLoadBalancer
  snapshot: number
}

async function world(options: { bootDelay?: number } = {}): Promise<World> {
  const em = new DigitalOceanEmulator({ bootDelay: options.bootDelay ?? 30, region: 'ams3' })
  await em.start()
  // 250 other private images first: the snapshot is on the second page (seed 000 bug 3).
  for (let i = 0; i < 250; i++) em.addSnapshot({ name: `other-${i}` })
  em.addSnapshot({ name: 'web-snapshot' })
  const snapshot = em.addSnapshot({ name: 'web-snapshot' }).id // the newest of that name wins
  const base = em.addDroplet({
    name: 'web-base',
    tags: ['web', 'firewall-web', 'scaling-web-1700000000'],
    region: 'ams3',
    size: 's-2vcpu-4gb',
    vpcUuid: '5a4981aa-9653-4bd1-bef5-d6bff52042e4',
    createdAt: Date.now() - 86_400_000,
  })
  const lb = em.addLoadBalancer({ name: 'web-lb', dropletIds: [base.id], region: 'ams3' })
  return { em, base, lb, snapshot }
}

function target(em: DigitalOceanEmulator, extra: Record<string, unknown> = {}): DigitalOceanTarget {
  const config = digitaloceanTargetSchema.parse({
    kind: 'digitalocean',
    token: em.token,
    api_url: em.url,
    tag: 'web',
    base_droplet: 'web-base',
    snapshot: 'web-snapshot',
    clone_prefix: 'web-',
    load_balancer: 'web-lb',
    poll: '20ms',
    drain: '0s',
    ...extra,
  })
  return createDigitalOceanTarget('web', config)
}

describe('digitalocean target', () => {
  let w: World
  beforeEach(async () => {
    w = await world()
  })
  afterEach(async () => {
    assert.deepEqual(w.em.violations, [], 'every request and answer follows the API definition')
    assert.ok(w.em.droplet(w.base.id), 'the base droplet is never deleted')
    await w.em.close()
  })

  it('reports the base and adopted clones, with private addresses and the base protected', async () => {
    const clone = w.em.addDroplet({ name: 'web-001', tags: ['web'] })
    w.em.addDroplet({ name: 'db-1', tags: ['web'] }) // tagged, not ours
    w.em.addDroplet({ name: 'web-009', tags: ['other'] }) // ours by name, not in the group
    const t = target(w.em)
    await t.start(signal)
    const status = await t.status(signal)
    assert.equal(status.desired, 3)
    assert.equal(status.ready, 3)
    const byName = (name: string) => status.instances.find((i) => i.detail?.startsWith(name))
    assert.equal(byName('web-base')?.protected, true)
    assert.equal(byName('db-1')?.protected, true)
    assert.equal(byName('web-001')?.protected, undefined)
    assert.equal(byName('web-001')?.address, clone.privateIp)
    assert.equal(status.instances[0]!.id, String(w.base.id), 'oldest first')
  })

  it('scales up with clones of the base: region, size, VPC, tags, snapshot, monitoring; attached to the LB', async () => {
    w.em.addDroplet({ name: 'web-002', tags: ['elsewhere'] }) // the name is taken outside the group
    const t = target(w.em, { user_data: '#cloud-config\n' })
    const progress: string[] = []
    const result = await t.scale(3, { reason: 'test', progress: (m) => progress.push(m) }, signal)
    assert.equal(result.from, 1)
    assert.equal(result.to, 3)
    const clones = w.em.droplets({ tag: 'web' }).filter((d) => d.id !== w.base.id)
    assert.deepEqual(clones.map((c) => c.name).sort(), ['web-001', 'web-003'], 'web-002 is skipped: taken')
    for (const c of clones) {
      assert.equal(c.region, 'ams3')
      assert.equal(c.size, 's-2vcpu-4gb')
      assert.equal(c.vpcUuid, '5a4981aa-9653-4bd1-bef5-d6bff52042e4')
      assert.equal(c.imageId, w.snapshot)
      assert.equal(c.monitoring, true)
      assert.equal(c.userData, '#cloud-config\n')
      assert.deepEqual([...c.tags].sort(), ['firewall-web', 'web'], "the base's tags, not its cooldown tag")
    }
    assert.deepEqual(
      w.em.members(w.lb).sort(),
      [w.base.id, ...clones.map((c) => c.id)].sort(),
      'every clone in the load balancer',
    )
    assert.deepEqual(result.added.sort(), clones.map((c) => String(c.id)).sort())
    assert.ok(
      progress.some((m) => /web-001 ready at 127\./.test(m)),
      progress.join('\n'),
    )
    const status = await t.status(signal)
    assert.equal(status.ready, 3)
    // The same size again: nothing to do, said so (no cooldown).
    await assert.rejects(t.scale(3, { reason: 'again' }, signal), { code: 'E_NO_CHANGE' })
  })

  it('deletes a clone that never becomes active and reports it', async () => {
    w.em.neverActive('web-002')
    const t = target(w.em, { boot_timeout: '400ms' })
    await assert.rejects(t.scale(3, { reason: 'test' }, signal), (err: Error & { code?: string }) => {
      assert.match(
        err.message,
        /1 of 2 new clone\(s\) failed \(1 added\): web-002: .*never became active.*deleted/,
      )
      return true
    })
    assert.deepEqual(
      w.em
        .droplets({ tag: 'web' })
        .map((d) => d.name)
        .sort(),
      ['web-001', 'web-base'],
    )
    assert.deepEqual(
      w.em.deleted.map((d) => d.name),
      ['web-002'],
    )
    assert.equal(w.em.members(w.lb).length, 2)
  })

  it('scales down newest first: out of the LB, drained, then deleted; never the base', async () => {
    const old = w.em.addDroplet({ name: 'web-001', tags: ['web'], createdAt: Date.now() - 60_000 })
    const young = w.em.addDroplet({ name: 'web-002', tags: ['web'] })
    w.lb.dropletIds.push(old.id, young.id)
    const t = target(w.em, { drain: '50ms' })
    const drained: Instance[] = []
    const result = await t.scale(
      2,
      {
        reason: 'test',
        drain: async (instance) => {
          assert.ok(!w.em.members(w.lb).includes(Number(instance.id)), 'out of the LB before the drain')
          assert.ok(w.em.droplet(Number(instance.id)), 'still there while draining')
          drained.push(instance)
        },
      },
      signal,
    )
    assert.deepEqual(result.removed, [String(young.id)])
    assert.deepEqual(
      drained.map((i) => i.id),
      [String(young.id)],
    )
    assert.equal(drained[0]!.address, young.privateIp)
    assert.deepEqual(
      w.em.deleted.map((d) => d.name),
      ['web-002'],
    )
    // Down to zero keeps the base; then there is nothing left to remove.
    await t.scale(0, { reason: 'test' }, signal)
    assert.deepEqual(
      w.em.droplets({ tag: 'web' }).map((d) => d.name),
      ['web-base'],
    )
    await assert.rejects(t.scale(0, { reason: 'test' }, signal), /only the base droplet web-base is left/)
  })

  it('removes the oldest, or the least busy, when told', async () => {
    const a = w.em.addDroplet({ name: 'web-001', tags: ['web'], createdAt: Date.now() - 120_000 })
    const b = w.em.addDroplet({ name: 'web-002', tags: ['web'], createdAt: Date.now() - 60_000 })
    const c = w.em.addDroplet({ name: 'web-003', tags: ['web'] })
    await target(w.em, { remove: 'oldest' }).scale(3, { reason: 'test' }, signal)
    assert.deepEqual(
      w.em.deleted.map((d) => d.id),
      [a.id],
    )
    w.em.setMetric(b.id, 'load_1', 0.9)
    w.em.setMetric(c.id, 'load_1', 0.1)
    await target(w.em, { remove: 'least-busy' }).scale(2, { reason: 'test' }, signal)
    assert.deepEqual(
      w.em.deleted.map((d) => d.id),
      [a.id, c.id],
    )
  })

  it('names a missing base droplet, snapshot or load balancer', async () => {
    await assert.rejects(target(w.em, { base_droplet: 'nope' }).discover(signal), {
      code: 'E_DO_NOT_FOUND',
      message: /can't find base droplet named nope among the 1 droplet\(s\) tagged web/,
    })
    await assert.rejects(target(w.em, { snapshot: 'nope' }).discover(signal), /no snapshot with name nope/)
    await assert.rejects(
      target(w.em, { load_balancer: 'nope' }).discover(signal),
      /no load balancer with name or id nope/,
    )
    // start() never throws: the daemon starts and the group reports the problem.
    await target(w.em, { base_droplet: 'nope' }).start(signal)
    assert.match((await target(w.em, { base_droplet: 'nope' }).status(signal)).message ?? '', /nope/)
  })

  it('gets through a storm of 429s and a 5xx on the load balancer', async () => {
    w.em.throttle(6, 0)
    w.em.inject({
      method: 'POST',
      path: /load_balancers\/.*\/droplets/,
      fault: { kind: 'status', status: 503 },
    })
    await target(w.em).scale(2, { reason: 'test' }, signal)
    assert.equal(w.em.members(w.lb).length, 2)
    assert.ok(w.em.requests.filter((r) => r.status === 429).length >= 6)
  })

  it('needs nothing for a tag-based load balancer', async () => {
    const tagged = w.em.addLoadBalancer({ name: 'tag-lb', tag: 'web' })
    await target(w.em, { load_balancer: 'tag-lb' }).scale(2, { reason: 'test' }, signal)
    assert.equal(w.em.members(tagged).length, 2)
    assert.equal(w.em.calls('POST', /load_balancers/).length, 0)
  })

  it('lets two operations race without a duplicate name or an orphan', async () => {
    const [a, b] = [target(w.em), target(w.em)]
    const results = await Promise.allSettled([
      a.scale(3, { reason: 'a' }, signal),
      b.scale(3, { reason: 'b' }, signal),
    ])
    const group = w.em.droplets({ tag: 'web' })
    const names = group.map((d) => d.name)
    assert.equal(new Set(names).size, names.length, `no duplicate name: ${names.join(', ')}`)
    assert.equal(group.length, 3, `exactly the size both asked for: ${names.join(', ')}`)
    assert.deepEqual(w.em.members(w.lb).sort(), group.map((d) => d.id).sort(), 'every droplet in the LB')
    assert.ok(
      results.some((r) => r.status === 'fulfilled'),
      JSON.stringify(results),
    )
  })

  it('never shares a clone with a racing operation when its own create answer was lost', async () => {
    // B scales while A waits to retry a create that did not reach the API (a 503): both picked
    // web-001. A must not take B's web-001 for its own (seed 000 bug 5's duplicate, and a lost
    // answer): it creates its own, sees B's older twin, and deletes its own again.
    const b = target(w.em)
    let fromB: ScaleResult | undefined
    let fired = false
    const client = createDigitalOceanClient({
      token: w.em.token,
      apiUrl: w.em.url,
      backoff: 10,
      sleep: async () => {
        if (fired) return
        fired = true
        fromB = await b.scale(2, { reason: 'b' }, signal)
      },
    })
    const a = new DigitalOceanTarget('web', target(w.em).settings, client)
    w.em.inject({ method: 'POST', path: '/v2/droplets', fault: { kind: 'status', status: 503 } })
    const fromA = await a.scale(2, { reason: 'a' }, signal).catch((err: unknown) => err)
    assert.ok(fromB, 'B scaled during A’s retry wait')
    assert.equal(fromB.added.length, 1)
    const clone = w.em.dropletByName('web-001')!
    assert.deepEqual(fromB.added, [String(clone.id)])
    assert.ok(fromA instanceof NoChangeError, `A added nothing: ${String(fromA)}`)
    const group = w.em.droplets({ tag: 'web' })
    assert.deepEqual(group.map((d) => d.name).sort(), ['web-001', 'web-base'])
    assert.equal(w.em.deleted.filter((d) => d.name === 'web-001').length, 1, 'A’s own twin was deleted')
    assert.deepEqual(w.em.members(w.lb).sort(), group.map((d) => d.id).sort())
    assert.ok(!w.em.tags().some((t) => t.startsWith(CREATE_MARKER)), 'no create marker left')
  })
})

describe('digitalocean target after a crash', () => {
  let w: World
  const children: number[] = []
  afterEach(async () => {
    for (const pid of children.splice(0)) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
    }
    await w.em.close()
  })
  after(() => {})

  it('attaches a clone created by a Tide killed before it reached the load balancer', async () => {
    w = await world({ bootDelay: 1500 })
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, w.em.url, '2'], {
      env: { ...process.env, DIGITALOCEAN_TOKEN: w.em.token },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    children.push(child.pid!)
    let output = ''
    child.stdout.on('data', (d: Buffer) => (output += d.toString()))
    child.stderr.on('data', (d: Buffer) => (output += d.toString()))
    let gone = false
    const exited = new Promise((resolve) => child.once('exit', resolve)).then(() => (gone = true))
    // Kill it while the clone boots: created, not yet in the load balancer.
    for (let i = 0; i < 600 && !gone && !w.em.dropletByName('web-001'); i++)
      await new Promise((r) => setTimeout(r, 50))
    assert.ok(w.em.dropletByName('web-001'), `the child created the clone: ${output}`)
    child.kill('SIGKILL')
    await exited
    const clone = w.em.dropletByName('web-001')!
    assert.ok(!w.em.members(w.lb).includes(clone.id), 'not attached when Tide died')

    const t = target(w.em)
    await t.start(signal)
    const status = await t.status(signal)
    assert.equal(status.desired, 2, 'adopted')
    // start() finishes the job in the background; scale() waits for it.
    await assert.rejects(t.scale(2, { reason: 'after restart' }, signal), { code: 'E_NO_CHANGE' })
    assert.ok(w.em.members(w.lb).includes(clone.id), 'attached by the next run')
    assert.equal(w.em.droplets({ tag: 'web' }).length, 2, 'no second clone')
    assert.deepEqual(w.em.violations, [])
  })

  it('deletes an adopted clone that never became active', async () => {
    w = await world()
    w.em.neverActive('web-001')
    const c = await target(w.em).client.createDroplet({
      name: 'web-001',
      region: 'ams3',
      size: 's-1vcpu-1gb',
      image: w.snapshot,
      tags: ['web'],
    })
    const t = target(w.em, { boot_timeout: '300ms' })
    await t.start(signal)
    await assert.rejects(t.scale(1, { reason: 'test' }, signal), { code: 'E_NO_CHANGE' })
    assert.deepEqual(
      w.em.deleted.map((d) => d.id),
      [c.id],
    )
  })
})

describe('digitalocean target config', () => {
  it('names the field and the bad value', () => {
    const r = digitaloceanTargetSchema.safeParse({
      kind: 'digitalocean',
      tag: 'bad tag',
      base_droplet: 'b',
      snapshot: 's',
      remove: 'random',
    })
    assert.equal(r.success, false)
    const paths = r.error!.issues.map((i) => i.path.join('.'))
    assert.deepEqual(paths.sort(), ['remove', 'tag'])
  })

  it('defaults: prefix <tag>-, boot timeout 5m, drain 30s, newest first', () => {
    const c = digitaloceanTargetSchema.parse({
      kind: 'digitalocean',
      tag: 'web',
      base_droplet: 'b',
      snapshot: 's',
    })
    assert.equal(c.boot_timeout, 300_000)
    assert.equal(c.drain, 30_000)
    assert.equal(c.remove, 'newest')
    const t = createDigitalOceanTarget('g', { ...c, token: 'x' })
    assert.equal(t.settings.clonePrefix, 'web-')
  })
})
