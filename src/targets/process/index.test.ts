import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { describe, type TestContext, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { TideError } from '../../core/errors.js'
import type { GroupStatus, Instance, Target } from '../../core/types.js'
import { createProcessTarget, ProcessStartError, type ProcessTarget, processTargetSchema } from './index.js'

const APP = resolve(fileURLToPath(import.meta.url), '../../../../examples/app/server.js')
const NODE = process.execPath
/** A bound on waiting so a broken test fails instead of hanging; never a timing assertion. */
const PATIENCE_MS = 30_000

function signal(): AbortSignal {
  return new AbortController().signal
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * A process target for group `web` with a fresh directory for its logs (and test scripts);
 * the target is closed and the directory removed after the test, pass or fail.
 */
function setup(
  t: TestContext,
  config: Record<string, unknown> | ((dir: string) => Record<string, unknown>),
): { target: ProcessTarget; logDir: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tide-process-'))
  const logDir = join(dir, 'logs')
  const parsed = processTargetSchema.parse({
    kind: 'process',
    command: [NODE, APP],
    start_timeout: '20s',
    stop_grace: '5s',
    restart: { backoff: '50ms', max_backoff: '400ms' },
    ...(typeof config === 'function' ? config(dir) : config),
  })
  const target = createProcessTarget('web', parsed, { logDir })
  t.after(async () => {
    await target.close({ stopInstances: true })
    rmSync(dir, { recursive: true, force: true })
  })
  return { target, logDir, dir }
}

/** Resolves with the first status (current or reported by watch) for which `ok` holds. */
async function waitFor(target: Target, ok: (s: GroupStatus) => boolean, what: string): Promise<GroupStatus> {
  let off = () => {}
  let timer: NodeJS.Timeout | undefined
  const reported = new Promise<GroupStatus>((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`gave up waiting for ${what}`)), PATIENCE_MS)
    off = target.watch!((s) => {
      if (ok(s)) resolve(s)
    })
  })
  try {
    const now = await target.status(signal())
    return ok(now) ? now : await reported
  } finally {
    clearTimeout(timer)
    off()
  }
}

const byId = (s: GroupStatus, id: string): Instance | undefined => s.instances.find((i) => i.id === id)

async function getJson(address: string, path = '/'): Promise<Record<string, unknown>> {
  const res = await fetch(`http://${address}${path}`, { headers: { connection: 'close' } })
  assert.equal(res.status, 200)
  return (await res.json()) as Record<string, unknown>
}

describe('processTargetSchema', () => {
  test('fills every default', () => {
    const c = processTargetSchema.parse({ kind: 'process', command: 'node app.js' })
    assert.deepEqual(c, {
      kind: 'process',
      command: 'node app.js',
      env: {},
      host: '127.0.0.1',
      health: { path: '/healthz', interval: 50, timeout: 1000 },
      start_timeout: 30_000,
      stop_grace: 10_000,
      restart: { backoff: 1000, max_backoff: 30_000, reset_after: 60_000 },
      remove_order: 'newest',
    })
  })

  test('accepts a health path as shorthand, an argv command and numbers in env', () => {
    const c = processTargetSchema.parse({
      kind: 'process',
      command: ['node', 'app.js'],
      health: '/ready',
      env: { WORK_MS: 25, DEBUG: true },
      restart: { backoff: '2s' },
    })
    assert.deepEqual(c.health, { path: '/ready', interval: 50, timeout: 1000 })
    assert.deepEqual(c.env, { WORK_MS: '25', DEBUG: 'true' })
    assert.deepEqual(c.command, ['node', 'app.js'])
    assert.deepEqual(c.restart, { backoff: 2000, max_backoff: 30_000, reset_after: 60_000 })
  })

  test('rejects a back-off longer than its ceiling', () => {
    const result = processTargetSchema.safeParse({
      kind: 'process',
      command: 'x',
      restart: { backoff: '1m', max_backoff: '30s' },
    })
    assert.equal(result.success, false)
    assert.deepEqual(result.error!.issues[0]!.path, ['restart', 'max_backoff'])
  })

  test('rejects unknown keys, reserved variables and bad values, each with its path', () => {
    const result = processTargetSchema.safeParse({
      kind: 'process',
      command: '',
      env: { PORT: '1' },
      health: { path: 'healthz', every: '1s' },
      start_timeout: 0,
      colour: 'blue',
    })
    assert.equal(result.success, false)
    const paths = result.error!.issues.map((i) => i.path.join('.')).sort()
    for (const path of ['command', 'env.PORT', 'health', 'start_timeout', '']) {
      assert.ok(paths.includes(path), `expected a problem at "${path}", got ${JSON.stringify(paths)}`)
    }
  })
})

describe('process target', () => {
  test('scale 0 → 2: two ready instances on distinct ports, each with its environment and log', async (t) => {
    const { target, logDir } = setup(t, { command: `${NODE} ${APP}`, env: { WORK_MS: 0 } })
    const seen = new Set<string>()
    target.watch!((s) => {
      for (const i of s.instances) seen.add(`${i.id} ${i.state}`)
    })
    const progress: string[] = []
    const result = await target.scale(2, { reason: 'test', progress: (m) => progress.push(m) }, signal())
    assert.deepEqual(result, { from: 0, to: 2, added: ['web-1', 'web-2'], removed: [] })

    const status = await target.status(signal())
    assert.equal(status.desired, 2)
    assert.equal(status.ready, 2)
    assert.equal(status.message, undefined)
    assert.deepEqual(
      status.instances.map((i) => [i.id, i.state]),
      [
        ['web-1', 'ready'],
        ['web-2', 'ready'],
      ],
    )
    const [a, b] = status.instances as [Instance, Instance]
    assert.notEqual(a.address, b.address)
    assert.match(a.address!, /^127\.0\.0\.1:\d+$/)
    for (const i of status.instances) {
      assert.ok(i.pid && pidAlive(i.pid), `${i.id} has a live pid`)
      assert.ok(i.readyAt !== undefined && i.readyAt >= i.createdAt)
      const body = await getJson(i.address!)
      assert.equal(body.instance, i.id)
      assert.equal(body.group, 'web')
      assert.equal(body.pid, i.pid, 'the pid is the app itself, not a shell')
      assert.equal(body.work_ms, 0, 'env from the config reaches the app')
    }
    assert.ok(seen.has('web-1 starting') && seen.has('web-1 ready'), `watch saw ${[...seen].join(', ')}`)
    assert.equal(progress.length, 2)
    assert.match(progress.join('\n'), /web-1 ready after \S+ on 127\.0\.0\.1:\d+/)
    assert.match(readFileSync(join(logDir, 'web-1.log'), 'utf8'), /web-1 listening on 127\.0\.0\.1:\d+/)
  })

  test('scale 2 → 1 removes the newest, and drains it before SIGTERM', async (t) => {
    const { target, logDir } = setup(t, {})
    await target.scale(2, { reason: 'test' }, signal())
    const before = await target.status(signal())
    const [oldest, newest] = before.instances as [Instance, Instance]

    const drained: string[] = []
    const drain = async (i: Instance) => {
      const log = readFileSync(join(logDir, `${i.id}.log`), 'utf8')
      drained.push(`${i.id} ${i.state} alive=${pidAlive(i.pid!)} sigterm=${log.includes('SIGTERM')}`)
    }
    const result = await target.scale(1, { reason: 'test', drain }, signal())
    assert.deepEqual(result, { from: 2, to: 1, added: [], removed: ['web-2'] })
    assert.deepEqual(drained, ['web-2 draining alive=true sigterm=false'])
    assert.equal(pidAlive(newest.pid!), false, 'the victim has exited')
    assert.equal(pidAlive(oldest.pid!), true)
    const after = await target.status(signal())
    assert.deepEqual(
      after.instances.map((i) => i.id),
      ['web-1'],
    )
    assert.equal(after.desired, 1)
    const log = readFileSync(join(logDir, 'web-2.log'), 'utf8')
    assert.match(log, /SIGTERM received/)
    assert.match(log, /exited with code 0/, 'the demo app shuts down gracefully')
  })

  test('an app that ignores SIGTERM is killed with SIGKILL after stop_grace', async (t) => {
    const { target, logDir } = setup(t, (dir) => {
      const script = join(dir, 'stubborn.mjs')
      writeFileSync(
        script,
        `import { createServer } from 'node:http'
process.on('SIGTERM', () => console.log('ignoring SIGTERM'))
createServer((req, res) => res.end('ok')).listen(Number(process.env.PORT), process.env.HOST)
`,
      )
      return { command: [NODE, script], stop_grace: '200ms' }
    })
    await target.scale(1, { reason: 'test' }, signal())
    const { pid } = (await target.status(signal())).instances[0]!
    await target.scale(0, { reason: 'test' }, signal())
    assert.equal(pidAlive(pid!), false)
    const log = readFileSync(join(logDir, 'web-1.log'), 'utf8')
    assert.match(log, /ignoring SIGTERM/)
    assert.match(log, /was killed by SIGKILL/)
  })

  test('a command that never becomes healthy: start_timeout rejects and no process remains', async (t) => {
    const { target } = setup(t, {
      command: [NODE, '-e', 'setInterval(() => {}, 1000)'],
      start_timeout: '1500ms',
      restart: { backoff: '10m', max_backoff: '10m' }, // no replacement during the test
    })
    let pid: number | undefined
    target.watch!((s) => {
      pid ??= byId(s, 'web-1')?.pid
    })
    const err = await target.scale(1, { reason: 'test' }, signal()).then(
      () => assert.fail('scale should have failed'),
      (e: unknown) => e,
    )
    assert.ok(err instanceof ProcessStartError, String(err))
    assert.equal(err.code, 'E_PROCESS_START')
    assert.equal(err.status, 502)
    assert.deepEqual(
      err.failed.map((f) => f.id),
      ['web-1'],
    )
    assert.match(err.message, /web-1 was not ready within 1\.5s and was killed \(last check: .+\)/)
    assert.ok(pid !== undefined, 'the process was started')
    assert.equal(pidAlive(pid), false, 'the process is gone')
    const status = await target.status(signal())
    assert.equal(status.desired, 1, 'Tide keeps working towards the size it was asked for')
    assert.equal(byId(status, 'web-1')?.state, 'failed')
    assert.match(status.message ?? '', /web-1 was not ready within 1\.5s.*replaces it in 10m/)
  })

  test('a start that loses its port to another program is retried on another port', async (t) => {
    // First run: report PORT, wait until someone else holds it, then fail as an app does on
    // EADDRINUSE. Second run: serve.
    const { target, dir } = setup(t, (dir) => {
      const script = join(dir, 'squatted.mjs')
      writeFileSync(
        script,
        `import { existsSync, renameSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { connect } from 'node:net'
const [marker] = process.argv.slice(2)
const port = Number(process.env.PORT)
if (!existsSync(marker)) {
  writeFileSync(marker + '.tmp', String(port))
  renameSync(marker + '.tmp', marker)
  const check = () => {
    const socket = connect(port, process.env.HOST)
    socket.on('connect', () => { console.error('listen EADDRINUSE'); process.exit(1) })
    socket.on('error', () => setTimeout(check, 20))
  }
  check()
} else {
  createServer((req, res) => res.end('ok')).listen(port, process.env.HOST)
}
`,
      )
      return { command: [NODE, script, join(dir, 'first-port')] }
    })
    const scaling = target.scale(1, { reason: 'test' }, signal())
    const file = join(dir, 'first-port')
    let port = 0
    for (let i = 0; port === 0; i++) {
      assert.ok(i < 3000, 'the first run never reported its port')
      if (existsSync(file)) port = Number(readFileSync(file, 'utf8'))
      else await sleep(10)
    }
    const squatter = createServer()
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve))
    t.after(() => squatter.close())

    assert.deepEqual((await scaling).added, ['web-1'])
    const status = await target.status(signal())
    assert.equal(byId(status, 'web-1')?.state, 'ready')
    assert.notEqual(byId(status, 'web-1')?.address, `127.0.0.1:${port}`)
    assert.equal(status.message, undefined, 'a lost port is not a failure of the app')
  })

  test('an instance killed from outside is replaced, and status shows it meanwhile', async (t) => {
    const { target } = setup(t, { env: { WORK_MS: 0 } })
    await target.scale(1, { reason: 'test' }, signal())
    const { pid } = (await target.status(signal())).instances[0]!
    const failed = waitFor(target, (s) => byId(s, 'web-1')?.state === 'failed', 'web-1 to be failed')
    process.kill(pid!, 'SIGKILL')
    const during = await failed
    assert.match(byId(during, 'web-1')!.detail!, /was killed by SIGKILL .*a new instance replaces it in 50ms/)
    assert.match(during.message ?? '', /web-1 was killed by SIGKILL/)
    assert.equal(during.desired, 1)
    assert.equal(during.ready, 0)

    const after = await waitFor(target, (s) => byId(s, 'web-2')?.state === 'ready', 'web-2 to be ready')
    assert.deepEqual(
      after.instances.map((i) => i.id),
      ['web-2'],
    )
    assert.equal(after.message, undefined)
    const body = await getJson(byId(after, 'web-2')!.address!)
    assert.equal(body.instance, 'web-2', 'the replacement has a new name: numbers are never reused')
  })

  test('a crash loop backs off, doubling up to max_backoff, and shows in status.message', async (t) => {
    const { target } = setup(t, {
      command: ['sh', '-c', 'echo boom >&2; exit 3'],
      restart: { backoff: '20ms', max_backoff: '80ms' },
    })
    const waits: string[] = []
    target.watch!((s) => {
      for (const i of s.instances) {
        const wait = i.state === 'failed' ? /replaces it in (\S+)/.exec(i.detail ?? '')?.[1] : undefined
        if (wait && waits.at(-1) !== `${i.id} ${wait}`) waits.push(`${i.id} ${wait}`)
      }
    })
    const err = await target.scale(1, { reason: 'test' }, signal()).then(
      () => assert.fail('scale should have failed'),
      (e: unknown) => e,
    )
    assert.ok(err instanceof ProcessStartError)
    assert.match(err.message, /web-1 exited with code 3 after \S+ before it was ready/)
    assert.deepEqual(err.failed[0]!.lastOutput, ['boom'])

    const looping = await waitFor(
      target,
      (s) => /^crash loop: 5 failures in a row/.test(s.message ?? ''),
      'five failures in a row',
    )
    assert.match(
      looping.message!,
      /last web-5 exited with code 3 after \S+ before it was ready; next start in/,
    )
    assert.deepEqual(waits.slice(0, 5), [
      'web-1 20ms',
      'web-2 40ms',
      'web-3 80ms',
      'web-4 80ms',
      'web-5 80ms',
    ])
    assert.equal(looping.desired, 1)

    await target.scale(0, { reason: 'test' }, signal())
    const stopped = await target.status(signal())
    assert.deepEqual(stopped, { desired: 0, instances: [], ready: 0 })
  })

  test('close stops every process it started, even one still starting', async (t) => {
    const { target } = setup(t, { env: { WORK_MS: 0 } })
    await target.scale(2, { reason: 'test' }, signal())
    // A third that takes long to boot: close must not leave it behind.
    const slow = setup(t, { env: { STARTUP_MS: 60_000 } })
    const starting = slow.target.scale(1, { reason: 'test' }, signal()).catch((e: unknown) => e)
    const seen = await waitFor(slow.target, (s) => byId(s, 'web-1')?.pid !== undefined, 'the slow one to run')
    const pids = [...(await target.status(signal())).instances.map((i) => i.pid!), byId(seen, 'web-1')!.pid!]
    assert.equal(pids.length, 3)

    await Promise.all([target.close({ stopInstances: true }), slow.target.close()])
    for (const pid of pids) assert.equal(pidAlive(pid), false, `pid ${pid} is gone`)
    assert.deepEqual(await target.status(signal()), { desired: 0, instances: [], ready: 0 })
    assert.equal(
      ((await starting) as TideError).code,
      'E_PROCESS_CLOSED',
      'the scale that was waiting says why',
    )
    await assert.rejects(target.scale(1, { reason: 'test' }, signal()), { code: 'E_PROCESS_CLOSED' })
  })

  test('an aborted scale stops waiting; the instance still becomes ready', async (t) => {
    const { target } = setup(t, { env: { STARTUP_MS: 300 } })
    const abort = new AbortController()
    const scaling = target.scale(1, { reason: 'test' }, abort.signal)
    abort.abort(new TideError('E_TEST_ABORT', 'test aborts'))
    await assert.rejects(scaling, { code: 'E_TEST_ABORT' })
    assert.equal((await target.status(signal())).desired, 1)
    await waitFor(target, (s) => s.ready === 1, 'web-1 to be ready')
  })

  test('no change and bad sizes are refused without touching anything', async (t) => {
    const { target } = setup(t, {})
    await assert.rejects(target.scale(0, { reason: 'test' }, signal()), { code: 'E_NO_CHANGE' })
    await assert.rejects(target.scale(-1, { reason: 'test' }, signal()), { code: 'E_BAD_REQUEST' })
    await assert.rejects(target.scale(1.5, { reason: 'test' }, signal()), { code: 'E_BAD_REQUEST' })
    const aborted = new AbortController()
    aborted.abort(new Error('already aborted'))
    await assert.rejects(target.scale(1, { reason: 'test' }, aborted.signal), /already aborted/)
    assert.deepEqual(await target.status(signal()), { desired: 0, instances: [], ready: 0 })
  })
})
