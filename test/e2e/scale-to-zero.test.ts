/**
 * Scale to zero and back with the process target and Tide's router, from
 * examples/scale-to-zero.yaml (ports moved to 0): the group goes to zero when left alone and
 * wakes on the first request; bursts at zero are held and all served after one wake; a full
 * queue is a 503 with Retry-After; a scale-down to zero loses no request, not those in flight
 * and not those that arrive while the last instance drains.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { Agent, request } from 'undici'
import { startTestDaemon, type TestDaemon, waitFor } from '../support/daemon.js'

const EXAMPLE = 'examples/scale-to-zero.yaml'
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const agents: Agent[] = []
after(async () => {
  for (const agent of agents) await agent.close()
})
/** A client that opens a connection per concurrent request (no pool limit), as a burst of users would. */
function client(): Agent {
  const agent = new Agent({ connections: null, keepAliveTimeout: 5000 })
  agents.push(agent)
  return agent
}

interface Answer {
  status: number
  code?: string
  coldStart?: string
  retryAfter?: string
  body: string
  /** ms from the start of the burst to the whole response. */
  at: number
}

async function burst(url: string, n: number): Promise<Answer[]> {
  const dispatcher = client()
  const t0 = performance.now()
  return Promise.all(
    Array.from({ length: n }, async (): Promise<Answer> => {
      const res = await request(url, { dispatcher })
      const body = await res.body.text()
      const answer: Answer = { status: res.statusCode, body, at: performance.now() - t0 }
      if (res.headers['tide-cold-start'] !== undefined)
        answer.coldStart = String(res.headers['tide-cold-start'])
      if (res.headers['retry-after'] !== undefined) answer.retryAfter = String(res.headers['retry-after'])
      if (res.statusCode >= 500) answer.code = (JSON.parse(body) as { code: string }).code
      return answer
    }),
  )
}

function statuses(answers: Answer[]): string {
  const counts: Record<string, number> = {}
  for (const a of answers) counts[a.code ?? a.status] = (counts[a.code ?? a.status] ?? 0) + 1
  return JSON.stringify(counts)
}

/** The demo app's own time from spawn to answering /healthz, in ms (the median of three starts). */
async function appStartup(): Promise<number> {
  const times: number[] = []
  for (let i = 0; i < 3; i++) {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const a = s.address()
        s.close(() => resolve(typeof a === 'object' && a ? a.port : 0))
      })
    })
    const t0 = performance.now()
    const child = spawn(process.execPath, ['examples/app/server.js'], {
      env: { ...process.env, PORT: String(port), HOST: '127.0.0.1' },
      stdio: 'ignore',
    })
    try {
      for (;;) {
        const ok = await request(`http://127.0.0.1:${port}/healthz`)
          .then((r) => r.body.text().then(() => r.statusCode === 200))
          .catch(() => false)
        if (ok) break
        await sleep(2)
      }
      times.push(performance.now() - t0)
    } finally {
      child.kill('SIGKILL')
    }
  }
  return times.sort((a, b) => a - b)[1]!
}

/** Decisions of a group that woke it from zero, newest first. */
function wakes(tide: TestDaemon, group: string) {
  return tide.controller
    .decisions(group, { limit: 200 })
    .filter((d) => d.reason.startsWith('scale up 0 → 1: a request arrived while the group was at zero'))
}

describe('scale to zero with examples/scale-to-zero.yaml', () => {
  let tide: TestDaemon
  let startup: number
  const hello = () => tide.controller.getGroup('hello')
  const url = (path = '/?work=0') => `http://${tide.routes.hello}${path}`

  before(async () => {
    startup = await appStartup()
    tide = await startTestDaemon(EXAMPLE)
  })
  after(async () => {
    await tide?.stop()
  })

  test('left alone it goes to zero; then 100 concurrent requests all succeed, the first within start-up plus a small overhead', async () => {
    // It starts at zero (min 0); one request wakes it, and without requests it goes back.
    const [woke] = await burst(url(), 1)
    assert.equal(woke!.status, 200)
    assert.equal(hello().desired, 1)
    await waitFor('the group to go back to zero after 10s without a request', 60_000, () => {
      const g = hello()
      return g.desired === 0 && g.ready === 0 && g.operation === undefined
    })
    const toZero = tide.controller.decisions('hello').find((d) => d.to === 0 && d.outcome === 'applied')
    assert.ok(toZero, 'a decision took the group to zero')
    assert.match(toZero.reason, /no request for 10s/)

    const wakesBefore = wakes(tide, 'hello').length
    const answers = await burst(url(), 100)
    assert.equal(answers.filter((a) => a.status === 200).length, 100, statuses(answers))
    const first = Math.min(...answers.map((a) => a.at))
    // Generous on purpose (the machine is shared); bench/coldstart measures the overhead itself.
    assert.ok(
      first < startup + 1500,
      `the first response took ${Math.round(first)}ms; the app alone starts in ${Math.round(startup)}ms`,
    )
    assert.equal(wakes(tide, 'hello').length, wakesBefore + 1, 'one wake for the 100 requests')
    const held = answers.filter((a) => a.coldStart !== undefined)
    assert.ok(held.length >= 1, 'requests that waited say so')
    for (const a of held) assert.match(a.coldStart!, /^\d+ms$/)

    // The waits are a histogram in /metrics.
    const metrics = (await tide.controller.prometheus()).body
    const count = Number(
      /tide_router_cold_start_wait_seconds_count\{group="hello",result="served"\} (\d+)/.exec(metrics)?.[1],
    )
    assert.ok(count >= held.length, `histogram count ${count} < ${held.length} requests that waited`)
    assert.match(
      metrics,
      /tide_router_cold_start_wait_seconds_bucket\{le="0.5",group="hello",result="served"\} \d+/,
    )
  })

  test('a burst of 200 requests at zero all succeed, after one wake', async () => {
    await tide.controller.scale('hello', { to: 0, force: true, wait: true })
    assert.equal(hello().desired, 0)
    const wakesBefore = wakes(tide, 'hello').length
    const answers = await burst(url(), 200)
    assert.equal(answers.filter((a) => a.status === 200).length, 200, statuses(answers))
    assert.equal(wakes(tide, 'hello').length, wakesBefore + 1, 'one wake however many requests arrive')
  })

  test('a scale-down to zero fails no request: not those in flight, not those that arrive while the last instance drains', async () => {
    if (hello().ready === 0) await tide.controller.scale('hello', { to: 1, force: true, wait: true })
    await tide.controller.scale('hello', { to: 1, force: true, wait: true }).catch(() => {})
    assert.equal(hello().ready, 1)
    const wakesBefore = wakes(tide, 'hello').length
    // 20 requests that take a second each are in flight when the scale-down starts…
    const inFlight = burst(url('/?work=0&sleep=1000'), 20)
    await sleep(300)
    const down = tide.controller.scale('hello', { to: 0, force: true, wait: true })
    // …and 10 more arrive while the instance drains: they are held, the group wakes again after.
    await sleep(150)
    const during = burst(url('/?work=0'), 10)
    const [a, b, record] = await Promise.all([inFlight, during, down])
    assert.equal(record.outcome, 'applied')
    assert.equal(a.filter((x) => x.status === 200).length, 20, statuses(a))
    assert.equal(b.filter((x) => x.status === 200).length, 10, statuses(b))
    // They were held while the group went to zero, and woke it once more.
    assert.ok(
      b.every((x) => x.coldStart !== undefined),
      'the late requests waited for an instance',
    )
    assert.equal(wakes(tide, 'hello').length, wakesBefore + 1)
    await waitFor('the group to be awake again', 15_000, () => hello().ready >= 1)
  })
})

describe('scale to zero: a full queue', () => {
  let tide: TestDaemon
  before(async () => {
    tide = await startTestDaemon(EXAMPLE, (raw) => {
      const group = raw.groups.hello as unknown as {
        target: { env: Record<string, string> }
        route: Record<string, unknown>
      }
      group.target.env.STARTUP_MS = '1500' // instances take 1.5 s to listen: the queue fills meanwhile
      group.route.workers = 1
      group.route.queue = { depth: 5, timeout: '30s' }
    })
  })
  after(async () => {
    await tide?.stop()
  })

  test('past queue.depth, requests at zero get 503 with Retry-After at once; the held ones are served', async () => {
    const answers = await burst(`http://${tide.routes.hello}/?work=0`, 20)
    const ok = answers.filter((a) => a.status === 200)
    const full = answers.filter((a) => a.code === 'E_ROUTER_QUEUE_FULL')
    assert.equal(ok.length, 5, statuses(answers))
    assert.equal(full.length, 15, statuses(answers))
    for (const a of full) {
      assert.equal(a.status, 503)
      assert.equal(a.retryAfter, '5')
      assert.equal(a.coldStart, undefined, 'a refused request did not wait')
      // Refused at once, not after the 1.5 s start.
      assert.ok(a.at < Math.min(...ok.map((o) => o.at)))
    }
  })
})
