/**
 * Config reload: which differences apply live and which are refused (planReload, pure), and how
 * a running group takes new settings (GroupRunner.reconfigure, with the fakes). The daemon, the
 * API, `tide reload` and SIGHUP are tested end to end in test/e2e/reload.test.ts.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { parse, stringify } from 'yaml'
import { FakeSource, FakeTarget } from '../../test/support/fakes.js'
import { parseConfigText } from '../config/index.js'
import { ManualClock } from '../core/clock.js'
import type { CollectContext, Metrics, Policy, ScaleEvent } from '../core/types.js'
import { GroupRunner, type GroupSettings } from './group.js'
import { silentLogger } from './log.js'
import { diffPaths, planReload, ReloadRefusedError, summarize } from './reload.js'
import { Store } from './store.js'

const BASE = `
api: { listen: 127.0.0.1:7070 }
store: { path: tide.db }
groups:
  web:
    min: 1
    max: 4
    interval: 2s
    target: { kind: process, command: node server.js, health: /healthz }
    route: { listen: 127.0.0.1:8080 }
    policies:
      - { kind: target, metric: concurrency, per_instance: 8 }
    cooldown: 10s
  api:
    max: 2
    target: { kind: process, command: node api.js }
    policies:
      - { kind: threshold, up: { conditions: ["cpu > 0.8"] } }
`

type Raw = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

/** The base config, edited as raw YAML data, then parsed and validated like a file. */
function config(edit: (raw: Raw) => void = () => {}) {
  const raw = parse(BASE) as Raw
  edit(raw)
  return parseConfigText(stringify(raw), 'tide.yaml', {})
}

const paths = (problems: Array<{ path: string }>) => problems.map((p) => p.path)

describe('planReload: what a reload applies, what it refuses', () => {
  test('the same values in another key order and spelling are no change', () => {
    const before = config()
    const after = config((raw) => {
      const web = raw.groups.web
      raw.groups.web = { policies: web.policies, cooldown: '10000ms', ...web, interval: '2000ms' }
    })
    const plan = planReload(before, after)
    assert.deepEqual(plan.refused, [])
    assert.equal(plan.groups.size, 0)
    assert.deepEqual(summarize(plan, '/x/tide.yaml'), {
      changed: false,
      file: '/x/tide.yaml',
      groups: {},
      message: 'no change',
    })
  })

  test('bounds, loop settings, policies and notify are live changes, named by path', () => {
    const after = config((raw) => {
      raw.groups.web.max = 6
      raw.groups.web.interval = '5s'
      raw.groups.web.policies[0].per_instance = 5
      raw.groups.web.scale_down = { stabilization: '1m' }
      raw.groups.web.notify = [{ kind: 'webhook', url: 'http://127.0.0.1:9/hook' }]
    })
    const plan = planReload(config(), after)
    assert.deepEqual(plan.refused, [])
    const web = plan.groups.get('web')!
    assert.deepEqual(web.paths, [
      'groups.web.interval',
      'groups.web.max',
      'groups.web.notify[0]',
      'groups.web.policies[0].per_instance',
      'groups.web.scale_down.stabilization',
    ])
    assert.equal(web.policies, true)
    assert.equal(web.notify, true)
    assert.equal(plan.groups.has('api'), false, 'the group that did not change is not listed')
    assert.equal(
      summarize(plan, 'tide.yaml').message,
      'web: interval, max, notify[0], policies[0].per_instance, scale_down.stabilization',
    )
  })

  test('a change to the target, route or a top-level section is refused, each path named', () => {
    const after = config((raw) => {
      raw.groups.web.target.command = 'node other.js'
      raw.groups.web.route.listen = '127.0.0.1:8081'
      raw.groups.web.max = 6 // allowed on its own, but the reload is all or nothing
      raw.api.listen = '127.0.0.1:7071'
      raw.store.path = 'other.db'
      raw.log = { level: 'debug' }
    })
    const plan = planReload(config(), after)
    assert.deepEqual(paths(plan.refused), [
      'api.listen',
      'log.level',
      'store.path',
      'groups.web.route.listen',
      'groups.web.target.command',
    ])
    for (const p of plan.refused) assert.equal(p.message, 'changing it needs a restart (tide run)')
    const err = new ReloadRefusedError(plan.refused)
    assert.equal(err.code, 'E_RELOAD_REFUSED')
    assert.equal(err.status, 409)
    assert.match(err.message, /nothing was changed/)
    assert.match(err.message, /groups\.web\.target\.command: changing it needs a restart \(tide run\)/)
  })

  test('a group added or removed is refused', () => {
    const added = config((raw) => {
      raw.groups.worker = {
        max: 1,
        target: { kind: 'process', command: 'w' },
        policies: raw.groups.api.policies,
      }
    })
    assert.deepEqual(planReload(config(), added).refused, [
      { path: 'groups.worker', message: 'adding a group needs a restart (tide run)' },
    ])
    const removed = config((raw) => delete raw.groups.api)
    assert.deepEqual(planReload(config(), removed).refused, [
      { path: 'groups.api', message: 'removing a group needs a restart (tide run)' },
    ])
  })

  test('sources: a change to the sources used is refused; spelling out the defaults is not', () => {
    const explicit = config((raw) => {
      raw.groups.web.sources = [{ kind: 'router' }, { kind: 'process' }]
    })
    const same = planReload(config(), explicit)
    assert.deepEqual(same.refused, [], 'the same sources, written out')
    assert.equal(same.groups.size, 0)

    const fewer = config((raw) => {
      raw.groups.web.sources = [{ kind: 'router' }]
    })
    assert.deepEqual(paths(planReload(config(), fewer).refused), ['groups.web.sources'])
    assert.deepEqual(paths(planReload(explicit, fewer).refused), ['groups.web.sources[1]'])
  })

  test('diffPaths compares objects by key and arrays by position', () => {
    assert.deepEqual(diffPaths({ a: 1, b: { c: 2 } }, { b: { c: 2 }, a: 1 }, ['x']), [])
    assert.deepEqual(diffPaths({ a: [1, 2] }, { a: [1, 3, 4] }, ['x']), ['x.a[1]', 'x.a[2]'])
    assert.deepEqual(diffPaths({ a: 1 }, { b: 1 }, ['x']), ['x.a', 'x.b'])
  })
})

// ─── GroupRunner.reconfigure ────────────────────────────────────────────────

const settings = (over: Partial<GroupSettings> = {}): GroupSettings => {
  const min = over.min ?? 1
  const max = over.max ?? 5
  return {
    min,
    max,
    interval: 1000,
    staleAfter: 60_000,
    shadow: false,
    drainTimeout: 1000,
    keepDecisions: 100,
    governor: { min, max, cooldown: 0, stabilizationDown: 0, stabilizationUp: 0 },
    ...over,
  }
}

/** A policy that wants `to` instances and says which policy it is. */
const wants =
  (to: number, label: string): Policy =>
  () => ({ kind: 'scale', to, reason: `${label} wants ${to}` })

/** A source whose collect() waits until the test opens the gate. */
class GatedSource extends FakeSource {
  private gate?: { promise: Promise<void>; open: () => void }
  entered = 0
  shut(): void {
    let open!: () => void
    const promise = new Promise<void>((r) => (open = r))
    this.gate = { promise, open }
  }
  open(): void {
    this.gate?.open()
    this.gate = undefined
  }
  override async collect(ctx: CollectContext): Promise<Metrics> {
    this.entered++
    await this.gate?.promise
    return super.collect(ctx)
  }
}

function runner(target = new FakeTarget(3), over: Partial<GroupSettings> = {}) {
  const source = new GatedSource()
  const events: ScaleEvent[] = []
  const group = new GroupRunner({
    name: 'web',
    settings: settings(over),
    target,
    sources: [source],
    policies: [{ name: 'old', decide: wants(3, 'old') }],
    store: Store.open(':memory:'),
    clock: new ManualClock(1_000_000),
    logger: silentLogger(),
    events: (e) => events.push(e),
  })
  return { group, target, source, events }
}

describe('GroupRunner.reconfigure', () => {
  test('max narrowed below the current size: the next evaluation scales down to it, saying why', async () => {
    const { group, target } = runner(new FakeTarget(3), { max: 4 })
    await group.start({ loop: false })
    assert.equal((await group.evaluate('auto')).kind, 'hold')
    await group.reconfigure({
      settings: settings({ max: 2 }),
      policies: [{ name: 'old', decide: wants(3, 'old') }],
    })
    assert.equal(group.view().max, 2)
    const d = await group.evaluate('auto')
    assert.equal(d.kind, 'scale')
    assert.equal(d.to, 2)
    assert.match(d.reason, /^scale down 3 → 2: 3 is above max 2/)
    await group.settled()
    assert.equal(target.instances.length, 2)
  })

  test('an evaluation in flight finishes with the old policies; the new ones apply from the next', async () => {
    const { group, source } = runner(new FakeTarget(3))
    await group.start({ loop: false })
    source.shut()
    const running = group.evaluate('auto')
    while (source.entered === 0) await new Promise((r) => setImmediate(r))
    let swapped = false
    const reconfigured = group
      .reconfigure({ settings: settings(), policies: [{ name: 'new', decide: wants(3, 'new') }] })
      .then(() => (swapped = true))
    await new Promise((r) => setTimeout(r, 20))
    assert.equal(swapped, false, 'the swap waits for the evaluation in flight')
    source.open()
    const first = await running
    assert.match(first.reason, /old wants 3/)
    await reconfigured
    const second = await group.evaluate('auto')
    assert.match(second.reason, /new wants 3/)
    assert.doesNotMatch(second.reason, /old wants/)
  })

  test('an operation in flight reports to the listener it started with; the next one to the new', async () => {
    const target = new FakeTarget(1)
    target.hold = true
    const { group, events } = runner(target)
    await group.start({ loop: false })
    const started = await group.evaluate('auto') // old wants 3: 1 → 3, held inside the target
    assert.equal(started.outcome, 'pending')
    const fresh: ScaleEvent[] = []
    await group.reconfigure({
      settings: settings(),
      policies: [{ name: 'new', decide: wants(4, 'new') }],
      events: (e) => fresh.push(e),
    })
    target.release()
    await group.settled()
    assert.deepEqual(
      events.map((e) => e.kind),
      ['started', 'applied'],
    )
    assert.equal(fresh.length, 0, 'the new listener hears nothing of the operation before it')
    target.hold = false
    await group.evaluate('auto')
    await group.settled()
    assert.deepEqual(
      fresh.map((e) => `${e.kind} ${e.from}→${e.to}`),
      ['started 3→4', 'applied 3→4'],
    )
    assert.equal(events.length, 2, 'the old listener hears nothing more')
  })

  test('a shorter interval reschedules the pending tick', async () => {
    // A real loop with a 1 h interval: only the reload can bring the second evaluation.
    const { group, source } = runner(new FakeTarget(3), { interval: 3_600_000 })
    await group.start()
    try {
      const deadline = Date.now() + 10_000
      while (source.entered < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
      assert.equal(source.entered, 1, 'the first tick ran')
      await group.reconfigure({
        settings: settings({ interval: 50 }),
        policies: [{ name: 'old', decide: wants(3, 'old') }],
      })
      while (source.entered < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
      assert.ok(source.entered >= 3, `only ${source.entered} evaluation(s) after the interval became 50ms`)
    } finally {
      await group.stop()
    }
  })
})
