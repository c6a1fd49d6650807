/**
 * The demo as a user runs it (examples/local.yaml, the demo app, examples/load.js), with only
 * the ports and the store moved: under 50 concurrent clients for 40 s the group reaches at least
 * 3 instances, no request fails, and within 90 s after the load stops it comes back to 1.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { startTestDaemon, type TestDaemon, waitFor } from '../support/daemon.js'
import { runLoad } from '../support/load.js'

describe('demo: examples/local.yaml end to end', () => {
  let tide: TestDaemon
  before(async () => {
    tide = await startTestDaemon('examples/local.yaml')
  })
  after(async () => {
    await tide?.stop()
  })

  test('scales up under 50 clients with no failed request, then back to 1 when the load stops', async () => {
    const web = () => tide.controller.getGroup('web')
    await waitFor('the first instance', 15_000, () => web().ready === 1)
    let peak = 0
    const watcher = setInterval(() => {
      peak = Math.max(peak, web().ready)
    }, 200)
    try {
      // The issue's own terms: 50 clients for 40 s. (20 s was enough on a quiet machine, not while
      // another suite — Chromium, a Swarm — shared the two cores and slowed instance start-up.)
      const load = await runLoad(`http://${tide.routes.web}/`, 50, '40s')
      assert.equal(load.failed, 0, `failed requests: ${JSON.stringify({ ...load.statuses, ...load.errors })}`)
      assert.ok(load.ok > 100, `only ${load.ok} requests succeeded`)
      const why = () =>
        tide.controller
          .decisions('web', { limit: 20 })
          .map((d) => `${d.outcome}: ${d.reason}${d.error ? ` (${d.error})` : ''}`)
          .join('\n')
      assert.ok(peak >= 3, `the group reached only ${peak} ready instances under load; decisions:\n${why()}`)
      // The demo's scale-down stabilization is 20s; 90s is the promise.
      await waitFor(
        'the group to come back to 1 instance',
        90_000,
        () => web().desired === 1 && web().ready === 1,
      )
    } finally {
      clearInterval(watcher)
    }
    const decisions = tide.controller.decisions('web', { limit: 100 })
    assert.ok(decisions.some((d) => d.outcome === 'applied' && d.to > d.from && /concurrency/.test(d.reason)))
    assert.ok(decisions.some((d) => d.outcome === 'applied' && d.to < d.from))
  })
})
