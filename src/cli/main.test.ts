import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { FakeController, fakeGroup, fakeInstance } from '../api/fake-controller.js'
import { type ApiServer, createApiServer } from '../api/index.js'
import { ConfigError } from '../core/errors.js'
import type { DecisionRecord, GroupView } from '../engine/controller.js'
import type { Daemon } from '../engine/daemon.js'
import type { CliIO } from './io.js'
import { main } from './main.js'
import { sink } from '../../test/support/sink.js'

const TOKEN = 'a-token-of-sixteen-chars'

function webGroup(): GroupView {
  return fakeGroup('web', {
    min: 1,
    max: 6,
    desired: 2,
    ready: 2,
    route: '127.0.0.1:8080',
    instances: [
      fakeInstance('web-1', { address: '127.0.0.1:9001', createdAt: Date.now() - 300_000 }),
      fakeInstance('web-2', { address: '127.0.0.1:9002', createdAt: Date.now() - 300_000 }),
    ],
    metrics: {
      concurrency: { value: 12, perInstance: { 'web-1': 5, 'web-2': 7 }, missing: [], at: 0 },
      request_rate: { value: 40.25, perInstance: { 'web-1': 20, 'web-2': 20.25 }, missing: [], at: 0 },
    },
  })
}

async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

describe('tide CLI against a live API', () => {
  let controller: FakeController
  let server: ApiServer
  let base: string
  let secured: ApiServer
  let securedBase: string

  before(async () => {
    controller = new FakeController([
      webGroup(),
      fakeGroup('worker', { min: 0, max: 3, desired: 0, ready: 0 }),
    ])
    server = createApiServer(controller, { listen: '127.0.0.1:0' })
    base = await server.start()
    secured = createApiServer(controller, { listen: '127.0.0.1:0', token: TOKEN })
    securedBase = await secured.start()
  })
  after(async () => {
    await server.close()
    await secured.close()
  })

  async function cli(args: string[], io: Partial<CliIO> = {}, env: Record<string, string> = {}) {
    const stdout = sink()
    const stderr = sink()
    const code = await main(['node', 'tide', ...args], {
      stdout,
      stderr,
      env: { TIDE_API: base, ...env },
      sleep: async () => {},
      onSignal: () => () => {},
      ...io,
    })
    return { code, out: stdout.text, err: stderr.text }
  }

  test('status prints a table of groups, without colour when not a terminal', async () => {
    const { code, out, err } = await cli(['status'])
    assert.equal(code, 0, err)
    const lines = out.trimEnd().split('\n')
    assert.match(lines[0]!, /^GROUP\s+TARGET\s+DESIRED\s+READY\s+MIN\s+MAX\s+INSTANCES/)
    assert.match(lines[1]!, /^web\s+process\s+2\s+2\s+1\s+6\s+██····/)
    assert.match(lines[2]!, /^worker\s+process\s+0\s+0\s+0\s+3/)
    assert.ok(!out.includes('\x1b['), 'no escape codes')
  })

  test('status --json prints the groups and nothing else', async () => {
    const { code, out } = await cli(['status', '--json'])
    assert.equal(code, 0)
    const body = JSON.parse(out) as { groups: GroupView[] }
    assert.deepEqual(
      body.groups.map((g) => g.name),
      ['web', 'worker'],
    )
  })

  test('status GROUP shows instances, metrics and decisions', async () => {
    controller.record('web', { reason: 'hold at 2: concurrency 6 per instance is within 10% of 8' })
    const { code, out } = await cli(['status', 'web'])
    assert.equal(code, 0)
    assert.match(out, /desired 2 · ready 2 · min 1 · max 6/)
    assert.match(out, /concurrency 12 · request_rate 40\.3\/s/)
    assert.match(out, /web-1\s+ready\s+5m(?:\d+s)?\s+127\.0\.0\.1:9001\s+5\s+20\/s/)
    assert.match(out, /held\s+hold at 2: concurrency 6 per instance/)
  })

  test('status GROUP --json prints the group view', async () => {
    const { out } = await cli(['status', 'web', '--json'])
    assert.equal((JSON.parse(out) as GroupView).name, 'web')
  })

  test('an unknown group is exit 2 with the error and its code on stderr', async () => {
    const { code, out, err } = await cli(['status', 'nope'])
    assert.equal(code, 2)
    assert.equal(out, '')
    assert.equal(err, "error: group 'nope' does not exist (E_NOT_FOUND)\n")
  })

  test('up adds one instance and prints the decision', async () => {
    const { code, out } = await cli(['up', 'web'])
    assert.equal(code, 0)
    assert.match(out, /^web {2}▲ 2 → 3 {2}applied {2}manual scale up 2 → 3/)
    assert.deepEqual(controller.calls.at(-1), { method: 'scale', group: 'web', request: { by: 1 } })
  })

  test('down --by 2 --force --reason sends all of it', async () => {
    const { code } = await cli(['down', 'web', '--by', '2', '--force', '--reason', 'night'])
    assert.equal(code, 0)
    assert.deepEqual(controller.calls.at(-1)?.request, { by: -2, force: true, reason: 'night' })
  })

  test('scale --to N --json prints the decision record only', async () => {
    const { code, out } = await cli(['scale', 'web', '--to', '4', '--json'])
    assert.equal(code, 0)
    const d = JSON.parse(out) as DecisionRecord
    assert.equal(d.to, 4)
    assert.equal(d.outcome, 'applied')
  })

  test('auto prints the evaluation', async () => {
    controller.nextAuto.set('web', { reason: 'hold at 4: no policy wants a change' })
    const { code, out } = await cli(['auto', 'web'])
    assert.equal(code, 0)
    assert.match(out, /held {2}hold at 4: no policy wants a change/)
  })

  test('decisions --limit N prints a table of N', async () => {
    const { code, out } = await cli(['decisions', 'web', '--limit', '2'])
    assert.equal(code, 0)
    const lines = out.trimEnd().split('\n')
    assert.match(lines[0]!, /^TIME\s+TRIGGER\s+OUTCOME\s+CHANGE\s+REASON/)
    assert.equal(lines.length, 3)
  })

  for (const [args, pattern] of [
    [['up', 'web', '--by', 'abc'], /--by <n>.*'abc' is invalid\. must be an integer ≥ 1/],
    [['down', 'web', '--by', '0'], /must be an integer ≥ 1/],
    [['scale', 'web'], /required option '--to <n>' not specified/],
    [['scale', 'web', '--to', '-1'], /must be an integer ≥ 0/],
    [['decisions', 'web', '--limit', '5000'], /must be an integer from 1 to 1000/],
    [['status', '--watch', '--interval', 'soon'], /must be a duration/],
    [['explode'], /unknown command 'explode'/],
  ] as Array<[string[], RegExp]>) {
    test(`usage error: tide ${args.join(' ')} → exit 2`, async () => {
      const { code, err } = await cli(args)
      assert.equal(code, 2)
      assert.match(err, pattern)
    })
  }

  test('a bad --api is a usage error', async () => {
    const { code, err } = await cli(['status', '--api', 'not a url'])
    assert.equal(code, 2)
    assert.match(err, /--api must be a URL/)
  })

  test('no arguments prints help and exits 2', async () => {
    const { code, err } = await cli([])
    assert.equal(code, 2)
    assert.match(err, /Usage: tide/)
  })

  test('--help and --version exit 0', async () => {
    assert.equal((await cli(['--help'])).code, 0)
    const v = await cli(['--version'])
    assert.equal(v.code, 0)
    assert.match(v.out, /^\d+\.\d+\.\d+/)
  })

  test('a daemon that is not running is exit 3 with how to start it', async () => {
    const port = await closedPort()
    const { code, err } = await cli(['status', '--api', `http://127.0.0.1:${port}`])
    assert.equal(code, 3)
    assert.match(err, /cannot reach the Tide daemon at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/)
    assert.match(err, /tide run -c tide\.yaml/)
    assert.match(err, /\(E_UNREACHABLE\)/)
  })

  test('with a token configured, a change needs TIDE_TOKEN or --token', async () => {
    const without = await cli(['up', 'web'], {}, { TIDE_API: securedBase })
    assert.equal(without.code, 1)
    assert.match(without.err, /E_UNAUTHORIZED/)
    const withEnv = await cli(['down', 'web'], {}, { TIDE_API: securedBase, TIDE_TOKEN: TOKEN })
    assert.equal(withEnv.code, 0, withEnv.err)
    const withFlag = await cli(['up', 'web', '--api', securedBase, '--token', TOKEN])
    assert.equal(withFlag.code, 0, withFlag.err)
  })

  test('--wait prints each state change until the new instance is ready', async () => {
    const web = controller.getGroup('web')
    const pending: DecisionRecord = {
      id: 900,
      group: 'web',
      at: Date.now(),
      kind: 'scale',
      from: 2,
      to: 3,
      reason: 'scale up 2 → 3: manual request',
      steps: [],
      recommendations: [],
      trigger: 'manual',
      outcome: 'pending',
    }
    const original = controller.scale
    controller.scale = async () => {
      web.desired = 3
      web.operation = { id: 900, from: 2, to: 3, startedAt: Date.now(), reason: pending.reason }
      web.instances = [
        fakeInstance('web-1'),
        fakeInstance('web-2'),
        fakeInstance('web-3', { state: 'starting' }),
      ]
      web.ready = 2
      return pending
    }
    // Each poll interval, the group moves one step: web-3 becomes ready, then the operation ends.
    const steps = [
      () => {
        web.instances[2]!.state = 'ready'
        web.ready = 3
      },
      () => {
        delete web.operation
        web.lastDecision = { ...pending, outcome: 'applied' }
      },
    ]
    try {
      const { code, out, err } = await cli(['up', 'web', '--wait'], { sleep: async () => steps.shift()?.() })
      assert.equal(code, 0, err)
      assert.match(out, /web-3 {2}starting\n/)
      assert.match(out, /web-3 {2}starting → ready after/)
      assert.match(out, /✓ web: 3 of 3 ready after/)
    } finally {
      controller.scale = original
    }
  })

  test('--wait gives up after --timeout with exit 1', async () => {
    const web = controller.getGroup('web')
    const original = controller.scale
    controller.scale = async () => {
      web.operation = { id: 901, from: 3, to: 4, startedAt: Date.now(), reason: 'r' }
      web.instances = [
        ...web.instances,
        fakeInstance('web-4', { state: 'starting', detail: 'health check refused' }),
      ]
      return {
        ...controller.record('web', { kind: 'scale', from: 3, to: 4 }),
        id: 901,
        outcome: 'pending' as const,
      }
    }
    let clock = 0
    try {
      const { code, err } = await cli(['up', 'web', '--wait', '--timeout', '3s'], {
        now: () => clock,
        sleep: async () => {
          clock += 1000
        },
      })
      assert.equal(code, 1)
      assert.match(
        err,
        /gave up waiting after 3s: \d of \d instances ready; web-4 is starting \(health check refused\)/,
      )
      assert.match(err, /E_WAIT_TIMEOUT/)
    } finally {
      controller.scale = original
      delete web.operation
      web.instances = web.instances.filter((i) => i.id !== 'web-4')
    }
  })

  test('status --watch redraws in place on a terminal and quits cleanly on Ctrl-C', async () => {
    const stdout = sink(true)
    let fire: ((signal: string) => void) | undefined
    let frames = 0
    const code = await main(['node', 'tide', 'status', '--watch', '--interval', '1s'], {
      stdout,
      stderr: sink(),
      env: { TIDE_API: base, FORCE_COLOR: '1' },
      onSignal: (listener) => {
        fire = listener
        return () => {
          fire = undefined
        }
      },
      sleep: async () => {
        if (++frames === 2) fire?.('SIGINT')
      },
    })
    assert.equal(code, 0)
    const text = stdout.text
    assert.ok(text.startsWith('\x1b[?25l\x1b[2J'), 'hides the cursor and clears once')
    assert.equal(text.split('\x1b[H').length - 1, 2, 'two frames, each drawn from the top-left')
    assert.ok(text.endsWith('\x1b[?25h'), 'shows the cursor again')
    assert.ok(text.includes('\x1b[32m█'), 'ready instances are green')
    assert.match(text, /tide status/)
    assert.equal(fire, undefined, 'the signal handler is removed')
  })

  test('status --watch --json prints one JSON document per interval', async () => {
    let n = 0
    let fire: ((signal: string) => void) | undefined
    const { code, out } = await cli(['status', 'web', '--watch', '--json'], {
      onSignal: (listener) => {
        fire = listener
        return () => {}
      },
      sleep: async () => {
        if (++n === 3) fire?.('SIGINT')
      },
    })
    assert.equal(code, 0)
    const lines = out.trimEnd().split('\n')
    assert.equal(lines.length, 3)
    for (const line of lines)
      assert.equal((JSON.parse(line) as { groups: GroupView[] }).groups[0]!.name, 'web')
  })

  test('status --watch exits 3 when the daemon is not there at first', async () => {
    const port = await closedPort()
    const { code } = await cli(['status', '--watch', '--api', `http://127.0.0.1:${port}`])
    assert.equal(code, 3)
  })
})

describe('tide validate, schema and run', () => {
  async function cli(args: string[], io: Partial<CliIO> = {}) {
    const stdout = sink()
    const stderr = sink()
    const code = await main(['node', 'tide', ...args], {
      stdout,
      stderr,
      env: {},
      onSignal: () => () => {},
      ...io,
    })
    return { code, out: stdout.text, err: stderr.text }
  }

  const loaded = (groups: string[]) =>
    ({
      config: { groups: Object.fromEntries(groups.map((g) => [g, {}])) },
      path: '/x/tide.yaml',
      dir: '/x',
    }) as unknown as Awaited<ReturnType<CliIO['loadConfigFile']>>

  test('a valid file prints ok and the number of groups', async () => {
    const { code, out } = await cli(['validate', 'tide.yaml'], {
      loadConfigFile: async () => loaded(['web', 'api']),
    })
    assert.equal(code, 0)
    assert.equal(out, 'ok: 2 groups (web, api)\n')
  })

  test('every problem is printed with its path, exit 1', async () => {
    const problems = [
      { path: 'groups.web.max', message: 'must be ≥ min', value: 0 },
      { path: 'groups.web.policies[1].per_instance', message: 'must be > 0', value: -2 },
    ]
    const { code, out, err } = await cli(['validate', 'tide.yaml'], {
      loadConfigFile: async () => {
        throw new ConfigError(problems, 'tide.yaml')
      },
    })
    assert.equal(code, 1)
    assert.equal(out, '')
    assert.match(err, /^error: tide\.yaml has 2 problems \(E_CONFIG\)\n/)
    assert.match(err, /\n {2}groups\.web\.max: must be ≥ min \(got 0\)\n/)
    assert.match(err, /\n {2}groups\.web\.policies\[1\]\.per_instance: must be > 0 \(got -2\)\n/)
  })

  test('validate --json prints the problems as JSON', async () => {
    const { code, out } = await cli(['validate', 'tide.yaml', '--json'], {
      loadConfigFile: async () => {
        throw new ConfigError([{ path: 'groups', message: 'needs at least one group' }], 'tide.yaml')
      },
    })
    assert.equal(code, 1)
    assert.deepEqual(JSON.parse(out), {
      ok: false,
      file: 'tide.yaml',
      problems: [{ path: 'groups', message: 'needs at least one group' }],
    })
  })

  test('schema prints the JSON Schema', async () => {
    const { code, out } = await cli(['schema'], {
      configJsonSchema: async () => ({ title: 'Tide configuration' }),
    })
    assert.equal(code, 0)
    assert.deepEqual(JSON.parse(out), { title: 'Tide configuration' })
  })

  test('run prints where the API and routes are, and closes the daemon on SIGTERM', async () => {
    const controller = new FakeController([webGroup()])
    let closed = 0
    let fire: ((signal: string) => void) | undefined
    let options: unknown
    const daemon = {
      controller,
      apiUrl: 'http://127.0.0.1:7070',
      routes: { web: '127.0.0.1:8080' },
      close: async () => {
        closed++
      },
    } as unknown as Daemon
    const pending = cli(['run', '-c', 'tide.yaml', '--listen', '127.0.0.1:0'], {
      startDaemon: async (o) => {
        options = o
        setImmediate(() => fire?.('SIGTERM'))
        return daemon
      },
      onSignal: (listener) => {
        fire = listener
        return () => {}
      },
    })
    const { code, out, err } = await pending
    assert.equal(code, 0, err)
    assert.equal(closed, 1)
    assert.deepEqual(options, { configPath: 'tide.yaml', listen: '127.0.0.1:0', logLevel: undefined })
    assert.match(out, /api {8}http:\/\/127\.0\.0\.1:7070\/v1\/groups/)
    assert.match(out, /web {8}http:\/\/127\.0\.0\.1:8080 {2}process, 1–6 instances/)
    assert.match(err, /stopping…\nstopped\n/)
  })

  test('run without -c is a usage error', async () => {
    const { code, err } = await cli(['run'])
    assert.equal(code, 2)
    assert.match(err, /required option '-c, --config <file>'/)
  })

  test('a daemon that fails to start is exit 1 with its message', async () => {
    const { code, err } = await cli(['run', '-c', 'tide.yaml'], {
      startDaemon: async () => {
        throw new ConfigError([{ path: 'api.listen', message: 'must be host:port' }], 'tide.yaml')
      },
    })
    assert.equal(code, 1)
    assert.match(err, /api\.listen: must be host:port/)
  })
})
