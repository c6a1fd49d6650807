import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import {
  BODY_CHUNKED,
  BODY_CLOSE,
  BODY_LENGTH,
  BODY_NONE,
  forwardingFor,
  parseRequestHead,
  parseResponseHead,
  RequestHead,
  ResponseHead,
} from './http1.js'

const fwd = forwardingFor('10.0.0.9', '127.0.0.1:8080')

function request(head: string): RequestHead {
  const out = new RequestHead()
  parseRequestHead(head, out, fwd)
  return out
}

function response(head: string, isHead = false): ResponseHead {
  const out = new ResponseHead()
  parseResponseHead(head, out, isHead)
  return out
}

describe('parseRequestHead', () => {
  test('a plain GET gains X-Forwarded-* and keeps everything else byte for byte', () => {
    const r = request('GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n')
    assert.equal(r.error, 0)
    assert.equal(
      r.head,
      'GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nX-Forwarded-For: 10.0.0.9\r\n' +
        'X-Forwarded-Proto: http\r\nX-Forwarded-Host: example.com\r\n\r\n',
    )
    assert.equal(r.body, BODY_NONE)
    assert.equal(r.keepAlive, true)
    assert.equal(r.idempotent, true)
  })

  test('an upgrade request keeps Connection: upgrade and Upgrade; other hop-by-hop fields go', () => {
    const r = request(
      'GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, UPGRADE, X-A\r\nX-A: 1\r\nUpgrade: websocket\r\n' +
        'Keep-Alive: 5\r\nSec-WebSocket-Key: k\r\n\r\n',
    )
    assert.equal(r.error, 0)
    assert.equal(r.upgrade, true)
    assert.equal(
      r.head,
      'GET /ws HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Key: k\r\nX-Forwarded-For: 10.0.0.9\r\n' +
        'X-Forwarded-Proto: http\r\nX-Forwarded-Host: h\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n',
    )
    // Not an upgrade: no Connection token, no Upgrade field, HTTP/1.0, or a body.
    for (const head of [
      'GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n',
      'GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: h2c\r\nContent-Length: 1\r\n\r\n',
    ]) {
      const plain = request(head)
      assert.equal(plain.error, 0)
      assert.equal(plain.upgrade, false, head)
      assert.ok(!/\r\n(connection|upgrade):/i.test(plain.head), plain.head)
    }
  })

  test('a 101 response says what it switches to', () => {
    const r = response(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX: 1\r\n\r\n',
    )
    assert.equal(r.error, '')
    assert.equal(r.status, 101)
    assert.equal(r.upgrade, 'websocket')
    assert.equal(r.head, 'HTTP/1.1 101 Switching Protocols\r\nX: 1\r\n')
    assert.equal(r.body, BODY_NONE)
  })

  test('hop-by-hop fields go, including those Connection names, whatever their case', () => {
    const r = request(
      'POST / HTTP/1.1\r\nX-A: 1\r\nhost: h\r\nCONNECTION: close, X-A\r\nKeep-Alive: 5\r\nTE: trailers\r\n' +
        'Trailer: X-T\r\nUpgrade: websocket\r\nProxy-Connection: keep-alive\r\nContent-Length: 2\r\n\r\n',
    )
    assert.equal(r.error, 0)
    assert.equal(
      r.head,
      'POST / HTTP/1.1\r\nhost: h\r\nContent-Length: 2\r\nX-Forwarded-For: 10.0.0.9\r\nX-Forwarded-Proto: http\r\n' +
        'X-Forwarded-Host: h\r\n\r\n',
    )
    assert.equal(r.keepAlive, false)
    assert.equal(r.body, BODY_LENGTH)
    assert.equal(r.length, 2)
    assert.equal(r.idempotent, false)
  })

  test('Connection cannot strip the fields framing and forwarding rely on', () => {
    const r = request(
      'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nConnection: content-length, host\r\n\r\n',
    )
    assert.equal(r.error, 0)
    assert.match(r.head, /\r\nContent-Length: 3\r\n/)
    assert.match(r.head, /\r\nHost: h\r\n/)
  })

  test('existing forwarding headers are extended, not replaced', () => {
    const r = request(
      'GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: public\r\n\r\n',
    )
    assert.equal(
      r.head,
      'GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: public\r\n' +
        'X-Forwarded-For: 1.1.1.1, 10.0.0.9\r\n\r\n',
    )
  })

  test('HTTP/1.0 goes upstream as HTTP/1.1, with a Host when it had none', () => {
    const r = request('GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n')
    assert.equal(r.error, 0)
    assert.equal(r.http10, true)
    assert.equal(r.keepAlive, true)
    assert.match(
      r.head,
      /^GET \/ HTTP\/1\.1\r\nX-Forwarded-For: 10\.0\.0\.9\r\n.*Host: 127\.0\.0\.1:8080\r\n\r\n$/s,
    )
    assert.equal(request('GET / HTTP/1.0\r\n\r\n').keepAlive, false)
  })

  test('chunked bodies are recognised and the coding is sent on', () => {
    const r = request('PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n')
    assert.equal(r.body, BODY_CHUNKED)
    assert.match(r.head, /Transfer-Encoding: gzip, chunked\r\n\r\n$/)
  })

  const refused: Array<[string, string, number]> = [
    ['no Host', 'GET / HTTP/1.1\r\n\r\n', 400],
    ['two Hosts', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400],
    [
      'CL and TE',
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n',
      400,
    ],
    [
      'TE not ending in chunked',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n',
      400,
    ],
    ['TE in HTTP/1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n', 400],
    [
      'conflicting lengths',
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
      400,
    ],
    ['a length that is not a number', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n', 400],
    ['obs-fold', 'GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n  2\r\n\r\n', 400],
    ['space before colon', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n', 400],
    ['bare LF in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX: 1\n2\r\n\r\n', 400],
    ['bare CR in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX: 1\r2\r\n\r\n', 400],
    ['space in the target', 'GET /a b HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['CONNECT', 'CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\n', 505],
    ['HTTP/1.2', 'GET / HTTP/1.2\r\nHost: a\r\n\r\n', 505],
  ]
  for (const [what, head, status] of refused) {
    test(`refuses ${what} with ${status}`, () => {
      assert.equal(request(head).error, status)
    })
  }

  test('fuzz: never throws, and what it forwards has no hop-by-hop field and one head end', () => {
    const token = fc.stringMatching(/^[A-Za-z0-9-]{1,12}$/)
    const names = fc.oneof(
      token,
      fc.constantFrom(
        'Connection',
        'Keep-Alive',
        'TE',
        'Upgrade',
        'Proxy-X',
        'Content-Length',
        'Host',
        'Trailer',
      ),
    )
    const value = fc.stringMatching(/^[\x20-\x7e\t]{0,20}$/)
    const line = fc.tuple(names, value).map(([n, v]) => `${n}: ${v}\r\n`)
    // Any ASCII at all, control characters included: the parser must refuse, never misframe.
    const noise = fc.string({
      unit: fc.integer({ min: 0, max: 127 }).map((c) => String.fromCharCode(c)),
      maxLength: 10,
    })
    fc.assert(
      fc.property(fc.array(fc.oneof(line, noise), { maxLength: 8 }), (lines) => {
        const head = `GET / HTTP/1.1\r\n${lines.join('')}\r\n\r\n`
        const r = request(head)
        if (r.error !== 0) return
        const forwarded = r.head.split('\r\n').map((l) => l.slice(0, l.indexOf(':')).toLowerCase())
        // An upgrade request keeps exactly `Connection: upgrade` and its Upgrade field.
        const hops = r.upgrade ? [] : ['connection', 'upgrade']
        if (r.upgrade) {
          assert.equal(forwarded.filter((n) => n === 'connection').length, 1)
          assert.equal(forwarded.filter((n) => n === 'upgrade').length, 1)
          assert.ok(r.head.includes('\r\nConnection: upgrade\r\n'))
        }
        for (const hop of [...hops, 'keep-alive', 'te', 'trailer', 'proxy-x']) {
          assert.ok(!forwarded.includes(hop), `${hop} forwarded in ${JSON.stringify(r.head)}`)
        }
        assert.equal(r.head.indexOf('\r\n\r\n'), r.head.length - 4)
      }),
      { numRuns: 2000 },
    )
  })
})

describe('parseResponseHead', () => {
  test("Node's keep-alive response: Connection and Keep-Alive go, the timeout is read", () => {
    const r = response(
      'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nhello',
    )
    assert.equal(r.error, '')
    assert.equal(r.head, 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n')
    assert.equal(r.body, BODY_LENGTH)
    assert.equal(r.length, 5)
    assert.equal(r.reusable, true)
    assert.equal(r.keepAliveMs, 5000)
  })

  const framing: Array<[string, string, boolean, number, boolean]> = [
    ['chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', false, BODY_CHUNKED, true],
    ['neither length nor chunked: until close', 'HTTP/1.1 200 OK\r\n\r\n', false, BODY_CLOSE, false],
    ['a HEAD response', 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n', true, BODY_NONE, true],
    ['204', 'HTTP/1.1 204 No Content\r\n\r\n', false, BODY_NONE, true],
    ['304', 'HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n', false, BODY_NONE, true],
    [
      'Connection: close',
      'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n',
      false,
      BODY_LENGTH,
      false,
    ],
    [
      'HTTP/1.0 without keep-alive',
      'HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n',
      false,
      BODY_LENGTH,
      false,
    ],
    [
      'HTTP/1.0 with keep-alive',
      'HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n',
      false,
      BODY_LENGTH,
      true,
    ],
  ]
  for (const [what, head, isHead, body, reusable] of framing) {
    test(`framing: ${what}`, () => {
      const r = response(head, isHead)
      assert.equal(r.error, '')
      assert.equal(r.body, body)
      assert.equal(r.reusable, reusable)
    })
  }

  test('with both Transfer-Encoding and Content-Length, the length is dropped (RFC 9112 §6.3)', () => {
    const r = response('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX: y\r\nTransfer-Encoding: chunked\r\n\r\n')
    assert.equal(r.body, BODY_CHUNKED)
    assert.equal(r.head, 'HTTP/1.1 200 OK\r\nX: y\r\n')
  })

  test('an HTTP/1.0 status line is sent on as HTTP/1.1', () => {
    assert.equal(
      response('HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n').head,
      'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n',
    )
  })

  for (const bad of [
    'HTTP/2 200\r\n\r\n',
    'HTTP/1.1 20 OK\r\n\r\n',
    'HTTP/1.1 200 OK\r\nX: a\nb\r\n\r\n',
    'junk\r\n\r\n',
  ]) {
    test(`refuses ${JSON.stringify(bad)}`, () => {
      assert.notEqual(response(bad).error, '')
    })
  }
})
