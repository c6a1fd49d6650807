/**
 * The `digitalocean` target in template mode (seed 002's JSON droplet template): droplets are
 * created from `template`, there is no base droplet, the group may go to 0. Against the
 * emulator (test/emulators/digitalocean), which checks every request and answer against the
 * official API definition, through the target's real client.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, it } from 'node:test'
import {
  DigitalOceanEmulator,
  type EmDroplet,
  type EmLoadBalancer,
} from '../../../test/emulators/digitalocean/index.js'
import { parseConfigText } from '../../config/load.js'
import { ConfigError } from '../../core/errors.js'
import type { Instance } from '../../core/types.js'
import { CREATE_MARKER } from './client.js'
import { createDigitalOceanTarget, type DigitalOceanTargetConfig, digitaloceanTargetSchema } from './index.js'
import type { DigitalOceanTarget } from './target.js'

const signal = new AbortController().signal
const CHILD = fileURLToPath(new URL('../../../test/emulators/digitalocean/scale-child.ts', import.meta.url))
const VPC = '5a4981aa-9653-4bd1-bef5-d6bff52042e4'
const USER_DATA = '#cloud-config\nruncmd:\n  - echo hello > /etc/motd\n'

const TEMPLATE = {
  image: 'ubuntu-24-04-x64',
  size: 's-2vcpu-4gb',
  region: 'ams3',
  name: 'web-{}',
  ssh_keys: [289794, '3b:16:e4:bf:8b:00:8b:b8:59:8c:a9:d3:f0:19:fa:45'],
  vpc_uuid: VPC,
  tags: ['firewall-web'],
  user_data: USER_DATA,
}

async function emulator(bootDelay = 30): Promise<{ em: DigitalOceanEmulator; lb: EmLoadBalancer }> {
  const em = new DigitalOceanEmulator({ bootDelay, region: 'ams3' })
  await em.start()
  const lb = em.addLoadBalancer({ name: 'web-lb', region: 'ams3' })
  return { em, lb }
}

function target(
  em: DigitalOceanEmulator,
  extra: Record<string, unknown> = {},
  template: Record<string, unknown> = {},
): DigitalOceanTarget {
  const config = digitaloceanTargetSchema.parse({
    kind: 'digitalocean',
    token: em.token,
    api_url: em.url,
    tag: 'web',
    template: { ...TEMPLATE, ...template },
    load_balancer: 'web-lb',
    poll: '20ms',
    drain: '0s',
    ...extra,
  })
  return createDigitalOceanTarget('web', config)
}

const group = (em: DigitalOceanEmulator) => em.droplets({ tag: 'web' })
const names = (em: DigitalOceanEmulator) =>
  group(em)
    .map((d) => d.name)
    .sort()

describe('digitalocean target from a template', () => {
  let em: DigitalOceanEmulator
  let lb: EmLoadBalancer
  beforeEach(async () => {
    ;({ em, lb } = await emulator())
  })
  afterEach(async () => {
    assert.deepEqual(em.violations, [], 'every request and answer follows the API definition')
    assert.ok(!em.tags().some((t) => t.startsWith(CREATE_MARKER)), 'no create marker left')
    await em.close()
  })

  it('scales 0 → 2: droplets made from the template, the group tag added, unique names, in the LB', async () => {
    em.addDroplet({ name: 'web-2', tags: ['elsewhere'] }) // the name is taken outside the group
    const t = target(em, {}, { ipv6: true })
    await t.start(signal)
    assert.deepEqual(await t.status(signal), { desired: 0, instances: [], ready: 0 })
    const progress: string[] = []
    const result = await t.scale(2, { reason: 'test', progress: (m) => progress.push(m) }, signal)
    assert.equal(result.from, 0)
    assert.equal(result.to, 2)
    assert.deepEqual(names(em), ['web-1', 'web-3'], 'web-2 is skipped: a droplet has that name')
    const made = group(em)
    for (const d of made) {
      assert.equal(d.region, 'ams3')
      assert.equal(d.size, 's-2vcpu-4gb')
      assert.equal(d.imageId, 'ubuntu-24-04-x64')
      assert.equal(d.vpcUuid, VPC)
      assert.deepEqual(d.sshKeys, TEMPLATE.ssh_keys)
      assert.equal(d.userData, USER_DATA)
      assert.equal(d.monitoring, true, 'monitoring is on unless the template says otherwise')
      assert.equal(d.ipv6, true)
      assert.equal(d.backups, false)
      assert.deepEqual([...d.tags].sort(), ['firewall-web', 'web'], "the group's tag and the template's")
    }
    assert.deepEqual(lb.dropletIds.sort(), made.map((d) => d.id).sort(), 'both in the load balancer')
    assert.deepEqual(result.added.sort(), made.map((d) => String(d.id)).sort())
    assert.ok(
      progress.some((m) =>
        /creating 2 droplet\(s\) from the template \(s-2vcpu-4gb in ams3, image ubuntu-24-04-x64\): web-1, web-3/.test(
          m,
        ),
      ),
      progress.join('\n'),
    )
    // The API's view of a droplet made from a slug: the public image, its features.
    const api = await t.client.getDroplet(made[0]!.id, signal)
    assert.equal(api?.image.slug, 'ubuntu-24-04-x64')
    assert.equal(api?.image.public, true)
    assert.ok(api?.features.includes('ipv6') && api.features.includes('monitoring'))
    assert.equal(api?.networks.v6?.length, 1)
    const status = await t.status(signal)
    assert.equal(status.ready, 2)
    assert.ok(
      status.instances.every((i) => !i.protected),
      'nothing is protected: there is no base',
    )
    // describe(): the template instead of the base; user data by its size only.
    const d = t.describe()
    assert.equal(d.mode, 'template')
    assert.equal(d.base, null)
    assert.equal(d.baseDroplet, '')
    assert.equal(d.region, 'ams3')
    assert.equal(d.size, 's-2vcpu-4gb')
    assert.equal(d.template?.image, 'ubuntu-24-04-x64')
    assert.equal(d.template?.name, 'web-{}')
    assert.equal(d.template?.userData, `(${Buffer.byteLength(USER_DATA)} bytes)`)
    assert.ok(!JSON.stringify(d).includes('echo hello'), 'the user data itself is not shown')
    await assert.rejects(t.scale(2, { reason: 'again' }, signal), {
      code: 'E_NO_CHANGE',
      message: /the group already has 2 droplet\(s\)/,
    })
  })

  it('scales down newest first, out of the LB and drained, all the way to 0', async () => {
    const old = em.addDroplet({ name: 'web-1', tags: ['web'], createdAt: Date.now() - 60_000 })
    const young = em.addDroplet({ name: 'web-2', tags: ['web'] })
    lb.dropletIds.push(old.id, young.id)
    const t = target(em, { drain: '20ms' })
    const drained: Instance[] = []
    const plan = {
      reason: 'test',
      drain: async (instance: Instance) => {
        assert.ok(!em.members(lb).includes(Number(instance.id)), 'out of the LB before the drain')
        assert.ok(em.droplet(Number(instance.id)), 'still there while draining')
        drained.push(instance)
      },
    }
    const down = await t.scale(1, plan, signal)
    assert.deepEqual(down.removed, [String(young.id)])
    assert.deepEqual(names(em), ['web-1'])
    assert.deepEqual(em.members(lb), [old.id])
    // No base droplet: 0 is a size like any other.
    const zero = await t.scale(0, plan, signal)
    assert.deepEqual(zero, { from: 1, to: 0, added: [], removed: [String(old.id)] })
    assert.deepEqual(
      drained.map((i) => i.id),
      [String(young.id), String(old.id)],
    )
    assert.deepEqual(group(em), [])
    assert.deepEqual(em.members(lb), [])
    await assert.rejects(t.scale(0, { reason: 'test' }, signal), {
      code: 'E_NO_CHANGE',
      message: /the group already has 0 droplet\(s\)/,
    })
    // And back up from 0: the numbers go on from none (names are free again).
    await t.scale(1, { reason: 'wake' }, signal)
    assert.deepEqual(names(em), ['web-1'])
  })

  it("adopts do-scaler's droplets (web-1, web-2) and numbers on; never removes a tagged droplet not named by the pattern", async () => {
    const first = em.addDroplet({ name: 'web-1', tags: ['web'], createdAt: Date.now() - 120_000 })
    em.addDroplet({ name: 'web-2', tags: ['web'], createdAt: Date.now() - 60_000 })
    const db = em.addDroplet({ name: 'web-database', tags: ['web'], createdAt: Date.now() - 180_000 })
    const t = target(em, { remove: 'oldest' })
    await t.start(signal)
    const up = await t.scale(4, { reason: 'test' }, signal)
    assert.equal(up.from, 3, 'every tagged droplet counts')
    assert.deepEqual(names(em), ['web-1', 'web-2', 'web-3', 'web-database'])
    const status = await t.status(signal)
    const byName = (name: string) => status.instances.find((i) => i.detail?.startsWith(name))
    assert.equal(byName('web-database')?.protected, true)
    assert.match(byName('web-database')?.detail ?? '', /not named web-N: never removed/)
    assert.equal(byName('web-1')?.protected, undefined)
    // Oldest first, as do-scaler destroyed the first listed: web-1, never the database.
    const down = await t.scale(1, { reason: 'test' }, signal)
    assert.equal(down.removed[0], String(first.id))
    assert.deepEqual(names(em), ['web-database'])
    assert.ok(em.droplet(db.id))
    await assert.rejects(t.scale(0, { reason: 'test' }, signal), {
      code: 'E_NO_CHANGE',
      message: /no droplet to remove: 1 tagged droplet\(s\) are not named web-N/,
    })
  })

  it('pads numbers when the pattern says {:03d}, and boots an image given by id (a snapshot)', async () => {
    const snapshot = em.addSnapshot({ name: 'web-image', regions: ['ams3'] })
    const t = target(em, {}, { name: 'app-{:03d}.example.com', image: String(snapshot.id) })
    await t.scale(2, { reason: 'test' }, signal)
    assert.deepEqual(names(em), ['app-001.example.com', 'app-002.example.com'])
    for (const d of group(em)) assert.equal(d.imageId, snapshot.id, 'a numeric string is an image id')
    const api = await t.client.getDroplet(group(em)[0]!.id, signal)
    assert.equal(api?.image.id, snapshot.id)
    assert.equal(api?.image.name, 'web-image')
  })

  it('a create whose answer was lost is found by its marker tag: one droplet, not two', async () => {
    em.inject({ method: 'POST', path: '/v2/droplets', fault: { kind: 'after', status: 500 } })
    const result = await target(em).scale(1, { reason: 'test' }, signal)
    assert.equal(group(em).length, 1)
    assert.deepEqual(result.added, [String(group(em)[0]!.id)])
    assert.equal(em.calls('POST', '/v2/droplets').length, 1, 'not created again')
  })

  it('an image the API refuses fails the scale-up with its answer, and leaves nothing behind', async () => {
    const t = target(em, {}, { image: 'no-such-image' })
    await assert.rejects(t.scale(1, { reason: 'test' }, signal), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'E_TARGET')
      assert.match(err.message, /web-1: DigitalOcean API POST \/v2\/droplets answered 422 .*invalid image/)
      return true
    })
    assert.deepEqual(group(em), [])
  })

  it('two operations racing from 0 make exactly the size asked for, with no duplicate name', async () => {
    const results = await Promise.allSettled([
      target(em).scale(2, { reason: 'a' }, signal),
      target(em).scale(2, { reason: 'b' }, signal),
    ])
    const all = names(em)
    assert.equal(new Set(all).size, all.length, `no duplicate name: ${all.join(', ')}`)
    assert.equal(all.length, 2, `exactly the size both asked for: ${all.join(', ')}`)
    assert.deepEqual(
      em.members(lb).sort(),
      group(em)
        .map((d) => d.id)
        .sort(),
    )
    assert.ok(
      results.some((r) => r.status === 'fulfilled'),
      JSON.stringify(results),
    )
  })
})

describe('digitalocean template group after a crash', () => {
  let em: DigitalOceanEmulator
  let lb: EmLoadBalancer
  const children: number[] = []
  afterEach(async () => {
    for (const pid of children.splice(0)) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
    }
    await em.close()
  })

  it('finishes a scale-up killed before the load balancer: adopted, attached, no second droplet', async () => {
    ;({ em, lb } = await emulator(1500))
    const extra = JSON.stringify({ template: TEMPLATE })
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, em.url, '1', extra], {
      env: { ...process.env, DIGITALOCEAN_TOKEN: em.token },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    children.push(child.pid!)
    let output = ''
    child.stdout.on('data', (d: Buffer) => (output += d.toString()))
    child.stderr.on('data', (d: Buffer) => (output += d.toString()))
    let gone = false
    const exited = new Promise((resolve) => child.once('exit', resolve)).then(() => (gone = true))
    for (let i = 0; i < 600 && !gone && !em.dropletByName('web-1'); i++)
      await new Promise((r) => setTimeout(r, 50))
    const made: EmDroplet | undefined = em.dropletByName('web-1')
    assert.ok(made, `the child created the droplet: ${output}`)
    child.kill('SIGKILL')
    await exited
    assert.ok(!em.members(lb).includes(made.id), 'not attached when Tide died')

    const t = target(em)
    await t.start(signal)
    assert.equal((await t.status(signal)).desired, 1, 'adopted')
    // start() finishes the job in the background; scale() waits for it.
    await assert.rejects(t.scale(1, { reason: 'after restart' }, signal), { code: 'E_NO_CHANGE' })
    assert.deepEqual(em.members(lb), [made.id], 'attached by the next run')
    assert.deepEqual(names(em), ['web-1'], 'no second droplet')
    assert.equal(em.calls('POST', '/v2/droplets').length, 1)
    // finishPending() is idempotent: a second pass has nothing left to do.
    assert.deepEqual(await t.finishPending(await t.readGroup(signal), { wait: true, signal }), [])
    assert.deepEqual(em.violations, [])
  })
})

describe('digitalocean target config: base droplet or template', () => {
  const problems = (yaml: string): Array<{ path: string; message: string }> => {
    try {
      parseConfigText(yaml, 'tide.yaml', {})
      return []
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err))
      return err.problems.map((p) => ({ path: p.path, message: p.message }))
    }
  }
  const config = (target: string, group = '') => `
groups:
  web:
    max: 4${group}
    target: { kind: digitalocean, token: t, tag: web, ${target} }
    policies: [{ kind: threshold, up: { conditions: ["load_1 > 0.8"] } }]
`

  it('both ways at once, or neither, is an error naming the fields', () => {
    const both = problems(
      config(
        'base_droplet: web-base, snapshot: web-snap, template: { image: ubuntu-24-04-x64, size: s-1vcpu-1gb, region: nyc3 }',
      ),
    )
    assert.equal(both.length, 1, JSON.stringify(both))
    assert.equal(both[0]!.path, 'groups.web.target.template')
    assert.match(both[0]!.message, /cannot go with base_droplet and snapshot/)
    const neither = problems(config('load_balancer: web-lb'))
    assert.equal(neither.length, 1, JSON.stringify(neither))
    assert.equal(neither[0]!.path, 'groups.web.target.template')
    assert.match(neither[0]!.message, /is required, or `base_droplet` with `snapshot`/)
    const half = problems(config('base_droplet: web-base'))
    assert.deepEqual(
      half.map((p) => p.path),
      ['groups.web.target.snapshot'],
    )
  })

  it('base-droplet keys beside a template are errors that say where they go', () => {
    const found = problems(
      config(
        'clone_prefix: web-, ssh_keys: [1], user_data: x, template: { image: 1, size: s-1vcpu-1gb, region: nyc3 }',
      ),
    )
    assert.deepEqual(
      found.map((p) => [p.path, p.message.replace(/.*use /, '')]),
      [
        ['groups.web.target.clone_prefix', 'template.name (e.g. "web-{}")'],
        ['groups.web.target.ssh_keys', 'template.ssh_keys'],
        ['groups.web.target.user_data', 'template.user_data'],
      ],
    )
  })

  it('bad template values name the field and the value', () => {
    const found = problems(
      config('template: { image: "My Snapshot", size: s-1vcpu-1gb, region: nyc3, name: web, color: red }'),
    )
    const at = (path: string) => found.find((p) => p.path === path)?.message ?? ''
    assert.match(at('groups.web.target.template.image'), /slug .* or an image id .*not "My Snapshot"/)
    assert.match(at('groups.web.target.template.name'), /needs a `\{\}` where the droplet’s number goes/)
    assert.equal(at('groups.web.target.template.color'), 'unknown key')
    assert.match(
      problems(config('template: { image: 1, size: s-1vcpu-1gb }'))
        .map((p) => `${p.path}: ${p.message}`)
        .join('\n'),
      /groups\.web\.target\.template\.region: is required/,
    )
  })

  it('a template group may have min 0 (no base droplet to keep)', () => {
    const yaml = config(
      'template: { image: ubuntu-24-04-x64, size: s-1vcpu-1gb, region: nyc3 }, port: 8080',
      '\n    min: 0\n    route: { listen: "127.0.0.1:0" }',
    )
    assert.deepEqual(problems(yaml), [])
    const parsed = parseConfigText(yaml, 'tide.yaml', {})
    assert.equal(parsed.groups.web!.min, 0)
    const target = parsed.groups.web!.target as { template?: { name?: string; monitoring: boolean } }
    assert.equal(target.template?.monitoring, true)
    const t = createDigitalOceanTarget('web', parsed.groups.web!.target as DigitalOceanTargetConfig)
    assert.equal(t.settings.template?.name, 'web-{}', 'default name: <tag>-{}')
  })
})
