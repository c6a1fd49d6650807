/**
 * The HTTP API of a real daemon (real engine, store, process target and router): auth on
 * mutating calls, bad input named, Prometheus metrics, and seed 000's /scale shapes.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { startTestDaemon, type TestDaemon, waitFor } from '../support/daemon.js'

const TOKEN = 'e2e-token-0123456789'

describe('API of a running daemon', () => {
  let tide: TestDaemon
  const call = (path: string, init: RequestInit & { token?: string } = {}) =>
    fetch(`${tide.apiUrl}${path}`, {
      ...init,
      headers: {
        ...(init.body ? { 'content-type': 'application/json' } : {}),
        ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
      },
    })

  before(async () => {
    tide = await startTestDaemon('test/fixtures/manual.yaml', (raw) => {
      raw.api = { ...raw.api, token: TOKEN } as never
    })
    await waitFor('the first instance', 15_000, () => tide.controller.getGroup('app').ready === 1)
  })
  after(async () => {
    await tide?.stop()
  })

  test('reading needs no token; scaling without the token is 401 and changes nothing', async () => {
    const list = await call('/v1/groups')
    assert.equal(list.status, 200)
    const denied = await call('/v1/groups/app/scale', { method: 'POST', body: JSON.stringify({ to: 2 }) })
    assert.equal(denied.status, 401)
    assert.equal(((await denied.json()) as { code: string }).code, 'E_UNAUTHORIZED')
    assert.equal(tide.controller.getGroup('app').desired, 1)
  })

  test('with the token, scaling works and the decision is in the log', async () => {
    const res = await call('/v1/groups/app/scale', {
      method: 'POST',
      body: JSON.stringify({ to: 2, wait: true }),
      token: TOKEN,
    })
    assert.equal(res.status, 200)
    const decision = (await res.json()) as { outcome: string; to: number }
    assert.deepEqual([decision.outcome, decision.to], ['applied', 2])
    assert.equal(tide.controller.getGroup('app').ready, 2)
    const log = (await (await call('/v1/groups/app/decisions?limit=5')).json()) as {
      decisions: Array<{ to: number }>
    }
    assert.equal(log.decisions[0]!.to, 2)
  })

  test('bad input names the field and the value; unknown groups are 404', async () => {
    const bad = await call('/v1/groups/app/scale', {
      method: 'POST',
      body: JSON.stringify({ by: 'abc' }),
      token: TOKEN,
    })
    assert.equal(bad.status, 400)
    const body = (await bad.json()) as { code: string; message: string }
    assert.equal(body.code, 'E_BAD_REQUEST')
    assert.match(body.message, /by/)
    assert.match(body.message, /abc/)
    const missing = await call('/v1/groups/nope')
    assert.equal(missing.status, 404)
  })

  test('/metrics has the group gauges; /scale?op=status has seed 000 keys plus the recommendation', async () => {
    const metrics = await (await call('/metrics')).text()
    assert.match(metrics, /tide_group_desired_instances\{group="app"\} \d/)
    assert.match(metrics, /tide_group_ready_instances\{group="app"\}/)
    const status = (await (await call('/scale?op=status&group=app')).json()) as Record<string, unknown>
    for (const key of ['dropletMetrics', 'clusterMetrics', 'scaleUp', 'scaleDown', 'recommendation']) {
      assert.ok(key in status, `status has ${key}`)
    }
  })
})
