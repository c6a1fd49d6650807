import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { z } from 'zod'
import { buildPolicy, policyKinds, policyMetrics, policyName, policySchema } from './index.js'

const threshold = policySchema.parse({
  kind: 'threshold',
  up: { conditions: ['load > 0.8', 'free_memory < 256'] },
  down: { conditions: ['load < 0.3', { metric: 'free_memory', op: '>', value: 512, aggregate: 'min' }] },
})
const target = policySchema.parse({
  kind: 'target',
  name: 'web-concurrency',
  metric: 'concurrency',
  per_instance: 8,
})

describe('policy registry', () => {
  test('the table is alphabetical', () => {
    assert.deepEqual(policyKinds, [...policyKinds].sort())
    assert.deepEqual(policyKinds, ['idle', 'predictive', 'target', 'threshold'])
  })

  test('an unknown kind is refused with the kinds that exist', () => {
    const result = policySchema.safeParse({ kind: 'magic' })
    assert.equal(result.success, false)
    assert.match(result.error?.issues[0]?.message ?? '', /'target' \| 'threshold'/)
  })

  test('the name is the config’s, or <kind>[<index>]', () => {
    assert.equal(policyName(threshold, 0), 'threshold[0]')
    assert.equal(policyName(target, 3), 'web-concurrency')
  })

  test('lists the metrics each policy reads', () => {
    assert.deepEqual(policyMetrics(threshold), ['load', 'free_memory'])
    assert.deepEqual(policyMetrics(target), ['concurrency'])
  })

  test('builds the policy function of the config’s kind', () => {
    const decide = buildPolicy(target)
    const result = decide({
      now: 0,
      group: 'web',
      current: 1,
      ready: 1,
      min: 1,
      max: 5,
      metrics: { concurrency: { at: 0, perInstance: { a: 16 }, missing: [] } },
      staleAfter: 1000,
    })
    assert.deepEqual(result.kind === 'scale' && result.to, 2)
  })

  test('publishes a JSON Schema of the written form, with descriptions', () => {
    const schema = z.toJSONSchema(policySchema, { io: 'input' }) as { oneOf?: Array<{ properties: object }> }
    assert.equal(schema.oneOf?.length, policyKinds.length)
    const text = JSON.stringify(schema)
    assert.match(text, /"per_instance"/)
    assert.match(text, /load > 0\.8/)
  })
})
