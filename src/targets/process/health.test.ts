import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, type TestContext, test } from 'node:test'
import { probe } from './health.js'
import { freePort } from './ports.js'

async function serve(t: TestContext, handler: Parameters<typeof createServer>[1]): Promise<number> {
  const server: Server = createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => {
    server.closeAllConnections()
    server.close()
  })
  return (server.address() as AddressInfo).port
}

describe('probe', () => {
  test('2xx is ready; anything else says what it got', async (t) => {
    const port = await serve(t, (req, res) => {
      res.statusCode = req.url === '/healthz' ? 204 : 503
      res.end()
    })
    assert.deepEqual(await probe('127.0.0.1', port, '/healthz', 1000), { ok: true, status: 204 })
    assert.deepEqual(await probe('127.0.0.1', port, '/other', 1000), {
      ok: false,
      reason: 'answered 503',
      status: 503,
    })
  })

  test('nothing listening is "connection refused", marked so start-up checks can repeat it sooner', async () => {
    const port = await freePort('127.0.0.1')
    assert.deepEqual(await probe('127.0.0.1', port, '/', 1000), {
      ok: false,
      reason: 'connection refused',
      refused: true,
    })
  })

  test('no answer within the timeout, or an abort, ends the check', async (t) => {
    const port = await serve(t, () => {}) // never answers
    assert.deepEqual(await probe('127.0.0.1', port, '/', 50), {
      ok: false,
      reason: 'no answer within 50ms',
      timedOut: true,
    })
    // A timeout cut short by a deadline is a fraction of a millisecond; people read it rounded.
    assert.deepEqual(await probe('127.0.0.1', port, '/', 20.7668), {
      ok: false,
      reason: 'no answer within 21ms',
      timedOut: true,
    })
    const abort = new AbortController()
    const pending = probe('127.0.0.1', port, '/', 60_000, abort.signal)
    abort.abort()
    assert.deepEqual(await pending, { ok: false, reason: 'aborted' })
  })
})
