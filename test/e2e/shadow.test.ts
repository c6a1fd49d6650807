/**
 * Shadow mode end to end (issue 6): a real daemon with a real process target, router and HTTP
 * API. A shadow group computes and records every decision with what would have happened,
 * the API shows it, and the target is never touched: not by the bounds (0 is below min 1),
 * not by a policy, not by a manual request.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { startTestDaemon, type TestDaemon, waitFor } from '../support/daemon.js'

interface Decision {
  outcome: string
  from: number
  to: number
  reason: string
  trigger: string
}

describe('shadow mode (process target + router + API)', () => {
  let tide: TestDaemon
  const api = async <T>(path: string, init?: RequestInit): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${tide.apiUrl}${path}`, init)
    return { status: res.status, body: (await res.json()) as T }
  }
  const decisions = async (): Promise<Decision[]> => {
    const { body } = await api<{ decisions: Decision[] } | Decision[]>('/v1/groups/app/decisions')
    return Array.isArray(body) ? body : body.decisions
  }

  before(async () => {
    tide = await startTestDaemon('test/fixtures/manual.yaml', (raw) => {
      raw.groups.app!.shadow = true
    })
  })
  after(async () => {
    await tide?.stop()
  })

  test('the API shows the scale-up the bounds would make, and no instance is started', async () => {
    let shadow: Decision | undefined
    await waitFor('a shadow decision in the API', 15_000, async () => {
      shadow = (await decisions()).find((d) => d.outcome === 'shadow')
      return shadow !== undefined
    })
    assert.equal(shadow!.from, 0)
    assert.equal(shadow!.to, 1)
    assert.match(
      shadow!.reason,
      /^scale up 0 → 1: 0 is below min 1/,
      'says what would have happened, and why',
    )
    // Several evaluations later, still nothing started.
    await new Promise((r) => setTimeout(r, 1500))
    const { body: group } = await api<{ shadow: boolean; desired: number; instances: unknown[] }>(
      '/v1/groups/app',
    )
    assert.equal(group.shadow, true)
    assert.equal(group.desired, 0, 'the target was never asked to scale')
    assert.deepEqual(group.instances, [])
    // Stored when what it would do changes, not at every 500 ms tick.
    assert.ok((await decisions()).filter((d) => d.outcome === 'shadow').length <= 2)
  })

  test('a manual request is recorded as shadow and changes nothing', async () => {
    const { status, body } = await api<Decision & { decision?: Decision }>('/v1/groups/app/scale', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ to: 3 }),
    })
    assert.ok(status < 300, `status ${status}`)
    const decision = body.decision ?? body
    assert.equal(decision.outcome, 'shadow')
    assert.equal(decision.to, 3)
    await new Promise((r) => setTimeout(r, 1000))
    assert.equal(tide.controller.getGroup('app').instances.length, 0)
  })
})
