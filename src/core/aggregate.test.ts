import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  aggregate,
  coverage,
  describeGap,
  formatNumber,
  groupLevel,
  isComplete,
  listNames,
  readMetric,
} from './aggregate.js'
import type { Aggregate, Metrics } from './types.js'

describe('aggregate', () => {
  const cases: Array<[string, number[], Aggregate, number | undefined]> = [
    ['no values is undefined, not NaN', [], 'mean', undefined],
    ['no values has no sum either', [], 'sum', undefined],
    ['mean of three', [1, 2, 6], 'mean', 3],
    ['median of an odd count is the middle value', [9, 1, 5], 'median', 5],
    [
      'median of an even count is the mean of the middle two (Python statistics)',
      [4, 1, 3, 2],
      'median',
      2.5,
    ],
    ['min', [3, -1, 2], 'min', -1],
    ['max', [3, -1, 2], 'max', 3],
    ['sum', [3, -1, 2], 'sum', 4],
    ['one value is every aggregate', [7], 'median', 7],
  ]
  for (const [name, values, fn, expected] of cases) {
    test(name, () => assert.equal(aggregate(values, fn), expected))
  }

  test('median does not reorder the caller’s array', () => {
    const values = [3, 1, 2]
    aggregate(values, 'median')
    assert.deepEqual(values, [3, 1, 2])
  })
})

describe('readMetric', () => {
  const metrics: Metrics = {
    load: {
      at: 1000,
      perInstance: { 'web-1': 0.5, 'web-2': Number.NaN },
      missing: ['web-3'],
      errors: ['web-3: refused'],
    },
    concurrency: { at: 1000, perInstance: {}, missing: [], total: 12 },
  }

  test('an instance with a value that is not a number counts as missing', () => {
    const view = readMetric(metrics, 'load', 1000, 30_000)
    assert.deepEqual(view.values, { 'web-1': 0.5 })
    assert.deepEqual(view.missing, ['web-2', 'web-3'])
    assert.equal(view.expected, 3)
    assert.equal(isComplete(view), false)
    assert.equal(coverage(view), '1 of 3 instances')
  })

  test('a reading older than staleAfter counts as entirely missing, total included', () => {
    const view = readMetric(metrics, 'concurrency', 32_000, 30_000)
    assert.equal(view.stale, true)
    assert.equal(view.total, undefined)
    const load = readMetric(metrics, 'load', 32_000, 30_000)
    assert.equal(load.reported, 0)
    assert.deepEqual(load.missing.sort(), ['web-1', 'web-2', 'web-3'])
    assert.match(describeGap(load, 30_000), /^load is stale \(read 31s ago, older than 30s\)$/)
  })

  test('a reading exactly staleAfter old is still fresh', () => {
    assert.equal(readMetric(metrics, 'load', 31_000, 30_000).stale, false)
  })

  test('a metric no source returned is absent, with a sentence that says so', () => {
    const view = readMetric(metrics, 'rps', 1000, 30_000)
    assert.equal(view.absent, true)
    assert.equal(isComplete(view), false)
    assert.equal(describeGap(view, 30_000), 'rps has no data (no reading this evaluation)')
  })

  test('the gap sentence names the missing instances and the source’s error', () => {
    const view = readMetric(metrics, 'load', 1000, 30_000)
    assert.equal(
      describeGap(view, 30_000),
      'load is missing from web-2, web-3 (1 of 3 instances reporting; web-3: refused)',
    )
  })

  test('a group value (not a sum) is kept beside the total, and dropped when stale', () => {
    const latency: Metrics = { latency_p99: { at: 1000, perInstance: {}, missing: [], group: 250 } }
    const fresh = readMetric(latency, 'latency_p99', 1000, 30_000)
    assert.equal(fresh.group, 250)
    assert.equal(fresh.total, undefined)
    assert.deepEqual(groupLevel(fresh), { value: 250, of: 'group' })
    const stale = readMetric(latency, 'latency_p99', 32_000, 30_000)
    assert.equal(stale.group, undefined)
    assert.equal(groupLevel(stale), undefined)
    const broken = readMetric({ m: { at: 0, perInstance: {}, missing: [], group: Number.NaN } }, 'm', 0, 1000)
    assert.equal(broken.group, undefined)
  })

  test('a fresh group-level reading with no per-instance values is complete', () => {
    const latency = readMetric(
      { latency_p99: { at: 0, perInstance: {}, missing: [], group: 250 } },
      'latency_p99',
      0,
      1000,
    )
    assert.equal(isComplete(latency), true)
    assert.equal(describeGap(latency, 1000), '')
    const queued = readMetric(metrics, 'concurrency', 1000, 30_000)
    assert.equal(isComplete(queued), true)
    assert.deepEqual(groupLevel(queued), { value: 12, of: 'total' })
  })

  test('a metric with per-instance values has no group-level value to fall back on', () => {
    const view = readMetric(
      { m: { at: 0, perInstance: { a: 1 }, missing: [], total: 5, group: 7 } },
      'm',
      0,
      1000,
    )
    assert.equal(groupLevel(view), undefined)
  })

  test('a complete reading has no gap', () => {
    const view = readMetric({ m: { at: 0, perInstance: { a: 1 }, missing: [] } }, 'm', 0, 1000)
    assert.equal(isComplete(view), true)
    assert.equal(describeGap(view, 1000), '')
    assert.equal(coverage(view), '1 of 1 instance')
  })
})

describe('formatNumber', () => {
  const cases: Array<[string, number, number | undefined, string]> = [
    ['integers as they are', 3102148608, undefined, '3102148608'],
    ['three significant digits', 11.5349, undefined, '11.5'],
    ['small values keep their digits', 0.000123456, undefined, '0.000123'],
    ['never fewer digits than the integer part', 3102148608.5, undefined, '3102148609'],
    ['more digits when it would print like the threshold', 0.80004, 0.8, '0.80004'],
    ['no extra digits when equal to the threshold', 0.8, 0.8, '0.8'],
  ]
  for (const [name, n, other, expected] of cases)
    test(name, () => assert.equal(formatNumber(n, other), expected))
})

test('listNames shortens long lists', () => {
  assert.equal(listNames(['a', 'b'], 3), 'a, b')
  assert.equal(listNames(['a', 'b', 'c', 'd', 'e'], 3), 'a, b, c and 2 more')
})
