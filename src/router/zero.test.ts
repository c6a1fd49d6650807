/**
 * The router at zero: the cold-start header and wait histogram feed, and a failed wake answering
 * the held requests at once and letting the next request wake again. Real sockets, both in
 * Tide's process (workers: 1) and with worker processes (workers: 2).
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { after, describe, test } from 'node:test'
import { request } from 'undici'
import { COLD_START_HEADER } from './errors.js'
import { createRouter, type Router, routeSchema } from './index.js'

const cleanups: Array<() => Promise<void>> = []
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
})

async function upstream(): Promise<string> {
  const server: Server = createServer((req, res) => res.end(`served ${req.url}`))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  cleanups.push(async () => {
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
  })
  const a = server.address()
  return `127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`
}

async function router(workers: number, route: Record<string, unknown> = {}): Promise<Router> {
  const r = createRouter('web', routeSchema.parse({ listen: '127.0.0.1:0', workers, ...route }))
  await r.start()
  cleanups.push(() => r.close())
  return r
}

async function get(r: Router, path = '/') {
  const res = await request(`http://${r.address}${path}`)
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() }
}

async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

const header = COLD_START_HEADER.toLowerCase()

for (const workers of [1, 2]) {
  describe(`router at zero (workers: ${workers})`, () => {
    test('a request that waited for an instance carries Tide-Cold-Start; one that did not, none', async () => {
      const address = await upstream()
      const r = await router(workers)
      const waits: Array<{ ms: number; served: boolean }> = []
      r.onWait?.((ms, served) => waits.push({ ms, served }))
      let demand = 0
      r.onDemand(() => demand++)
      const held = get(r, '/first')
      await until(() => demand === 1, 'the demand signal')
      await new Promise((resolve) => setTimeout(resolve, 150))
      r.setBackends([{ id: 'a', address }])
      const first = await held
      assert.equal(first.status, 200)
      assert.equal(first.body, 'served /first')
      const waited = Number(/^(\d+)ms$/.exec(String(first.headers[header]))?.[1])
      assert.ok(
        waited >= 140 && waited < 5000,
        `Tide-Cold-Start ${first.headers[header]} should be about 150ms`,
      )
      const warm = await get(r, '/warm')
      assert.equal(warm.status, 200)
      assert.equal(warm.headers[header], undefined, 'a request that found an instance did not wait')
      await until(() => waits.length === 1, 'the wait reported')
      assert.equal(waits[0]!.served, true)
      assert.ok(Math.abs(waits[0]!.ms - waited) <= 1)
    })

    test('a request that arrives before the group listens for demand is not forgotten: the listener hears of it when added', async () => {
      const r = await router(workers)
      const held = get(r, '/early')
      await until(() => r.stats().queued === 1, 'the early request held')
      let demand = 0
      r.onDemand(() => demand++)
      assert.equal(demand, 1, 'told at once of the episode already open')
      r.setBackends([{ id: 'a', address: await upstream() }])
      assert.equal((await held).status, 200)
      assert.equal(demand, 1)
    })

    test('a failed wake answers every held request 503 with Retry-After at once, and the next request wakes again', async () => {
      const r = await router(workers, { queue: { timeout: '60s' } })
      const waits: boolean[] = []
      r.onWait?.((_ms, served) => waits.push(served))
      let demand = 0
      r.onDemand(() => demand++)
      const held = Array.from({ length: 20 }, (_, i) => get(r, `/held-${i}`))
      await until(() => r.stats().queued === 20, '20 held requests', 10_000)
      assert.equal(demand, 1, 'one wake for the whole burst')
      const started = Date.now()
      r.wakeFailed?.('instance web-1 exited with code 1 before it was ready\nlast output: boom')
      const answers = await Promise.all(held)
      assert.ok(Date.now() - started < 5000, 'answered at once, not at queue.timeout')
      for (const answer of answers) {
        assert.equal(answer.status, 503)
        assert.equal(answer.headers['retry-after'], '5')
        assert.match(String(answer.headers[header]), /^\d+ms$/)
        const body = JSON.parse(answer.body) as { code: string; message: string }
        assert.equal(body.code, 'E_ROUTER_WAKE_FAILED')
        assert.equal(
          body.message,
          'group web could not be woken from zero: instance web-1 exited with code 1 before it was ready; the next request tries again',
        )
      }
      await until(() => waits.length === 20, 'every wait reported')
      assert.ok(waits.every((served) => !served))
      // Not cached: the next request signals demand again, and is served once an instance is ready.
      const next = get(r, '/after')
      await until(() => demand === 2, 'a second demand signal')
      r.setBackends([{ id: 'a', address: await upstream() }])
      const served = await next
      assert.equal(served.status, 200)
      assert.equal(served.body, 'served /after')
    })
  })
}
