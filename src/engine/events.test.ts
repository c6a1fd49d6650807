/**
 * Every operation tells the group's notifiers what happened: `started`, then `progress` lines,
 * then exactly one of `applied`, `failed` or `unchanged`; a shadow group says what it would do.
 * A listener that throws, or a notifier that hangs, never holds up or fails the scale.
 */
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, test } from 'node:test'
import { FakeSource, FakeTarget } from '../../test/support/fakes.js'
import { startTestDaemon, waitFor } from '../../test/support/daemon.js'
import { ManualClock } from '../core/clock.js'
import { NoChangeError, TargetError } from '../core/errors.js'
import type { Notifier, ScaleEvent } from '../core/types.js'
import { Dispatcher } from '../notify/index.js'
import { GroupRunner } from './group.js'
import { silentLogger } from './log.js'
import { Store } from './store.js'

function runner(target: FakeTarget, events: (e: ScaleEvent) => void, shadow = false) {
  const source = new FakeSource()
  const group = new GroupRunner({
    name: 'web',
    settings: {
      min: 1,
      max: 5,
      interval: 1000,
      staleAfter: 3000,
      shadow,
      drainTimeout: 1000,
      keepDecisions: 100,
      governor: { min: 1, max: 5, cooldown: 0, stabilizationDown: 0, stabilizationUp: 0 },
    },
    target,
    sources: [source],
    policies: [
      { name: 'up', decide: (i) => ({ kind: 'scale', to: i.current + 1, reason: 'wants one more' }) },
    ],
    store: Store.open(':memory:'),
    clock: new ManualClock(1_000_000),
    logger: silentLogger(),
    events,
  })
  return group
}

describe('scale events', () => {
  test('an applied operation emits started then applied, with the decision and the target kind', async () => {
    const events: ScaleEvent[] = []
    const group = runner(new FakeTarget(1), (e) => events.push(e))
    await group.start({ loop: false })
    const record = await group.evaluate('auto')
    await group.settled()
    assert.deepEqual(
      events.map((e) => e.kind),
      ['started', 'applied'],
    )
    const [started, applied] = events as [ScaleEvent, ScaleEvent]
    assert.equal(started.decision, record.id)
    assert.equal(started.from, 1)
    assert.equal(started.to, 2)
    assert.equal(started.direction, 'up')
    assert.equal(started.target, 'fake')
    assert.equal(started.trigger, 'auto')
    assert.equal(typeof applied.durationMs, 'number')
    assert.deepEqual(applied.added, ['fake-2'])
    assert.deepEqual(applied.removed, [])
  })

  test('a failed operation emits failed with the error, a NoChange emits unchanged', async () => {
    const events: ScaleEvent[] = []
    const target = new FakeTarget(1)
    const group = runner(target, (e) => events.push(e))
    await group.start({ loop: false })
    target.failWith = new TargetError('quota exceeded')
    await group.evaluate('auto')
    await group.settled()
    target.failWith = new NoChangeError('already at 2')
    await group.evaluate('auto')
    await group.settled()
    assert.deepEqual(
      events.map((e) => e.kind),
      ['started', 'failed', 'started', 'unchanged'],
    )
    assert.match(events[1]!.message ?? '', /quota exceeded/)
    assert.match(events[3]!.message ?? '', /already at 2/)
  })

  test('a shadow group emits shadow and never started', async () => {
    const events: ScaleEvent[] = []
    const target = new FakeTarget(1)
    const group = runner(target, (e) => events.push(e), true)
    await group.start({ loop: false })
    await group.evaluate('auto')
    assert.deepEqual(
      events.map((e) => e.kind),
      ['shadow'],
    )
    assert.equal(target.calls.length, 0)
  })

  test('a throwing listener does not fail the scale', async () => {
    const target = new FakeTarget(1)
    const group = runner(target, () => {
      throw new Error('listener broke')
    })
    await group.start({ loop: false })
    await group.evaluate('auto')
    await group.settled()
    assert.equal(group.view().lastDecision?.outcome, 'applied')
    assert.equal(target.instances.length, 2)
  })

  test('a hanging notifier neither blocks emit nor the ones after it; its deliveries time out', async () => {
    const got: string[] = []
    const results: string[] = []
    const hanging: Notifier = {
      kind: 'hang',
      notify: (_e, signal) =>
        new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
    }
    const quick: Notifier = { kind: 'quick', notify: async (e) => void got.push(e.kind) }
    const dispatcher = new Dispatcher(
      [
        { notifier: hanging, timeout: 50 },
        { notifier: quick, timeout: 1000, on: ['applied', 'failed'] },
      ],
      silentLogger(),
      { delivered: (kind, result) => results.push(`${kind}:${result}`) },
    )
    const base = {
      group: 'web',
      decision: 1,
      trigger: 'auto',
      from: 1,
      to: 2,
      direction: 'up' as const,
      reason: 'r',
      at: 0,
      target: 'fake',
    }
    const before = Date.now()
    dispatcher.emit({ ...base, kind: 'started' })
    dispatcher.emit({ ...base, kind: 'applied' })
    assert.ok(Date.now() - before < 20, 'emit returns at once')
    await dispatcher.idle()
    assert.deepEqual(got, ['applied'], 'the quick notifier only hears what it asked for')
    assert.deepEqual(results.sort(), ['hang:failed', 'hang:failed', 'quick:ok'])
    await dispatcher.close(10)
  })
})

describe('webhook notifier in a running daemon', () => {
  test('a manual scale posts started and applied to the webhook as JSON with a summary', async () => {
    const bodies: Array<Record<string, unknown>> = []
    const server = createServer((req, res) => {
      let data = ''
      req.on('data', (c) => (data += c))
      req.on('end', () => {
        bodies.push(JSON.parse(data) as Record<string, unknown>)
        res.end('ok')
      })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`
    const daemon = await startTestDaemon('test/fixtures/manual.yaml', (raw) => {
      raw.groups.app!.notify = [{ kind: 'webhook', url, on: ['started', 'applied', 'failed'] }]
    })
    try {
      await waitFor('the first instance', 20_000, () => daemon.controller.getGroup('app').ready === 1)
      await waitFor('the start-up scale reported', 10_000, () => bodies.length >= 2)
      bodies.length = 0
      await daemon.controller.scale('app', { to: 2, wait: true })
      await waitFor('two webhook posts', 10_000, () => bodies.length >= 2)
      assert.deepEqual(
        bodies.map((b) => b.kind),
        ['started', 'applied'],
      )
      assert.equal(bodies[1]!.group, 'app')
      assert.equal(bodies[1]!.to, 2)
      assert.match(String(bodies[1]!.summary), /app: scaled up 1 → 2/)
    } finally {
      await daemon.stop()
      server.close()
    }
  })
})
