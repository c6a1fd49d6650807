import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { describe, type TestContext, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { createProcessTarget, type ProcessLogger, type ProcessTarget, processTargetSchema } from './index.js'
import {
  highestNumber,
  parseStat,
  processStartTime,
  readStat,
  readState,
  type StateEntry,
  stopLeftover,
  whyNotOurs,
  writeState,
} from './leftovers.js'

const ROOT = resolve(fileURLToPath(import.meta.url), '../../../..')
const APP = join(ROOT, 'examples/app/server.js')
const INDEX = pathToFileURL(join(ROOT, 'src/targets/process/index.ts')).href
/** A bound on waiting so a broken test fails instead of hanging; never a timing assertion. */
const PATIENCE_MS = 30_000

function workdir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'tide-leftovers-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Running: signal 0 reaches it and it is not a zombie. */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  const stat = readStat(pid)
  return stat !== undefined && stat.state !== 'Z'
}

function esrch(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return false
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH'
  }
}

/** Polls (bounded, not a timing assertion) until `ok` holds. */
async function eventually(ok: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + PATIENCE_MS
  while (!ok()) {
    assert.ok(performance.now() < deadline, `gave up waiting for ${what}`)
    await sleep(50)
  }
}

/**
 * Spawns a process in a group of its own (so a wrong `kill(-pid)` would reach it) and kills it
 * after the test, pass or fail.
 */
function spawnOwn(t: TestContext, argv: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: 'ignore', env })
  child.on('error', () => {})
  t.after(() => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, 'SIGKILL') // its group, which this test created
      } catch {}
    }
  })
  assert.ok(child.pid, `${argv.join(' ')} started`)
  return child
}

function capture(): { logger: ProcessLogger; warnings: string[]; infos: string[] } {
  const warnings: string[] = []
  const infos: string[] = []
  return {
    warnings,
    infos,
    logger: {
      info: (_o, m) => infos.push(m),
      warn: (_o, m) => warnings.push(m),
      error: (_o, m) => warnings.push(m),
    },
  }
}

const config = () =>
  processTargetSchema.parse({
    kind: 'process',
    command: [process.execPath, APP],
    env: { WORK_MS: 0 },
    start_timeout: '20s',
    stop_grace: '5s',
  })

describe('/proc and the state file', () => {
  test('parseStat counts fields after the last ")", whatever the name holds', () => {
    const rest = Array.from({ length: 50 }, (_, i) => String(i + 4)).join(' ')
    // Fields 4.. are numbered by their value: pgrp (field 5) is 5, starttime (field 22) is 22.
    assert.deepEqual(parseStat(`1234 (we) (ird name) S ${rest}`), { state: 'S', pgrp: 5, startTime: 22 })
    assert.equal(parseStat('garbage'), undefined)
    assert.equal(parseStat('1 (x) S 0 1'), undefined, 'too short')
    const own = readStat(process.pid)
    assert.ok(own && own.state !== 'Z' && own.startTime > 0, 'this process has a start time')
    assert.equal(processStartTime(process.pid), own.startTime)
  })

  test('writeState replaces the file whole; readState reads it back and skips malformed entries', (t) => {
    const dir = workdir(t)
    const file = join(dir, 'instances.json')
    assert.deepEqual(readState(file), { entries: [] }, 'no file: nothing to do')
    const entries: StateEntry[] = [
      { id: 'web-3', pid: 1234, port: 4000, startTime: 99 },
      { id: 'web-12', pid: 1235, port: 4001, startTime: 100 },
    ]
    writeState(file, 'web', entries)
    assert.deepEqual(readState(file), { entries })
    assert.deepEqual(readdirSync(dir), ['instances.json'], 'no temp file left behind')
    assert.equal(highestNumber(entries, 'web'), 12)
    assert.equal(highestNumber([{ ...entries[0]!, id: 'webx-40' }], 'web'), 0)

    writeFileSync(file, JSON.stringify({ group: 'web', instances: [entries[0], { id: 'web-4', pid: 'x' }] }))
    const partly = readState(file)
    assert.deepEqual(partly.entries, [entries[0]])
    assert.match(partly.problem ?? '', /1 malformed/)
    writeFileSync(file, '{"inst')
    assert.match(readState(file).problem ?? '', /not JSON/)
  })

  test('stopLeftover: SIGKILL when SIGTERM is ignored, at once when aborted', async (t) => {
    const env = { ...process.env, TIDE_GROUP: 'web', TIDE_INSTANCE: 'web-1' }
    // It says "ready" once its trap is set: a SIGTERM before that would end it, and the test
    // would see SIGTERM work (a race seen under load).
    const ready = join(workdir(t), 'ready')
    const stubborn = spawnOwn(t, ['sh', '-c', `trap "" TERM; touch ${ready}; sleep 30 & wait`], env)
    const pid = stubborn.pid!
    for (let i = 0; i < 200 && !existsSync(ready); i++) await new Promise((r) => setTimeout(r, 25))
    assert.ok(existsSync(ready), 'the stubborn process set its trap')
    const entry: StateEntry = { id: 'web-1', pid, port: 1, startTime: processStartTime(pid)! }
    assert.equal(whyNotOurs(entry, 'web'), undefined, 'it carries the marks')
    assert.match(
      whyNotOurs({ ...entry, id: 'web-2' }, 'web') ?? '',
      /lacks TIDE_GROUP=web TIDE_INSTANCE=web-2/,
    )
    assert.match(whyNotOurs({ ...entry, startTime: entry.startTime + 1 }, 'web') ?? '', /reused/)
    const abort = new AbortController()
    abort.abort()
    const exited = new Promise((resolve) => stubborn.once('exit', resolve))
    assert.equal(await stopLeftover(entry, 'web', 600_000, abort.signal), 'SIGKILL')
    await exited
    assert.equal(whyNotOurs(entry, 'web'), 'not running')
  })
})

describe('instances left by a Tide killed with SIGKILL', () => {
  test('the next start stops them and leaves strangers alone; numbering continues', async (t) => {
    const dir = workdir(t)
    const logDir = join(dir, 'logs')
    const stateFile = join(logDir, 'instances.json')
    // Registered before anything starts: kills each instance still the one the test saw.
    const instances: StateEntry[] = []
    t.after(() => {
      for (const { pid, startTime } of instances) {
        if (readStat(pid)?.startTime === startTime) {
          try {
            process.kill(-pid, 'SIGKILL')
          } catch {}
        }
      }
    })

    // 1. A Tide in a child process scales to 2, then dies by SIGKILL.
    const script = join(dir, 'tide.mjs')
    writeFileSync(
      script,
      `import { createProcessTarget, processTargetSchema } from ${JSON.stringify(INDEX)}
const [logDir, app] = process.argv.slice(2)
const config = processTargetSchema.parse({
  kind: 'process', command: [process.execPath, app], env: { WORK_MS: 0 }, start_timeout: '20s',
})
const target = createProcessTarget('web', config, { logDir })
const signal = new AbortController().signal
await target.start(signal)
await target.scale(2, { reason: 'test' }, signal)
const { instances } = await target.status(signal)
console.log('PIDS ' + JSON.stringify(instances.map((i) => i.pid)))
setInterval(() => {}, 60_000)
`,
    )
    const tide = spawn(process.execPath, ['--import', 'tsx', script, logDir, APP], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const tideExited = new Promise<void>((resolve) => tide.once('exit', () => resolve()))
    t.after(() => {
      if (tide.exitCode === null && tide.signalCode === null) tide.kill('SIGKILL')
    })
    let output = ''
    tide.stdout!.on('data', (chunk) => {
      output += chunk
    })
    tide.stderr!.on('data', (chunk) => {
      output += chunk
    })
    const pids = await new Promise<number[]>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no pids from the child Tide:\n${output}`)),
        PATIENCE_MS,
      )
      tide.stdout!.on('data', () => {
        const m = /PIDS (\[.*\])/.exec(output)
        if (m) {
          clearTimeout(timer)
          resolve(JSON.parse(m[1]!) as number[])
        }
      })
      void tideExited.then(() => {
        clearTimeout(timer)
        reject(new Error(`the child Tide exited early:\n${output}`))
      })
    })
    assert.equal(pids.length, 2)
    const listed = readState(stateFile).entries
    instances.push(...listed)
    assert.deepEqual(
      listed.map((e) => [e.id, e.pid]).sort(),
      [
        ['web-1', pids[0]],
        ['web-2', pids[1]],
      ],
      'the state file lists both instances',
    )
    for (const e of listed) assert.equal(e.startTime, processStartTime(e.pid))

    tide.kill('SIGKILL')
    await tideExited
    for (const pid of pids) assert.ok(running(pid), `instance ${pid} outlived the Tide that started it`)

    // 2. Strangers in the file: one whose pid is reused (wrong start time, even with the marks),
    // one with the right start time but not an instance (no marks).
    const reused = spawnOwn(t, ['sleep', '30'], { ...process.env, TIDE_GROUP: 'web', TIDE_INSTANCE: 'web-9' })
    const unmarked = spawnOwn(t, ['sleep', '30'])
    const strangers: StateEntry[] = [
      { id: 'web-9', pid: reused.pid!, port: 1, startTime: processStartTime(reused.pid!)! + 1000 },
      { id: 'web-5', pid: unmarked.pid!, port: 2, startTime: processStartTime(unmarked.pid!)! },
    ]
    writeState(stateFile, 'web', [...listed, ...strangers])

    // 3. A new Tide starts.
    const { logger, warnings, infos } = capture()
    const target: ProcessTarget = createProcessTarget('web', config(), { logDir, logger })
    t.after(() => target.close())
    await target.start(new AbortController().signal)

    assert.deepEqual(warnings.sort(), [
      `stopped web-1 (pid ${pids[0]}) left running by a previous Tide`,
      `stopped web-2 (pid ${pids[1]}) left running by a previous Tide`,
    ])
    for (const pid of pids) assert.equal(running(pid), false, `leftover ${pid} was stopped`)
    // The leftovers' parent is now pid 1, which reaps them when it gets to it.
    await eventually(() => pids.every(esrch), 'the stopped leftovers to be reaped')
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' })
    assert.deepEqual(readState(stateFile), { entries: [] }, 'the state file is cleared')

    assert.ok(running(reused.pid!), 'a reused pid is not ours, even with our variables')
    assert.ok(running(unmarked.pid!), 'a process without our variables is not ours')
    assert.equal(infos.filter((m) => m.startsWith('left pid')).length, 2, infos.join('\n'))

    // 4. Numbering continues above the highest id in the file; the file follows the instances.
    const result = await target.scale(1, { reason: 'test' }, new AbortController().signal)
    assert.deepEqual(result.added, ['web-10'])
    const { pid } = (await target.status()).instances[0]!
    instances.push(...readState(stateFile).entries)
    assert.deepEqual(
      readState(stateFile).entries.map((e) => [e.id, e.pid]),
      [['web-10', pid]],
    )
    await target.close()
    assert.deepEqual(readState(stateFile), { entries: [] }, 'an exited instance leaves the file')

    // The strangers are this test's own processes: it ends them itself.
    for (const stranger of [reused, unmarked]) {
      const exited = new Promise((resolve) => stranger.once('exit', resolve))
      stranger.kill('SIGKILL')
      await exited
    }
  })

  test('start() with no state file does nothing and writes nothing', async (t) => {
    const dir = workdir(t)
    const logDir = join(dir, 'logs')
    mkdirSync(logDir)
    const target = createProcessTarget('web', config(), { logDir })
    t.after(() => target.close())
    await target.start(new AbortController().signal)
    assert.equal(existsSync(join(logDir, 'instances.json')), false)
  })
})
