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
import { tail } from './target.js'

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

/** Alive and not a zombie (an orphan's zombie lingers until its new parent reaps it). */
function running(pid: number): boolean {
  if (!pidAlive(pid)) return false
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

/** Polls (bounded, not a timing assertion) until `ok` holds. */
async function eventually(ok: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < PATIENCE_MS / 25; i++) {
    if (ok()) return
    await sleep(25)
  }
  assert.fail(`gave up waiting for ${what}`)
}

async function startError(scaling: Promise<unknown>): Promise<ProcessStartError> {
  const err = await scaling.then(
    () => assert.fail('scale should have failed'),
    (e: unknown) => e,
  )
  assert.ok(err instanceof ProcessStartError, String(err))
  return err
}

/**
 * A process target for group `web` with a fresh directory for its logs (and test scripts);
 * the target is closed and the directory removed after the test, pass or fail. With `reuse`,
 * the target shares that earlier target's directory (as a later run of Tide would).
 */
function setup(
  t: TestContext,
  config: Record<string, unknown> | ((dir: string) => Record<string, unknown>),
  reuse?: { dir: string },
): { target: ProcessTarget; logDir: string; dir: string } {
  const dir = reuse?.dir ?? mkdtempSync(join(tmpdir(), 'tide-process-'))
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
      inherit_env: 'safe',
      host: '127.0.0.1',
      health: { path: '/healthz', interval: 50, timeout: 1000, live_interval: 0, live_failures: 3 },
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
    assert.deepEqual(c.health, {
      path: '/ready',
      interval: 50,
      timeout: 1000,
      live_interval: 0,
      live_failures: 3,
    })
    const live = processTargetSchema.parse({
      kind: 'process',
      command: 'x',
      health: { live_interval: '5s', live_failures: 2 },
    })
    assert.deepEqual(live.health, {
      path: '/healthz',
      interval: 50,
      timeout: 1000,
      live_interval: 5000,
      live_failures: 2,
    })
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
      health: { path: 'healthz', every: '1s', live_failures: 0 },
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

describe('tail', () => {
  test("reads what follows an offset, at most 8 KiB, without a partial first line or Tide's lines", (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'tide-tail-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    const file = join(dir, 'web-1.log')
    const earlier = '# tide: starting web-1\nold line\n'
    writeFileSync(
      file,
      `${earlier}# tide: starting web-1\nnew line\n# tide: pid 1 exited with code 1 after 5ms\n`,
    )
    assert.deepEqual(tail(file, 5), ['old line', 'new line'])
    assert.deepEqual(tail(file, 5, Buffer.byteLength(earlier)), ['new line'])
    assert.deepEqual(tail(file, 5, 10_000), ['old line', 'new line'], 'a file truncated since is all new')
    writeFileSync(file, `${'x'.repeat(100)}\n${'long '.repeat(2000)}\nlast\n`)
    assert.deepEqual(tail(file, 5), ['last'], 'the line the 8 KiB window starts inside is left out')
    assert.deepEqual(tail(join(dir, 'missing.log'), 5), [])
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

  test("a start timeout names the health path's last answer, not a check the deadline cut short", async (t) => {
    // The first check is answered 404; later ones get no answer, like the user's last check,
    // cut to 0.08ms by the deadline, whose "no answer within 0.07668000000012398ms" hid the 404.
    const script = (dir: string) => {
      const file = join(dir, 'no-health.mjs')
      writeFileSync(
        file,
        `import { createServer } from 'node:http'
let requests = 0
createServer((req, res) => {
  if (requests++ === 0) { res.statusCode = 404; res.end() }
}).listen(Number(process.env.PORT), process.env.HOST)
`,
      )
      return file
    }
    const restart = { backoff: '10m', max_backoff: '10m' } // no replacement during the test
    // Every check after the first is cut short by the deadline (timeout 5s > start_timeout 2s).
    const clipped = setup(t, (dir) => ({
      command: [NODE, script(dir)],
      start_timeout: '2s',
      health: { timeout: '5s' },
      restart,
    }))
    // Full-length checks that time out: both findings are worth saying.
    const hanging = setup(t, (dir) => ({
      command: [NODE, script(dir)],
      start_timeout: '2s',
      health: { timeout: '300ms' },
      restart,
    }))
    const [a, b] = await Promise.all([
      startError(clipped.target.scale(1, { reason: 'test' }, signal())),
      startError(hanging.target.scale(1, { reason: 'test' }, signal())),
    ])
    assert.match(
      a.message,
      /^group web: web-1 was not ready within 2s and was killed \(last check: GET \/healthz: answered 404\) \(log: /,
    )
    assert.match(
      b.message,
      /^group web: web-1 was not ready within 2s and was killed \(last check: GET \/healthz: answered 404, then no answer within 300ms\) \(log: /,
    )
    for (const err of [a, b]) assert.doesNotMatch(err.message, /\d\.\d+ ?ms/, 'no raw float')
  })

  test('a start error quotes only what this instance wrote, not an earlier run with the same id', async (t) => {
    // An earlier run of Tide: web-1 ran through the shell and wrote "nodee: not found".
    const earlier = setup(t, {
      command: 'nodee --version',
      restart: { backoff: '10m', max_backoff: '10m' },
    })
    const first = await startError(earlier.target.scale(1, { reason: 'test' }, signal()))
    assert.match(first.failed[0]!.lastOutput.join('\n'), /nodee: not found/)
    await earlier.target.close()

    // A new run starts numbering at 1 again and appends to the same web-1.log. An argv command
    // that cannot be spawned writes nothing, so there is nothing to quote.
    const later = setup(
      t,
      { command: ['nodee-tide-test'], restart: { backoff: '10m', max_backoff: '10m' } },
      earlier,
    )
    const second = await startError(later.target.scale(1, { reason: 'test' }, signal()))
    assert.equal(second.failed[0]!.logFile, first.failed[0]!.logFile, 'the same log file')
    assert.deepEqual(second.failed[0]!.lastOutput, [])
    assert.match(
      second.message,
      /web-1 could not be started: cannot run nodee-tide-test: not found \(log: .+\); no output$/,
    )
    assert.doesNotMatch(second.message, /nodee: not found/)
    await later.target.close()

    // And one that writes something shows that alone.
    const third = setup(
      t,
      { command: ['sh', '-c', 'echo mine >&2; exit 3'], restart: { backoff: '10m', max_backoff: '10m' } },
      earlier,
    )
    const err = await startError(third.target.scale(1, { reason: 'test' }, signal()))
    assert.deepEqual(err.failed[0]!.lastOutput, ['mine'])
    assert.match(
      readFileSync(err.failed[0]!.logFile, 'utf8'),
      /nodee: not found[\s\S]*mine/,
      'the file keeps it all',
    )
  })

  test('health.live_interval: a ready instance that fails its checks is killed with its group and replaced', async (t) => {
    const { target, logDir } = setup(t, (dir) => {
      const script = join(dir, 'sickly.mjs')
      writeFileSync(
        script,
        `import { spawn } from 'node:child_process'
import { createServer } from 'node:http'
let sick = false
process.on('SIGUSR2', () => { sick = true })
// A helper in the instance's process group: it must go with the instance.
const helper = spawn('sleep', ['600'], { stdio: 'ignore' })
createServer((req, res) => {
  if (req.url === '/helper') return res.end(String(helper.pid))
  res.statusCode = sick ? 500 : 200
  res.end()
}).listen(Number(process.env.PORT), process.env.HOST)
`,
      )
      return {
        command: [NODE, script],
        health: { live_interval: '50ms', live_failures: 3 },
        restart: { backoff: '100ms', max_backoff: '100ms' },
      }
    })
    await target.scale(1, { reason: 'test' }, signal())
    const web1 = byId(await target.status(signal()), 'web-1')!
    const res = await fetch(`http://${web1.address}/helper`, { headers: { connection: 'close' } })
    const helper = Number(await res.text())
    assert.ok(helper > 0 && running(helper), 'the helper runs')
    t.after(() => {
      if (running(helper)) process.kill(helper, 'SIGKILL') // only if the test failed
    })
    // Healthy: checks pass and it stays ready.
    await sleep(200)
    assert.equal(byId(await target.status(signal()), 'web-1')?.state, 'ready')

    const details: string[] = []
    target.watch!((s) => {
      const d = byId(s, 'web-1')?.detail
      if (d && details.at(-1) !== d) details.push(d)
    })
    const failed = waitFor(target, (s) => byId(s, 'web-1')?.state === 'failed', 'web-1 to be failed')
    process.kill(web1.pid!, 'SIGUSR2')
    const during = await failed
    assert.match(
      byId(during, 'web-1')!.detail!,
      /^failed 3 health checks in a row \(last: GET \/healthz: answered 500\) and was killed; a new instance replaces it in 100ms$/,
    )
    assert.equal(byId(during, 'web-2'), undefined, 'heard at once, not when the replacement comes')
    assert.equal(during.desired, 1)
    assert.equal(during.ready, 0)
    assert.match(
      details.join('\n'),
      /ready; health check failing \(1 of 3 in a row\): GET \/healthz: answered 500/,
    )
    await eventually(() => !running(web1.pid!) && !running(helper), 'the instance and its helper to be gone')

    const after = await waitFor(target, (s) => byId(s, 'web-2')?.state === 'ready', 'web-2 to be ready')
    assert.deepEqual(
      after.instances.map((i) => i.id),
      ['web-2'],
    )
    const log = readFileSync(join(logDir, 'web-1.log'), 'utf8')
    assert.match(
      log,
      /# tide: web-1 failed 3 health checks in a row \(last: GET \/healthz: answered 500\): SIGKILL/,
    )
    assert.match(log, /was killed by SIGKILL/)
  })

  test('without live_interval, a ready instance is not checked', async (t) => {
    const { target } = setup(t, (dir) => {
      const script = join(dir, 'sickly.mjs')
      writeFileSync(
        script,
        `import { createServer } from 'node:http'
createServer((req, res) => {
  res.statusCode = process.env.SICK_AFTER_READY && globalThis.ready ? 500 : 200
  globalThis.ready = true
  res.end()
}).listen(Number(process.env.PORT), process.env.HOST)
`,
      )
      return { command: [NODE, script], env: { SICK_AFTER_READY: 1 } }
    })
    await target.scale(1, { reason: 'test' }, signal())
    await sleep(300)
    const status = await target.status(signal())
    assert.equal(byId(status, 'web-1')?.state, 'ready')
    assert.match(byId(status, 'web-1')!.detail!, /^ready after /)
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
