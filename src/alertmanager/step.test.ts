import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { parseBy, parseDirection, plan, resolve, serviceMessage } from './step.js'
import { silentLogger } from '../engine/log.js'
import { SwarmApi } from '../targets/docker-swarm/client.js'
import { receiverSchema } from './config.js'
import { parseWebhook } from './payload.js'
import { Receiver } from './receiver.js'

/** Reading alerts needs no engine: the Swarm client is never called. */
function alertActionsFor(body: unknown, query = '') {
  const receiver = new Receiver(receiverSchema.parse({}), {
    logger: silentLogger(),
    swarm: new SwarmApi({ host: 'unix:///nonexistent.sock' }),
  })
  return receiver.alertActions(new URLSearchParams(query), parseWebhook(body))
}

const keys = {
  min: 'com.df.scaleMin',
  max: 'com.df.scaleMax',
  up_by: 'com.df.scaleUpBy',
  down_by: 'com.df.scaleDownBy',
}
const defaults = { min: 1, max: 5, up_by: 1, down_by: 1 }

describe('step precedence: query > alert label > service label > default', () => {
  const labels = { 'com.df.scaleUpBy': '3', 'com.df.scaleDownBy': '2' }
  const cases: Array<
    [string, { query?: number; alert?: number; labels: Record<string, string> }, number, string]
  > = [
    ['the query wins over everything', { query: 4, alert: 2, labels }, 4, 'query'],
    ["the alert's by wins over the label", { alert: 2, labels }, 2, 'alert'],
    ["the service's label wins over the default", { labels }, 3, 'label'],
    ['the default when nothing says', { labels: {} }, 1, 'default'],
    ['a label of 0 falls back to the default', { labels: { 'com.df.scaleUpBy': '0' } }, 1, 'default'],
  ]
  for (const [name, input, by, from] of cases) {
    test(name, () => {
      const r = resolve({ direction: 'up', service: 'web', keys, defaults, ...input })
      assert.equal(r.by, by)
      assert.equal(r.byFrom, from)
    })
  }

  test('scale down reads the down label', () => {
    assert.equal(resolve({ direction: 'down', service: 'web', keys, defaults, labels }).by, 2)
  })

  test('bounds come from labels, else the defaults; configured label keys are honoured', () => {
    const r = resolve({ direction: 'up', service: 'web', keys, defaults, labels: { 'com.df.scaleMax': '9' } })
    assert.deepEqual([r.min, r.max], [1, 9])
    const custom = { ...keys, max: 'scaler.max' }
    assert.equal(
      resolve({ direction: 'up', service: 'web', keys: custom, defaults, labels: { 'scaler.max': '7' } }).max,
      7,
    )
  })

  test('a label that is not a whole number is an error naming the service, label and value', () => {
    assert.throws(
      () => resolve({ direction: 'up', service: 'web', keys, defaults, labels: { 'com.df.scaleMin': '-1' } }),
      {
        code: 'E_SWARM_LABEL',
        message: 'service web: label com.df.scaleMin must be a whole number ≥ 0 (got "-1")',
      },
    )
  })
})

describe('parseBy', () => {
  test('strings as Alertmanager sends them, numbers as hand-written bodies; sign ignored; 0 and empty are "not given"', () => {
    assert.equal(parseBy('2', 'x'), 2)
    assert.equal(parseBy(2, 'x'), 2)
    assert.equal(parseBy('-2', 'x'), 2)
    assert.equal(parseBy('0', 'x'), undefined)
    assert.equal(parseBy('', 'x'), undefined)
    assert.equal(parseBy(undefined, 'x'), undefined)
  })
  test('anything else is a 400 naming where it came from', () => {
    assert.throws(() => parseBy('two', 'groupLabels.by'), {
      code: 'E_BAD_REQUEST',
      message: 'groupLabels.by must be a whole number (got "two")',
    })
    assert.throws(() => parseBy(1.5, 'query parameter by'), { code: 'E_BAD_REQUEST' })
  })
  test('directions', () => {
    assert.equal(parseDirection('up'), 'up')
    assert.throws(() => parseDirection(''), { message: 'No scale direction in request' })
    assert.throws(() => parseDirection('UP'), { message: /^Incorrect scale direction in request/ })
  })
})

describe('plan', () => {
  test('clamps to the bounds; max wins when min > max', () => {
    assert.deepEqual(plan(1, 'up', 10, 1, 4), { to: 4 })
    assert.deepEqual(plan(4, 'down', 10, 2, 5), { to: 2 })
    assert.deepEqual(plan(1, 'up', 1, 6, 3), { to: 3 })
  })
  test('at a bound nothing changes and the bound is named', () => {
    assert.deepEqual(plan(4, 'up', 1, 1, 4), { to: 4, atBound: 'max' })
    assert.deepEqual(plan(1, 'down', 1, 1, 4), { to: 1, atBound: 'min' })
  })
  test('never against the asked direction: up above max, down below min change nothing', () => {
    assert.deepEqual(plan(7, 'up', 1, 1, 5), { to: 7, atBound: 'max' })
    assert.deepEqual(plan(0, 'down', 1, 1, 5), { to: 0, atBound: 'min' })
  })
  test('properties: moves only in the asked direction, by at most `by`, ends within bounds when it moves', () => {
    fc.assert(
      fc.property(
        fc.nat(50),
        fc.constantFrom('up' as const, 'down' as const),
        fc.integer({ min: 1, max: 20 }),
        fc.nat(30),
        fc.nat(30),
        (current, direction, by, min, max) => {
          const { to, atBound } = plan(current, direction, by, min, max)
          if (direction === 'up') assert.ok(to >= current)
          else assert.ok(to <= current)
          assert.ok(to >= 0)
          if (to !== current) {
            assert.equal(atBound, undefined)
            assert.ok(to <= max)
            assert.ok(to >= Math.min(min, max))
            // Moving further than `by` only happens to reach the range from outside it.
            if (Math.abs(to - current) > by) assert.ok(current < Math.min(min, max) || current > max)
          } else {
            assert.ok(atBound)
          }
        },
      ),
    )
  })
  test("Docker Scaler's sentences", () => {
    assert.equal(
      serviceMessage('web', 1, 3, { min: 1, max: 4 }),
      'Scaling web from 1 to 3 replicas (min: 1, max: 4)',
    )
    assert.equal(
      serviceMessage('web', 4, 4, { min: 1, max: 4 }, 'max'),
      'web is already scaled to the maximum number of 4 replicas',
    )
    assert.equal(
      serviceMessage('web', 1, 1, { min: 1, max: 4 }, 'min'),
      'web is already descaled to the minimum number of 1 replicas',
    )
  })
})

describe('alert payloads', () => {
  test('resolved alerts in a mixed group are left out; one action per service and direction', () => {
    const { actions, skipped } = alertActionsFor({
      status: 'firing',
      groupKey: 'k',
      groupLabels: { scale: 'up' },
      alerts: [
        { status: 'firing', labels: { service: 'a', scale: 'up' }, startsAt: '2026-01-01T00:00:02Z' },
        {
          status: 'firing',
          labels: { service: 'a', scale: 'up', instance: 'x' },
          startsAt: '2026-01-01T00:00:01Z',
        },
        { status: 'resolved', labels: { service: 'b', scale: 'up' } },
        {
          status: 'firing',
          labels: { alertname: 'NodeMem', type: 'node', role: 'worker', scale: 'up', by: '1' },
        },
        { status: 'firing', labels: { alertname: 'Odd', type: 'database', scale: 'up' } },
      ],
    })
    assert.deepEqual(
      actions.map((a) => [a.kind, a.service ?? a.role, a.direction, a.by]),
      [
        ['service', 'a', 'up', undefined],
        ['node', 'worker', 'up', 1],
      ],
    )
    // The episode is the group key and the earliest start, so a repeat is recognised.
    assert.equal(actions[0]!.episode, 'k|2026-01-01T00:00:01Z')
    assert.deepEqual(skipped, ['Odd has type "database", not service, node, worker or manager'])
  })

  test('query parameters override every alert; a bad by names its source', () => {
    const body = { alerts: [{ labels: { service: 'a', scale: 'down', by: '1' } }] }
    const { actions } = alertActionsFor(body, 'scale=up&by=3')
    assert.deepEqual([actions[0]!.direction, actions[0]!.by, actions[0]!.byFrom], ['up', 3, 'query'])
    assert.throws(
      () =>
        alertActionsFor({ alerts: [{ labels: { alertname: 'X', service: 'a', scale: 'up', by: 'lots' } }] }),
      {
        message: 'label by of X must be a whole number (got "lots")',
      },
    )
  })

  test('a body that is not an Alertmanager payload is a 400 naming the field', () => {
    assert.throws(() => parseWebhook({ alerts: 'many' }), {
      code: 'E_BAD_REQUEST',
      message: /^request body: alerts: /,
    })
    assert.throws(() => parseWebhook({ status: 'pending' }), { message: /^request body: status: / })
    assert.deepEqual(parseWebhook({ groupLabels: { by: 2, service: 'web' } }).groupLabels, {
      by: '2',
      service: 'web',
    })
  })
})
