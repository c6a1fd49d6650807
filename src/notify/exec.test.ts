import assert from 'node:assert/strict'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { pino } from 'pino'
import { parseConfig } from '../config/load.js'
import { ConfigError, TideError } from '../core/errors.js'
import type { ScaleEvent } from '../core/types.js'
import { Dispatcher } from './dispatch.js'
import { createExecNotifier, eventEnv, execNotifierSchema, KILL_GRACE_MS } from './exec.js'
import { createNotifier, notifierSchema } from './index.js'

const EVENT: ScaleEvent = {
  kind: 'applied',
  group: 'web',
  decision: 7,
  trigger: 'auto',
  from: 2,
  to: 3,
  direction: 'up',
  reason: 'scale up 2 → 3: load_1 0.9 > 0.35',
  at: Date.UTC(2025, 0, 2, 3, 4, 5),
  durationMs: 420,
  added: ['3164494', '3164495'],
  removed: [],
  target: 'digitalocean',
}

function capturingLogger() {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n'))
        if (l) lines.push(JSON.parse(l) as Record<string, unknown>)
      done()
    },
  })
  return { logger: pino({ level: 'debug', base: undefined }, stream), lines }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function until(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (check()) return true
    await new Promise((r) => setTimeout(r, 50))
  }
  return check()
}

let dir: string
const started: number[] = []

function script(name: string, body: string): string {
  const path = join(dir, name)
  writeFileSync(path, `#!/bin/sh\n${body}\n`)
  chmodSync(path, 0o755)
  return path
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'tide-exec-'))
  mkdirSync(join(dir, 'hooks'))
})

after(() => {
  for (const pid of started) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // gone
    }
  }
  rmSync(dir, { recursive: true, force: true })
})

describe('exec notifier', () => {
  test('runs a relative command from the config dir with the event in TIDE_* variables and as JSON on stdin', async () => {
    script(
      'hooks/on-scale.sh',
      'env | grep -E "^(TIDE_|CHANNEL=)" | sort > "$OUT.env"\ncat > "$OUT.json"\necho "done $TIDE_GROUP"',
    )
    const out = join(dir, 'run1')
    const config = execNotifierSchema.parse({
      kind: 'exec',
      command: './hooks/on-scale.sh',
      env: { CHANNEL: 'ops', OUT: out },
    })
    const { logger, lines } = capturingLogger()
    await createExecNotifier(config, { logger, dir }).notify(EVENT, AbortSignal.timeout(10_000))
    const env = Object.fromEntries(
      readFileSync(`${out}.env`, 'utf8')
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    )
    assert.equal(env.TIDE_EVENT, 'applied')
    assert.equal(env.TIDE_GROUP, 'web')
    assert.equal(env.TIDE_FROM, '2')
    assert.equal(env.TIDE_TO, '3')
    assert.equal(env.TIDE_DIRECTION, 'up')
    assert.equal(env.TIDE_TRIGGER, 'auto')
    assert.equal(env.TIDE_DECISION, '7')
    assert.equal(env.TIDE_TARGET, 'digitalocean')
    assert.equal(env.TIDE_DURATION_MS, '420')
    assert.equal(env.TIDE_AT, '2025-01-02T03:04:05.000Z')
    assert.equal(env.TIDE_REASON, EVENT.reason)
    assert.equal(env.CHANNEL, 'ops')
    // Seed 002's created/deleted droplet lists: the ids, comma-separated; present but empty when none.
    assert.equal(env.TIDE_ADDED, '3164494,3164495')
    assert.equal(env.TIDE_REMOVED, '')
    const json = JSON.parse(readFileSync(`${out}.json`, 'utf8')) as Record<string, unknown>
    assert.equal(json.group, 'web')
    assert.equal(json.to, 3)
    assert.equal(json.summary, 'web: scaled up 2 → 3 in 420ms')
    assert.deepEqual(json.added, ['3164494', '3164495'])
    assert.deepEqual(json.removed, [])
    // Its output is logged, tagged with the action and the stream.
    const logged = lines.find((l) => l.msg === 'done web')
    assert.ok(logged, 'stdout line logged')
    assert.equal(logged.stream, 'stdout')
    assert.equal(logged.action, './hooks/on-scale.sh')
  })

  test('a non-zero exit fails the delivery with the code and the last line of stderr, which is logged', async () => {
    const cmd = script('fail.sh', 'echo "first" >&2\necho "no such cluster" >&2\nexit 3')
    const { logger, lines } = capturingLogger()
    const notifier = createExecNotifier(execNotifierSchema.parse({ kind: 'exec', command: cmd }), {
      logger,
      dir,
    })
    await assert.rejects(notifier.notify(EVENT, AbortSignal.timeout(10_000)), (err: unknown) => {
      assert.ok(err instanceof TideError)
      assert.equal(err.code, 'E_NOTIFY')
      assert.match(err.message, /exited with code 3: no such cluster/)
      return true
    })
    assert.deepEqual(
      lines.filter((l) => l.stream === 'stderr').map((l) => l.msg),
      ['first', 'no such cluster'],
    )
  })

  test('a command that does not exist fails clearly, naming the resolved path', async () => {
    const { logger } = capturingLogger()
    const notifier = createExecNotifier(execNotifierSchema.parse({ kind: 'exec', command: './nope.sh' }), {
      logger,
      dir,
    })
    await assert.rejects(notifier.notify(EVENT, AbortSignal.timeout(10_000)), (err: unknown) => {
      assert.ok(err instanceof TideError)
      assert.match(err.message, new RegExp(`cannot start ${join(dir, 'nope.sh')}`))
      return true
    })
  })

  test('on timeout the whole process group is killed, children that ignore SIGTERM included', async () => {
    const pids = join(dir, 'pids')
    // The child ignores SIGTERM and outlives the leader unless the group gets SIGKILL.
    const cmd = script(
      'hang.sh',
      `sh -c 'trap "" TERM; echo $$ >> "${pids}"; while true; do sleep 1; done' &\necho $$ >> "${pids}"\nwait`,
    )
    const { logger } = capturingLogger()
    const config = execNotifierSchema.parse({ kind: 'exec', command: cmd, timeout: '1s' })
    const notifier = createExecNotifier(config, { logger, dir })
    const run = notifier.notify(EVENT, AbortSignal.timeout(config.timeout))
    await assert.rejects(
      run,
      /was stopped after \d+ms \(timeout 1000ms or shutdown\); its process group was killed/,
    )
    const both = readFileSync(pids, 'utf8').trim().split('\n').map(Number)
    started.push(...both)
    assert.equal(both.length, 2)
    assert.ok(
      await until(() => both.every((p) => !alive(p)), KILL_GRACE_MS + 5000),
      `processes ${both.join(', ')} should be gone`,
    )
  })

  test('through the dispatcher: events the notifier hears are run in order; a failure never throws', async () => {
    const log = join(dir, 'order')
    const cmd = script('append.sh', `echo "$TIDE_EVENT $TIDE_FROM $TIDE_TO" >> "${log}"`)
    const { logger } = capturingLogger()
    const config = notifierSchema.parse({ kind: 'exec', command: cmd, on: ['started', 'applied'] })
    const dispatcher = new Dispatcher(
      [{ notifier: createNotifier(config, { logger, dir }), on: config.on, timeout: config.timeout }],
      logger,
    )
    dispatcher.emit({ ...EVENT, kind: 'started' })
    dispatcher.emit({ ...EVENT, kind: 'progress', message: 'auto001 active' })
    dispatcher.emit(EVENT)
    await dispatcher.idle()
    await dispatcher.close()
    assert.equal(readFileSync(log, 'utf8'), 'started 2 3\napplied 2 3\n')
  })
})

describe('exec direction', () => {
  test('direction: up runs only for scale-up events', async () => {
    const log = join(dir, 'direction')
    const cmd = script('dir.sh', `echo "$TIDE_DIRECTION" >> "${log}"`)
    const { logger } = capturingLogger()
    const notifier = createExecNotifier(
      execNotifierSchema.parse({ kind: 'exec', command: cmd, direction: 'up' }),
      {
        logger,
        dir,
      },
    )
    await notifier.notify({ ...EVENT, direction: 'down', from: 3, to: 2 }, AbortSignal.timeout(10_000))
    await notifier.notify(EVENT, AbortSignal.timeout(10_000))
    assert.equal(readFileSync(log, 'utf8'), 'up\n')
  })
})

describe('exec config', () => {
  test('timeout defaults to 10s; args and env default to empty', () => {
    const c = execNotifierSchema.parse({ kind: 'exec', command: 'logger' })
    assert.equal(c.timeout, 10_000)
    assert.deepEqual(c.args, [])
    assert.deepEqual(c.env, {})
  })

  test('a bad environment variable name is named in the config error', () => {
    const config = {
      groups: {
        web: {
          max: 2,
          target: { kind: 'process', command: 'true' },
          policies: [{ kind: 'threshold', up: { conditions: ['cpu > 1'] } }],
          notify: [{ kind: 'exec', command: 'x', env: { 'bad-name': '1' } }],
        },
      },
    }
    assert.throws(
      () => parseConfig(config),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError)
        assert.match(err.message, /groups\.web\.notify\[0\]\.env.*bad-name.*environment variable name/)
        return true
      },
    )
  })

  test('unknown keys are rejected', () => {
    const r = execNotifierSchema.safeParse({ kind: 'exec', command: 'x', shell: true })
    assert.equal(r.success, false)
  })

  test('eventEnv leaves out what the event does not have', () => {
    const env = eventEnv({
      ...EVENT,
      durationMs: undefined,
      added: undefined,
      removed: undefined,
      kind: 'started',
    })
    assert.equal('TIDE_DURATION_MS' in env, false)
    assert.equal('TIDE_ADDED' in env, false)
    assert.equal('TIDE_REMOVED' in env, false)
    assert.equal('TIDE_MESSAGE' in env, false)
    assert.equal(env.TIDE_SUMMARY, `web: scaling up 2 → 3 started (${EVENT.reason})`)
  })
})
