/**
 * The dispatcher's promises to the engine: emit never waits, a slow or failing notifier never
 * holds up another, failures are logged and counted, each notifier gets its events in order and
 * one at a time, a backlog is bounded (progress dropped first), and close() ends what hangs.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { Notifier, ScaleEvent } from '../core/types.js'
import type { Logger } from '../engine/log.js'
import { Dispatcher } from './dispatch.js'

const event = (kind: ScaleEvent['kind'], n = 0): ScaleEvent => ({
  kind,
  group: 'web',
  decision: n,
  trigger: 'auto',
  from: 1,
  to: 2,
  direction: 'up',
  reason: `event ${n}`,
  at: n,
  target: 'fake',
})

function captureLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = []
  const logger = { warn: (_obj: object, msg: string) => void lines.push(msg) } as unknown as Logger
  return { logger, lines }
}

/** A notifier that holds every delivery until released (or aborted). */
function gate(kind = 'gate') {
  const seen: ScaleEvent[] = []
  let open: () => void = () => {}
  let opened = new Promise<void>((r) => (open = r))
  let active = 0
  let maxActive = 0
  const notifier: Notifier = {
    kind,
    async notify(e, signal) {
      active++
      maxActive = Math.max(maxActive, active)
      try {
        await new Promise<void>((resolve, reject) => {
          opened.then(resolve, reject)
          signal.addEventListener('abort', () => reject(signal.reason))
        })
        seen.push(e)
      } finally {
        active--
      }
    },
  }
  return {
    notifier,
    seen,
    release() {
      open()
    },
    reset() {
      opened = new Promise<void>((r) => (open = r))
    },
    get maxActive() {
      return maxActive
    },
  }
}

describe('dispatcher', () => {
  test('emit returns at once while a notifier hangs; the other notifier is not held up', async () => {
    const slow = gate('slow')
    const got: string[] = []
    const quick: Notifier = { kind: 'quick', notify: async (e) => void got.push(e.reason) }
    const d = new Dispatcher(
      [
        { notifier: slow.notifier, timeout: 60_000 },
        { notifier: quick, timeout: 1000 },
      ],
      captureLogger().logger,
    )
    const t0 = performance.now()
    for (let i = 0; i < 50; i++) d.emit(event('progress', i))
    assert.ok(performance.now() - t0 < 1000, 'emit must not wait for deliveries')
    // The quick one gets all 50 while the slow one is still stuck on its first.
    for (let i = 0; i < 100 && got.length < 50; i++) await new Promise((r) => setTimeout(r, 10))
    assert.equal(got.length, 50)
    assert.equal(slow.seen.length, 0)
    slow.release()
    await d.idle()
    assert.equal(slow.seen.length, 50)
    assert.equal(slow.maxActive, 1, 'one delivery at a time per notifier')
    assert.deepEqual(
      slow.seen.map((e) => e.decision),
      [...Array(50).keys()],
      'in order',
    )
    await d.close(10)
  })

  test('a failing notifier is logged and counted, and keeps getting later events', async () => {
    const { logger, lines } = captureLogger()
    const results: string[] = []
    let calls = 0
    const flaky: Notifier = {
      kind: 'flaky',
      async notify() {
        calls++
        if (calls === 1) throw new Error('503 from the chat service')
      },
    }
    const d = new Dispatcher([{ notifier: flaky, timeout: 1000 }], logger, {
      delivered: (kind, result) => results.push(`${kind}:${result}`),
    })
    d.emit(event('started'))
    d.emit(event('applied'))
    await d.idle()
    assert.deepEqual(results, ['flaky:failed', 'flaky:ok'])
    assert.deepEqual(lines, ['notifier flaky failed: 503 from the chat service'])
    await d.close(10)
  })

  test('a delivery longer than the notifier’s timeout is abandoned and counted as failed', async () => {
    const results: string[] = []
    const stuck = gate('stuck')
    const d = new Dispatcher([{ notifier: stuck.notifier, timeout: 30 }], captureLogger().logger, {
      delivered: (kind, result) => results.push(`${kind}:${result}`),
    })
    d.emit(event('applied'))
    await d.idle()
    assert.deepEqual(results, ['stuck:failed'])
    await d.close(10)
  })

  test('the backlog is bounded: progress events are dropped first, then the oldest; each drop counted', async () => {
    const { logger, lines } = captureLogger()
    const results: string[] = []
    const slow = gate()
    const d = new Dispatcher([{ notifier: slow.notifier, timeout: 60_000 }], logger, {
      delivered: (kind, result) => results.push(result),
    })
    d.emit(event('started', 0)) // taken at once: in flight, not queued
    for (let i = 1; i <= 10; i++) d.emit(event('progress', i))
    for (let i = 11; i <= 100; i++) d.emit(event('applied', i)) // queue is now full (100)
    for (let i = 101; i <= 115; i++) d.emit(event('failed', i)) // 15 over: 10 progress go, then 5 oldest
    assert.equal(results.filter((r) => r === 'dropped').length, 15)
    assert.equal(lines.length, 15)
    assert.match(lines[0]!, /100 events behind; dropped the oldest/)
    slow.release()
    await d.idle()
    const delivered = slow.seen.map((e) => e.decision)
    assert.equal(delivered.length, 101)
    assert.ok(!slow.seen.some((e) => e.kind === 'progress'), 'every progress event was dropped first')
    assert.deepEqual(delivered.slice(0, 2), [0, 16], 'then the oldest (11–15) went')
    assert.equal(delivered.at(-1), 115)
    await d.close(10)
  })

  test('events a notifier did not ask for are not sent to it', async () => {
    const got: string[] = []
    const n: Notifier = { kind: 'n', notify: async (e) => void got.push(e.kind) }
    const d = new Dispatcher([{ notifier: n, timeout: 1000, on: ['failed'] }], captureLogger().logger)
    for (const k of ['started', 'progress', 'applied', 'failed', 'unchanged'] as const) d.emit(event(k))
    await d.idle()
    assert.deepEqual(got, ['failed'])
    await d.close(10)
  })

  test('close gives deliveries a grace period, then aborts them and closes the notifiers', async () => {
    const stuck = gate()
    let closed = false
    stuck.notifier.close = async () => {
      closed = true
    }
    const results: string[] = []
    const d = new Dispatcher([{ notifier: stuck.notifier, timeout: 60_000 }], captureLogger().logger, {
      delivered: (kind, result) => results.push(result),
    })
    d.emit(event('applied'))
    d.emit(event('applied', 1))
    const t0 = performance.now()
    await d.close(50)
    assert.ok(performance.now() - t0 < 5000)
    assert.ok(closed)
    await new Promise((r) => setTimeout(r, 20))
    assert.deepEqual(results, ['failed'], 'the one in flight was aborted, the queued one never started')
  })
})
