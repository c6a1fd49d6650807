/**
 * Undoing a drain: a backend the target kept after all (Kubernetes removed another pod, or the
 * scale-down failed) goes back into rotation. Without undrain it stayed out for good while it
 * remained in setBackends, and a group down to that one instance held every request until
 * queue.timeout. Real sockets, in Tide's process (workers: 1) and with worker processes (2).
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { after, describe, test } from 'node:test'
import { request } from 'undici'
import { createRouter, type Router, routeSchema } from './index.js'

const cleanups: Array<() => Promise<void>> = []
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
})

/** An instance answering `<name> <path>`; `?sleep=ms` delays the answer. */
async function upstream(name: string): Promise<string> {
  const server: Server = createServer((req, res) => {
    const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('sleep') ?? 0)
    setTimeout(() => res.end(`${name} ${req.url}`), ms)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  cleanups.push(async () => {
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
  })
  const a = server.address()
  return `127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`
}

async function router(workers: number): Promise<Router> {
  const r = createRouter(
    'web',
    routeSchema.parse({ listen: '127.0.0.1:0', workers, queue: { timeout: '60s' }, drain_timeout: '60s' }),
  )
  await r.start()
  cleanups.push(() => r.close())
  return r
}

async function get(r: Router, path = '/') {
  const res = await request(`http://${r.address}${path}`)
  return { status: res.statusCode, body: await res.body.text() }
}

async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

for (const workers of [1, 2]) {
  describe(`router undrain (workers: ${workers})`, () => {
    test('a drained backend taken back serves the requests held meanwhile, and its pending drain ends at once', async () => {
      const r = await router(workers)
      let demand = 0
      r.onDemand(() => demand++)
      r.setBackends([{ id: 'a', address: await upstream('a') }])
      assert.equal((await get(r, '/warm')).body, 'a /warm')
      // A slow request is in flight when the drain starts: the drain waits for it (up to 60 s).
      const slow = get(r, '/slow?sleep=1500')
      await until(() => r.stats().inFlight === 1, 'the slow request in flight')
      let drained: unknown
      const drain = r.drain('a').then((result) => {
        drained = result
        return result
      })
      // The only backend is draining: a new request is held, and that is a demand episode.
      const held = get(r, '/held')
      await until(() => r.stats().queued === 1, 'the request held while a drains')
      assert.equal(demand, 1)
      assert.equal(drained, undefined, 'the drain still waits for the slow request')
      const t0 = Date.now()
      r.undrain?.('a')
      assert.deepEqual(await held, { status: 200, body: 'a /held' })
      const result = await drain
      assert.equal(result.timedOut, false)
      assert.ok(Date.now() - t0 < 1400, 'the drain ended with the undrain, not with the slow request')
      assert.deepEqual(await slow, { status: 200, body: 'a /slow?sleep=1500' }, 'nothing was cut')
      // Back in rotation for good: the next requests go straight to it, no new demand.
      for (let i = 0; i < 5; i++) assert.equal((await get(r, `/after-${i}`)).body, `a /after-${i}`)
      assert.equal(demand, 1)
      assert.equal(r.stats().queued, 0)
    })

    test('after a finished drain, undrain puts the backend back beside the others; an unknown id changes nothing', async () => {
      const r = await router(workers)
      const a = await upstream('a')
      const b = await upstream('b')
      r.setBackends([
        { id: 'a', address: a },
        { id: 'b', address: b },
      ])
      assert.deepEqual(await r.drain('a'), { inFlight: 0, timedOut: false })
      // Still in the set, but drained: everything goes to b.
      r.setBackends([
        { id: 'a', address: a },
        { id: 'b', address: b },
      ])
      for (let i = 0; i < 6; i++) assert.match((await get(r, `/d${i}`)).body, /^b /)
      r.undrain?.('nobody')
      r.undrain?.('a')
      // Concurrent requests spread over both again (least outstanding sends the second to a).
      const seen = new Set<string>()
      for (let round = 0; round < 10 && seen.size < 2; round++) {
        const answers = await Promise.all(
          Array.from({ length: 6 }, (_, i) => get(r, `/u${round}-${i}?sleep=50`)),
        )
        for (const answer of answers) seen.add(answer.body.split(' ')[0]!)
      }
      assert.deepEqual([...seen].sort(), ['a', 'b'])
    })
  })
}
