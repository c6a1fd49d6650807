/**
 * What happens to held requests when waking goes wrong, end to end with Tide's router:
 *
 * - process target: an instance that exits before it is ready (a failed wake, or the replacement
 *   of a crashed instance crashing again) gets the requests held for it answered 503 with
 *   Retry-After at once, not after `queue.timeout`; once the app is fixed, requests are served.
 * - a scale-down that fails after draining its victim puts the victim back into rotation: the
 *   group keeps serving instead of holding every request until `queue.timeout`; so does a target
 *   that drained an instance and then kept it (`plan.undrain`).
 * - a plugin whose scale() hangs is cut off at `scale_timeout` (seed 004's 15-minute cap on a
 *   wake), its signal aborted, and the group can wake again.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { after, before, describe, test } from 'node:test'
import { Agent, request } from 'undici'
import { stringify } from 'yaml'
import { startTestDaemon, type TestDaemon, waitFor } from '../support/daemon.js'

const agent = new Agent({ connections: null })
after(() => agent.close())

interface Answer {
  status: number
  code?: string
  message?: string
  retryAfter?: string
  coldStart?: string
  body: string
  ms: number
}

async function get(url: string): Promise<Answer> {
  const t0 = performance.now()
  const res = await request(url, { dispatcher: agent })
  const body = await res.body.text()
  const answer: Answer = { status: res.statusCode, body, ms: performance.now() - t0 }
  if (res.headers['retry-after'] !== undefined) answer.retryAfter = String(res.headers['retry-after'])
  if (res.headers['tide-cold-start'] !== undefined) answer.coldStart = String(res.headers['tide-cold-start'])
  if (res.statusCode >= 500 && body.startsWith('{')) {
    const parsed = JSON.parse(body) as { code: string; message: string }
    answer.code = parsed.code
    answer.message = parsed.message
  }
  return answer
}

/** An app that exits with code 3 at start while the file `broken` exists beside it; GET /crash exits 1. */
const CRASHY = `
import { existsSync } from 'node:fs'
import { createServer } from 'node:http'
if (existsSync(new URL('./broken', import.meta.url))) {
  console.error('broken on purpose')
  process.exit(3)
}
createServer((req, res) => {
  if (req.url === '/healthz') return res.end('ok')
  if (req.url === '/crash') {
    res.end('bye')
    setTimeout(() => process.exit(1), 20)
    return
  }
  res.end('served by ' + process.env.TIDE_INSTANCE)
}).listen(Number(process.env.PORT), process.env.HOST)
`

describe('process target: an instance that cannot start answers the held requests at once', () => {
  let dir: string
  let tide: TestDaemon
  const marker = () => join(dir, 'broken')
  const group = () => tide.controller.getGroup('crashy')
  const url = (path = '/') => `http://${tide.routes.crashy}${path}`

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tide-e2e-crashy-'))
    writeFileSync(join(dir, 'crashy.mjs'), CRASHY)
    writeFileSync(marker(), '')
    const file = join(dir, 'in.yaml')
    writeFileSync(
      file,
      stringify({
        groups: {
          crashy: {
            min: 0,
            max: 1,
            interval: '1s',
            target: {
              kind: 'process',
              command: 'node crashy.mjs',
              health: { path: '/healthz', interval: '5ms' },
              restart: { backoff: '200ms', max_backoff: '500ms' },
            },
            // Long on purpose: an answer that came from the timeout would take 30 s.
            route: { listen: '127.0.0.1:0', workers: 1, queue: { timeout: '30s' } },
            policies: [{ kind: 'idle', after: '10m' }],
          },
        },
      }),
    )
    tide = await startTestDaemon(file)
  })
  after(async () => {
    await tide?.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  function assertAnsweredAtOnce(answers: Answer[]): void {
    for (const a of answers) {
      assert.equal(a.status, 503, a.body)
      assert.equal(a.code, 'E_ROUTER_WAKE_FAILED')
      assert.equal(a.retryAfter, '5')
      assert.match(
        a.message!,
        /^group crashy could not be woken from zero: instance crashy-\d+ exited with code 3/,
      )
      assert.match(a.coldStart ?? '', /^\d+ms$/, 'it waited, and says so')
      assert.ok(a.ms < 10_000, `answered after ${Math.round(a.ms)}ms: that is queue.timeout, not at once`)
    }
  }

  test('a wake whose instance exits before it is ready: every held request gets 503 + Retry-After at once', async () => {
    assert.equal(group().desired, 0)
    const answers = await Promise.all(Array.from({ length: 8 }, () => get(url())))
    assertAnsweredAtOnce(answers)
    const wake = tide.controller.decisions('crashy', { limit: 20 }).find((d) => d.from === 0 && d.to === 1)
    assert.ok(wake, 'the requests woke the group')
  })

  test('fixed, the group starts and serves', async () => {
    unlinkSync(marker())
    await waitFor('an instance to be ready', 20_000, () => group().ready === 1)
    const ok = await get(url())
    assert.equal(ok.status, 200)
    assert.match(ok.body, /^served by crashy-\d+$/)
  })

  test('a ready instance crashes and its replacement crashes too: the requests held meanwhile get 503 at once', async () => {
    writeFileSync(marker(), '')
    await get(url('/crash'))
    await waitFor('the crash to be seen', 10_000, () => group().ready === 0)
    const answers = await Promise.all(Array.from({ length: 5 }, () => get(url())))
    assertAnsweredAtOnce(answers)
    // The crash loop is not cached: fixed again, the next request is served.
    unlinkSync(marker())
    await waitFor('an instance to be ready again', 20_000, () => group().ready === 1)
    assert.equal((await get(url())).status, 200)
  })
})

describe('a drained victim that stays: given back to the router', () => {
  let tide: TestDaemon
  let dir: string
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tide-e2e-undrain-'))
    const file = join(dir, 'in.yaml')
    writeFileSync(
      file,
      stringify({
        groups: {
          g: {
            min: 0,
            max: 3,
            interval: '500ms',
            target: {
              kind: 'plugin',
              module: resolve('test/e2e/scale-to-zero-plugins/servers.js'),
              options: { failScaleDowns: 1, keepVictims: 1 },
            },
            route: { listen: '127.0.0.1:0', workers: 1, queue: { timeout: '5s' } },
            policies: [{ kind: 'target', metric: 'concurrency', per_instance: 10 }],
            scale_down: { cooldown: '1h' },
          },
        },
      }),
    )
    tide = await startTestDaemon(file)
  })
  after(async () => {
    await tide?.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  test('gives the victim back to the router: the group keeps serving, nothing waits for queue.timeout', async () => {
    const url = `http://${tide.routes.g}/`
    const woke = await get(url)
    assert.equal(woke.status, 200)
    assert.equal(woke.body, 'hello from g-1\n')
    const down = await tide.controller.scale('g', { to: 0, force: true, wait: true })
    assert.equal(down.outcome, 'failed')
    assert.match(down.error ?? '', /could not be removed \(injected failure\)/)
    assert.equal(tide.controller.getGroup('g').ready, 1, 'the plugin still reports g-1 ready')
    const answers = await Promise.all(Array.from({ length: 5 }, () => get(url)))
    for (const a of answers) {
      assert.equal(a.status, 200, `${a.code ?? ''} ${a.body}`)
      assert.equal(a.body, 'hello from g-1\n')
      assert.ok(a.ms < 2000, `served after ${Math.round(a.ms)}ms`)
    }
  })

  test('a victim the target drained and then kept (plan.undrain) takes requests again; the one it removed does not', async () => {
    const url = `http://${tide.routes.g}/`
    await tide.controller.scale('g', { to: 2, force: true, wait: true })
    assert.equal(tide.controller.getGroup('g').ready, 2)
    // The plugin drains g-2 (the newest), keeps it after all, and removes g-1 instead.
    const down = await tide.controller.scale('g', { to: 1, force: true, wait: true })
    assert.equal(down.outcome, 'applied', JSON.stringify(down))
    assert.deepEqual(
      tide.controller.getGroup('g').instances.map((i) => i.id),
      ['g-2'],
    )
    const answers = await Promise.all(Array.from({ length: 5 }, () => get(url)))
    for (const a of answers) {
      assert.equal(a.status, 200, `${a.code ?? ''} ${a.body}`)
      assert.equal(a.body, 'hello from g-2\n')
      assert.equal(a.coldStart, undefined, 'not held: g-2 is back in rotation')
    }
  })
})

describe('a plugin whose wake never finishes', () => {
  let tide: TestDaemon
  let dir: string
  const module = resolve('test/e2e/scale-to-zero-plugins/servers.js')
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tide-e2e-hang-'))
    const file = join(dir, 'in.yaml')
    writeFileSync(
      file,
      stringify({
        groups: {
          hang: {
            min: 0,
            max: 3,
            interval: '500ms',
            target: { kind: 'plugin', module, options: { hangScaleUps: 1 }, scale_timeout: '700ms' },
            route: { listen: '127.0.0.1:0', workers: 1, queue: { timeout: '20s' } },
            policies: [{ kind: 'target', metric: 'concurrency', per_instance: 10 }],
          },
        },
      }),
    )
    tide = await startTestDaemon(file)
  })
  after(async () => {
    await tide?.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  test('is cut off at scale_timeout (its signal aborted): held requests get 503 at once, the next request wakes again', async () => {
    const url = `http://${tide.routes.hang}/`
    const answers = await Promise.all(Array.from({ length: 6 }, () => get(url)))
    for (const a of answers) {
      assert.equal(a.status, 503, a.body)
      assert.equal(a.code, 'E_ROUTER_WAKE_FAILED')
      assert.equal(a.retryAfter, '5')
      assert.match(a.message!, /scale\(1\) did not finish within 700ms; its signal was aborted/)
      assert.ok(a.ms < 5000, `answered after ${Math.round(a.ms)}ms, not at scale_timeout`)
    }
    const { aborted } = (await import(pathToFileURL(module).href)) as { aborted: Record<string, number> }
    assert.equal(aborted.hang, 1, "the plugin's scale() saw its signal aborted")
    const next = await get(url)
    assert.equal(next.status, 200)
    assert.equal(next.body, 'hello from hang-1\n')
    const outcomes = tide.controller
      .decisions('hang', { limit: 10 })
      .filter((d) => d.from === 0 && d.to === 1)
      .map((d) => d.outcome)
    assert.deepEqual(outcomes, ['applied', 'failed'])
  })
})
