/**
 * `tide droplet-autoscale` as a user runs it (src/cli/commands/droplet-autoscale.ts): the
 * seed's JSON on stdout and nothing else, exit codes a cron job can act on, and
 * `--print-config` giving a config `tide run` accepts.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { DigitalOceanEmulator } from '../../../test/emulators/digitalocean/index.js'
import { main } from '../../cli/main.js'
import { parseConfigText } from '../../config/load.js'

async function tide(args: string[], env: Record<string, string>) {
  let stdout = ''
  let stderr = ''
  const code = await main(['node', 'tide', 'droplet-autoscale', ...args], {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env,
  })
  return { code, stdout, stderr }
}

describe('tide droplet-autoscale', () => {
  const em = new DigitalOceanEmulator({ bootDelay: 30 })
  let env: Record<string, string>
  before(async () => {
    await em.start()
    const base = em.addDroplet({ name: 'scale-me', tags: ['cluster'], region: 'lon1' })
    em.addSnapshot({ name: 'scale-me-snap', regions: ['lon1'] })
    em.addLoadBalancer({ name: 'cluster-lb', dropletIds: [base.id], region: 'lon1' })
    env = {
      API_TOKEN: em.token,
      CLUSTER_TAG: 'cluster',
      BASE_DROPLET: 'scale-me',
      SNAPSHOT: 'scale-me-snap',
      CLONE_PREFIX: 'auto',
      LOAD_BALANCER: 'cluster-lb',
      MAX_DROPLETS_IN_CLUSTER: '2',
      SCALING_INTERVAL: '180',
      DIGITALOCEAN_API_URL: em.url,
      TIDE_DRAIN: '0s',
    }
  })
  after(() => em.close())

  test('--op info prints the seed JSON (one-space indent, a newline) and exits 0', async () => {
    const r = await tide(['--op', 'info'], env)
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^\{\n "config": \{\n {2}"tag": "cluster",/)
    assert.ok(r.stdout.endsWith('}\n'))
    const body = JSON.parse(r.stdout) as {
      config: { scalingInterval: number }
      info: { dropletCount: number }
    }
    assert.equal(body.config.scalingInterval, 180)
    assert.equal(body.info.dropletCount, 1)
  })

  test('no --op: the seed message on stdout, compact, exit 2', async () => {
    const r = await tide([], env)
    assert.equal(r.code, 2)
    assert.equal(
      r.stdout,
      '{"error":"unknown or missing op parameter (i.e. /scale?op=[info|up|down|status|auto])","code":"E_BAD_REQUEST"}\n',
    )
  })

  test('bad variables: every one named, exit 2', async () => {
    const r = await tide(['--op', 'status'], { ...env, CLUSTER_TAG: '', SCALE_UP_WHEN_LOAD: '900' })
    assert.equal(r.code, 2)
    const body = JSON.parse(r.stdout) as { error: string }
    assert.match(body.error, /CLUSTER_TAG/)
    assert.match(body.error, /SCALE_UP_WHEN_LOAD/)
  })

  test('up, then up at the maximum: exit 0, then the seed message and exit 1', async () => {
    const first = await tide(['--op', 'up'], env)
    assert.equal(first.code, 0, first.stdout + first.stderr)
    assert.deepEqual(JSON.parse(first.stdout), {
      success: true,
      msg: 'droplet created and added to load balancer',
    })
    const second = await tide(['--op', 'up'], env)
    assert.equal(second.code, 1)
    assert.deepEqual(JSON.parse(second.stdout), { error: 'cluster is at maximum size', code: 'E_AT_BOUNDS' })
    assert.equal(em.droplets({ tag: 'cluster' }).length, 2)
  })

  test('--print-config gives a config tide run accepts, with the same bounds, cooldown and thresholds', async () => {
    const r = await tide(['--print-config'], env)
    assert.equal(r.code, 0, r.stderr)
    assert.ok(!r.stdout.includes(em.token), 'the token is never written into the file')
    const config = parseConfigText(r.stdout, 'tide.yaml', { DIGITALOCEAN_TOKEN: em.token })
    const group = config.groups.cluster!
    assert.equal(group.min, 1)
    assert.equal(group.max, 2)
    assert.equal(group.cooldown, 180_000)
    assert.equal(group.target.kind, 'digitalocean')
    const policy = group.policies[0] as unknown as {
      up: { match: string; conditions: Array<{ metric: string }> }
      down: { match: string }
    }
    assert.equal(policy.up.match, 'any')
    assert.equal(policy.down.match, 'all')
    assert.deepEqual(
      policy.up.conditions.map((c) => c.metric),
      ['load_1', 'memory_free', 'bandwidth_out'],
    )
  })
})
