/**
 * Reading query answers (pure): the formats of the Prometheus HTTP API, with NaN/Inf/empty as
 * "no data"; plus the query template and the matching of series to instances.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import type { Instance } from '../../core/types.js'
import { findInstance, groupReading, perInstanceReading } from './index.js'
import { readResponse, sampleValue } from './result.js'
import { promDuration, renderQuery, unknownPlaceholders } from './template.js'

const ok = (resultType: string, result: unknown) => ({ status: 'success', data: { resultType, result } })
const vector = (...series: Array<[Record<string, string>, string]>) =>
  ok(
    'vector',
    series.map(([metric, v]) => ({ metric, value: [1700000000.5, v] })),
  )
const inst = (id: string, address?: string): Instance => ({
  id,
  state: 'ready',
  createdAt: 0,
  ...(address ? { address } : {}),
})

describe('sample values', () => {
  test('numbers come as strings; NaN and ±Inf are no data, never zero', () => {
    assert.equal(sampleValue('0.25'), 0.25)
    assert.equal(sampleValue('1e3'), 1000)
    assert.equal(sampleValue('0'), 0)
    for (const bad of ['NaN', '+Inf', '-Inf', '', 'x', null, undefined, {}])
      assert.equal(sampleValue(bad), undefined)
  })
})

describe('readResponse', () => {
  test('a vector, a scalar, and a matrix reduced over time', () => {
    assert.deepEqual(readResponse(vector([{ instance: 'a' }, '2']), false), {
      ok: true,
      kind: 'series',
      series: [{ labels: { instance: 'a' }, value: 2 }],
      warnings: [],
    })
    assert.deepEqual(readResponse(ok('scalar', [1, '3.5']), false), {
      ok: true,
      kind: 'scalar',
      value: 3.5,
      warnings: [],
    })
    const matrix = ok('matrix', [
      {
        metric: {},
        values: [
          [1, '1'],
          [2, 'NaN'],
          [3, '5'],
        ],
      },
    ])
    const read = (how: 'mean' | 'max' | 'last' | 'min' | 'sum' | 'median') => {
      const r = readResponse(matrix, true, how)
      return r.ok && r.kind === 'series' ? r.series[0]!.value : 'error'
    }
    assert.deepEqual(
      [read('mean'), read('max'), read('min'), read('last'), read('sum'), read('median')],
      [3, 5, 1, 5, 6, 3],
    )
    const empty = readResponse(ok('matrix', [{ metric: {}, values: [[1, 'NaN']] }]), true)
    assert.ok(empty.ok && empty.kind === 'series' && empty.series[0]!.value === undefined)
  })

  test('a range vector from an instant query tells the user what to do', () => {
    const r = readResponse(ok('matrix', []), false)
    assert.ok(!r.ok && /wrap it in a function such as rate\(\)/.test(r.error))
  })

  test('API errors carry Prometheus’s own message', () => {
    const r = readResponse({ status: 'error', errorType: 'bad_data', error: 'parse error at char 3' }, false)
    assert.deepEqual(r, { ok: false, error: 'Prometheus said bad_data: parse error at char 3' })
    assert.equal(readResponse(ok('string', [1, 'x']), false).ok, false)
    assert.equal(readResponse('<html>', false).ok, false)
  })

  test('whatever JSON arrives, it returns (never throws)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.boolean(), (body, range) => {
        readResponse(body, range)
        readResponse({ status: 'success', data: body }, range)
        readResponse({ status: 'success', data: { resultType: 'vector', result: body } }, range)
        readResponse({ status: 'success', data: { resultType: 'matrix', result: body } }, true)
      }),
      { numRuns: 500 },
    )
  })
})

describe('group readings', () => {
  test('one series is the value; `total` makes it a sum policies divide', () => {
    assert.deepEqual(groupReading({}, readResponse(vector([{}, '7']), false), 5), {
      at: 5,
      perInstance: {},
      missing: [],
      group: 7,
    })
    assert.equal(groupReading({ value: 'total' }, readResponse(vector([{}, '7']), false), 5).total, 7)
  })

  test('empty, NaN and several series are no data with a reason', () => {
    const cases: Array<[unknown, RegExp]> = [
      [vector(), /no series \(no data\)/],
      [vector([{}, 'NaN']), /NaN or infinite/],
      [ok('scalar', [1, '+Inf']), /NaN or infinite/],
      [vector([{ a: '1' }, '1'], [{ a: '2' }, '2']), /returned 2 series.*aggregate it/],
    ]
    for (const [body, why] of cases) {
      const r = groupReading({}, readResponse(body, false), 0)
      assert.equal(r.group, undefined)
      assert.equal(r.total, undefined)
      assert.match(r.errors?.[0] ?? '', why)
    }
  })
})

describe('per-instance readings', () => {
  const ready = [
    inst('web-1', '10.0.0.1:8080'),
    inst('web-2', '10.0.0.2:8080'),
    inst('web-3', '10.0.0.3:8080'),
  ]

  test('series are matched by label; an instance without one is missing, never 0', () => {
    const body = vector(
      [{ instance: '10.0.0.1:9100' }, '0.5'],
      [{ instance: 'web-2' }, '0.75'],
      [{ instance: 'other:1' }, '9'],
    )
    const r = perInstanceReading({ label: 'instance', match: 'auto' }, readResponse(body, false), ready, 1)
    assert.deepEqual(r.perInstance, { 'web-1': 0.5, 'web-2': 0.75 })
    assert.deepEqual(r.missing, ['web-3'])
    assert.match(r.errors![0]!, /^web-3: no series whose instance label names it \(no data\)$/)
  })

  test('NaN for one instance, or two series for one, is missing with the reason', () => {
    const body = vector(
      [{ node: 'web-1' }, 'NaN'],
      [{ node: 'web-2', cpu: '0' }, '1'],
      [{ node: 'web-2', cpu: '1' }, '1'],
      [{ node: 'web-3' }, '0'],
    )
    const r = perInstanceReading({ label: 'node', match: 'id' }, readResponse(body, false), ready, 1)
    assert.deepEqual(r.perInstance, { 'web-3': 0 })
    assert.deepEqual(r.missing, ['web-1', 'web-2'])
    assert.match(r.errors!.join('\n'), /web-2: 2 series name it; aggregate the query by \(node\)/)
  })

  test('a failed query makes every ready instance missing with the error', () => {
    const r = perInstanceReading(
      { label: 'node', match: 'id' },
      { ok: false, error: 'connection refused' },
      ready,
      1,
    )
    assert.deepEqual(r.missing, ['web-1', 'web-2', 'web-3'])
    assert.equal(r.errors![0], 'web-1: connection refused')
  })

  test('host matching only when one instance has that host', () => {
    const local = [inst('a', '127.0.0.1:3001'), inst('b', '127.0.0.1:3002'), inst('c', '[::1]:3003')]
    assert.equal(findInstance('127.0.0.1:9100', local, 'auto'), undefined)
    assert.equal(findInstance('127.0.0.1:3002', local, 'auto')?.id, 'b')
    assert.equal(findInstance('[::1]:9100', local, 'host')?.id, 'c')
    assert.equal(findInstance('b', local, 'address'), undefined)
  })
})

describe('query template', () => {
  test('group, window and instance alternations are filled in', () => {
    const q = renderQuery(
      'avg by (instance) (rate(cpu{job="{{group}}", instance=~"{{ addresses }}", id=~"{{instances}}"}[{{window}}]))',
      { group: 'web', window: 90_000, ids: ['web-1', 'web-2'], addresses: ['10.0.0.1:80', '10.0.0.2:80'] },
    )
    assert.equal(
      q,
      'avg by (instance) (rate(cpu{job="web", instance=~"10\\\\.0\\\\.0\\\\.1:80|10\\\\.0\\\\.0\\\\.2:80", id=~"web-1|web-2"}[90s]))',
    )
  })

  test('durations in the largest unit that divides them', () => {
    assert.deepEqual([60_000, 90_000, 3_600_000, 1500, 86_400_000].map(promDuration), [
      '1m',
      '90s',
      '1h',
      '1500ms',
      '1d',
    ])
  })

  test('unknown placeholders are found for the config error', () => {
    assert.deepEqual(unknownPlaceholders('x{job="{{ grup }}"}[{{window}}] {{instance}}'), [
      '{{ grup }}',
      '{{instance}}',
    ])
  })
})
