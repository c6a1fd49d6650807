/** Config validation of groups that go to zero: `min: 0` needs something that can wake the group. */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { ConfigError, ConfigProblem } from '../core/errors.js'
import { parseConfigText } from './load.js'

function problems(text: string): ConfigProblem[] {
  try {
    parseConfigText(text, 'tide.yaml', {})
  } catch (err) {
    return (err as ConfigError).problems
  }
  return []
}

describe('config: scale to zero', () => {
  test('min 0 without a route or a source that reports at zero names the group, the key and what to add', () => {
    const got = problems(`
groups:
  batch: { min: 0, max: 2, target: { kind: process, command: x }, policies: [{ kind: target, metric: cpu, per_instance: 0.5 }] }
`)
    assert.equal(got.length, 1)
    assert.equal(got[0]!.path, 'groups.batch.min')
    assert.equal(got[0]!.value, 0)
    assert.equal(
      got[0]!.message,
      "is 0 but nothing can wake group batch from zero: add a route (Tide's router holds the first request and wakes the group), " +
        'or a source that reports demand while the group has no instance (its sources: process; they read the instances, and at zero there are none)',
    )
  })

  test('min 0 on a droplet cluster that clones a base droplet is refused: the base is never removed', () => {
    const got = problems(`
groups:
  web:
    min: 0
    max: 3
    target: { kind: digitalocean, token: t, tag: web, base_droplet: web-base, snapshot: web-snap }
    route: { listen: 127.0.0.1:0 }
    policies: [{ kind: idle, after: 10s }]
`)
    assert.deepEqual(got, [
      {
        path: 'groups.web.min',
        message:
          'is 0 but group web clones the base droplet "web-base", which is never removed, so the group never goes ' +
          'below 1: set min: 1, or create droplets from `target.template` to let it reach zero',
        value: 0,
      },
    ])
  })

  test('min 0 with a route and an idle policy is valid', () => {
    const got = problems(`
groups:
  hello:
    min: 0
    max: 3
    target: { kind: process, command: x }
    route: { listen: 127.0.0.1:0 }
    policies:
      - { kind: idle, after: 10s }
      - { kind: target, metric: concurrency, per_instance: 10 }
`)
    assert.deepEqual(got, [])
  })

  test('an idle policy in a group whose min is not 0 is refused, naming the policy and min', () => {
    const got = problems(`
groups:
  web:
    min: 2
    max: 3
    target: { kind: process, command: x }
    route: { listen: 127.0.0.1:0 }
    policies: [{ kind: idle, after: 10s }]
`)
    assert.deepEqual(got, [
      {
        path: 'groups.web.policies[0]',
        message:
          'policy idle[0] takes the group to zero, but groups.web.min is 2: set min: 0, or remove the policy',
      },
    ])
  })

  test("idle's metrics must come from a source: `after` reads the router's, so it needs a route", () => {
    const got = problems(`
groups:
  web:
    min: 0
    max: 3
    target: { kind: process, command: x }
    sources: [{ kind: router }]
    policies: [{ kind: idle, metrics: [{ metric: queue_depth, window: 1m }] }]
`)
    assert.ok(
      got.some(
        (p) => p.path === 'groups.web.sources[0]' && /needs the group to have a route/.test(p.message),
      ),
    )
    assert.ok(
      got.some((p) => p.path === 'groups.web.policies[0]' && /reads metric "queue_depth"/.test(p.message)),
    )
  })
})
