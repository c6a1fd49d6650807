/**
 * Seed 002 end to end: do-scaler's shipped configuration (conf.d/web.cfg with mem_avail.json,
 * loadavg.json and down.json, and the droplet template conf.d/droplets/web.json), converted by
 * `tide import do-scaler` and run as it comes out (nothing to set by hand but the token) by a
 * real Tide daemon against the DigitalOcean emulator, whose droplets serve do-agent metrics.
 * The group is the droplets do-scaler made (`web-1`, `web-2`). Low available memory adds one,
 * created from the template (size, image, region, SSH keys, tags); plenty of memory and low load
 * removes one — the oldest, as do-scaler destroyed the first droplet listed — and the group
 * never goes below the `[digitalocean_destroy_droplet] min`.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { stringify } from 'yaml'
import { convertDoScaler } from '../../../src/import/do-scaler/convert.js'
import { startTestDaemon, type TestDaemon, waitFor } from '../../support/daemon.js'
import { DigitalOceanEmulator, type EmDroplet } from './index.js'

/** Parsed JSON and raw config, read and edited field by field in the assertions. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON of the shapes under test
type Json = Record<string, any>

const SHIPPED = fileURLToPath(new URL('../../../src/import/do-scaler/testdata/shipped', import.meta.url))
const GiB = 1024 ** 3
const ENV = ['DIGITALOCEAN_TOKEN', 'DIGITALOCEAN_API_URL']
/** The template's `image` (conf.d/droplets/web.json): a private image of the account. */
const IMAGE = 12345678

describe('tide import do-scaler, then tide run, on a droplet cluster', () => {
  const em = new DigitalOceanEmulator({ agents: true, bootDelay: 50 })
  const dir = mkdtempSync(join(tmpdir(), 'tide-do-scaler-'))
  const saved = new Map(ENV.map((k) => [k, process.env[k]]))
  let daemon: TestDaemon | undefined
  let first: EmDroplet
  let second: EmDroplet
  let load = { free: 0.5 * GiB, cached: 0.5 * GiB, load: 0.3 }

  /** Every droplet of the group reports `load` (new ones too, once their agent is up). */
  const report = () => {
    for (const d of em.droplets({ tag: 'web' })) {
      em.setMetrics(d.id, {
        memory_free: load.free,
        memory_cached: load.cached,
        load_1: load.load,
        load_5: load.load,
        load_15: load.load,
      })
    }
  }
  const names = () =>
    em
      .droplets({ tag: 'web' })
      .map((d) => d.name)
      .sort()

  before(async () => {
    await em.start()
    em.addImage({ id: IMAGE, name: 'web-image', type: 'custom', regions: ['sfo2'] })
    // What do-scaler left: droplets from the template, named by `"web-{}".format(count + 1)`.
    const made = { tags: ['web', 'autoscaled'], region: 'sfo2', size: 's-2vcpu-4gb', imageId: IMAGE }
    first = em.addDroplet({ ...made, name: 'web-1', createdAt: Date.now() - 3_600_000 })
    second = em.addDroplet({ ...made, name: 'web-2', createdAt: Date.now() - 60_000 })
    report()
    Object.assign(process.env, { DIGITALOCEAN_TOKEN: em.token, DIGITALOCEAN_API_URL: em.url })
  })
  after(async () => {
    await daemon?.stop()
    await em.close()
    rmSync(dir, { recursive: true, force: true })
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  })

  it('scales up from the template on low available memory, and down, oldest first, to the min', async () => {
    const { config } = convertDoScaler(SHIPPED)
    assert.ok(!JSON.stringify(config).includes('${'), 'no variable to set but the token')
    const file = join(dir, 'tide.yaml')
    writeFileSync(file, stringify(config))
    await waitFor('the do-agents to serve', 5_000, () => em.agentAddress(first.id) !== undefined)
    daemon = await startTestDaemon(file, (raw) => {
      const web = raw.groups.web as Json
      // The imported pacing is do-scaler's 120 s; the test cannot wait that long.
      web.interval = '300ms'
      web.cooldown = '3s'
      Object.assign(web.target, { poll: '50ms', drain: '0s' })
      Object.assign(web.sources[0], { port: em.agentPort, timeout: '1s' })
    })

    // mem_avail.json: mean(MemFree + Cached) 1 GiB <= 1.93 GiB → one more droplet.
    await waitFor('web-3', 20_000, () => {
      report()
      return em.dropletByName('web-3') !== undefined
    })
    load = { free: 3 * GiB, cached: 0.5 * GiB, load: 0.1 } // down.json holds: every condition
    report()
    // The template (conf.d/droplets/web.json), as do-scaler's POST /v2/droplets had it.
    const added = em.dropletByName('web-3')!
    assert.equal(added.region, 'sfo2')
    assert.equal(added.size, 's-2vcpu-4gb')
    assert.equal(added.imageId, IMAGE)
    assert.deepEqual(added.sshKeys, ['3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa'])
    assert.deepEqual([...added.tags].sort(), ['autoscaled', 'web'])
    assert.equal(added.monitoring, true, 'do-agent installed')

    // down.json: the oldest goes (do-scaler destroyed the first listed).
    await waitFor('web-1 to be removed', 30_000, () => {
      report()
      return em.droplet(first.id) === undefined
    })
    assert.ok(em.droplet(second.id) && em.droplet(added.id), 'the newer ones stay')
    // At min 2 ([digitalocean_destroy_droplet] min) nothing more goes, however idle.
    await new Promise((r) => setTimeout(r, 1500))
    report()
    assert.deepEqual(names(), ['web-2', 'web-3'])
    assert.equal(em.calls('POST', '/v2/droplets').length, 1, 'one droplet created, no duplicate')
    assert.deepEqual(em.violations, [], 'every request and answer follows the API definition')
  })
})
