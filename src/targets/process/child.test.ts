import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, type TestContext, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { type ChildHandle, spawnChild } from './child.js'

/** Alive and not a zombie (an orphan's zombie lingers until its new parent reaps it). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

/** Polls (bounded, not a timing assertion) until `ok` holds. */
async function eventually(ok: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (ok()) return
    await sleep(25)
  }
  assert.fail(`gave up waiting for ${what}`)
}

function workdir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'tide-child-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Starts `script` under sh; the test kills the whole group afterwards whatever happens. */
async function start(t: TestContext, dir: string, script: string): Promise<ChildHandle> {
  const child = await spawnChild({
    command: ['sh', '-c', script],
    cwd: dir,
    env: { PATH: process.env.PATH },
    logFile: join(dir, 'out.log'),
    label: 'test',
  })
  t.after(() => child.kill())
  return child
}

async function grandchild(dir: string): Promise<number> {
  const file = join(dir, 'grandchild.pid')
  await eventually(() => existsSync(file) && readFileSync(file, 'utf8').endsWith('\n'), 'the grandchild pid')
  return Number(readFileSync(file, 'utf8'))
}

describe('spawnChild', () => {
  test('stop ends the whole process group, SIGKILLing what ignores SIGTERM after the grace', async (t) => {
    const dir = workdir(t)
    // The grandchild ignores SIGTERM (an ignored signal stays ignored across exec).
    const child = await start(t, dir, `(trap '' TERM; exec sleep 300) & echo $! > grandchild.pid; wait`)
    const pid = await grandchild(dir)
    assert.ok(alive(pid))
    const info = await child.stop(200)
    assert.equal(info.signal, 'SIGTERM', 'the shell itself ended on SIGTERM')
    await eventually(() => !alive(pid), 'the grandchild to be gone')
    assert.equal(child.running, false)
  })

  test('a process that exits by itself takes its group with it', async (t) => {
    const dir = workdir(t)
    const child = await start(t, dir, 'sleep 300 & echo $! > grandchild.pid; echo bye; exit 4')
    const info = await child.exited
    assert.equal(info.code, 4)
    const pid = await grandchild(dir)
    await eventually(() => !alive(pid), 'the orphan to be gone')
    const log = readFileSync(join(dir, 'out.log'), 'utf8')
    assert.match(log, /^# tide: \S+ test\nbye\n# tide: pid \d+ exited with code 4 after \S+\n$/)
  })

  test('output is appended: a second run keeps the first one readable', async (t) => {
    const dir = workdir(t)
    await (
      await start(t, dir, 'echo one')
    ).exited
    await (
      await start(t, dir, 'echo two')
    ).exited
    const lines = readFileSync(join(dir, 'out.log'), 'utf8').split('\n')
    assert.deepEqual(
      lines.filter((l) => !l.startsWith('# tide:')),
      ['one', 'two', ''],
    )
  })

  test('a missing working directory or executable is an error, and nothing runs', async (t) => {
    const dir = workdir(t)
    const base = { env: {}, logFile: join(dir, 'out.log'), label: 'test' }
    await assert.rejects(
      spawnChild({ ...base, command: 'true', cwd: join(dir, 'nope') }),
      /working directory \S+nope does not exist/,
    )
    await assert.rejects(
      spawnChild({ ...base, command: [join(dir, 'no-such-program')], cwd: dir }),
      /cannot run \S+no-such-program: not found/,
    )
  })
})
