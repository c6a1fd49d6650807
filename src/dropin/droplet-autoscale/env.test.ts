import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { ConfigError } from '../../core/errors.js'
import { readDropinEnv } from './env.js'

const REQUIRED = {
  API_TOKEN: 't',
  CLUSTER_TAG: 'web',
  BASE_DROPLET: 'web-base',
  SNAPSHOT: 'web-snap',
  CLONE_PREFIX: 'auto',
  LOAD_BALANCER: 'web-lb',
}

function problems(env: Record<string, string>): Record<string, string> {
  try {
    readDropinEnv(env)
  } catch (err) {
    assert.ok(err instanceof ConfigError)
    return Object.fromEntries(err.problems.map((p) => [p.path, p.message]))
  }
  return {}
}

describe('droplet-autoscale environment', () => {
  test("defaults are the README's (SCALING_INTERVAL 120, not the code's 180); empty means default", () => {
    const c = readDropinEnv({ ...REQUIRED, MAX_DROPLETS_IN_CLUSTER: '', SCALING_INTERVAL: ' ' })
    assert.equal(c.maxDroplets, 5)
    assert.equal(c.scalingInterval, 120)
    assert.deepEqual(c.scaleUpWhen, { load: 0.35, freeMemory: 800, outboundBandwidth: 2.5 })
    assert.deepEqual(c.scaleDownWhen, { load: 0.15, freeMemory: 900, outboundBandwidth: 1.5 })
    assert.equal(c.apiUrl, 'https://api.digitalocean.com')
    assert.equal(c.drain, 30_000)
    assert.equal(c.bootTimeout, 300_000)
    assert.equal(c.remove, 'newest')
    assert.deepEqual(c.warnings, [])
  })

  test('the validation ranges, at and past each edge, name the variable', () => {
    const edges: Array<[string, string, string]> = [
      ['MAX_DROPLETS_IN_CLUSTER', '2', '1'],
      ['MAX_DROPLETS_IN_CLUSTER', '1000', '1001'],
      ['SCALING_INTERVAL', '30', '29'],
      ['SCALING_INTERVAL', '2400', '2401'],
      ['SCALE_UP_WHEN_LOAD', '0.01', '0.009'],
      ['SCALE_UP_WHEN_LOAD', '200', '200.5'],
      ['SCALE_UP_WHEN_FREE_MEMORY', '50000', '50001'],
      ['SCALE_UP_WHEN_OUTBOUND_BANDWIDTH', '100000', '100001'],
      ['SCALE_DOWN_WHEN_LOAD', '0.01', '0'],
      ['SCALE_DOWN_WHEN_FREE_MEMORY', '0.01', '-1'],
      ['SCALE_DOWN_WHEN_OUTBOUND_BANDWIDTH', '100000', '1e6'],
    ]
    for (const [name, ok, bad] of edges) {
      assert.deepEqual(problems({ ...REQUIRED, [name]: ok }), {}, `${name}=${ok} is valid`)
      const got = problems({ ...REQUIRED, [name]: bad })
      assert.match(
        got[name] ?? '',
        new RegExp(`not "${bad.replace('.', '\\.')}"`),
        `${name}=${bad} is refused`,
      )
    }
  })

  test('not-a-number is an error, never 0 (the seed turned "5.5" into 0 for integers)', () => {
    const got = problems({
      ...REQUIRED,
      MAX_DROPLETS_IN_CLUSTER: '5.5',
      SCALE_UP_WHEN_LOAD: '0.3x',
      TIDE_DRAIN: 'soon',
      TIDE_REMOVE: 'random',
    })
    assert.match(got.MAX_DROPLETS_IN_CLUSTER!, /whole number from 2 to 1000.*not "5\.5"/)
    assert.match(got.SCALE_UP_WHEN_LOAD!, /number from 0\.01 to 200.*not "0\.3x"/)
    assert.match(got.TIDE_DRAIN!, /duration/)
    assert.match(got.TIDE_REMOVE!, /newest, oldest, least-busy/)
  })

  test('the prefix may contain "-" but nothing a droplet name or tag cannot have; the tag must be a tag', () => {
    assert.equal(readDropinEnv({ ...REQUIRED, CLONE_PREFIX: 'web-clone-' }).clonePrefix, 'web-clone-')
    assert.match(problems({ ...REQUIRED, CLONE_PREFIX: 'web_1' }).CLONE_PREFIX!, /letters, digits and "-"/)
    assert.match(problems({ ...REQUIRED, CLUSTER_TAG: 'a b' }).CLUSTER_TAG!, /tag name/)
  })

  test('thresholds with no gap between up and down are a warning (the cluster may flap), not an error', () => {
    const c = readDropinEnv({ ...REQUIRED, SCALE_DOWN_WHEN_LOAD: '0.5', SCALE_UP_WHEN_LOAD: '0.4' })
    assert.equal(c.warnings.length, 1)
    assert.match(c.warnings[0]!, /SCALE_DOWN_WHEN_LOAD \(0\.5\) is not below SCALE_UP_WHEN_LOAD \(0\.4\)/)
  })
})
