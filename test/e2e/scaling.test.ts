/**
 * Real processes behind the real router, with load from a separate process: scaling down
 * under load loses no request; a crashed instance costs at most the requests it had in
 * flight and is replaced.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { startTestDaemon, type TestDaemon, waitFor } from '../support/daemon.js'
import { runLoad } from '../support/load.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('scaling under load (process target + router)', () => {
  let tide: TestDaemon
  const app = () => tide.controller.getGroup('app')
  // Requests that wait 40ms without burning CPU, so the machine's two cores are not the limit.
  const url = () => `http://${tide.routes.app}/?work=0&sleep=40`

  before(async () => {
    tide = await startTestDaemon('test/fixtures/manual.yaml')
    await waitFor('the first instance', 15_000, () => app().ready === 1)
  })
  after(async () => {
    await tide?.stop()
  })

  test('scaling 3 → 1 while 20 clients send requests fails no request', async () => {
    await tide.controller.scale('app', { to: 3, wait: true })
    assert.equal(app().ready, 3)
    const load = runLoad(url(), 20, '8s')
    await sleep(2500)
    const down = await tide.controller.scale('app', { to: 1, wait: true })
    assert.equal(down.outcome, 'applied')
    assert.equal(app().ready, 1)
    const result = await load
    assert.equal(result.failed, 0, `failed: ${JSON.stringify({ ...result.statuses, ...result.errors })}`)
    assert.ok(result.ok > 200, `only ${result.ok} requests succeeded`)
  })

  test('an instance killed mid-load costs at most its requests in flight, and is replaced', async () => {
    await tide.controller.scale('app', { to: 3, wait: true })
    const before = app().instances.filter((i) => i.state === 'ready')
    assert.equal(before.length, 3)
    const victim = before[1]!
    const load = runLoad(url(), 20, '8s')
    await sleep(2500)
    process.kill(victim.pid!, 'SIGKILL')
    const result = await load
    // 20 clients over 3 instances: about 7 requests in flight on the victim when it died.
    assert.ok(
      result.failed <= 20,
      `${result.failed} requests failed; only those in flight on ${victim.id} may`,
    )
    assert.ok(result.ok > 200)
    await waitFor('a replacement to be ready', 20_000, () => {
      const ready = app().instances.filter((i) => i.state === 'ready')
      return ready.length === 3 && !ready.some((i) => i.id === victim.id)
    })
  })
})
