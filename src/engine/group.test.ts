import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { FakeSource, FakeTarget } from '../../test/support/fakes.js'
import { ManualClock } from '../core/clock.js'
import { NoChangeError, TargetError } from '../core/errors.js'
import type { Policy } from '../core/types.js'
import { GroupRunner, type GroupSettings } from './group.js'
import { silentLogger } from './log.js'
import { Store } from './store.js'

const dir = mkdtempSync(join(tmpdir(), 'tide-group-'))
after(() => rmSync(dir, { recursive: true, force: true }))

const settings = (over: Partial<GroupSettings> = {}): GroupSettings => ({
  min: 1,
  max: 5,
  interval: 1000,
  staleAfter: 3000,
  shadow: false,
  drainTimeout: 1000,
  keepDecisions: 100,
  governor: { min: 1, max: 5, cooldown: 10_000, stabilizationDown: 0, stabilizationUp: 0 },
  ...over,
})

/** A policy that wants one more instance when load > 0.8, one fewer below 0.2; unknown without data. */
const loadPolicy: Policy = (input) => {
  const r = input.metrics.load
  const values = r ? Object.values(r.perInstance) : []
  if (!r || r.missing.length > 0 || values.length === 0) return { kind: 'unknown', reason: 'no load data' }
  const mean = values.reduce((a, b) => a + b, 0) / values.length
  if (mean > 0.8) return { kind: 'scale', to: input.current + 1, reason: `load ${mean} > 0.8` }
  if (mean < 0.2) return { kind: 'scale', to: input.current - 1, reason: `load ${mean} < 0.2` }
  return { kind: 'hold', reason: `load ${mean} in band` }
}

function runner(
  opts: {
    target?: FakeTarget
    source?: FakeSource
    store?: Store
    clock?: ManualClock
    s?: Partial<GroupSettings>
    drain?: string[]
  } = {},
) {
  const target = opts.target ?? new FakeTarget(1)
  const source = opts.source ?? new FakeSource()
  const store = opts.store ?? Store.open(':memory:')
  const clock = opts.clock ?? new ManualClock(1_000_000)
  const drained = opts.drain
  const router = drained
    ? {
        address: '127.0.0.1:1',
        backends: [] as string[],
        start: async () => {},
        setBackends(b: Array<{ id: string }>) {
          this.backends = b.map((x) => x.id)
        },
        drain: async (id: string) => {
          drained.push(id)
          return { inFlight: 0, timedOut: false }
        },
        stats: () => ({}) as never,
        onDemand: () => {},
        close: async () => {},
      }
    : undefined
  const group = new GroupRunner({
    name: 'web',
    settings: settings(opts.s),
    target,
    sources: [source],
    policies: [{ name: 'load', decide: loadPolicy }],
    router: router as never,
    store,
    clock,
    logger: silentLogger(),
  })
  return { group, target, source, store, clock, router }
}

describe('group loop', () => {
  test('a group below its minimum is brought up at once, with no metrics at all', async () => {
    const { group, target } = runner({ target: new FakeTarget(0) })
    await group.start({ loop: false })
    const d = await group.evaluate('auto')
    await group.settled()
    assert.equal(d.kind, 'scale')
    assert.equal(d.to, 1)
    assert.deepEqual(
      target.calls.map((c) => c.to),
      [1],
    )
  })

  test('high load scales up by the policy, and the decision says why', async () => {
    const { group, target, source } = runner({ target: new FakeTarget(2) })
    source.perInstance = 0.95
    await group.start({ loop: false })
    const d = await group.evaluate('auto')
    await group.settled()
    assert.equal(d.to, 3)
    assert.match(d.reason, /3/)
    assert.equal(target.instances.length, 3)
    assert.equal(group.view().lastDecision?.outcome, 'applied')
  })

  test('missing data never scales down', async () => {
    const { group, target } = runner({ target: new FakeTarget(4) })
    await group.start({ loop: false })
    const d = await group.evaluate('auto')
    assert.equal(d.kind, 'hold')
    assert.equal(target.calls.length, 0)
  })

  test('after a change, the cooldown holds further metric-driven changes until it passes', async () => {
    const { group, target, source, clock } = runner({ target: new FakeTarget(2) })
    source.perInstance = 0.95
    await group.start({ loop: false })
    await group.evaluate('auto')
    await group.settled()
    clock.advance(5_000) // five seconds later, still loaded: must not scale yet
    const held = await group.evaluate('auto')
    assert.equal(held.kind, 'hold')
    assert.match(held.reason, /cool/i)
    clock.advance(6_000) // cooldown (10s) has passed
    const again = await group.evaluate('auto')
    await group.settled()
    assert.equal(again.to, 4)
    assert.deepEqual(
      target.calls.map((c) => c.to),
      [3, 4],
    )
  })

  test('the cooldown still holds after Tide restarts (state comes from the store file)', async () => {
    const path = join(dir, 'restart.db')
    const clock = new ManualClock(5_000_000)
    const target = new FakeTarget(2)
    const first = runner({ target, store: Store.open(path), clock })
    first.source.perInstance = 0.95
    await first.group.start({ loop: false })
    await first.group.evaluate('auto')
    await first.group.settled()
    await first.group.stop()
    first.store.close()

    clock.advance(3_000)
    const second = runner({ target, store: Store.open(path), clock })
    second.source.perInstance = 0.95
    await second.group.start({ loop: false })
    const d = await second.group.evaluate('auto')
    assert.equal(d.kind, 'hold', 'restarted Tide must respect the cooldown it had')
    assert.ok(second.group.view().cooldownUntil! > clock.now())
    assert.deepEqual(
      target.calls.map((c) => c.to),
      [3],
    )
    second.store.close()
  })

  test('one operation at a time: a second request while scaling is refused as busy', async () => {
    const { group, target } = runner({ target: new FakeTarget(1) })
    target.hold = true
    await group.start({ loop: false })
    const first = await group.scale({ to: 3 })
    assert.equal(first.outcome, 'pending')
    await assert.rejects(group.scale({ to: 4 }), (e: Error & { code?: string }) => e.code === 'E_BUSY')
    const tick = await group.evaluate('auto')
    assert.match(tick.reason, /in flight/)
    assert.equal(group.view().operation?.to, 3)
    target.release()
    await group.settled()
    assert.equal(group.view().operation, undefined)
    assert.deepEqual(
      target.calls.map((c) => c.to),
      [3],
    )
  })

  test('manual scaling respects bounds, refuses during cooldown, and force skips the cooldown and says so', async () => {
    const { group, target } = runner({ target: new FakeTarget(1) })
    await group.start({ loop: false })
    const clamped = await group.scale({ to: 99, wait: true })
    assert.equal(clamped.to, 5)
    assert.match(clamped.steps.join(' '), /bounds/)
    await assert.rejects(
      group.scale({ by: -1 }),
      (e: Error & { code?: string }) => e.code === 'E_COOLDOWN' && /force/.test(e.message),
    )
    const forced = await group.scale({ by: -1, force: true, wait: true })
    assert.equal(forced.to, 4)
    assert.equal(forced.forced, true)
    assert.match(forced.reason, /force/)
    assert.deepEqual(
      target.calls.map((c) => c.to),
      [5, 4],
    )
  })

  test('a failed operation is recorded as failed with the error, and the intent is closed', async () => {
    const { group, target, store } = runner({ target: new FakeTarget(1) })
    target.failWith = new TargetError('quota exceeded')
    await group.start({ loop: false })
    const d = await group.scale({ to: 2, wait: true })
    assert.equal(d.outcome, 'failed')
    assert.equal(d.error, 'quota exceeded')
    assert.equal(store.decisions('web', 1)[0]!.outcome, 'failed')
    assert.deepEqual(store.openIntents('web'), [])
  })

  test('a target that says nothing changed gives the cooldown back', async () => {
    const { group, target } = runner({ target: new FakeTarget(1) })
    target.failWith = new NoChangeError('already at 2')
    await group.start({ loop: false })
    const d = await group.scale({ to: 2, wait: true })
    assert.equal(d.outcome, 'held')
    assert.equal(group.view().cooldownUntil, undefined)
  })

  test('an operation left open by a killed Tide is closed at start-up, and its size is restored', async () => {
    const store = Store.open(':memory:')
    store.openIntent('web', 1, 3, 'scale up 1 → 3: load', 100)
    const { group, target } = runner({ store, target: new FakeTarget(2) })
    await group.start({ loop: false })
    await group.settled()
    assert.deepEqual(store.openIntents('web'), [])
    const recovery = store.decisions('web').filter((d) => d.trigger === 'recovery')
    assert.ok(
      recovery.some((d) => /target now reports 2/.test(d.reason)),
      'what was found is recorded',
    )
    assert.ok(
      recovery.some((d) => d.to === 3 && d.outcome === 'applied'),
      'the operation in flight is finished',
    )
    assert.equal(target.instances.length, 3)
  })

  test('instances lost with Tide come back to the last applied size at start-up, without a new cooldown', async () => {
    const store = Store.open(':memory:')
    store.saveState(
      'web',
      { history: [], desired: 4, lastChange: { at: 1_000_000 - 60_000, direction: 'up' } },
      0,
    )
    const { group, target } = runner({ store, target: new FakeTarget(0) })
    await group.start({ loop: false })
    await group.settled()
    assert.equal(target.instances.length, 4)
    assert.equal(store.decisions('web', 1)[0]!.trigger, 'recovery')
    assert.equal(group.view().cooldownUntil, undefined, 'a restore is not a decision: no cooldown starts')
  })

  test('scale-down drains each removed instance through the router first', async () => {
    const drained: string[] = []
    const { group, target, router } = runner({ target: new FakeTarget(3), drain: drained })
    await group.start({ loop: false })
    assert.deepEqual(router!.backends, ['fake-1', 'fake-2', 'fake-3'])
    await group.scale({ to: 1, wait: true })
    assert.deepEqual(drained, ['fake-3', 'fake-2'])
    assert.deepEqual(target.drained, ['fake-3', 'fake-2'])
    assert.deepEqual(router!.backends, ['fake-1'], 'the router is told the new set of ready instances')
  })

  test('a shadow group records what it would do and never touches the target', async () => {
    const { group, target, source } = runner({ target: new FakeTarget(2), s: { shadow: true } })
    source.perInstance = 0.95
    await group.start({ loop: false })
    const d = await group.evaluate('auto')
    assert.equal(d.outcome, 'shadow')
    assert.equal(d.to, 3)
    assert.equal(target.calls.length, 0)
  })

  test('a shadow group stores what it would do when that changes, not at every tick', async () => {
    const { group, source, store, clock } = runner({ target: new FakeTarget(2), s: { shadow: true } })
    source.perInstance = 0.95
    await group.start({ loop: false })
    for (let i = 0; i < 5; i++) {
      await group.evaluate('auto')
      clock.advance(1000)
    }
    assert.equal(
      store.decisions('web').filter((d) => d.outcome === 'shadow').length,
      1,
      'five ticks, one stored',
    )
    source.perInstance = 0.1
    await group.evaluate('auto')
    assert.equal(store.decisions('web', 1)[0]!.to, 1, 'a different wish is stored at once')
    assert.equal(group.view().lastDecision?.to, 1)
  })
})
