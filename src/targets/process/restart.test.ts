import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { backoffDelay, countFailure } from './restart.js'

const config = { backoff: 1000, max_backoff: 30_000, reset_after: 60_000 }

describe('backoffDelay', () => {
  test('doubles from backoff up to max_backoff', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(n, config)),
      [1000, 2000, 4000, 8000, 16000, 30000, 30000],
    )
  })
  test('stays at the ceiling for absurd counts', () => {
    assert.equal(backoffDelay(5000, config), 30_000)
  })
  test('no failure, no wait', () => {
    assert.equal(backoffDelay(0, config), 0)
  })
})

describe('countFailure', () => {
  test('the first failure is 1', () => {
    assert.equal(countFailure(0, { now: 0 }, config), 1)
  })
  test('a failure soon after another continues the count', () => {
    assert.equal(countFailure(3, { now: 10_000, lastFailureAt: 5_000 }, config), 4)
  })
  test('an instance that was ready only briefly continues the count', () => {
    assert.equal(countFailure(3, { now: 10_000, readyAt: 9_000, lastFailureAt: 5_000 }, config), 4)
  })
  test('an instance that stayed ready for reset_after starts a new count', () => {
    assert.equal(countFailure(6, { now: 70_000, readyAt: 10_000, lastFailureAt: 9_000 }, config), 1)
  })
  test('a failure long after the last one starts a new count, even for an instance never ready', () => {
    // reset_after + max_backoff = 90s without any failure: the loop has ended.
    assert.equal(countFailure(6, { now: 100_000, lastFailureAt: 9_000 }, config), 1)
    assert.equal(countFailure(6, { now: 98_000, lastFailureAt: 9_000 }, config), 7)
  })
})
