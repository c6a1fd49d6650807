/**
 * The DigitalOcean Functions entry, in process and as the bundle build.mjs makes, against the
 * DigitalOcean emulator: the token, the op from the event, real status codes, and answering
 * within the platform's time limit by handing a booting clone over.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { parse } from 'yaml'
import { DigitalOceanEmulator } from '../../../test/emulators/digitalocean/index.js'
import { ENV_VARS } from './env.js'
import { budgetMs, type FunctionEvent, main, MARGIN_MS } from './function.js'

let em: DigitalOceanEmulator
let env: Record<string, string>
let lbId: string
const TOKEN = 'a-function-token-0123456789'

before(async () => {
  em = new DigitalOceanEmulator({ bootDelay: 60_000 }) // clones stay booting: the deadline test needs that
  await em.start()
  const base = em.addDroplet({ name: 'scale-me', tags: ['cluster'] })
  em.addSnapshot({ name: 'scale-me-snap' })
  lbId = em.addLoadBalancer({ name: 'cluster-lb', dropletIds: [base.id] }).id
  env = {
    API_TOKEN: em.token,
    CLUSTER_TAG: 'cluster',
    BASE_DROPLET: 'scale-me',
    SNAPSHOT: 'scale-me-snap',
    CLONE_PREFIX: 'auto',
    LOAD_BALANCER: 'cluster-lb',
    DIGITALOCEAN_API_URL: em.url,
    TIDE_FUNCTION_TOKEN: TOKEN,
  }
})
after(() => em.close())

const web = (headers: Record<string, string>, op: string): FunctionEvent => ({
  op,
  http: { headers, method: 'GET' },
})

describe('Functions entry', () => {
  test('a web call without the token is refused; with no token configured web calls are refused', async () => {
    const none = await main(web({}, 'info'), undefined, env)
    assert.equal(none.statusCode, 401)
    assert.equal(none.headers['WWW-Authenticate'], 'Bearer')
    const wrong = await main(web({ Authorization: 'Bearer nope' }, 'up'), undefined, env)
    assert.equal(wrong.statusCode, 401)
    const unset = await main(web({ Authorization: `Bearer ${TOKEN}` }, 'info'), undefined, {
      ...env,
      TIDE_FUNCTION_TOKEN: '',
    })
    assert.equal(unset.statusCode, 403)
    assert.match(JSON.parse(unset.body).error, /TIDE_FUNCTION_TOKEN is not set/)
    assert.equal(em.calls('GET', '/v2/droplets').length, 0, 'nothing was read from DigitalOcean')
  })

  test('with the token (either header) the op runs and answers the seed body, pretty-printed', async () => {
    const both: Array<Record<string, string>> = [
      { Authorization: `Bearer ${TOKEN}` },
      { 'X-Tide-Token': TOKEN },
    ]
    for (const headers of both) {
      const r = await main(web(headers, 'info'), undefined, env)
      assert.equal(r.statusCode, 200, r.body)
      assert.equal(r.headers['Content-Type'], 'application/json')
      assert.match(r.body, /^\{\n "config": \{/)
      assert.equal(JSON.parse(r.body).info.dropletCount, 1)
    }
  })

  test('a scheduled trigger (no HTTP headers) needs no token; a bad op is a 400 with the seed message', async () => {
    const r = await main({ op: 'status' }, undefined, env)
    assert.equal(r.statusCode, 200, r.body)
    const bad = await main({ op: 'nope' }, undefined, env)
    assert.equal(bad.statusCode, 400)
    assert.match(JSON.parse(bad.body).error, /unknown or missing op parameter/)
  })

  test('the budget is what the platform has left minus the margin', () => {
    assert.equal(budgetMs({ getRemainingTimeInMillis: () => 100_000 }, {}), 100_000 - MARGIN_MS)
    assert.equal(budgetMs(undefined, { TIDE_TIME_LIMIT: '60' }), 60_000 - MARGIN_MS)
    assert.equal(budgetMs(undefined, {}), 180_000 - MARGIN_MS)
  })

  test('near the time limit it answers in time, handing the booting clone to the next invocation', async () => {
    const started = Date.now()
    const r = await main({ op: 'up' }, { getRemainingTimeInMillis: () => MARGIN_MS + 2000 }, env)
    const took = Date.now() - started
    assert.equal(r.statusCode, 200, r.body)
    assert.match(JSON.parse(r.body).msg, /auto001 created; .*next invocation adds it to the load balancer/)
    assert.ok(took < 15_000, `answered in ${took}ms, within the platform's limit`)
    const clone = em.dropletByName('auto001')!
    assert.ok(clone, 'the clone exists and is not lost')
    assert.ok(!em.members(em.loadBalancer(lbId)!).includes(clone.id))
  })
})

describe('the bundle build.mjs makes', () => {
  let dir: string
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tide-fn-'))
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  test('is one self-contained CommonJS file per function that runs an op', async () => {
    const built = spawnSync(process.execPath, ['deploy/digitalocean-functions/build.mjs', '--outdir', dir], {
      encoding: 'utf8',
    })
    assert.equal(built.status, 0, built.stderr)
    for (const fn of ['scale', 'auto']) {
      const require = createRequire(join(dir, 'packages/autoscale', fn, 'index.js'))
      const bundle = require(join(dir, 'packages/autoscale', fn, 'index.js')) as { main: typeof main }
      assert.equal(typeof bundle.main, 'function')
      const r = await bundle.main({ op: 'info' }, undefined, env)
      assert.equal(r.statusCode, 200, r.body)
      assert.equal(JSON.parse(r.body).config.tag, 'cluster')
    }
  })
})

describe('deploy/digitalocean-functions/project.yml', () => {
  interface Fn {
    name: string
    web: boolean
    runtime: string
    limits: { timeout: number }
    triggers?: Array<{ sourceType: string; sourceDetails: { cron: string; withBody: { op: string } } }>
  }
  const project = parse(readFileSync('deploy/digitalocean-functions/project.yml', 'utf8')) as {
    environment: Record<string, string>
    packages: Array<{ name: string; functions: Fn[] }>
  }
  const fn = (name: string) => project.packages[0]!.functions.find((f) => f.name === name)!

  test('maps every variable the drop-in reads, the optional ones too (seed 000 mapped only six)', () => {
    for (const name of [...ENV_VARS, 'TIDE_FUNCTION_TOKEN']) {
      assert.equal(project.environment[name], `\${${name}}`, `${name} is mapped from .env`)
    }
    const example = readFileSync('deploy/digitalocean-functions/.env.example', 'utf8')
    for (const name of Object.keys(project.environment)) {
      assert.match(example, new RegExp(`^${name}=`, 'm'), `.env.example lists ${name}`)
    }
  })

  test('scale is the token-protected web function; auto runs op=auto on a schedule, not from the web', () => {
    assert.equal(fn('scale').web, true)
    assert.equal(fn('auto').web, false)
    const [trigger] = fn('auto').triggers ?? []
    assert.equal(trigger?.sourceType, 'scheduler')
    assert.equal(trigger?.sourceDetails.cron, '*/2 * * * *')
    assert.equal(trigger?.sourceDetails.withBody.op, 'auto')
    for (const f of [fn('scale'), fn('auto')]) {
      assert.equal(f.limits.timeout, 180_000, 'the seed’s 180 s limit')
      assert.match(f.runtime, /^nodejs:/)
      assert.ok(MARGIN_MS < f.limits.timeout, 'the function answers before the platform kills it')
    }
  })
})
