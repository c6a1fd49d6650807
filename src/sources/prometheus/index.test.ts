/**
 * The prometheus source against a real Prometheus (Debian's binary) that scrapes a small
 * /metrics server this test runs and changes.
 */
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import {
  requirePrometheus,
  type RunningPrometheus,
  startPrometheus,
} from '../../../test/support/prometheus.js'
import type { Instance, Metrics } from '../../core/types.js'
import { createPrometheusSource, prometheusSourceSchema } from './index.js'

const skip = requirePrometheus()

const ready = (id: string, address?: string): Instance => ({
  id,
  state: 'ready',
  createdAt: 0,
  ...(address ? { address } : {}),
})

/** Collects with the real clock, as the engine would. */
async function collect(config: unknown, instances: Instance[], group = 'test'): Promise<Metrics> {
  const source = createPrometheusSource(prometheusSourceSchema.parse(config))
  try {
    return await source.collect({ group, now: Date.now(), instances, signal: AbortSignal.timeout(20_000) })
  } finally {
    await source.close?.()
  }
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const value = await fn()
    if (value !== undefined) return value
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

describe('prometheus source on a real Prometheus', { skip }, () => {
  let prom: RunningPrometheus
  let exporter: Server
  let exporterAddress: string
  let requests = 0
  // What the exporter serves; tests change it.
  let body = ''
  const exposition = (load1: string) =>
    [
      '# TYPE tide_test_load gauge',
      `tide_test_load{node="web-1"} ${load1}`,
      'tide_test_load{node="web-2"} 0.75',
      '# TYPE tide_test_queue gauge',
      'tide_test_queue 12',
      '# TYPE tide_test_broken gauge',
      'tide_test_broken NaN',
      '# TYPE tide_test_requests_total counter',
      `tide_test_requests_total ${requests}`,
      '',
    ].join('\n')

  before(async () => {
    body = exposition('0.5')
    exporter = createServer((req, res) => {
      requests += 10
      res.setHeader('content-type', 'text/plain; version=0.0.4')
      res.end(body.replace(/^tide_test_requests_total .*$/m, `tide_test_requests_total ${requests}`))
    })
    await new Promise<void>((r) => exporter.listen(0, '127.0.0.1', r))
    exporterAddress = `127.0.0.1:${(exporter.address() as AddressInfo).port}`
    prom = await startPrometheus({ targets: [exporterAddress], interval: '1s' })
    // Two scrapes, so rate() has something to work with.
    await eventually('two scrapes', async () => {
      const r = await prom.query('count_over_time(tide_test_queue[1m])')
      return Number(r[0]?.value[1] ?? 0) >= 2 ? true : undefined
    })
  })

  after(async () => {
    await prom?.stop()
    await new Promise((r) => exporter?.close(r))
  })

  const base = () => ({ kind: 'prometheus', url: prom.url })

  test('per-instance values are matched to instances by a label; one without a series is missing', async () => {
    const m = await collect(
      {
        ...base(),
        metrics: {
          load: { query: 'tide_test_load{job="{{group}}"}', per_instance: { label: 'node', match: 'id' } },
        },
      },
      [ready('web-1'), ready('web-2'), ready('web-3'), { ...ready('web-4'), state: 'starting' }],
    )
    assert.deepEqual(m.load!.perInstance, { 'web-1': 0.5, 'web-2': 0.75 })
    assert.deepEqual(m.load!.missing, ['web-3'], 'web-4 is not ready: neither a value nor missing')
    assert.match(m.load!.errors![0]!, /web-3: no series whose node label names it/)
  })

  test('the instance label matches an instance by its address', async () => {
    const m = await collect({ ...base(), metrics: { up: { query: 'up', per_instance: 'instance' } } }, [
      ready('i-0abc', exporterAddress),
    ])
    assert.deepEqual(m.up!.perInstance, { 'i-0abc': 1 })
  })

  test('{{instances}} narrows the query to the group’s instances', async () => {
    const m = await collect(
      {
        ...base(),
        metrics: { n: { query: 'count(tide_test_load{node=~"{{instances}}"})' } },
      },
      [ready('web-2')],
    )
    assert.equal(m.n!.group, 1)
  })

  test('a group value, and a total that policies divide among instances', async () => {
    const m = await collect(
      {
        ...base(),
        metrics: {
          queue: { query: 'max(tide_test_queue{job="{{group}}"})' },
          load_sum: { query: 'sum(tide_test_load)', value: 'total' },
        },
      },
      [],
    )
    assert.equal(m.queue!.group, 12)
    assert.equal(m.queue!.total, undefined)
    assert.equal(m.load_sum!.total, 1.25)
  })

  test('{{window}} goes into rate(): requests per second from a counter', async () => {
    const m = await collect(
      {
        ...base(),
        metrics: {
          rps: { query: 'sum(rate(tide_test_requests_total[{{window}}]))', window: '10s', value: 'total' },
        },
      },
      [],
    )
    // 10 per scrape, one scrape a second (Prometheus's own timing, so only roughly).
    assert.ok(m.rps!.total! > 2 && m.rps!.total! < 30, `rate was ${m.rps!.total}`)
  })

  test('NaN, an empty result and an unknown metric are no data, never 0', async () => {
    const m = await collect(
      {
        ...base(),
        metrics: {
          broken: { query: 'tide_test_broken' },
          divided: { query: 'sum(tide_test_queue) / 0 * 0' },
          nothing: { query: 'tide_test_no_such_metric' },
          per: { query: 'tide_test_broken', per_instance: 'job' },
        },
      },
      [ready('test')],
    )
    for (const name of ['broken', 'divided', 'nothing']) {
      assert.equal(m[name]!.group, undefined, `${name} must have no value`)
      assert.equal(m[name]!.errors?.length, 1, `${name} says why`)
    }
    assert.match(m.broken!.errors![0]!, /NaN/)
    assert.match(m.nothing!.errors![0]!, /no series/)
    assert.deepEqual(m.per!.perInstance, {})
    assert.deepEqual(m.per!.missing, ['test'])
  })

  test('a range query reduces each series over time', async () => {
    body = exposition('2')
    // Wait until the new value has been scraped, so the last 10s hold both 0.5 and 2.
    await eventually('the new value', async () => {
      const r = await prom.query('tide_test_load{node="web-1"}')
      return r[0]?.value[1] === '2' ? true : undefined
    })
    const m = await collect(
      {
        ...base(),
        metrics: {
          peak: { query: 'tide_test_load{node="web-1"}', range: '30s', step: '1s', reduce: 'max' },
          low: { query: 'tide_test_load{node="web-1"}', range: '30s', step: '1s', reduce: 'min' },
          now: { query: 'tide_test_load{node="web-1"}', range: '30s', step: '1s', reduce: 'last' },
        },
      },
      [],
    )
    assert.equal(m.peak!.group, 2)
    assert.equal(m.low!.group, 0.5)
    assert.equal(m.now!.group, 2)
  })

  test('a PromQL error and a range vector are reported with Prometheus’s words', async () => {
    const m = await collect(
      {
        ...base(),
        metrics: { bad: { query: 'sum(tide_test_load' }, ranged: { query: 'tide_test_load[1m]' } },
      },
      [],
    )
    assert.match(m.bad!.errors![0]!, /Prometheus said bad_data: .*parse error/)
    assert.match(m.ranged!.errors![0]!, /range vector/)
  })

  test('an unreachable Prometheus is missing data with the reason, not a crash', async () => {
    const m = await collect(
      {
        kind: 'prometheus',
        url: 'http://127.0.0.1:1',
        metrics: { q: { query: 'up' }, p: { query: 'up', per_instance: 'instance' } },
      },
      [ready('a')],
    )
    assert.match(m.q!.errors![0]!, /connection refused/)
    assert.deepEqual(m.p!.missing, ['a'])
  })
})

describe('prometheus source config', () => {
  test('problems are reported with their key', () => {
    const r = prometheusSourceSchema.safeParse({
      kind: 'prometheus',
      url: 'localhost:9090',
      metrics: {
        a: { query: 'x{g="{{grup}}"}' },
        b: { query: 'y', per_instance: 'instance', value: 'total' },
        c: { query: 'z', step: '5s' },
        d: { query: 'z', range: '10s', step: '1m' },
        e: { query: 'z', per_instance: 'bad-label' },
      },
    })
    assert.equal(r.success, false)
    const problems = r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).sort()
    assert.deepEqual(problems, [
      'metrics.a.query: unknown placeholder {{grup}}; the query may use {{group}}, {{window}}, {{instances}}, {{addresses}}',
      'metrics.b.value: goes without `per_instance` (a per-instance metric has no group value)',
      'metrics.c.step: goes with `range`',
      'metrics.d.step: must not be longer than `range`',
      'metrics.e.per_instance: must be a label name like instance',
      'url: must be an http(s) URL like "http://127.0.0.1:9090"',
    ])
  })
})
