/**
 * `GET /v1/groups/:name/history` of a running daemon (real engine, store, process target and
 * router): what the dashboard seeds its charts with. The group is scaled by hand, so its
 * recorded `desired` and `ready` must show both sizes, in time order.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { startTestDaemon, type TestDaemon, waitFor } from '../../test/support/daemon.js'

interface History {
  group: string
  since: number
  until: number
  series: Record<string, Array<[number, number]>>
}

const WAIT = 20_000

describe('GET /v1/groups/:name/history of a running daemon', () => {
  let tide: TestDaemon
  const get = async (path: string) => {
    const res = await fetch(`${tide.apiUrl}${path}`)
    return { status: res.status, body: (await res.json()) as History & { code?: string; message?: string } }
  }
  const history = async (query = ''): Promise<History> => {
    const { status, body } = await get(`/v1/groups/app/history${query}`)
    assert.equal(status, 200, JSON.stringify(body))
    return body
  }
  const values = (series: Array<[number, number]> | undefined) => (series ?? []).map(([, v]) => v)

  before(async () => {
    tide = await startTestDaemon('test/fixtures/manual.yaml')
    await waitFor('the first instance', WAIT, () => tide.controller.getGroup('app').ready === 1)
    // Evaluations at size 1 are recorded (interval 500ms) before the group grows.
    await waitFor(
      'desired 1 recorded twice',
      WAIT,
      async () => values((await history()).series.desired).length >= 2,
    )
    const grown = await tide.controller.scale('app', { to: 2, wait: true, reason: 'history test' })
    assert.equal(grown.outcome, 'applied', grown.reason)
    await waitFor('ready 2 recorded', WAIT, async () => values((await history()).series.ready).includes(2))
  })
  after(async () => {
    await tide?.stop()
  })

  test('desired, ready and the router metrics come back oldest first, showing both sizes', async () => {
    const before = Date.now()
    const body = await history()
    assert.equal(body.group, 'app')
    assert.ok(Math.abs(body.until - before) < 5_000, `until is now: ${body.until} vs ${before}`)
    assert.ok(Math.abs(body.until - body.since - 5 * 60_000) < 5_000, 'the default is the last 5 minutes')
    for (const name of ['desired', 'ready', 'concurrency']) {
      const series = body.series[name]
      assert.ok(series && series.length >= 2, `${name}: ${JSON.stringify(series)}`)
      const times = series.map(([at]) => at)
      assert.deepEqual(
        times,
        [...times].sort((a, b) => a - b),
        `${name} is oldest first`,
      )
      assert.ok(times[0]! >= body.since && times.at(-1)! <= body.until, `${name} is inside the range`)
    }
    const desired = values(body.series.desired)
    // The first evaluation may see the group still at 0 while its instance starts.
    const steps = desired.filter((v, i) => v !== desired[i - 1])
    assert.deepEqual(steps.slice(-2), [1, 2], `1, then 2 by hand: ${JSON.stringify(steps)}`)
    assert.ok(steps.length <= 3 && (steps.length === 2 || steps[0] === 0), JSON.stringify(steps))
    assert.ok(values(body.series.ready).includes(1) && values(body.series.ready).at(-1) === 2)
  })

  test('points thins each series to that many, keeping the first and the last', async () => {
    const until = Date.now()
    const full = await history(`?since=${until - 5 * 60_000}&until=${until}`)
    const desired = full.series.desired!
    assert.ok(desired.length > 3, `enough evaluations to thin: ${desired.length}`)
    const thin = await history(`?since=${until - 5 * 60_000}&until=${until}&points=3`)
    assert.equal(thin.since, full.since)
    assert.equal(thin.until, until)
    for (const [name, series] of Object.entries(full.series)) {
      const got = thin.series[name]!
      assert.equal(got.length, Math.min(3, series.length), name)
      assert.deepEqual(got[0], series[0], `${name} keeps the first point`)
      assert.deepEqual(got.at(-1), series.at(-1), `${name} keeps the last point`)
    }
  })

  test('since/until as durations or epoch ms; since further back than store.history starts there', async () => {
    const recent = await history('?since=1s')
    assert.ok(recent.until - recent.since >= 1000 && recent.until - recent.since < 3000)
    const old = await history('?since=3h')
    const hour = Date.now() - 60 * 60_000
    assert.ok(
      old.since >= hour - 5_000 && old.since <= hour + 5_000,
      `since is moved up to store.history (1h) back: ${old.since} vs ${hour}`,
    )
    const past = await history('?since=10m&until=5m')
    assert.deepEqual(past.series, {}, 'nothing was recorded 10 to 5 minutes ago')
  })

  test('bad parameters are 400 naming the parameter and the value', async () => {
    const cases: Array<[string, RegExp]> = [
      ['since=abc', /^since: must be a duration back from now .* \(got "abc"\)$/],
      ['since=-5m', /^since: .*\(got "-5m"\)/],
      ['since=300', /^since: .*a bare number is epoch ms, so a duration needs its unit \("300s"\)/],
      ['points=0', /^points: must be an integer from 1 to 2000 \(got "0"\)$/],
      ['points=5000', /^points: must be an integer from 1 to 2000 \(got "5000"\)$/],
      ['points=ten', /^points: must be an integer from 1 to 2000 \(got "ten"\)$/],
      ['until=later', /^until: .*\(got "later"\)/],
      ['since=1m&until=5m', /^since: must be earlier than until \(epoch ms \d+ > \d+\) \(got "1m"\)$/],
      ['since=1.5', /^since: .*\(got "1.5"\)/],
      ['limit=5', /^limit: unknown parameter$/],
      ['points=3&points=4', /^points: given more than once$/],
    ]
    for (const [query, message] of cases) {
      const { status, body } = await get(`/v1/groups/app/history?${query}`)
      assert.equal(status, 400, query)
      assert.equal(body.code, 'E_BAD_REQUEST', query)
      assert.match(body.message!, message, query)
    }
  })

  test('an unknown group is 404', async () => {
    const { status, body } = await get('/v1/groups/nope/history')
    assert.equal(status, 404)
    assert.equal(body.code, 'E_NOT_FOUND')
    assert.match(body.message!, /group 'nope' does not exist/)
  })
})
