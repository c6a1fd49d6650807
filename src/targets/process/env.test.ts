import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, type TestContext, test } from 'node:test'
import { parseConfigText } from '../../config/index.js'
import type { ConfigError } from '../../core/errors.js'
import { BASE_ENV, inheritedEnv, looksSecret, SECRET_PATTERNS } from './env.js'
import { createProcessTarget, type ProcessLogger } from './index.js'

const NODE = process.execPath

/** An instance that answers /healthz and serves its whole environment as JSON on /env. */
const ENV_APP = `
const { createServer } = require('node:http')
createServer((req, res) => {
  if (req.url === '/env') return res.end(JSON.stringify(process.env))
  res.end('ok')
}).listen(Number(process.env.PORT), process.env.HOST)
`

/** What Tide's own environment holds in these tests, on top of the real one. */
const TIDE_ENV: Record<string, string> = {
  TIDE_TOKEN: 'api-token-value',
  DIGITALOCEAN_TOKEN: 'do-token-value',
  DO_TOKEN: 'do-token-value-2',
  AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
  AWS_SECRET_ACCESS_KEY: 'aws-secret-value',
  AWS_SESSION_TOKEN: 'aws-session-value',
  SLACK_WEBHOOK_URL: 'https://hooks.slack.example/T000/B000/XXXX',
  // Not secret-looking, but the config below reads it with ${...}: Tide's input, not the app's.
  H17_UPSTREAM_KEY: 'interpolated-value',
  // Ordinary variables an app may rely on.
  H17_PLAIN: 'plain-value',
  H17_PLAIN_TOO: 'plain-value-2',
  NODE_ENV: 'production',
  LC_ALL: 'C.UTF-8',
}

const SECRETS = [
  'TIDE_TOKEN',
  'DIGITALOCEAN_TOKEN',
  'DO_TOKEN',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'SLACK_WEBHOOK_URL',
]

/** Adds TIDE_ENV to process.env for the test, and restores what was there after it. */
function withTideEnv(t: TestContext): void {
  const saved = new Map<string, string | undefined>()
  for (const [name, value] of Object.entries(TIDE_ENV)) {
    saved.set(name, process.env[name])
    process.env[name] = value
  }
  t.after(() => {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name]
      else process.env[name] = value
    }
  })
}

function config(targetLines: string): string {
  return `
api: { listen: "127.0.0.1:0", token: "\${H17_UPSTREAM_KEY}" }
groups:
  web:
    max: 2
    target:
      kind: process
      command: [${JSON.stringify(NODE)}, "APP"]
      start_timeout: 20s
      stop_grace: 5s
${targetLines}
    route: { listen: "127.0.0.1:0" }
    policies:
      - { kind: target, metric: concurrency, per_instance: 8 }
`
}

interface Logged {
  msg: string
  obj: Record<string, unknown>
}

/**
 * Loads `text` as a whole config (so `${...}` goes through the real loader), starts one
 * instance of group web running ENV_APP, and returns the environment it reports on /env.
 */
async function instanceEnv(
  t: TestContext,
  targetLines: string,
): Promise<{ env: Record<string, string>; pid: number; logged: Logged[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'tide-process-env-'))
  const app = join(dir, 'env-app.cjs')
  writeFileSync(app, ENV_APP)
  const loaded = parseConfigText(config(targetLines).replace('"APP"', JSON.stringify(app)), 'test.yaml')
  const target = loaded.groups.web!.target
  assert.equal(target.kind, 'process')
  const logged: Logged[] = []
  const logger: ProcessLogger = {
    info: (obj, msg) => logged.push({ obj: obj as Record<string, unknown>, msg }),
    warn: () => {},
    error: () => {},
  }
  const processTarget = createProcessTarget('web', target, { logDir: join(dir, 'logs'), logger })
  t.after(async () => {
    await processTarget.close({ stopInstances: true })
    rmSync(dir, { recursive: true, force: true })
  })
  await processTarget.scale(1, { reason: 'test' }, new AbortController().signal)
  const instance = (await processTarget.status()).instances[0]!
  const res = await fetch(`http://${instance.address}/env`, { headers: { connection: 'close' } })
  assert.equal(res.status, 200)
  return { env: (await res.json()) as Record<string, string>, pid: instance.pid!, logged }
}

function assertTideVars(env: Record<string, string>): void {
  assert.match(env.PORT ?? '', /^\d+$/, 'PORT is always set')
  assert.equal(env.HOST, '127.0.0.1', 'HOST is always set')
  assert.equal(env.TIDE_INSTANCE, 'web-1', 'TIDE_INSTANCE is always set')
  assert.equal(env.TIDE_GROUP, 'web', 'TIDE_GROUP is always set')
}

describe('inherit_env with real instances', () => {
  test('by default an instance sees neither secrets nor what the config interpolates, but sees PATH, ordinary variables and env:', async (t) => {
    withTideEnv(t)
    const { env, pid, logged } = await instanceEnv(
      t,
      `      env: { GIVEN: "yes", DELIBERATE_TOKEN: "\${DO_TOKEN}", UPSTREAM: "\${H17_UPSTREAM_KEY}" }`,
    )
    for (const name of [...SECRETS, 'H17_UPSTREAM_KEY']) {
      assert.equal(env[name], undefined, `${name} must not reach the instance`)
    }
    assert.equal(env.PATH, process.env.PATH, 'PATH is inherited')
    assert.equal(env.H17_PLAIN, 'plain-value', 'an ordinary variable is inherited')
    assert.equal(env.NODE_ENV, 'production')
    assert.equal(env.LC_ALL, 'C.UTF-8')
    assert.equal(env.GIVEN, 'yes', 'env: reaches the instance')
    assert.equal(env.DELIBERATE_TOKEN, 'do-token-value-2', 'env: passes a secret on purpose')
    assert.equal(env.UPSTREAM, 'interpolated-value', 'env: passes an interpolated value on purpose')
    assertTideVars(env)
    // The leftover detection (leftovers.ts) reads these from /proc/<pid>/environ.
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')
    assert.ok(environ.includes('TIDE_GROUP=web') && environ.includes('TIDE_INSTANCE=web-1'))
    assert.ok(!environ.some((line) => line.startsWith('TIDE_TOKEN=')))

    const line = logged.find((l) => l.msg.includes('do not get'))
    assert.ok(line, `the withheld names are logged: ${JSON.stringify(logged.map((l) => l.msg))}`)
    for (const name of [...SECRETS, 'H17_UPSTREAM_KEY']) assert.ok(line.msg.includes(name), name)
    assert.ok(!line.msg.includes('aws-secret-value'), 'names only, never values')
    assert.ok(!line.msg.includes('H17_PLAIN'))
  })

  test('inherit_env: true passes all of Tide\u2019s environment, secrets included', async (t) => {
    withTideEnv(t)
    const { env } = await instanceEnv(t, '      inherit_env: true')
    for (const [name, value] of Object.entries(TIDE_ENV)) assert.equal(env[name], value, name)
    assert.equal(env.PATH, process.env.PATH)
    assertTideVars(env)
  })

  test('a list passes exactly the names and patterns it matches, plus env:, HOST, PORT and TIDE_*', async (t) => {
    withTideEnv(t)
    const { env } = await instanceEnv(
      t,
      `      inherit_env: [PATH, "H17_PLAIN*", "LC_*", AWS_SECRET_ACCESS_KEY]\n      env: { GIVEN: "yes" }`,
    )
    const lc = Object.keys(process.env).filter((name) => name.startsWith('LC_'))
    assert.deepEqual(
      Object.keys(env).sort(),
      [
        'PATH',
        'H17_PLAIN',
        'H17_PLAIN_TOO',
        ...lc,
        'AWS_SECRET_ACCESS_KEY',
        'GIVEN',
        'HOST',
        'PORT',
        'TIDE_INSTANCE',
        'TIDE_GROUP',
      ].sort(),
    )
    assert.equal(env.AWS_SECRET_ACCESS_KEY, 'aws-secret-value', 'a secret listed by name is passed')
    assertTideVars(env)
  })

  test('inherit_env: false passes only the base (PATH, HOME, locale, …)', async (t) => {
    withTideEnv(t)
    const { env } = await instanceEnv(t, '      inherit_env: false')
    assert.equal(env.PATH, process.env.PATH)
    if (process.env.HOME !== undefined) assert.equal(env.HOME, process.env.HOME)
    assert.equal(env.LC_ALL, 'C.UTF-8')
    assert.equal(env.H17_PLAIN, undefined)
    assert.equal(env.NODE_ENV, undefined)
    const base = inheritedEnv(process.env, false, new Set()).env
    const ours = ['HOST', 'PORT', 'TIDE_INSTANCE', 'TIDE_GROUP']
    assert.deepEqual(Object.keys(env).sort(), [...Object.keys(base), ...ours].sort())
  })
})

describe('inheritedEnv', () => {
  const from = { PATH: '/bin', HOME: '/home/u', LC_TIME: 'C', MY_API_TOKEN: 't', app_password: 'p', X: 'x' }

  test('safe leaves out secret-looking names in any case and the interpolated names', () => {
    const got = inheritedEnv(from, 'safe', new Set(['X']))
    assert.deepEqual(got.env, { PATH: '/bin', HOME: '/home/u', LC_TIME: 'C' })
    assert.deepEqual(got.withheld, ['MY_API_TOKEN', 'X', 'app_password'])
  })

  test('a list is case-sensitive and * matches any run of characters', () => {
    assert.deepEqual(inheritedEnv(from, ['path', 'LC_*', '*_TOKEN'], new Set()).env, {
      LC_TIME: 'C',
      MY_API_TOKEN: 't',
    })
    assert.deepEqual(inheritedEnv(from, ['*'], new Set(['X'])).env, from, '"*" is everything')
    assert.deepEqual(inheritedEnv(from, [], new Set()).env, {}, 'an empty list passes nothing')
  })

  test('false keeps the base only; true keeps everything', () => {
    assert.deepEqual(inheritedEnv(from, false, new Set()).env, {
      PATH: '/bin',
      HOME: '/home/u',
      LC_TIME: 'C',
    })
    assert.deepEqual(inheritedEnv(from, true, new Set(['X'])).env, from)
  })

  test('which names look secret', () => {
    for (const name of [
      'TIDE_TOKEN',
      'TIDE_LOG_LEVEL',
      'GITHUB_TOKEN',
      'DO_TOKEN',
      'DIGITALOCEAN_ACCESS_TOKEN',
      'AWS_REGION',
      'AWS_WEB_IDENTITY_TOKEN_FILE',
      'CLIENT_SECRET',
      'db_password',
      'STRIPE_API_KEY',
      'GOOGLE_APPLICATION_CREDENTIALS',
      'SLACK_WEBHOOK_URL',
      'KUBECONFIG',
      'SSH_AUTH_SOCK',
    ])
      assert.ok(looksSecret(name), name)
    for (const name of ['PATH', 'HOME', 'NODE_ENV', 'LANG', 'TOKENIZERS_PARALLELISM', 'DATABASE_HOST', 'PWD'])
      assert.ok(!looksSecret(name), name)
    assert.ok(SECRET_PATTERNS.length > 0 && BASE_ENV.includes('PATH'))
  })
})

describe('inherit_env in the config', () => {
  function problems(lines: string): Array<{ path: string; message: string; value?: unknown }> {
    try {
      parseConfigText(config(lines), 'test.yaml', { H17_UPSTREAM_KEY: 'a-token-of-sixteen-or-more' })
    } catch (err) {
      return (err as ConfigError).problems
    }
    assert.fail('expected the config to be rejected')
  }

  test('defaults to safe', () => {
    const loaded = parseConfigText(config(''), 'test.yaml', {
      H17_UPSTREAM_KEY: 'a-token-of-sixteen-or-more',
    })
    const target = loaded.groups.web!.target
    assert.ok(target.kind === 'process' && target.inherit_env === 'safe')
  })

  test('a bad value names the field and the value', () => {
    assert.deepEqual(problems('      inherit_env: yes'), [
      {
        path: 'groups.web.target.inherit_env',
        message: 'must be safe, true, false, or a list of variable names and patterns such as LC_*',
        value: 'yes',
      },
    ])
    assert.deepEqual(problems('      inherit_env: [PATH, "bad-name"]'), [
      {
        path: 'groups.web.target.inherit_env[1]',
        message: 'must be a variable name or a pattern with * (such as LC_*)',
        value: 'bad-name',
      },
    ])
  })
})
