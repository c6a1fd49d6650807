/**
 * Reloading the config without a restart, end to end: a real daemon with real processes behind
 * the real router, its config file edited on disk, then `POST /v1/reload`, `tide reload` or
 * SIGHUP to `tide run`. What users rely on: the new settings take effect, nothing restarts, and a
 * bad or restart-only file changes nothing at all.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { stringify } from 'yaml'
import { main } from '../../src/cli/main.js'
import type { DecisionRecord, GroupView } from '../../src/engine/controller.js'
import { type Daemon, startDaemon } from '../../src/engine/daemon.js'
import { silentLogger } from '../../src/engine/log.js'
import { waitFor } from '../support/daemon.js'

const APP = resolve('examples/app/server.js')
const TOKEN = 'reload-test-token-0123456789'

type Raw = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

/** A routed process group of demo apps; only the config's own policy scales it. */
function baseConfig(dir: string): Raw {
  return {
    api: { listen: '127.0.0.1:0' },
    store: { path: join(dir, 'tide.db') },
    groups: {
      web: {
        min: 1,
        max: 4,
        interval: '500ms',
        target: {
          kind: 'process',
          command: `node ${APP}`,
          stop_grace: '5s',
          restart: { backoff: '200ms' },
        },
        route: { listen: '127.0.0.1:0' },
        policies: [{ kind: 'target', metric: 'concurrency', per_instance: 8 }],
        cooldown: '0s',
        scale_down: { stabilization: '0s' },
      },
    },
  }
}

interface Reply {
  status: number
  body: any // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function call(url: string, method = 'GET', token?: string): Promise<Reply> {
  const headers: Record<string, string> = {}
  if (token) headers.authorization = `Bearer ${token}`
  const res = await fetch(url, { method, headers })
  return { status: res.status, body: await res.json() }
}

const pids = (g: GroupView) => g.instances.map((i) => `${i.id}:${i.pid}`).sort()

describe('config reload on a running daemon (POST /v1/reload, tide reload)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-reload-'))
  const file = join(dir, 'tide.yaml')
  let daemon: Daemon
  let hooks: Server
  let hookUrl = ''
  const received: Array<{ kind: string; group: string; from: number; to: number }> = []
  /** The file as last written (so each test edits on top of the previous state). */
  let raw = baseConfig(dir)
  const write = (edit: (raw: Raw) => void) => {
    const next = structuredClone(raw)
    edit(next)
    writeFileSync(file, stringify(next))
    return next
  }
  const group = async () => (await call(`${daemon.apiUrl}/v1/groups/web`)).body as GroupView
  const reload = () => call(`${daemon.apiUrl}/v1/reload`, 'POST')

  before(async () => {
    hooks = createServer((req, res) => {
      let body = ''
      req.on('data', (c: Buffer) => (body += c.toString()))
      req.on('end', () => {
        received.push(JSON.parse(body))
        res.end('ok')
      })
    })
    await new Promise<void>((r) => hooks.listen(0, '127.0.0.1', r))
    hookUrl = `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/hook`
    write(() => {})
    daemon = await startDaemon({ configPath: file, logger: silentLogger() })
    await waitFor('the first instance', 20_000, async () => (await group()).ready === 1)
  })
  after(async () => {
    await daemon?.close()
    hooks?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  test('max and a policy target change live: 200 with the summary, the new values used, nothing restarted', async () => {
    const before = await group()
    assert.equal(before.max, 4)
    raw = write((r) => {
      r.groups.web.max = 5
      r.groups.web.policies[0].per_instance = 5
    })
    const res = await reload()
    assert.equal(res.status, 200, JSON.stringify(res.body))
    assert.deepEqual(res.body, {
      changed: true,
      file,
      groups: { web: ['groups.web.max', 'groups.web.policies[0].per_instance'] },
      message: 'web: max, policies[0].per_instance',
    })
    const after = await group()
    assert.equal(after.max, 5)
    assert.deepEqual(pids(after), pids(before), 'the same instances, same processes')
    const decision = (await call(`${daemon.apiUrl}/v1/groups/web/auto`, 'POST')).body as DecisionRecord
    const policy = decision.recommendations[0]!
    assert.match(policy.reason, /target 5\b/, policy.reason)
    assert.match(decision.reason, /target 5\b/, decision.reason)
  })

  test('a bad file: 400 naming groups.web.max and the value; the group runs on with the old settings', async () => {
    write((r) => {
      r.groups.web.max = -1
    })
    const res = await reload()
    assert.equal(res.status, 400)
    assert.equal(res.body.code, 'E_CONFIG')
    assert.deepEqual(
      res.body.details.find((p: { path: string }) => p.path === 'groups.web.max'),
      { path: 'groups.web.max', message: 'must be >= 1', value: -1 },
    )
    assert.match(res.body.message, /groups\.web\.max: must be >= 1 \(got -1\)/)
    assert.equal((await group()).max, 5)
    const decision = (await call(`${daemon.apiUrl}/v1/groups/web/auto`, 'POST')).body as DecisionRecord
    assert.match(decision.recommendations[0]!.reason, /target 5\b/)
  })

  test('a target change: 409 naming the path; the allowed change in the same file is not applied either', async () => {
    const before = await group()
    write((r) => {
      r.groups.web.target.command = `node ${APP} --other`
      r.groups.web.max = 3
    })
    const res = await reload()
    assert.equal(res.status, 409)
    assert.equal(res.body.code, 'E_RELOAD_REFUSED')
    assert.deepEqual(res.body.details, [
      { path: 'groups.web.target.command', message: 'changing it needs a restart (tide run)' },
    ])
    assert.match(res.body.message, /groups\.web\.target\.command: changing it needs a restart \(tide run\)/)
    const after = await group()
    assert.equal(after.max, 5, 'max 3 was not applied')
    assert.deepEqual(pids(after), pids(before))
  })

  test('max lowered below the current size: the loop scales down to the new max and says why', async () => {
    // A policy that never fires, so only the bounds move the group.
    raw = write((r) => {
      r.groups.web.policies = [{ kind: 'threshold', up: { conditions: ['concurrency > 100000'] } }]
    })
    assert.equal((await reload()).status, 200)
    const up = await daemon.controller.scale('web', { to: 3, wait: true })
    assert.equal(up.outcome, 'applied')
    raw = write((r) => {
      r.groups.web.max = 2
    })
    const res = await reload()
    assert.equal(res.status, 200, JSON.stringify(res.body))
    assert.deepEqual(res.body.groups, { web: ['groups.web.max'] })
    let down: DecisionRecord | undefined
    await waitFor('a scale-down to the new max', 20_000, () => {
      down = daemon.controller.decisions('web').find((d) => d.from === 3 && d.to === 2)
      return down !== undefined
    }).catch((err: Error) => {
      const seen = daemon.controller.decisions('web', { limit: 10 }).map((d) => d.reason)
      throw new Error(`${err.message}; decisions: ${JSON.stringify(seen)}`)
    })
    assert.match(down!.reason, /^scale down 3 → 2: 3 is above max 2/)
    assert.equal(down!.trigger, 'auto')
    await waitFor('two instances', 20_000, async () => {
      const g = await group()
      return g.desired === 2 && g.instances.length === 2 && !g.operation
    })
  })

  test('a new notify list: the new webhook hears the next event', async () => {
    raw = write((r) => {
      r.groups.web.notify = [{ kind: 'webhook', url: hookUrl }]
    })
    const res = await reload()
    assert.equal(res.status, 200, JSON.stringify(res.body))
    assert.deepEqual(res.body.groups, { web: ['groups.web.notify[0]'] })
    assert.equal(received.length, 0)
    await daemon.controller.scale('web', { to: 1, wait: true })
    await waitFor('the webhook to hear the scale-down', 10_000, () =>
      received.some((e) => e.kind === 'applied' && e.from === 2 && e.to === 1),
    )
    assert.ok(received.every((e) => e.group === 'web'))
  })

  test('tide reload prints what changed, or that nothing did', async () => {
    const run = async (...args: string[]) => {
      let out = ''
      let err = ''
      const code = await main(['node', 'tide', 'reload', '--api', daemon.apiUrl, ...args], {
        stdout: { write: (s: string) => (out += s) },
        stderr: { write: (s: string) => (err += s) },
        env: {},
      })
      return { code, out, err }
    }
    const same = await run('--json')
    assert.equal(same.code, 0, same.err)
    assert.deepEqual(JSON.parse(same.out), { changed: false, file, groups: {}, message: 'no change' })

    raw = write((r) => {
      r.groups.web.cooldown = '1s'
      r.groups.web.scale_up = { max_step: 2 }
    })
    const changed = await run()
    assert.equal(changed.code, 0, changed.err)
    assert.match(changed.out, /reloaded .*tide\.yaml; applied now:/)
    assert.match(changed.out, /web {2}cooldown, scale_up\.max_step/)
    assert.equal((await group()).cooldown, 1000)

    write((r) => {
      r.groups.web.route.listen = '127.0.0.1:1'
    })
    const refused = await run()
    assert.equal(refused.code, 1)
    assert.match(refused.err, /groups\.web\.route\.listen: changing it needs a restart \(tide run\)/)
    assert.match(refused.err, /E_RELOAD_REFUSED/)
    write(() => {})
  })
})

describe('SIGHUP to tide run, with an API token', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-reload-hup-'))
  const file = join(dir, 'tide.yaml')
  let child: ChildProcess | undefined
  const instancePids = new Set<number>()

  after(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL')
    // Whatever the outcome, no instance of this test may outlive it.
    for (const pid of instancePids) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
    }
    rmSync(dir, { recursive: true, force: true })
  })

  test('SIGHUP reloads the file and the process keeps running; POST /v1/reload needs the token', async () => {
    const raw = baseConfig(dir)
    raw.api.token = TOKEN
    writeFileSync(file, stringify(raw))
    child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/fixtures/tide.ts', 'run', '-c', file, '--json'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, TIDE_LOG_LEVEL: 'info', TIDE_TOKEN: '' },
      },
    )
    let err = ''
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()))
    const api = await new Promise<string>((resolveApi, reject) => {
      let out = ''
      child!.stdout!.on('data', (c: Buffer) => {
        out += c.toString()
        const line = out.split('\n').find((l) => l.startsWith('{'))
        if (line) resolveApi((JSON.parse(line) as { api: string }).api)
      })
      child!.on('exit', (code) => reject(new Error(`tide exited with ${code}: ${err}`)))
    })
    const group = async () => (await call(`${api}/v1/groups/web`)).body as GroupView
    await waitFor('the first instance', 20_000, async () => (await group()).ready === 1)
    const before = await group()
    for (const i of before.instances) if (i.pid) instancePids.add(i.pid)

    const unauthorized = await call(`${api}/v1/reload`, 'POST')
    assert.equal(unauthorized.status, 401)
    assert.equal(unauthorized.body.code, 'E_UNAUTHORIZED')
    const authorized = await call(`${api}/v1/reload`, 'POST', TOKEN)
    assert.equal(authorized.status, 200)
    assert.equal(authorized.body.changed, false)

    raw.groups.web.max = 3
    writeFileSync(file, stringify(raw))
    child.kill('SIGHUP')
    await waitFor('the new max to show', 15_000, async () => (await group()).max === 3)
    assert.match(err, /config reloaded: web: max/)

    // A bad file on SIGHUP: logged, nothing changes, Tide keeps running.
    raw.groups.web.max = 'lots'
    writeFileSync(file, stringify(raw))
    child.kill('SIGHUP')
    await waitFor('the failure to be logged', 15_000, () => /config reload failed/.test(err))
    assert.match(err, /groups\.web\.max/)
    const after = await group()
    assert.equal(after.max, 3)
    assert.deepEqual(
      after.instances.map((i) => i.pid),
      before.instances.map((i) => i.pid),
      'no instance was restarted',
    )
    assert.equal(child.exitCode, null, 'tide run is still running')

    child.kill('SIGTERM')
    const code = await new Promise((r) => child!.once('exit', r))
    assert.equal(code, 0)
  })
})
