import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { connect, type Socket } from 'node:net'
import { after, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, request } from 'undici'
import { createRouter, type Router, routeSchema, windowOf } from './index.js'

// ─── helpers ─────────────────────────────────────────────────────────────────

interface Upstream {
  server: Server
  address: string
  /** Requests being handled now, and handled in all. */
  active: number
  total: number
  close(): Promise<void>
  /** Ends every connection at once, as a crashed instance would. */
  kill(): Promise<void>
}

type Handler = (req: IncomingMessage, res: ServerResponse, upstream: Upstream) => unknown

const cleanups: Array<() => Promise<void>> = []
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
})

async function upstream(handler: Handler = (_req, res) => res.end('ok')): Promise<Upstream> {
  const up: Upstream = {
    server: createServer(),
    address: '',
    active: 0,
    total: 0,
    close: async () => {
      up.server.closeAllConnections()
      if (up.server.listening) await new Promise((r) => up.server.close(r))
    },
    kill: async () => {
      up.server.closeAllConnections()
      await new Promise((r) => up.server.close(r))
    },
  }
  up.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    up.active++
    up.total++
    res.on('close', () => up.active--)
    void handler(req, res, up)
  })
  up.server.listen(0, '127.0.0.1')
  await once(up.server, 'listening')
  const a = up.server.address()
  up.address = `127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`
  cleanups.push(() => up.close())
  return up
}

async function router(route: Record<string, unknown> = {}): Promise<Router> {
  const r = createRouter('web', routeSchema.parse({ listen: '127.0.0.1:0', workers: 1, ...route }))
  await r.start()
  cleanups.push(() => r.close())
  return r
}

/** A started router (see `router`) whose backends are `instances` by id (`{ a: up }`), in that order. */
async function routerTo(
  instances: Record<string, Upstream | string>,
  route: Record<string, unknown> = {},
): Promise<Router> {
  const r = await router(route)
  r.setBackends(
    Object.entries(instances).map(([id, up]) => ({ id, address: typeof up === 'string' ? up : up.address })),
  )
  return r
}

/** Two instances, a and b, each answering `body` after `ms`, behind a router. */
async function pair(ms: number, body = 'ok'): Promise<{ a: Upstream; b: Upstream; r: Router }> {
  const handler: Handler = async (_req, res) => {
    await sleep(ms)
    res.end(body)
  }
  const a = await upstream(handler)
  const b = await upstream(handler)
  return { a, b, r: await routerTo({ a, b }) }
}

const agents: Agent[] = []
after(async () => {
  for (const agent of agents) await agent.close()
})
function agent(connections = 16): Agent {
  const a = new Agent({ connections, keepAliveTimeout: 10_000 })
  agents.push(a)
  return a
}

/**
 * Load on `r` from `clients` clients (over as many connections), each sending its next request to
 * `/` as soon as the last is answered, until `stop()`; that resolves to how many requests failed
 * (a status other than 200, or no answer at all).
 */
function load(r: Router, options: { method?: 'GET' | 'POST'; body?: string } = {}, clients = 8) {
  const dispatcher = agent(clients)
  let failures = 0
  let stopped = false
  const loop = async () => {
    while (!stopped) {
      const res = await get(r, '/', { ...options, dispatcher }).catch(() => ({ status: 0 }))
      if (res.status !== 200) failures++
    }
  }
  const loops = Array.from({ length: clients }, loop)
  return {
    async stop(): Promise<number> {
      stopped = true
      await Promise.all(loops)
      return failures
    },
  }
}

async function get(
  r: Router,
  path = '/',
  options: { dispatcher?: Agent; method?: 'GET' | 'POST'; body?: string } = {},
) {
  const res = await request(`http://${r.address}${path}`, {
    method: options.method ?? 'GET',
    body: options.body,
    dispatcher: options.dispatcher,
  })
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() }
}

/** Sends raw bytes and reads until the connection closes (or `until` matches what arrived). */
async function raw(address: string, data: string, until?: (text: string) => boolean): Promise<string> {
  const [host, port] = address.split(':')
  const socket: Socket = connect(Number(port), host)
  await once(socket, 'connect')
  socket.write(data)
  let text = ''
  return await new Promise((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1')
      if (until?.(text)) {
        socket.destroy()
        resolve(text)
      }
    })
    socket.on('close', () => resolve(text))
    socket.on('error', () => resolve(text))
  })
}

function headersOf(response: string): Record<string, string> {
  const head = response.slice(0, response.indexOf('\r\n\r\n'))
  const out: Record<string, string> = {}
  for (const line of head.split('\r\n').slice(1)) {
    const i = line.indexOf(':')
    out[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim()
  }
  return out
}

/** Waits until `check` holds, polling (the thing awaited happens in another process or socket). */
async function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

// ─── behaviour ───────────────────────────────────────────────────────────────

describe('router: proxying', () => {
  test('a GET reaches the instance and its status, headers and body come back', async () => {
    const up = await upstream((req, res) => {
      res.writeHead(201, { 'X-From': 'instance', 'Content-Type': 'application/json' })
      res.end(JSON.stringify({ path: req.url, method: req.method }))
    })
    const r = await routerTo({ a: up })
    const res = await get(r, '/hello?x=1')
    assert.equal(res.status, 201)
    assert.equal(res.headers['x-from'], 'instance')
    assert.deepEqual(JSON.parse(res.body), { path: '/hello?x=1', method: 'GET' })
  })

  test('a request body and a response body stream both ways, chunk by chunk', async () => {
    // The instance answers each request chunk as it arrives; the client sends the next chunk only
    // after reading the answer to the previous one, so nothing here works if either side buffers.
    const up = await upstream((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' })
      req.on('data', (chunk: Buffer) => res.write(`echo:${chunk.toString()};`))
      req.on('end', () => res.end('done'))
    })
    const r = await routerTo({ a: up })
    const [host, port] = r.address.split(':')
    const socket = connect(Number(port), host)
    await once(socket, 'connect')
    let received = ''
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString()
    })
    socket.write('POST /stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n')
    for (const piece of ['one', 'two', 'three']) {
      socket.write(`${piece.length.toString(16)}\r\n${piece}\r\n`)
      await until(() => received.includes(`echo:${piece};`), `the echo of ${piece}`)
    }
    socket.write('0\r\n\r\n')
    await until(() => received.includes('done') && received.endsWith('0\r\n\r\n'), 'the end of the response')
    assert.match(received, /^HTTP\/1\.1 200 OK\r\n/)
    assert.equal(headersOf(received)['transfer-encoding'], 'chunked')
    socket.destroy()
  })

  test('hop-by-hop headers are stripped both ways and X-Forwarded-* are added', async () => {
    let seen: Record<string, string | string[] | undefined> = {}
    const up = await upstream((req, res) => {
      seen = req.headers
      // Hop-by-hop fields in the response, written raw so Node leaves them as they are.
      res.socket!.write(
        'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, X-Hop\r\nX-Hop: secret\r\n' +
          'Keep-Alive: timeout=30\r\nProxy-Thing: 1\r\nTrailer: X-T\r\nX-Kept: yes\r\n\r\nok',
      )
    })
    const r = await routerTo({ a: up })
    const response = await raw(
      r.address,
      'GET /h HTTP/1.1\r\nHost: app.example\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\n' +
        'Keep-Alive: 300\r\nTE: trailers\r\nProxy-Authorization: Basic eA==\r\nUpgrade: h2c\r\n' +
        'X-Forwarded-For: 203.0.113.7\r\nX-Custom: kept\r\n\r\n',
      (text) => text.endsWith('ok'),
    )
    for (const name of ['connection', 'x-secret', 'keep-alive', 'te', 'proxy-authorization', 'upgrade']) {
      assert.equal(seen[name], undefined, `${name} must not reach the instance`)
    }
    assert.equal(seen['x-custom'], 'kept')
    assert.equal(seen.host, 'app.example')
    assert.equal(seen['x-forwarded-for'], '203.0.113.7, 127.0.0.1')
    assert.equal(seen['x-forwarded-proto'], 'http')
    assert.equal(seen['x-forwarded-host'], 'app.example')
    const headers = headersOf(response)
    for (const name of ['connection', 'x-hop', 'keep-alive', 'proxy-thing', 'trailer']) {
      assert.equal(headers[name], undefined, `${name} must not reach the client`)
    }
    assert.equal(headers['x-kept'], 'yes')
  })

  test('pipelined requests are answered in order', async () => {
    const up = await upstream((req, res) => res.end(`you asked ${req.url}`))
    const r = await routerTo({ a: up })
    const response = await raw(
      r.address,
      'GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    )
    const bodies = [...response.matchAll(/you asked (\/\d)/g)].map((m) => m[1])
    assert.deepEqual(bodies, ['/1', '/2', '/3'])
  })

  test('an HTTP/1.0 client gets a chunked response de-chunked and the connection closed', async () => {
    const up = await upstream((_req, res) => {
      res.write('hel')
      res.end('lo')
    })
    const r = await routerTo({ a: up })
    const response = await raw(r.address, 'GET / HTTP/1.0\r\n\r\n')
    assert.match(response, /^HTTP\/1\.1 200 OK\r\n/)
    assert.equal(headersOf(response)['transfer-encoding'], undefined)
    assert.equal(headersOf(response).connection, 'close')
    assert.ok(response.endsWith('\r\n\r\nhello'), response)
  })

  test('malformed or ambiguous requests get a 400 with a JSON body and are not forwarded', async () => {
    const up = await upstream()
    const r = await routerTo({ a: up })
    for (const bad of [
      'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: x\r\n folded: line\r\n\r\n',
      'GET / HTTP/1.1\r\nHost : x\r\n\r\n',
      'GET / HTTP/1.1\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\n',
    ]) {
      const response = await raw(r.address, bad)
      assert.match(response, /^HTTP\/1\.1 400 /, JSON.stringify(bad))
      const body = JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4))
      assert.equal(body.code, 'E_ROUTER_BAD_REQUEST')
    }
    assert.equal(up.total, 0)
  })
})

describe('router: balancing and failures', () => {
  test('least outstanding spreads concurrent slow requests evenly', async () => {
    const { a, b, r } = await pair(150, 'slow')
    const dispatcher = agent(10)
    const results = await Promise.all(Array.from({ length: 10 }, () => get(r, '/', { dispatcher })))
    assert.ok(results.every((x) => x.status === 200))
    assert.equal(a.total, 5)
    assert.equal(b.total, 5)
  })

  test('an instance that refuses connections is skipped: the request goes to another', async () => {
    const a = await upstream()
    const dead = await upstream()
    const deadAddress = dead.address
    await dead.kill()
    const r = await routerTo({ dead: deadAddress, a })
    const results = await Promise.all(
      Array.from({ length: 6 }, () => get(r, '/', { method: 'POST', body: 'x' })),
    )
    assert.deepEqual(
      results.map((x) => x.status),
      [200, 200, 200, 200, 200, 200],
    )
  })

  test('an instance that dies mid-load fails only the requests in flight on it', async () => {
    const { a, b, r } = await pair(20)
    // POST is not idempotent, so the router may not retry it after the instance got it.
    const traffic = load(r, { method: 'POST', body: 'work' })
    await until(() => b.total >= 10, 'load on b')
    const inFlightOnB = b.active
    await b.kill()
    await until(() => a.total >= 60, 'more load on a')
    const failures = await traffic.stop()
    assert.ok(failures <= inFlightOnB, `${failures} failed but only ${inFlightOnB} were in flight on b`)
  })

  test('an instance that does not answer within upstream_timeout gets a 504', async () => {
    const up = await upstream(() => {}) // never answers
    const r = await routerTo({ a: up }, { upstream_timeout: '1s' })
    const res = await get(r)
    assert.equal(res.status, 504)
    assert.equal(JSON.parse(res.body).code, 'E_ROUTER_UPSTREAM_TIMEOUT')
  })
})

describe('router: scale from zero', () => {
  test('requests wait while no instance is ready and go as soon as one is set; onDemand fires once', async () => {
    const up = await upstream((req, res) => res.end(`served ${req.url}`))
    const r = await router()
    let demand = 0
    r.onDemand(() => demand++)
    const pending = [get(r, '/1'), get(r, '/2'), get(r, '/3')]
    await until(() => r.stats().queued === 3, 'three queued requests')
    assert.equal(demand, 1)
    r.setBackends([{ id: 'a', address: up.address }])
    const results = await Promise.all(pending)
    assert.deepEqual(
      results.map((x) => x.body),
      ['served /1', 'served /2', 'served /3'],
    )
    assert.equal(demand, 1)
    // A new episode: the group went back to zero.
    r.setBackends([])
    const again = get(r, '/4')
    await until(() => demand === 2, 'a second demand signal')
    r.setBackends([{ id: 'a', address: up.address }])
    assert.equal((await again).body, 'served /4')
  })

  test('a full queue answers 503 with Retry-After and a JSON error', async () => {
    const r = await router({ queue: { depth: 1 } })
    const first = get(r, '/waits')
    await until(() => r.stats().queued === 1, 'the first request queued')
    const second = await get(r, '/rejected')
    assert.equal(second.status, 503)
    assert.equal(second.headers['retry-after'], '5')
    assert.equal(JSON.parse(second.body).code, 'E_ROUTER_QUEUE_FULL')
    const up = await upstream()
    r.setBackends([{ id: 'a', address: up.address }])
    assert.equal((await first).status, 200)
  })

  test('a request that waits longer than queue.timeout gets a 503', async () => {
    const r = await router({ queue: { timeout: '200ms' } })
    const res = await get(r)
    assert.equal(res.status, 503)
    assert.equal(res.headers['retry-after'], '5')
    assert.equal(JSON.parse(res.body).code, 'E_ROUTER_QUEUE_TIMEOUT')
    assert.equal(r.stats().queued, 0)
  })

  test('a queued POST keeps its body and delivers it once an instance is ready', async () => {
    const up = await upstream(async (req, res) => {
      let body = ''
      for await (const chunk of req) body += chunk
      res.end(`got ${body}`)
    })
    const r = await router()
    const pending = get(r, '/', { method: 'POST', body: 'payload'.repeat(100) })
    await until(() => r.stats().queued === 1, 'the POST queued')
    r.setBackends([{ id: 'a', address: up.address }])
    assert.equal((await pending).body, `got ${'payload'.repeat(100)}`)
  })
})

describe('router: drain', () => {
  test('drain under load: no failed request, and it resolves only once the instance is idle', async () => {
    const { a, b, r } = await pair(15)
    const traffic = load(r)
    await until(() => b.total >= 20 && b.active > 0, 'load on b')
    const drained = await r.drain('b', 5000)
    // Resolved: nothing is in flight on b, as b itself sees it.
    assert.equal(b.active, 0)
    assert.deepEqual(drained, { inFlight: 0, timedOut: false })
    const servedByB = b.total
    r.setBackends([{ id: 'a', address: a.address }])
    await b.close()
    const before = a.total
    await until(() => a.total >= before + 40, 'load after the drain')
    assert.equal(await traffic.stop(), 0)
    assert.equal(b.total, servedByB, 'b got requests after its drain resolved')
  })

  test('a drain that outlasts its timeout says how many requests were left', async () => {
    const up = await upstream(async (_req, res) => {
      await sleep(400)
      res.end('late')
    })
    const r = await routerTo({ a: up })
    const pending = get(r)
    await until(() => up.active === 1, 'the request in flight')
    assert.deepEqual(await r.drain('a', 50), { inFlight: 1, timedOut: true })
    assert.equal((await pending).status, 200)
  })
})

describe('router: stats', () => {
  test('the window average of concurrency is the time-weighted in-flight count', async () => {
    const up = await upstream(async (_req, res) => {
      await sleep(100)
      res.end('ok')
    })
    const r = await routerTo({ a: up })
    const dispatcher = agent(4)
    const start = r.stats().counters
    // Known pattern: 3 requests at once, then 1, each ~100 ms; the client measures what it waited.
    let clientMs = 0
    let longest = 0
    const timed = async () => {
      const t = performance.now()
      await get(r, '/', { dispatcher })
      clientMs += performance.now() - t
      longest = Math.max(longest, performance.now() - t)
    }
    await Promise.all([timed(), timed(), timed()])
    await timed()
    await sleep(50)
    const end = r.stats().counters
    const window = windowOf(start, end)
    const expected = clientMs / window.ms
    // The router's in-flight time is inside the client's (connect and loopback add a little).
    assert.ok(window.concurrency <= expected + 1e-9, `${window.concurrency} > ${expected}`)
    // And it holds each request at least as long as the upstream took (100 ms each), whatever the
    // machine's load adds on the client's side.
    const floor = (4 * 99) / window.ms
    assert.ok(window.concurrency >= floor, `${window.concurrency} < ${floor} (4 × 100 ms in ${window.ms} ms)`)
    assert.equal(window.perBackend.a, window.concurrency)
    assert.equal(end.requests - start.requests, 4)
    // Buckets are 2^(1/4) wide, so a percentile is within ~19 % of a latency that occurred.
    const p50 = window.latency?.p50 ?? 0
    assert.ok(p50 >= 100 / 1.19 && p50 <= longest * 1.19, `p50 ${p50} outside [84, ${longest * 1.19}]`)
    assert.equal(window.queued, 0)
  })

  test('queued requests count in the total concurrency (the demand at zero instances)', async () => {
    const r = await router({ queue: { timeout: '300ms' } })
    const start = r.stats().counters
    await Promise.all([get(r), get(r)]) // both wait 300 ms, then 503
    const window = windowOf(start, r.stats().counters)
    assert.ok(window.queued > 0 && window.concurrency === window.queued)
    assert.equal(r.stats().errors, 2)
  })
})

describe('router: workers', () => {
  test('with two worker processes: proxies, queues, drains and merges counters', async () => {
    const up = await upstream((req, res) => res.end(`served ${req.url}`))
    const r = createRouter('web', routeSchema.parse({ listen: '127.0.0.1:0', workers: 2 }))
    cleanups.push(() => r.close())
    let demand = 0
    r.onDemand(() => demand++)
    await r.start()
    assert.match(r.address, /^127\.0\.0\.1:\d+$/)
    // Several connections so both workers get some.
    const dispatcher = agent(8)
    const queued = Array.from({ length: 8 }, (_, i) => get(r, `/${i}`, { dispatcher }))
    await until(() => demand === 1 && r.stats().queued > 0, 'demand from a worker')
    r.setBackends([{ id: 'a', address: up.address }])
    const results = await Promise.all(queued)
    assert.ok(results.every((x, i) => x.body === `served /${i}`))
    assert.equal(demand, 1)
    await until(() => r.stats().requests === 8, 'merged counters')
    assert.equal(r.stats().counters.backends.a?.requests, 8)
    assert.deepEqual(await r.drain('a'), { inFlight: 0, timedOut: false })
    await r.close()
  })
})

describe('router: upgrade (WebSocket)', () => {
  interface Echo {
    up: Upstream
    /** Upgrade requests' headers, as the instance saw them. */
    seen: IncomingMessage['headers'][]
    /** The instance's ends of the tunnels. */
    sockets: Socket[]
  }

  /** An instance that answers an upgrade with 101 and then echoes every byte back. */
  async function echo(): Promise<Echo> {
    const e: Echo = { up: await upstream((_req, res) => res.end('plain')), seen: [], sockets: [] }
    e.up.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      e.seen.push(req.headers)
      e.sockets.push(socket)
      if (req.url === '/refuse') {
        socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno')
        return
      }
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Accept: xyz\r\n\r\n',
      )
      if (head.length > 0) socket.write(head)
      socket.pipe(socket)
    })
    return e
  }

  /** A raw client: sends `data`, then reads into `text`. */
  async function client(address: string, data: string) {
    const [host, port] = address.split(':')
    const socket: Socket = connect(Number(port), host)
    await once(socket, 'connect')
    const c = { socket, text: '', closed: false }
    socket.on('data', (chunk: Buffer) => (c.text += chunk.toString('latin1')))
    socket.on('close', () => (c.closed = true))
    socket.on('error', () => {})
    socket.write(data)
    return c
  }

  const UPGRADE =
    'GET /ws HTTP/1.1\r\nHost: app.example\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n' +
    'Sec-WebSocket-Key: abc\r\nSec-WebSocket-Version: 13\r\n\r\n'

  /** An echo instance behind a router, and a client whose upgrade it has answered (the head read). */
  async function tunnel() {
    const e = await echo()
    const r = await routerTo({ a: e.up })
    const c = await client(r.address, UPGRADE)
    await until(() => c.text.includes('\r\n\r\n'), 'the 101')
    return { e, r, c }
  }

  test('a 101 opens a tunnel: the head reaches the client, then bytes are echoed both ways', async () => {
    const { e, r, c } = await tunnel()
    assert.match(c.text, /^HTTP\/1\.1 101 Switching Protocols\r\n/)
    const headers = headersOf(c.text)
    assert.equal(headers.upgrade, 'websocket')
    assert.equal(headers.connection, 'Upgrade')
    assert.equal(headers['sec-websocket-accept'], 'xyz')
    assert.equal(e.seen[0]?.upgrade, 'websocket')
    assert.match(String(e.seen[0]?.connection), /upgrade/i)
    assert.equal(e.seen[0]?.['sec-websocket-key'], 'abc')
    assert.equal(e.seen[0]?.['x-forwarded-for'], '127.0.0.1')
    const at = c.text.indexOf('\r\n\r\n') + 4
    c.socket.write('hello')
    await until(() => c.text.slice(at) === 'hello', 'the echo')
    // Not parsed as HTTP: anything goes.
    c.socket.write('GET / HTTP/1.1\r\n\r\n\x00\xff', 'latin1')
    await until(() => c.text.slice(at) === 'helloGET / HTTP/1.1\r\n\r\n\x00\xff', 'the second echo')
    // Counted in flight while open.
    assert.equal(r.stats().counters.backends.a?.inFlight, 1)
    // A tunnel is never pooled: a plain request after it uses a new connection and works.
    assert.equal((await get(r)).body, 'plain')
    c.socket.destroy()
  })

  test('bytes sent with the request head reach the instance after the 101', async () => {
    const e = await echo()
    const r = await routerTo({ a: e.up })
    const c = await client(r.address, `${UPGRADE}early bytes`)
    await until(() => c.text.endsWith('early bytes'), 'the early bytes echoed')
    assert.match(c.text, /^HTTP\/1\.1 101 /)
    c.socket.destroy()
  })

  test('closing the client closes the instance side, and the request is counted done', async () => {
    const { e, r, c } = await tunnel()
    const upSocket = e.sockets[0]!
    let upClosed = false
    upSocket.on('close', () => (upClosed = true))
    c.socket.end()
    await until(() => upClosed, 'the instance side closing')
    await until(() => c.closed, 'the client side closing')
    await until(() => r.stats().counters.inFlight === 0, 'nothing in flight')
    assert.equal(r.stats().counters.errors, 0)
  })

  test('the instance closing the tunnel closes the client', async () => {
    const { e, c } = await tunnel()
    e.sockets[0]!.end('bye')
    await until(() => c.closed, 'the client side closing')
    assert.ok(c.text.endsWith('bye'))
  })

  test('a drain waits for an open tunnel, and resolves once it closes', async () => {
    const { r, c } = await tunnel()
    let resolved = false
    const drained = r.drain('a', 5000).then((x) => {
      resolved = true
      return x
    })
    await sleep(100)
    assert.equal(resolved, false)
    // Still usable while draining.
    c.socket.write('still')
    await until(() => c.text.endsWith('still'), 'the echo while draining')
    c.socket.destroy()
    assert.deepEqual(await drained, { inFlight: 0, timedOut: false })
  })

  test('past the drain timeout, the router closes the tunnel', async () => {
    const { r, c } = await tunnel()
    assert.deepEqual(await r.drain('a', 50), { inFlight: 1, timedOut: true })
    await until(() => c.closed, 'the tunnel closed by the router')
    await until(() => r.stats().counters.inFlight === 0, 'nothing in flight')
  })

  test('an answer other than 101 is a normal response', async () => {
    const e = await echo()
    const r = await routerTo({ a: e.up })
    const response = await raw(r.address, UPGRADE.replace('/ws', '/refuse'), (t) => t.endsWith('no'))
    assert.match(response, /^HTTP\/1\.1 403 Forbidden\r\n/)
    assert.equal(headersOf(response)['content-length'], '2')
    assert.equal(headersOf(response).upgrade, undefined)
    assert.equal(r.stats().counters.backends.a?.inFlight, 0)
  })

  test('an instance ignoring the upgrade answers normally, and its connection is not reused', async () => {
    const up = await upstream((req, res) => res.end(`plain ${req.url}`))
    let connections = 0
    up.server.on('connection', () => connections++)
    // Without an 'upgrade' listener, Node answers upgrade requests as plain ones.
    const r = await routerTo({ a: up })
    const dispatcher = agent(1)
    const response = await raw(r.address, UPGRADE, (t) => t.endsWith('plain /ws'))
    assert.match(response, /^HTTP\/1\.1 200 OK\r\n/)
    assert.equal((await get(r, '/x', { dispatcher })).body, 'plain /x')
    assert.equal((await get(r, '/y', { dispatcher })).body, 'plain /y')
    assert.equal(connections, 2)
  })

  test('an upgrade request waits in the queue while no instance is ready', async () => {
    const e = await echo()
    const r = await router()
    let demand = 0
    r.onDemand(() => demand++)
    const c = await client(r.address, `${UPGRADE}queued`)
    await until(() => r.stats().queued === 1, 'the queued upgrade')
    assert.equal(demand, 1)
    r.setBackends([{ id: 'a', address: e.up.address }])
    await until(() => c.text.endsWith('queued'), 'the 101 and the echo')
    assert.match(c.text, /^HTTP\/1\.1 101 /)
    c.socket.destroy()
  })

  test('with two worker processes: tunnels work and a drain waits for them', async () => {
    const e = await echo()
    const r = await routerTo({ a: e.up }, { workers: 2 })
    const clients = await Promise.all([1, 2, 3, 4].map(() => client(r.address, UPGRADE)))
    for (const c of clients) {
      await until(() => c.text.includes('\r\n\r\n'), 'the 101')
      c.socket.write('ping')
      await until(() => c.text.endsWith('ping'), 'the echo')
    }
    let resolved = false
    const drained = r.drain('a', 5000).then((x) => {
      resolved = true
      return x
    })
    // Another setBackends while draining must not cut the tunnels (workers re-mark drains).
    r.setBackends([{ id: 'a', address: e.up.address }])
    await sleep(300)
    assert.equal(resolved, false)
    for (const c of clients) assert.equal(c.closed, false)
    for (const c of clients) c.socket.destroy()
    assert.deepEqual(await drained, { inFlight: 0, timedOut: false })
    await r.close()
  })

  test('a 101 to a request that did not ask to upgrade is refused', async () => {
    const up = await upstream((_req, res) => {
      res.socket!.write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
      )
    })
    const r = await routerTo({ a: up })
    // Upgrade without the Connection token: not an upgrade request, so Upgrade is removed.
    const response = await raw(
      r.address,
      'GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: close\r\n\r\n',
    )
    // Not forwarded: the client never sees a protocol switch it did not ask for.
    assert.doesNotMatch(response, /101/)
  })
})
