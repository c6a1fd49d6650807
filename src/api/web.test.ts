/**
 * Serving the dashboard: the page and exactly its listed files, with the headers that keep it
 * safe (CSP, nosniff) and fresh (no-cache), at the root and under the API's prefix.
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { FakeController, fakeGroup } from './fake-controller.js'
import { type ApiServer, createApiServer } from './index.js'
import { ASSETS, CONTENT_SECURITY_POLICY, WEB_DIR } from './web.js'

/** A raw GET, so paths like `/ui/../x` reach the server as written (fetch would normalise them). */
function rawGet(base: string, path: string): Promise<{ status: number; headers: Record<string, unknown> }> {
  const { hostname, port } = new URL(base)
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, path, method: 'GET' }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }))
    })
    req.on('error', reject)
    req.end()
  })
}

describe('dashboard files', () => {
  let server: ApiServer
  let base: string
  before(async () => {
    server = createApiServer(new FakeController([fakeGroup('web')]), {
      listen: '127.0.0.1:0',
      prefix: '/tide',
    })
    base = await server.start()
  })
  after(() => server.close())

  test('GET / is the page, with a CSP that allows only Tide itself, and no-cache', async () => {
    const res = await fetch(`${base}/`)
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8')
    const csp = res.headers.get('content-security-policy') ?? ''
    assert.equal(csp, CONTENT_SECURITY_POLICY)
    assert.match(csp, /default-src 'self'/)
    assert.match(csp, /script-src 'self'(;|$)/, 'no inline scripts')
    assert.doesNotMatch(csp, /unsafe|\*|https?:/, 'nothing loosened, no other origin')
    assert.equal(res.headers.get('cache-control'), 'no-cache')
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff')
    const html = await res.text()
    assert.match(html, /<script type="module" src="ui\/app\.js"><\/script>/)
    assert.match(html, /href="ui\/style\.css"/)
  })

  test('each listed file is served with its content type', async () => {
    const expected: Record<string, RegExp> = {
      '.js': /^text\/javascript; charset=utf-8$/,
      '.css': /^text\/css; charset=utf-8$/,
      '.svg': /^image\/svg\+xml/,
    }
    for (const file of Object.keys(ASSETS)) {
      const res = await fetch(`${base}/ui/${file}`)
      assert.equal(res.status, 200, file)
      const type = res.headers.get('content-type') ?? ''
      assert.match(type, expected[file.slice(file.lastIndexOf('.'))]!, file)
      assert.equal(res.headers.get('cache-control'), 'no-cache', file)
      assert.equal(await res.text(), readFileSync(join(WEB_DIR, file), 'utf8'), file)
    }
  })

  test('the page and its modules load only listed files, by relative URLs', () => {
    const html = readFileSync(join(WEB_DIR, 'index.html'), 'utf8')
    const referenced = new Set<string>()
    for (const m of html.matchAll(/(?:src|href)="ui\/([^"]+)"/g)) referenced.add(m[1]!)
    for (const file of Object.keys(ASSETS).filter((f) => f.endsWith('.js'))) {
      const code = readFileSync(join(WEB_DIR, file), 'utf8')
      for (const m of code.matchAll(/from '\.\/([^']+)'/g)) referenced.add(m[1]!)
      assert.doesNotMatch(
        code,
        /innerHTML|outerHTML|insertAdjacentHTML|document\.write/,
        `${file} builds no markup`,
      )
      assert.doesNotMatch(code, /fetch\(['`]\//, `${file} uses relative URLs (the API prefix)`)
    }
    assert.deepEqual([...referenced].sort(), Object.keys(ASSETS).sort())
    // Every file in web/ that the page needs is listed; the rest (index.html, tsconfig) is not served.
    const onDisk = readdirSync(WEB_DIR).filter((f) => !['index.html', 'tsconfig.json'].includes(f))
    assert.deepEqual(onDisk.sort(), Object.keys(ASSETS).sort())
  })

  test('no path traversal, no unlisted files: all 404', async () => {
    for (const path of [
      '/ui/../package.json',
      '/ui/..%2fpackage.json',
      '/ui/..%2F..%2Fpackage.json',
      '/ui/%2e%2e/package.json',
      '/ui/index.html',
      '/ui/tsconfig.json',
      '/ui/',
      '/ui/app.js/x',
      '/ui/constructor',
      '/ui/__proto__',
      '/index.html',
      '/tide/ui/../../package.json',
    ]) {
      const res = await rawGet(base, path)
      assert.equal(res.status, 404, path)
      assert.doesNotMatch(String(res.headers['content-type']), /javascript|html/, path)
    }
  })

  test('under the prefix: /tide/ is the page, its assets load, /tide redirects to /tide/', async () => {
    const page = await fetch(`${base}/tide/`)
    assert.equal(page.status, 200)
    assert.match(await page.text(), /ui\/app\.js/)
    const asset = await fetch(`${base}/tide/ui/app.js`)
    assert.equal(asset.status, 200)
    assert.match(asset.headers.get('content-type') ?? '', /javascript/)
    // Without the slash, `ui/app.js` would resolve to /ui/app.js, outside the prefix.
    const bare = await fetch(`${base}/tide`, { redirect: 'manual' })
    assert.equal(bare.status, 302)
    assert.equal(new URL(bare.headers.get('location')!, `${base}/tide`).pathname, '/tide/')
    const followed = await fetch(`${base}/tide`)
    assert.equal(followed.url, `${base}/tide/`)
    assert.equal(followed.status, 200)
  })

  test('HEAD works and only GET is allowed', async () => {
    const head = await fetch(`${base}/ui/style.css`, { method: 'HEAD' })
    assert.equal(head.status, 200)
    assert.match(head.headers.get('content-type') ?? '', /text\/css/)
    const post = await fetch(`${base}/ui/style.css`, { method: 'POST' })
    assert.equal(post.status, 405)
  })
})
