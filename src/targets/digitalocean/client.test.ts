/**
 * The DigitalOcean client against the emulator (test/emulators/digitalocean): retries, waits,
 * rate limits and the create that must never make two droplets. The client's clock and sleep
 * are the emulator's clock, moved by hand, so waits are asserted without waiting.
 */
import assert from 'node:assert/strict'
import { createServer, type AddressInfo } from 'node:net'
import { after, before, beforeEach, describe, it } from 'node:test'
import { DigitalOceanEmulator } from '../../../test/emulators/digitalocean/index.js'
import {
  CREATE_MARKER,
  createDigitalOceanClient,
  DigitalOceanApiError,
  type DigitalOceanClient,
  DigitalOceanUnreachableError,
} from './client.js'

describe('DigitalOcean client', () => {
  let t = Date.UTC(2026, 0, 1)
  const waits: number[] = []
  const em = new DigitalOceanEmulator({ bootDelay: 0, now: () => t })
  let client: DigitalOceanClient
  let image: number

  function makeClient(extra: { timeout?: number; retries?: number } = {}): DigitalOceanClient {
    return createDigitalOceanClient({
      token: em.token,
      apiUrl: em.url,
      backoff: 100,
      now: () => t,
      sleep: async (ms) => {
        waits.push(ms)
        t += ms
      },
      ...extra,
    })
  }

  before(async () => {
    await em.start()
    image = em.addSnapshot({ name: 'web-snapshot' }).id
  })
  after(() => em.close())
  beforeEach(() => {
    em.clearFaults()
    waits.length = 0
    client = makeClient()
  })

  it('waits as long as Retry-After says through a storm of 429s, then succeeds', async () => {
    em.throttle(4, 3)
    const account = await client.getAccount()
    assert.ok(account.account.uuid)
    assert.deepEqual(waits, [3000, 3000, 3000, 3000])
  })

  it('gives up after its retries with an error naming the status', async () => {
    em.throttle(10, 1)
    await assert.rejects(client.getAccount(), (err: unknown) => {
      assert.ok(err instanceof DigitalOceanApiError)
      assert.equal(err.code, 'E_DO_API')
      assert.equal(err.httpStatus, 429)
      assert.match(err.message, /GET \/v2\/account answered 429 too_many_requests/)
      return true
    })
    assert.equal(waits.length, 5)
  })

  it('retries 5xx with growing back-off', async () => {
    em.inject({ path: '/v2/droplets', times: 3, fault: { kind: 'status', status: 503 } })
    await client.listDroplets()
    assert.equal(waits.length, 3)
    assert.ok(waits[2]! > waits[0]!, `back-off grows: ${waits.join(', ')}`)
  })

  it('does not retry a 4xx that says the request is wrong', async () => {
    const bad = createDigitalOceanClient({ token: 'wrong', apiUrl: em.url, sleep: async () => {} })
    await assert.rejects(bad.getAccount(), /answered 401 unauthorized: Unable to authenticate you/)
    assert.deepEqual(waits, [])
  })

  it('waits for ratelimit-reset when no requests remain, instead of spending one on a 429', async () => {
    const limited = new DigitalOceanEmulator({ rateLimit: 3, rateWindow: 60_000, now: () => t })
    await limited.start()
    try {
      const c = createDigitalOceanClient({
        token: limited.token,
        apiUrl: limited.url,
        now: () => t,
        sleep: async (ms) => {
          waits.push(ms)
          t += ms
        },
      })
      for (let i = 0; i < 4; i++) await c.getAccount()
      assert.equal(waits.length, 1, 'one wait, before the fourth request')
      assert.ok(waits[0]! > 50_000 && waits[0]! <= 61_000, `waited ${waits[0]}ms`)
      assert.equal(limited.requests.filter((r) => r.status === 429).length, 0)
    } finally {
      await limited.close()
    }
  })

  it('retries a request that timed out', async () => {
    const quick = makeClient({ timeout: 300 })
    em.inject({ path: '/v2/load_balancers', fault: { kind: 'hang', ms: 5000 } })
    assert.deepEqual(await quick.listLoadBalancers(), [])
    assert.equal(waits.length, 1)
  })

  it('reports an API it cannot reach, naming the URL', async () => {
    const server = createServer()
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as AddressInfo).port
    await new Promise((r) => server.close(r))
    const nowhere = createDigitalOceanClient({
      token: 'x',
      apiUrl: `http://127.0.0.1:${port}`,
      retries: 1,
      sleep: async () => {},
    })
    await assert.rejects(nowhere.getAccount(), (err: unknown) => {
      assert.ok(err instanceof DigitalOceanUnreachableError)
      assert.equal(err.code, 'E_DO_UNREACHABLE')
      assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}/v2/account: connection refused`))
      return true
    })
  })

  describe('creating a droplet never makes two', () => {
    const request = (name: string) => ({ name, region: 'nyc3', size: 's-1vcpu-1gb', image })

    for (const [label, fault] of [
      ['the connection is reset after the API created it', { kind: 'reset', apply: true }],
      ['the API answers 500 after creating it', { kind: 'after', status: 500 }],
      ['the answer never comes (timeout) after the API created it', { kind: 'hang', ms: 5000, apply: true }],
    ] as const) {
      it(`when ${label}`, async () => {
        const name = `idem-${em.requests.length}`
        const quick = makeClient({ timeout: 300 })
        em.inject({ method: 'POST', path: '/v2/droplets', fault })
        const droplet = await quick.createDroplet(request(name))
        const named = em.droplets().filter((d) => d.name === name)
        assert.equal(named.length, 1, 'exactly one droplet with the name')
        assert.equal(droplet.id, named[0]!.id)
        assert.equal(
          em.calls('POST', '/v2/droplets').filter((r) => (r.body as { name: string }).name === name).length,
          1,
        )
      })
    }

    it('creates it on a later attempt when the failed one did not reach the API', async () => {
      const name = `idem-${em.requests.length}`
      em.inject({ method: 'POST', path: '/v2/droplets', times: 2, fault: { kind: 'status', status: 502 } })
      const droplet = await client.createDroplet(request(name))
      assert.equal(em.droplets().filter((d) => d.name === name).length, 1)
      assert.equal(droplet.name, name)
    })

    /** A client whose first back-off wait runs `during` (another process acting meanwhile). */
    function racingClient(during: () => Promise<void>): DigitalOceanClient {
      let fired = false
      return createDigitalOceanClient({
        token: em.token,
        apiUrl: em.url,
        backoff: 100,
        now: () => t,
        sleep: async (ms) => {
          t += ms
          if (!fired) {
            fired = true
            await during()
          }
        },
      })
    }

    const markers = () => [
      ...em.tags().filter((tag) => tag.startsWith(CREATE_MARKER)),
      ...em.droplets().flatMap((d) => d.tags.filter((tag) => tag.startsWith(CREATE_MARKER))),
    ]

    it('never takes a racing process’s droplet of the same name for its own (its create did not reach the API)', async () => {
      const name = `race-${em.requests.length}`
      let theirs: number | undefined
      const ours = racingClient(async () => {
        // Another process creates the same name while this one waits to retry.
        theirs = (await makeClient().createDroplet(request(name))).id
      })
      em.inject({ method: 'POST', path: '/v2/droplets', fault: { kind: 'status', status: 503 } })
      const droplet = await ours.createDroplet(request(name))
      assert.ok(theirs !== undefined)
      assert.notEqual(droplet.id, theirs, 'its own droplet, not the other process’s')
      assert.equal(droplet.name, name)
      assert.equal(em.droplets().filter((d) => d.name === name).length, 2, 'each process made one')
      assert.deepEqual(markers(), [], 'the create markers are deleted')
    })

    it('takes its own droplet when its create reached the API and a racing process made the same name', async () => {
      const name = `race-${em.requests.length}`
      let theirs: number | undefined
      const ours = racingClient(async () => {
        theirs = (await makeClient().createDroplet(request(name))).id
      })
      em.inject({ method: 'POST', path: '/v2/droplets', fault: { kind: 'after', status: 500 } })
      const droplet = await ours.createDroplet(request(name))
      const named = em.droplets().filter((d) => d.name === name)
      assert.equal(named.length, 2, 'one each, no third')
      assert.notEqual(droplet.id, theirs)
      assert.ok(named.some((d) => d.id === droplet.id))
      assert.equal(
        em.calls('POST', '/v2/droplets').filter((r) => (r.body as { name: string }).name === name).length,
        2,
        'one POST per process: the failed one was not repeated',
      )
      assert.deepEqual(markers(), [])
    })

    it('does not mistake an older droplet of the same name for the one it made', async () => {
      const name = `idem-${em.requests.length}`
      const older = em.addDroplet({ name })
      em.inject({ method: 'POST', path: '/v2/droplets', fault: { kind: 'status', status: 500 } })
      const droplet = await client.createDroplet(request(name))
      assert.notEqual(droplet.id, older.id)
      assert.equal(em.droplets().filter((d) => d.name === name).length, 2)
    })
  })

  it('names the missing token', () => {
    const saved = process.env.DIGITALOCEAN_TOKEN
    delete process.env.DIGITALOCEAN_TOKEN
    try {
      assert.throws(
        () => createDigitalOceanClient({ apiUrl: em.url }),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'E_DO_TOKEN')
          assert.match(err.message, /DIGITALOCEAN_TOKEN/)
          return true
        },
      )
    } finally {
      if (saved !== undefined) process.env.DIGITALOCEAN_TOKEN = saved
    }
  })

  it('sent only requests the definition allows', () => {
    assert.deepEqual(em.violations, [])
  })
})
