import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { emptyReading, FailureMemory, forgetGone, miss, settle, settleAll } from './reading.js'

describe('source readings', () => {
  test('a missing instance is listed with why; a clean reading carries no errors', () => {
    const bad = emptyReading(1000)
    miss(bad, { id: 'web-2' }, 'connection refused')
    assert.deepEqual(settle(bad), {
      at: 1000,
      perInstance: {},
      missing: ['web-2'],
      errors: ['web-2: connection refused'],
    })
    const good = emptyReading(1000)
    good.perInstance['web-1'] = 0.5
    assert.deepEqual(settleAll([['cpu', good]]), {
      cpu: { at: 1000, perInstance: { 'web-1': 0.5 }, missing: [] },
    })
  })

  test('a failure is worth logging when it starts or changes, not again while it lasts', () => {
    const failures = new FailureMemory()
    const seen = ['refused', 'refused', 'reset', undefined, undefined, 'reset'].map((e) =>
      failures.changed('a', e),
    )
    assert.deepEqual(seen, [true, false, true, false, false, true])
  })

  test('what is kept for instances that left the group is forgotten', () => {
    const cache = new Map([
      ['a', 1],
      ['b', 2],
    ])
    const failures = new FailureMemory()
    failures.changed('b', 'refused')
    forgetGone([{ id: 'a' }], cache, failures.last)
    assert.deepEqual([...cache.keys()], ['a'])
    assert.equal(failures.last.size, 0)
  })
})
