import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { readMetric } from './aggregate.js'
import {
  type Condition,
  conditionSchema,
  evaluateCondition,
  formatCondition,
  parseCondition,
} from './condition.js'

describe('parseCondition', () => {
  const good: Array<[string, Condition]> = [
    ['load > 0.8', { metric: 'load', op: '>', value: 0.8 }],
    ['free_memory<256', { metric: 'free_memory', op: '<', value: 256 }],
    ['  node_load1 >= 2 ', { metric: 'node_load1', op: '>=', value: 2 }],
    ['x <= -1.5e3', { metric: 'x', op: '<=', value: -1500 }],
    ['up == 1', { metric: 'up', op: '==', value: 1 }],
    ['min(free_memory) > 512', { metric: 'free_memory', op: '>', value: 512, aggregate: 'min' }],
    ['median( load ) < .5', { metric: 'load', op: '<', value: 0.5, aggregate: 'median' }],
    ['cpu.busy > 90', { metric: 'cpu.busy', op: '>', value: 90 }],
  ]
  for (const [text, expected] of good) {
    test(`reads ${JSON.stringify(text)}`, () => assert.deepEqual(parseCondition(text), expected))
  }

  const bad = [
    'load >> 0.8',
    'load => 1',
    'load > high',
    '> 0.8',
    'load 0.8',
    'avg(load) > 1',
    '1load > 2',
    'load > 0.8 and x',
  ]
  for (const text of bad) {
    test(`refuses ${JSON.stringify(text)}`, () => assert.equal(parseCondition(text), undefined))
  }

  test('formatCondition gives back the string form', () => {
    assert.equal(
      formatCondition({ metric: 'free_memory', op: '>', value: 512, aggregate: 'min' }),
      'min(free_memory) > 512',
    )
    assert.equal(formatCondition({ metric: 'load', op: '<=', value: 0.3 }), 'load <= 0.3')
  })
})

describe('conditionSchema', () => {
  test('a bad string is one issue that quotes it and shows the right form', () => {
    const result = conditionSchema.safeParse('load >> 0.8')
    assert.equal(result.success, false)
    assert.equal(result.error?.issues.length, 1)
    const message = result.error?.issues[0]?.message ?? ''
    assert.match(message, /"load >> 0\.8"/)
    assert.match(message, /"load > 0\.8"/)
  })

  test('a bad object names the field and the value it had', () => {
    const result = conditionSchema.safeParse({ metric: 'load', op: '=>', value: 1 })
    assert.equal(result.success, false)
    assert.match(result.error?.issues[0]?.message ?? '', /op: must be one of < <= > >= == \(got "=>"\)/)
  })

  test('an unknown key in the object form is rejected', () => {
    const result = conditionSchema.safeParse({ metric: 'load', op: '>', value: 1, threshold: 2 })
    assert.equal(result.success, false)
    assert.match(result.error?.issues[0]?.message ?? '', /threshold/)
  })

  test('both forms parse to the same condition', () => {
    assert.deepEqual(
      conditionSchema.parse('min(free_memory) > 512'),
      conditionSchema.parse({ metric: 'free_memory', op: '>', value: 512, aggregate: 'min' }),
    )
  })
})

describe('evaluateCondition', () => {
  const metrics = {
    load: { at: 0, perInstance: { a: 0.9, b: 0.8, c: 1.03 }, missing: [] },
    partial: { at: 0, perInstance: { a: 0.9, b: 0.95 }, missing: ['c'] },
    none: { at: 0, perInstance: {}, missing: ['a', 'b'] },
    latency_p99: { at: 0, perInstance: {}, missing: [], group: 250 },
    concurrency: { at: 0, perInstance: { a: 9, b: 9, c: 9 }, missing: [], total: 30 },
    waiting: { at: 0, perInstance: {}, missing: [], total: 3 },
  }
  const evaluate = (text: string, metric = parseCondition(text)!.metric) =>
    evaluateCondition(parseCondition(text)!, 'mean', readMetric(metrics, metric, 0, 1000), 1000)

  test('a condition that holds says so with the numbers and how many reported', () => {
    const outcome = evaluate('load > 0.8')
    assert.equal(outcome.state, 'true')
    assert.equal(outcome.sentence, 'load 0.91 > 0.8 (mean of 3 of 3 instances)')
  })

  test('a condition that fails says "is not"', () => {
    const outcome = evaluate('max(load) < 1')
    assert.equal(outcome.state, 'false')
    assert.equal(outcome.sentence, 'load 1.03 is not < 1 (max of 3 of 3 instances)')
  })

  test('a condition on some instances is decided on those and says which are missing', () => {
    const outcome = evaluate('partial > 0.9')
    assert.equal(outcome.state, 'true')
    assert.equal(outcome.complete, false)
    assert.equal(outcome.sentence, 'partial 0.925 > 0.9 (mean of 2 of 3 instances; c missing)')
  })

  test('a condition with no reporting instance is unknown, never false', () => {
    const outcome = evaluate('none < 1')
    assert.equal(outcome.state, 'unknown')
    assert.equal(outcome.sentence, 'none has no data (0 of 2 instances reporting)')
  })

  test('a metric with only a group value uses it, whatever the aggregate, and says so', () => {
    const outcome = evaluate('latency_p99 > 200')
    assert.equal(outcome.state, 'true')
    assert.equal(outcome.complete, true)
    assert.equal(outcome.observed, 250)
    assert.equal(outcome.sentence, 'latency_p99 250 (group) > 200')
    for (const fn of ['mean', 'median', 'min', 'max', 'sum']) {
      assert.equal(evaluate(`${fn}(latency_p99) < 200`).sentence, 'latency_p99 250 (group) is not < 200')
    }
  })

  test('a metric with no per-instance values and a total uses the total (requests waiting at zero instances)', () => {
    const outcome = evaluate('waiting > 2')
    assert.equal(outcome.state, 'true')
    assert.equal(outcome.sentence, 'waiting 3 (group total) > 2')
  })

  test('sum uses the group total where the reading has one: requests queued count too', () => {
    const outcome = evaluate('sum(concurrency) > 25')
    assert.equal(outcome.state, 'true')
    assert.equal(outcome.observed, 30)
    assert.equal(outcome.sentence, 'concurrency 30 (group total) > 25 (sum of 3 of 3 instances: 27)')
  })

  test('mean, median, min and max keep the per-instance values beside a total', () => {
    const outcome = evaluate('mean(concurrency) > 9.5')
    assert.equal(outcome.state, 'false')
    assert.equal(outcome.sentence, 'concurrency 9 is not > 9.5 (mean of 3 of 3 instances)')
    assert.equal(evaluate('max(concurrency) == 9').state, 'true')
  })

  test('== compares exactly', () => {
    assert.equal(evaluate('min(load) == 0.8', 'load').state, 'true')
  })
})
