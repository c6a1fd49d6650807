import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { callWithDeadline } from './deadline.js'

/**
 * A call that never answers until its signal aborts, then rejects with the abort reason. It holds
 * a timer meanwhile, as a real call holds its socket: AbortSignal.timeout alone keeps no process alive.
 */
const hang = (signal: AbortSignal) =>
  new Promise<never>((_, reject) => {
    const alive = setInterval(() => {}, 1000)
    signal.addEventListener('abort', () => {
      clearInterval(alive)
      reject(signal.reason)
    })
  })

const wrap = (cause: unknown, thrown: unknown) => Object.assign(new Error('wrapped'), { cause, thrown })

describe('callWithDeadline', () => {
  test('an answer is returned and logged once, without err', async () => {
    const lines: Array<{ ms: number; err?: string }> = []
    const out = await callWithDeadline(async () => 42, {
      signal: new AbortController().signal,
      timeout: 60_000,
      log: (fields) => lines.push(fields),
      fail: wrap,
    })
    assert.equal(out, 42)
    assert.equal(lines.length, 1)
    assert.equal(lines[0]!.err, undefined)
    assert.ok(lines[0]!.ms >= 0)
  })

  test('a failure goes through fail with what was thrown, and is logged with it', async () => {
    const lines: Array<{ ms: number; err?: string }> = []
    const boom = new Error('access denied')
    await assert.rejects(
      callWithDeadline(
        async () => {
          throw boom
        },
        { signal: new AbortController().signal, timeout: 60_000, log: (f) => lines.push(f), fail: wrap },
      ),
      (err: Error & { cause?: unknown; thrown?: unknown }) => err.cause === boom && err.thrown === boom,
    )
    assert.deepEqual(
      lines.map((l) => l.err),
      ['Error: access denied'],
    )
  })

  test('the deadline cuts a call short and says so in the cause', async () => {
    await assert.rejects(
      callWithDeadline(hang, { signal: new AbortController().signal, timeout: 20, fail: wrap }),
      (err: Error & { cause?: unknown }) => (err.cause as Error).message === 'no answer within 20ms',
    )
  })

  test("the caller's abort is not reported as a timeout", async () => {
    const caller = new AbortController()
    const call = callWithDeadline(hang, { signal: caller.signal, timeout: 60_000, fail: wrap })
    caller.abort(new Error('stopping'))
    await assert.rejects(
      call,
      (err: Error & { cause?: unknown }) => (err.cause as Error).message === 'stopping',
    )
  })
})
