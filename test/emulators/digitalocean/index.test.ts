/**
 * The emulator follows the official definition: every request Tide's client sends and every
 * answer the emulator gives are checked against ../shared/apis/digitalocean-openapi.yaml, and
 * the validator itself is shown to catch what does not match.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import {
  createDigitalOceanClient,
  type DigitalOceanClient,
} from '../../../src/targets/digitalocean/client.js'
import { DigitalOceanEmulator } from './index.js'
import { loadSpec } from './openapi.js'

describe('DigitalOcean emulator against the official API definition', () => {
  let em: DigitalOceanEmulator
  let client: DigitalOceanClient

  before(async () => {
    em = new DigitalOceanEmulator({ bootDelay: 0 })
    await em.start()
    client = createDigitalOceanClient({ token: em.token, apiUrl: em.url, backoff: 1 })
  })
  after(() => em.close())

  it('answers every endpoint Tide uses in the shapes the definition declares', async () => {
    const base = em.addDroplet({ name: 'web-base', tags: ['web'] })
    const snapshot = em.addSnapshot({ name: 'web-snapshot' })
    em.addImage({ name: 'Ubuntu 24.04', type: 'base', public: true, slug: 'ubuntu-24-04-x64' })
    const lb = em.addLoadBalancer({ name: 'web-lb', dropletIds: [base.id] })
    em.addLoadBalancer({ name: 'tagged-lb', tag: 'web' })
    em.setMetrics(base.id, {
      load_1: 0.5,
      memory_free: 2e8,
      bandwidth_public_outbound: 1.2,
      cpu: [10, 20, 30, 40, 50],
    })

    await client.getAccount()
    assert.equal((await client.listDroplets({ tagName: 'web' })).length, 1)
    const created = await client.createDroplet({
      name: 'web-001',
      region: 'nyc3',
      size: 's-1vcpu-1gb',
      image: snapshot.id,
      tags: ['web'],
      monitoring: true,
      ssh_keys: [289794],
      vpc_uuid: '760e09ef-dc84-11e8-981e-3cfdfeaae000',
      user_data: '#cloud-config\n',
    })
    assert.ok(await client.getDroplet(created.id))
    assert.equal(await client.getDroplet(999), undefined)
    const privateImages = await client.listImages({ private: true })
    assert.deepEqual(
      privateImages.map((i) => i.name),
      ['web-snapshot'],
      'private=true lists only private images',
    )
    await client.listSnapshots({ resourceType: 'droplet' })
    const lbs = await client.listLoadBalancers()
    assert.equal(lbs.length, 2)
    assert.deepEqual(
      lbs.find((l) => l.name === 'tagged-lb')?.droplet_ids?.sort(),
      [base.id, created.id].sort(),
    )
    await client.addDropletsToLoadBalancer(lb.id, [created.id])
    assert.deepEqual((await client.getLoadBalancer(lb.id))?.droplet_ids, [base.id, created.id])
    await client.removeDropletsFromLoadBalancer(lb.id, [created.id])
    await client.createTag('scaling-web-1700000000')
    await client.tagResources('scaling-web-1700000000', [
      { resource_id: String(base.id), resource_type: 'droplet' },
    ])
    assert.ok(em.droplet(base.id)!.tags.includes('scaling-web-1700000000'))
    assert.ok(await client.getTag('scaling-web-1700000000'))
    await client.listTags()
    await client.untagResources('scaling-web-1700000000', [
      { resource_id: String(base.id), resource_type: 'droplet' },
    ])
    await client.deleteTag('scaling-web-1700000000')
    const end = Math.floor(Date.now() / 1000)
    for (const metric of ['load_1', 'load_5', 'memory_free', 'memory_available', 'cpu'] as const) {
      await client.getDropletMetric(metric, { hostId: base.id, start: end - 240, end })
    }
    const bw = await client.getDropletMetric('bandwidth', {
      hostId: base.id,
      start: end - 240,
      end,
      interface: 'public',
      direction: 'outbound',
    })
    assert.equal(bw.data.result.length, 1)
    assert.ok(bw.data.result[0]!.values.every(([, v]) => v === '1.2'))
    await client.deleteDroplet(created.id)
    await client.deleteDroplet(created.id) // gone already: still fine
    assert.deepEqual(em.violations, [])
  })

  it('pages lists and links every page (per_page at most 200)', async () => {
    for (let i = 0; i < 450; i++) em.addDroplet({ name: `bulk-${i}`, tags: ['bulk'] })
    const all = await client.listDroplets({ tagName: 'bulk' })
    assert.equal(all.length, 450)
    assert.equal(new Set(all.map((d) => d.id)).size, 450)
    assert.equal(em.calls('GET', '/v2/droplets').filter((r) => r.query.tag_name === 'bulk').length, 3)
    const res = await fetch(`${em.url}/v2/droplets?tag_name=bulk&per_page=20&page=2`, {
      headers: { authorization: `Bearer ${em.token}` },
    })
    const body = (await res.json()) as { links: { pages: Record<string, string> }; meta: { total: number } }
    assert.equal(body.meta.total, 450)
    assert.match(body.links.pages.next!, /page=3/)
    assert.match(body.links.pages.prev!, /page=1/)
    assert.match(body.links.pages.last!, /page=23/)
    assert.ok(Number(res.headers.get('ratelimit-remaining')) < 5000)
    assert.ok(Number(res.headers.get('ratelimit-reset')) > Date.now() / 1000)
    assert.deepEqual(em.violations, [])
  })

  it('turns a new droplet active with addresses after the boot delay, or never when told', async () => {
    const slow = new DigitalOceanEmulator({ bootDelay: 200 })
    await slow.start()
    try {
      const c = createDigitalOceanClient({ token: slow.token, apiUrl: slow.url })
      const image = slow.addSnapshot({ name: 's' })
      slow.neverActive('stuck-1')
      const d = await c.createDroplet({ name: 'ok-1', region: 'nyc3', size: 's-1vcpu-1gb', image: image.id })
      const stuck = await c.createDroplet({
        name: 'stuck-1',
        region: 'nyc3',
        size: 's-1vcpu-1gb',
        image: image.id,
      })
      assert.equal(d.status, 'new')
      assert.deepEqual(d.networks.v4, [])
      await new Promise((r) => setTimeout(r, 250))
      const later = await c.getDroplet(d.id)
      assert.equal(later?.status, 'active')
      assert.equal(later?.networks.v4?.length, 2)
      assert.equal((await c.getDroplet(stuck.id))?.status, 'new')
      assert.deepEqual(slow.violations, [])
    } finally {
      await slow.close()
    }
  })

  it('creates from an image slug or id with SSH keys, user data, VPC, IPv6 and backups, as the API stores them', async () => {
    const own = em.addImage({ id: 12345678, name: 'web-image', type: 'custom', regions: ['sfo2'] })
    const fromSlug = await client.createDroplet({
      name: 'tpl-1',
      region: 'sfo2',
      size: 's-2vcpu-4gb',
      image: 'debian-12-x64',
      ssh_keys: [289794, '3b:16:e4:bf:8b:00:8b:b8:59:8c:a9:d3:f0:19:fa:45'],
      user_data: '#cloud-config\nruncmd:\n  - touch /test.txt\n',
      vpc_uuid: '5a4981aa-9653-4bd1-bef5-d6bff52042e4',
      ipv6: true,
      backups: true,
      monitoring: true,
      tags: ['tpl', 'env:prod'],
    })
    // The droplet as the API shows it: the public image it was made from, its features.
    assert.equal(fromSlug.image.slug, 'debian-12-x64')
    assert.equal(fromSlug.image.public, true)
    assert.equal(typeof fromSlug.image.id, 'number')
    assert.deepEqual(fromSlug.features, ['backups', 'ipv6', 'monitoring', 'private_networking'])
    assert.equal(fromSlug.vpc_uuid, '5a4981aa-9653-4bd1-bef5-d6bff52042e4')
    assert.deepEqual(fromSlug.tags, ['tpl', 'env:prod'])
    assert.ok(fromSlug.next_backup_window, 'a backup window once backups are on')
    const active = await client.getDroplet(fromSlug.id)
    assert.equal(active?.networks.v6?.length, 1, 'an IPv6 address once active')
    // What the API keeps but does not show (the metadata service serves user data to the droplet).
    const stored = em.droplet(fromSlug.id)!
    assert.deepEqual(stored.sshKeys, [289794, '3b:16:e4:bf:8b:00:8b:b8:59:8c:a9:d3:f0:19:fa:45'])
    assert.equal(stored.userData, '#cloud-config\nruncmd:\n  - touch /test.txt\n')
    assert.equal(stored.imageId, 'debian-12-x64')
    // A public image by id, a private one by id.
    const byId = await client.createDroplet({
      name: 'tpl-2',
      region: 'sfo2',
      size: 's-1vcpu-1gb',
      image: fromSlug.image.id!,
    })
    assert.equal(byId.image.slug, 'debian-12-x64')
    const fromOwn = await client.createDroplet({
      name: 'tpl-3',
      region: 'sfo2',
      size: 's-1vcpu-1gb',
      image: own.id,
    })
    assert.equal(fromOwn.image.name, 'web-image')
    assert.equal(fromOwn.image.public, false)
    assert.deepEqual(fromOwn.features, ['private_networking'], 'monitoring off unless asked')
    assert.deepEqual(em.violations, [])
  })

  it('refuses an unknown image, an image outside the region, and user data over 64 KiB with 422', async () => {
    const refused = async (body: Record<string, unknown>) => {
      const res = await fetch(`${em.url}/v2/droplets`, {
        method: 'POST',
        headers: { authorization: `Bearer ${em.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'bad-1', region: 'nyc3', size: 's-1vcpu-1gb', ...body }),
      })
      assert.equal(res.status, 422)
      return ((await res.json()) as { message: string }).message
    }
    assert.match(await refused({ image: 'no-such-slug' }), /invalid image/)
    assert.match(await refused({ image: 99 }), /invalid image/)
    const far = em.addSnapshot({ name: 'far', regions: ['sgp1'] })
    assert.match(await refused({ image: far.id }), /not available in nyc3/)
    assert.match(await refused({ image: 'ubuntu-24-04-x64', user_data: 'x'.repeat(64 * 1024 + 1) }), /64 KiB/)
    assert.equal(em.dropletByName('bad-1'), undefined)
    assert.deepEqual(em.violations, [])
  })

  it('rejects a wrong token with 401 and the definition’s error shape', async () => {
    const res = await fetch(`${em.url}/v2/droplets`, { headers: { authorization: 'Bearer nope' } })
    assert.equal(res.status, 401)
    assert.deepEqual(await res.json(), { id: 'unauthorized', message: 'Unable to authenticate you' })
  })

  it('records a request that breaks the definition', async () => {
    const before = em.violations.length
    await fetch(`${em.url}/v2/tags/web/resources`, {
      method: 'POST',
      headers: { authorization: `Bearer ${em.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ resources: [{ resource_id: 12, resource_type: 'server' }] }),
    })
    const added = em.violations.splice(before)
    assert.ok(
      added.some((v) => v.includes('resource_id: expected string')),
      added.join('\n'),
    )
    assert.ok(
      added.some((v) => v.includes('"server" is not one of')),
      added.join('\n'),
    )
  })

  it('answers 429 with ratelimit-remaining 0 once the limit is used up', async () => {
    const limited = new DigitalOceanEmulator({ rateLimit: 3 })
    await limited.start()
    try {
      const statuses: number[] = []
      for (let i = 0; i < 4; i++) {
        const res = await fetch(`${limited.url}/v2/account`, {
          headers: { authorization: `Bearer ${limited.token}` },
        })
        statuses.push(res.status)
        if (i === 3) assert.equal(res.headers.get('ratelimit-remaining'), '0')
      }
      assert.deepEqual(statuses, [200, 200, 200, 429])
      assert.deepEqual(limited.violations, [])
    } finally {
      await limited.close()
    }
  })
})

describe('the OpenAPI validator', () => {
  const spec = loadSpec()

  it('reports a request body that does not follow the definition', () => {
    const problems = spec.checkRequest('POST', '/v2/load_balancers/x/droplets', new URLSearchParams(), {
      droplet_ids: ['12'],
    })
    assert.ok(
      problems.some((p) => p.includes('droplet_ids[0]: expected integer')),
      problems.join('\n'),
    )
    assert.ok(
      spec
        .checkRequest('POST', '/v2/droplets', new URLSearchParams(), { name: 'a b', size: 's', image: 1 })
        .some((p) => p.includes('oneOf')),
    )
  })

  it('reports a missing required query parameter and an unknown operation', () => {
    const q = new URLSearchParams({ host_id: '1', start: '1' })
    assert.ok(
      spec.checkRequest('GET', '/v2/monitoring/metrics/droplet/load_1', q, undefined)[0]?.includes('end'),
    )
    assert.ok(
      spec.checkRequest('PATCH', '/v2/droplets', new URLSearchParams(), undefined)[0]?.includes('no such'),
    )
  })

  it('reports a response missing required droplet fields and rate-limit headers', () => {
    const problems = spec.checkResponse('GET', '/v2/droplets/1', 200, {}, { droplet: { id: 1, name: 'x' } })
    assert.ok(problems.some((p) => p.includes('header ratelimit-limit is missing')))
    assert.ok(problems.some((p) => p.includes('required property networks is missing')))
  })
})
