import assert from 'node:assert/strict'
import { request as httpRequest } from 'node:http'
import { after, before, describe, test } from 'node:test'
import { TideError } from '../core/errors.js'
import { FakeController, fakeGroup, fakeInstance } from './fake-controller.js'
import { type ApiServer, createApiServer } from './index.js'

const TOKEN = 'correct-horse-battery-staple'

async function serve(controller: FakeController, options: { token?: string; prefix?: string } = {}) {
  const server = createApiServer(controller, { listen: '127.0.0.1:0', ...options })
  const base = await server.start()
  return { server, base }
}

function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })
}

function twoGroups() {
  return new FakeController([
    fakeGroup('web', {
      min: 1,
      max: 6,
      desired: 2,
      ready: 2,
      instances: [fakeInstance('web-1'), fakeInstance('web-2')],
      metrics: { concurrency: { value: 12, perInstance: { 'web-1': 5, 'web-2': 7 }, missing: [], at: 1 } },
    }),
    fakeGroup('worker', { min: 0, max: 3, desired: 0, ready: 0 }),
  ])
}

describe('API routes without a token', () => {
  const controller = twoGroups()
  let server: ApiServer
  let base: string
  before(async () => ({ server, base } = await serve(controller)))
  after(() => server.close())

  test('GET /healthz is ok', async () => {
    const res = await fetch(`${base}/healthz`)
    assert.equal(res.status, 200)
    assert.deepEqual(await res.json(), { status: 'ok' })
  })

  test('GET / serves the dashboard page, which loads its script and links to the groups', async () => {
    const res = await fetch(`${base}/`)
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /text\/html/)
    const html = await res.text()
    assert.match(html, /src="ui\/app\.js"/)
    assert.match(html, /href="v1\/groups"/)
  })

  test('GET /metrics passes the controller exposition through', async () => {
    const res = await fetch(`${base}/metrics`)
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /version=0\.0\.4/)
    assert.equal(await res.text(), 'tide_up 1\n')
  })

  test('GET /v1/groups lists every group', async () => {
    const res = await fetch(`${base}/v1/groups`)
    assert.equal(res.status, 200)
    const body = (await res.json()) as { groups: Array<{ name: string }> }
    assert.deepEqual(
      body.groups.map((g) => g.name),
      ['web', 'worker'],
    )
  })

  test('GET /v1/groups/:name has the view fields', async () => {
    const res = await fetch(`${base}/v1/groups/web`)
    const group = (await res.json()) as Record<string, unknown>
    for (const key of ['name', 'min', 'max', 'desired', 'ready', 'instances', 'metrics'])
      assert.ok(key in group, key)
    assert.equal(group.desired, 2)
  })

  test('HEAD works where GET does, without a body', async () => {
    const res = await fetch(`${base}/v1/groups/web`, { method: 'HEAD' })
    assert.equal(res.status, 200)
    assert.equal(await res.text(), '')
  })

  test('an unknown group is 404 E_NOT_FOUND', async () => {
    const res = await fetch(`${base}/v1/groups/nope`)
    assert.equal(res.status, 404)
    assert.deepEqual(await res.json(), { code: 'E_NOT_FOUND', message: "group 'nope' does not exist" })
  })

  test('an unknown route is 404 E_NOT_FOUND', async () => {
    const res = await fetch(`${base}/v2/whatever`)
    assert.equal(res.status, 404)
    assert.equal(((await res.json()) as { code: string }).code, 'E_NOT_FOUND')
  })

  test('odd paths: a doubled slash is not a host, bad percent-encoding is 400', async () => {
    const doubled = await fetch(`${base}//v1/groups`)
    assert.equal(doubled.status, 404)
    const encoded = await fetch(`${base}/v1/groups/%E0%A4%A`)
    assert.equal(encoded.status, 400)
    assert.match(((await encoded.json()) as { message: string }).message, /not validly encoded/)
  })

  test('a wrong method is 405 with Allow', async () => {
    const res = await fetch(`${base}/v1/groups/web/scale`)
    assert.equal(res.status, 405)
    assert.equal(res.headers.get('allow'), 'POST')
    assert.equal(((await res.json()) as { code: string }).code, 'E_METHOD_NOT_ALLOWED')
    const del = await fetch(`${base}/v1/groups`, { method: 'DELETE' })
    assert.equal(del.status, 405)
    assert.equal(del.headers.get('allow'), 'GET, HEAD')
  })

  test('POST scale {to} returns the decision record and changes the group', async () => {
    const res = await post(`${base}/v1/groups/web/scale`, { to: 4, reason: 'launch' })
    assert.equal(res.status, 200)
    const d = (await res.json()) as { from: number; to: number; outcome: string; trigger: string }
    assert.deepEqual([d.from, d.to, d.outcome, d.trigger], [2, 4, 'applied', 'manual'])
    assert.deepEqual(controller.calls.at(-1), {
      method: 'scale',
      group: 'web',
      request: { to: 4, reason: 'launch' },
    })
  })

  test('POST scale {by, force, wait} passes every field through', async () => {
    const res = await post(`${base}/v1/groups/web/scale`, { by: -1, force: true, wait: true })
    assert.equal(res.status, 200)
    assert.deepEqual(controller.calls.at(-1)?.request, { by: -1, force: true, wait: true })
  })

  test('POST auto returns the decision record', async () => {
    controller.nextAuto.set('web', {
      kind: 'hold',
      reason: 'hold at 3: concurrency 6 per instance is on target',
    })
    const res = await fetch(`${base}/v1/groups/web/auto`, { method: 'POST' })
    assert.equal(res.status, 200)
    const d = (await res.json()) as { trigger: string; reason: string }
    assert.equal(d.trigger, 'auto')
    assert.match(d.reason, /on target/)
  })

  test('GET decisions honours limit, newest first', async () => {
    const res = await fetch(`${base}/v1/groups/web/decisions?limit=2`)
    assert.equal(res.status, 200)
    const { decisions } = (await res.json()) as { decisions: Array<{ id: number }> }
    assert.equal(decisions.length, 2)
    assert.ok(decisions[0]!.id > decisions[1]!.id)
  })

  test('controller errors keep their status and code', async () => {
    controller.failNext = new TideError('E_COOLDOWN', 'group web is cooling down for 20s more', {
      status: 409,
    })
    const res = await post(`${base}/v1/groups/web/scale`, { by: 1 })
    assert.equal(res.status, 409)
    assert.deepEqual(await res.json(), {
      code: 'E_COOLDOWN',
      message: 'group web is cooling down for 20s more',
    })
  })

  test('an unexpected error is 500 E_INTERNAL without the stack', async () => {
    controller.failNext = new Error('secret detail at /home/x/file.ts:12')
    const res = await fetch(`${base}/v1/groups/web/auto`, { method: 'POST' })
    assert.equal(res.status, 500)
    const body = await res.text()
    assert.match(body, /E_INTERNAL/)
    assert.doesNotMatch(body, /secret|file\.ts/)
  })

  test('a request whose Host is not loopback is refused without a token (DNS rebinding)', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${base}/v1/groups`, { headers: { host: 'evil.example:7070' } }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on('error', reject)
      req.end()
    })
    assert.equal(status, 403)
  })

  test('a cross-site browser request may not change a group', async () => {
    const res = await post(`${base}/v1/groups/web/scale`, { by: 1 }, { 'sec-fetch-site': 'cross-site' })
    assert.equal(res.status, 403)
    const other = await post(`${base}/v1/groups/web/scale`, { by: 1 }, { origin: 'http://evil.example' })
    assert.equal(other.status, 403)
    assert.equal(((await other.json()) as { code: string }).code, 'E_FORBIDDEN')
  })
})

describe('API bad input names the field and the value', () => {
  const controller = twoGroups()
  let server: ApiServer
  let base: string
  before(async () => ({ server, base } = await serve(controller)))
  after(() => server.close())

  const cases: Array<[string, unknown, RegExp]> = [
    ['by is a string', { by: 'abc' }, /^by: must be a non-zero integer \(got "abc"\)$/],
    ['by is zero', { by: 0 }, /^by: must be a non-zero integer \(got 0\)$/],
    ['by is fractional', { by: 1.5 }, /^by: must be a non-zero integer \(got 1\.5\)$/],
    ['to is negative', { to: -1 }, /^to: must be an integer ≥ 0 \(got -1\)$/],
    ['both to and by', { to: 2, by: 1 }, /exactly one of "to".*"by"/],
    ['neither to nor by', {}, /exactly one of "to"/],
    ['force is a string', { to: 2, force: 'yes' }, /^force: must be true or false \(got "yes"\)$/],
    ['an unknown field', { to: 2, size: 3 }, /^size: unknown field$/],
    ['not an object', [1, 2], /body must be a JSON object \(got \[1,2\]\)/],
  ]
  for (const [name, body, message] of cases) {
    test(name, async () => {
      const res = await post(`${base}/v1/groups/web/scale`, body)
      assert.equal(res.status, 400)
      const err = (await res.json()) as { code: string; message: string }
      assert.equal(err.code, 'E_BAD_REQUEST')
      assert.match(err.message, message)
    })
  }

  test('bad JSON is 400 naming the problem', async () => {
    const res = await post(`${base}/v1/groups/web/scale`, '{"to": 2')
    assert.equal(res.status, 400)
    const err = (await res.json()) as { code: string; message: string }
    assert.equal(err.code, 'E_BAD_REQUEST')
    assert.match(err.message, /^request body is not valid JSON: /)
  })

  test('a body that is not JSON is 415', async () => {
    const res = await fetch(`${base}/v1/groups/web/scale`, { method: 'POST', body: 'to=2' })
    assert.equal(res.status, 415)
    assert.equal(((await res.json()) as { code: string }).code, 'E_UNSUPPORTED_MEDIA_TYPE')
  })

  test('a body over 64 KiB is 413', async () => {
    const res = await post(`${base}/v1/groups/web/scale`, { to: 2, reason: 'x'.repeat(70 * 1024) })
    assert.equal(res.status, 413)
    assert.equal(((await res.json()) as { code: string }).code, 'E_PAYLOAD_TOO_LARGE')
  })

  for (const [limit, shown] of [
    ['abc', '"abc"'],
    ['0', '"0"'],
    ['1001', '"1001"'],
    ['-3', '"-3"'],
  ]) {
    test(`decisions limit=${limit} is 400`, async () => {
      const res = await fetch(`${base}/v1/groups/web/decisions?limit=${limit}`)
      assert.equal(res.status, 400)
      const err = (await res.json()) as { message: string }
      assert.equal(err.message, `limit: must be an integer from 1 to 1000 (got ${shown})`)
    })
  }

  test('an unknown query parameter is named', async () => {
    const res = await fetch(`${base}/v1/groups/web/decisions?limt=5`)
    assert.equal(res.status, 400)
    assert.equal(((await res.json()) as { message: string }).message, 'limt: unknown parameter')
  })

  test('decisions default to 50', async () => {
    for (let i = 0; i < 60; i++) controller.record('web', {})
    const res = await fetch(`${base}/v1/groups/web/decisions`)
    assert.equal(((await res.json()) as { decisions: unknown[] }).decisions.length, 50)
  })
})

describe('API with a token', () => {
  const controller = twoGroups()
  let server: ApiServer
  let base: string
  before(async () => ({ server, base } = await serve(controller, { token: TOKEN, prefix: '/tide/' })))
  after(() => server.close())

  test('reads need no token', async () => {
    const res = await fetch(`${base}/v1/groups/web`)
    assert.equal(res.status, 200)
  })

  test('a change without a token is 401 with WWW-Authenticate', async () => {
    const before = controller.calls.length
    const res = await post(`${base}/v1/groups/web/scale`, { to: 3 })
    assert.equal(res.status, 401)
    assert.equal(res.headers.get('www-authenticate'), 'Bearer')
    assert.equal(((await res.json()) as { code: string }).code, 'E_UNAUTHORIZED')
    assert.equal(controller.calls.length, before, 'the controller was not called')
  })

  test('a wrong token is 401', async () => {
    const res = await post(`${base}/v1/groups/web/auto`, {}, { authorization: 'Bearer wrong' })
    assert.equal(res.status, 401)
  })

  test('the right token is accepted', async () => {
    const res = await post(`${base}/v1/groups/web/scale`, { to: 3 }, { authorization: `Bearer ${TOKEN}` })
    assert.equal(res.status, 200)
  })

  test('with a token, other Host names are served (a proxy in front)', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${base}/healthz`, { headers: { host: 'tide.example.com' } }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on('error', reject)
      req.end()
    })
    assert.equal(status, 200)
  })

  test('routes are served under the prefix as well as the root', async () => {
    const res = await fetch(`${base}/tide/v1/groups/web`)
    assert.equal(res.status, 200)
    assert.equal(((await res.json()) as { name: string }).name, 'web')
  })

  test('seed op=up needs the token even as a GET', async () => {
    const res = await fetch(`${base}/scale?op=up&group=web`)
    assert.equal(res.status, 401)
    assert.deepEqual(await res.json(), {
      error: 'this call changes a group and needs an Authorization: Bearer <token> header',
      code: 'E_UNAUTHORIZED',
    })
  })
})

describe('createApiServer refuses an insecure or bad listen address', () => {
  test('non-loopback without a token is E_API_INSECURE', () => {
    assert.throws(
      () => createApiServer(new FakeController(), { listen: '0.0.0.0:7070' }),
      (err: TideError) => err.code === 'E_API_INSECURE' && /api\.token/.test(err.message),
    )
  })

  test('non-loopback with a token is allowed', () => {
    createApiServer(new FakeController(), { listen: '0.0.0.0:0', token: TOKEN })
  })

  test('a malformed address is E_API_LISTEN', () => {
    assert.throws(
      () => createApiServer(new FakeController(), { listen: 'nope' }),
      (err: TideError) => err.code === 'E_API_LISTEN',
    )
  })

  test('an address in use is E_API_LISTEN', async () => {
    const first = createApiServer(new FakeController(), { listen: '127.0.0.1:0' })
    const url = new URL(await first.start())
    try {
      const second = createApiServer(new FakeController(), { listen: `127.0.0.1:${url.port}` })
      await assert.rejects(second.start(), (err: TideError) => err.code === 'E_API_LISTEN')
    } finally {
      await first.close()
    }
  })
})
