/**
 * The router as a replacement for seed 004's DLX (seeds.md §4.6–4.7, §4.12), where Tide behaves
 * differently on purpose:
 * - no header chooses where a request goes (the DLX proxied to `X-Forwarded-Host`/`Port` with
 *   `X-Resource-Name`: a server-side request forgery), and the path is passed as it came, once
 *   (the DLX duplicated it: `/a/b/a/b`);
 * - the body of a held request is kept up to `queue.max_body`, then the client is paused (the DLX
 *   parked requests without bound), and still arrives whole;
 * - many groups woken at once each get one wake and all their requests (TestDlxMultipleRequests).
 * Real sockets throughout.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { Readable } from 'node:stream'
import { after, describe, test } from 'node:test'
import { request } from 'undici'
import { createRouter, type Router, routeSchema } from './index.js'

const cleanups: Array<() => Promise<void>> = []
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
})

interface Seen {
  method: string
  url: string
  headers: IncomingMessage['headers']
  bytes: number
  sha256: string
}

/** A server that records each request (with a hash of its body) and answers `<name> <url>`. */
async function server(name: string): Promise<{ address: string; port: number; seen: Seen[] }> {
  const seen: Seen[] = []
  const s: Server = createServer((req, res) => {
    const hash = createHash('sha256')
    let bytes = 0
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length
      hash.update(chunk)
    })
    req.on('end', () => {
      seen.push({
        method: req.method!,
        url: req.url!,
        headers: req.headers,
        bytes,
        sha256: hash.digest('hex'),
      })
      res.end(`${name} ${req.url}`)
    })
  })
  s.listen(0, '127.0.0.1')
  await once(s, 'listening')
  cleanups.push(async () => {
    s.closeAllConnections()
    await new Promise((r) => s.close(r))
  })
  const a = s.address()
  const port = typeof a === 'object' && a ? a.port : 0
  return { address: `127.0.0.1:${port}`, port, seen }
}

async function router(group: string, route: Record<string, unknown> = {}): Promise<Router> {
  const r = createRouter(group, routeSchema.parse({ listen: '127.0.0.1:0', workers: 1, ...route }))
  await r.start()
  cleanups.push(() => r.close())
  return r
}

async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe('router in place of seed 004 DLX', () => {
  test('headers never pick the upstream (no SSRF) and the path arrives once, as sent, with its query', async () => {
    const instance = await server('instance')
    const elsewhere = await server('elsewhere')
    const r = await router('fn')
    // DLX headers that chose the upstream: forwarded host and port plus a resource name, the
    // original URI (duplicated into the path before PR #82), and a target-name header.
    const headers = {
      'x-forwarded-host': '127.0.0.1',
      'x-forwarded-port': String(elsewhere.port),
      'x-resource-name': 'another-function',
      'x-original-uri': '/a/b',
      'x-nuclio-target': 'another-function',
    }
    // At zero the request is held, whatever its headers say, and goes to the group's instance.
    const held = request(`http://${r.address}/a/b?x=1&y=2`, { headers })
    await until(() => r.stats().queued === 1, 'the request held at zero')
    r.setBackends([{ id: 'i', address: instance.address }])
    const first = await held
    assert.equal(await first.body.text(), 'instance /a/b?x=1&y=2')
    // And when an instance is ready.
    const warm = await request(`http://${r.address}/a/b?x=1&y=2`, { headers })
    assert.equal(await warm.body.text(), 'instance /a/b?x=1&y=2')
    assert.deepEqual(
      instance.seen.map((s) => s.url),
      ['/a/b?x=1&y=2', '/a/b?x=1&y=2'],
    )
    assert.equal(elsewhere.seen.length, 0, 'nothing reached the host the headers named')
  })

  test('a held request body is kept up to queue.max_body, the client is paused past it, and the body arrives whole', async () => {
    const instance = await server('instance')
    const maxBody = 64 * 1024
    const r = await router('big', { queue: { max_body: maxBody, timeout: '60s' } })
    const total = 48 * 1024 * 1024
    let produced = 0
    const hash = createHash('sha256')
    async function* body() {
      while (produced < total) {
        // A fresh buffer each time: the stream may still hold the previous ones.
        const chunk = Buffer.alloc(64 * 1024, produced % 251)
        hash.update(chunk)
        produced += chunk.length
        yield chunk
      }
    }
    const answer = request(`http://${r.address}/upload`, {
      method: 'POST',
      body: Readable.from(body()),
      headers: { 'content-length': String(total) },
    })
    await until(() => r.stats().queued === 1, 'the upload held at zero')
    // Let the client write as much as it can while no instance is ready.
    let last = -1
    while (produced !== last) {
      last = produced
      await new Promise((resolve) => setTimeout(resolve, 300))
    }
    // What the client could write is the router's bound plus the sockets' buffers, not the body.
    assert.ok(
      produced < total / 2,
      `the client wrote ${produced} of ${total} bytes while held: nothing paused it`,
    )
    r.setBackends([{ id: 'i', address: instance.address }])
    const res = await answer
    assert.equal(res.statusCode, 200)
    assert.equal(await res.body.text(), 'instance /upload')
    assert.equal(instance.seen[0]!.bytes, total)
    assert.equal(instance.seen[0]!.sha256, hash.digest('hex'), 'the body arrived whole and in order')
  })

  test('200 concurrent requests to 4 groups at zero: one wake per group, all answered by their own group', async () => {
    const groups = ['a', 'b', 'c', 'd']
    const routers = await Promise.all(groups.map((g) => router(g)))
    const wakes = groups.map(() => 0)
    routers.forEach((r, i) => r.onDemand(() => wakes[i]!++))
    const answers = Array.from({ length: 200 }, (_, n) => {
      const i = n % 4
      return request(`http://${routers[i]!.address}/r${n}`).then(async (res) => ({
        status: res.statusCode,
        body: await res.body.text(),
      }))
    })
    await until(() => routers.every((r) => r.stats().queued === 50), '50 requests held by each router')
    assert.deepEqual(wakes, [1, 1, 1, 1])
    const instances = await Promise.all(groups.map((g) => server(g)))
    routers.forEach((r, i) => r.setBackends([{ id: groups[i]!, address: instances[i]!.address }]))
    const done = await Promise.all(answers)
    done.forEach((a, n) => {
      assert.equal(a.status, 200)
      assert.equal(a.body, `${groups[n % 4]} /r${n}`)
    })
  })
})
