import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, describe, test } from 'node:test'
import type { Instance, Source } from '../../core/types.js'
import { createScrapeSource, type ScrapeSourceConfig, scrapeSourceSchema, scrapeUrl } from './index.js'

const NODE_EXPORTER = readFileSync(new URL('./testdata/node_exporter.txt', import.meta.url), 'utf8')

const servers: Server[] = []
after(async () => {
  for (const server of servers) {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  }
})

/** A real HTTP server on 127.0.0.1 with a free port; returns its `host:port`. */
async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler)
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** A server whose body the test changes between scrapes. */
async function exporter(initial = NODE_EXPORTER) {
  const state = { body: initial, paths: [] as string[] }
  const address = await serve((req, res) => {
    state.paths.push(req.url ?? '')
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(state.body)
  })
  return { address, state }
}

/** An address where nothing listens: a port that was free a moment ago. */
async function closedAddress(): Promise<string> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return `127.0.0.1:${port}`
}

const ready = (id: string, address?: string): Instance => ({
  id,
  state: 'ready',
  createdAt: 0,
  ...(address ? { address } : {}),
})

function source(config: Record<string, unknown>, logger?: { warn(obj: object, msg: string): void }): Source {
  const parsed: ScrapeSourceConfig = scrapeSourceSchema.parse({ kind: 'scrape', ...config })
  const s = createScrapeSource(parsed, logger ? { logger } : {})
  after(() => s.close?.())
  return s
}

const collect = (s: Source, instances: Instance[], now: number) =>
  s.collect({ group: 'web', now, instances, signal: new AbortController().signal })

describe('scrape source: config', () => {
  test('defaults: path /metrics, timeout 2s, reducer +, scale 1; numeric label values become text', () => {
    const config = scrapeSourceSchema.parse({
      kind: 'scrape',
      metrics: { rps: { family: 'http_requests_total', labels: { code: 200 } } },
    })
    assert.equal(config.path, '/metrics')
    assert.equal(config.timeout, 2000)
    assert.deepEqual(config.metrics.rps, {
      family: 'http_requests_total',
      labels: { code: '200' },
      reducer: '+',
      scale: 1,
    })
  })

  const bad: Array<[string, Record<string, unknown>, RegExp]> = [
    ['an unknown key', { metrics: { a: { family: 'x', bogus: 1 } } }, /bogus/],
    ['both family and samples', { metrics: { a: { family: 'x', samples: ['y'] } } }, /exactly one of/],
    ['neither family nor samples', { metrics: { a: { scale: 2 } } }, /exactly one of/],
    [
      'labels beside samples',
      { metrics: { a: { samples: ['x'], labels: { a: 'b' } } } },
      /goes with `family`/,
    ],
    ['an invalid family name', { metrics: { a: { family: 'node-load' } } }, /Prometheus metric name/],
    [
      'a metric name no policy can read (a hyphen)',
      { metrics: { 'mem-avail': { family: 'x' } } },
      /must be a metric name policies can read: a letter, _ or : first, then letters, digits, _, : or \. \(like mem_avail\)/,
    ],
    [
      'a metric name that starts with a digit',
      { metrics: { '1m': { family: 'x' } } },
      /metric name policies can read/,
    ],
    ['an unknown reducer', { metrics: { a: { samples: ['x', 'y'], reducer: '%' } } }, /reducer/],
    ['no metrics', { metrics: {} }, /at least one metric/],
    ['a path without a slash', { path: 'metrics', metrics: { a: { family: 'x' } } }, /path/],
    ['a bad timeout', { timeout: 'soon', metrics: { a: { family: 'x' } } }, /duration/],
  ]
  test("metric names follow the policies' rule (condition.ts METRIC_NAME): dots and colons are fine", () => {
    const config = scrapeSourceSchema.parse({
      kind: 'scrape',
      metrics: { 'cpu.busy': { family: 'x' }, 'job:queue': { family: 'y' } },
    })
    assert.deepEqual(Object.keys(config.metrics), ['cpu.busy', 'job:queue'])
  })

  for (const [name, config, message] of bad) {
    test(`rejects ${name}`, () => {
      const result = scrapeSourceSchema.safeParse({ kind: 'scrape', ...config })
      assert.equal(result.success, false)
      assert.match(JSON.stringify(result.error?.issues), message)
    })
  }
})

describe('scrape source: values', () => {
  test('gauges as they are, several samples folded with the reducer, scaled', async () => {
    const { address, state } = await exporter()
    const s = source({
      metrics: {
        load: { family: 'node_load1' },
        mem_avail: {
          samples: ['node_memory_MemFree_bytes', 'node_memory_Cached_bytes'],
          reducer: '+',
          scale: 1e-6,
        },
        mem_used: { samples: ['node_memory_MemTotal_bytes', 'node_memory_MemAvailable_bytes'], reducer: '-' },
        mem_share: {
          samples: ['node_memory_MemAvailable_bytes', 'node_memory_MemTotal_bytes'],
          reducer: '/',
        },
      },
    })
    const metrics = await collect(s, [ready('web-1', address)], 1000)
    assert.deepEqual(metrics.load, { at: 1000, perInstance: { 'web-1': 0.42 }, missing: [] })
    assert.ok(Math.abs(metrics.mem_avail!.perInstance['web-1']! - 2606.034944) < 1e-6)
    assert.equal(metrics.mem_used!.perInstance['web-1'], 4.125425664e9 - 2.837282816e9)
    assert.equal(metrics.mem_share!.perInstance['web-1'], 2.837282816e9 / 4.125425664e9)
    assert.deepEqual(state.paths, ['/metrics'])
  })

  test('a counter becomes a per-second rate: missing on the first scrape, then the increase over the elapsed time', async () => {
    const { address, state } = await exporter()
    const s = source({
      path: '/',
      metrics: {
        tx: { family: 'node_network_transmit_bytes_total', labels: { device: 'eth0' } },
        tx_all: { family: 'node_network_transmit_bytes_total' },
        load: { family: 'node_load1' },
      },
    })
    const web1 = ready('web-1', address)

    // First scrape at t=0: a rate needs two; the gauge is there at once.
    let metrics = await collect(s, [web1], 0)
    assert.deepEqual(metrics.tx?.perInstance, {})
    assert.deepEqual(metrics.tx?.missing, ['web-1'])
    assert.deepEqual(metrics.tx?.errors, ['web-1: tx: first scrape; a rate needs two'])
    assert.equal(metrics.load?.perInstance['web-1'], 0.42)

    // Ten seconds later eth0 has sent 1 MB more and eth1 2 MB more: 100 kB/s and 300 kB/s in all.
    state.body = NODE_EXPORTER.replace(
      'node_network_transmit_bytes_total{device="eth0"} 1.73450112e+09',
      'node_network_transmit_bytes_total{device="eth0"} 1.73550112e+09',
    ).replace('{device="eth1"} 3.456789e+06', '{device="eth1"} 5.456789e+06')
    metrics = await collect(s, [web1], 10_000)
    assert.equal(metrics.tx?.perInstance['web-1'], 100_000)
    assert.deepEqual(metrics.tx?.missing, [])
    assert.equal(metrics.tx?.errors, undefined)
    assert.equal(metrics.tx_all?.perInstance['web-1'], 300_000)

    // The exporter restarts: eth0's counter is back near zero; that is a restart from 0, not a negative rate.
    state.body = NODE_EXPORTER.replace('{device="eth0"} 1.73450112e+09', '{device="eth0"} 50000')
    metrics = await collect(s, [web1], 20_000)
    assert.equal(metrics.tx?.perInstance['web-1'], 5000)
  })

  test('OpenMetrics-style counters match by family name; untyped _total names are counters too', async () => {
    const { address, state } = await exporter(
      '# TYPE requests counter\nrequests_total{code="200"} 10\nrequests_total{code="500"} 1\njobs_total 4\n',
    )
    const s = source({
      metrics: {
        ok: { family: 'requests', labels: { code: '200' } },
        jobs: { family: 'jobs_total' },
        jobs_raw: { family: 'jobs_total', rate: false },
      },
    })
    await collect(s, [ready('a', address)], 0)
    state.body =
      '# TYPE requests counter\nrequests_total{code="200"} 30\nrequests_total{code="500"} 9\njobs_total 6\n'
    const metrics = await collect(s, [ready('a', address)], 2000)
    assert.equal(metrics.ok?.perInstance.a, 10)
    assert.equal(metrics.jobs?.perInstance.a, 1)
    assert.equal(metrics.jobs_raw?.perInstance.a, 6)
  })

  test('a missing family, an empty-label matcher and a division by zero', async () => {
    const { address } = await exporter('x{mode="a"} 1\nx{mode="b",extra="1"} 2\nzero 0\n')
    const s = source({
      metrics: {
        gone: { family: 'node_load1' },
        plain: { family: 'x', labels: { extra: '' } },
        ratio: { samples: ['x', 'zero'], reducer: '/' },
        filtered: { samples: [{ family: 'x', labels: { mode: 'c' } }] },
      },
    })
    const metrics = await collect(s, [ready('a', address)], 0)
    assert.deepEqual(metrics.gone?.errors, ['a: gone: no sample node_load1 in the response'])
    assert.equal(metrics.plain?.perInstance.a, 1)
    assert.deepEqual(metrics.ratio?.missing, ['a'])
    assert.match(metrics.ratio?.errors?.[0] ?? '', /^a: ratio: the value is Infinity \(division by zero\?\)$/)
    assert.deepEqual(metrics.filtered?.errors, ['a: filtered: no sample x{mode="c"} in the response'])
  })

  test('port overrides the port of the instance address', async () => {
    const { address } = await exporter()
    const port = Number(address.split(':')[1])
    const s = source({ port, metrics: { load: { family: 'node_load1' } } })
    const metrics = await collect(s, [ready('a', '127.0.0.1:1')], 0)
    assert.equal(metrics.load?.perInstance.a, 0.42)
  })
})

describe('scrape source: failures make an instance missing, never a throw', () => {
  test('unreachable, garbage, HTTP 500, too large, no address; starting instances are skipped', async () => {
    const good = await exporter()
    const refused = await closedAddress()
    const garbage = await serve((_req, res) => res.end('<html>not metrics</html>\n'))
    const broken = await serve((_req, res) => res.writeHead(500).end('oops'))
    const huge = await serve((_req, res) => {
      res.writeHead(200)
      const chunk = Buffer.alloc(1024 * 1024, 'x')
      let sent = 0
      const write = () => {
        while (sent < 11 && res.write(chunk)) sent++
        if (sent < 11) res.once('drain', write)
        else res.end()
      }
      write()
    })
    const warnings: object[] = []
    const s = source({ metrics: { load: { family: 'node_load1' } } }, { warn: (o) => warnings.push(o) })
    const instances: Instance[] = [
      ready('good', good.address),
      ready('refused', refused),
      ready('garbage', garbage),
      ready('broken', broken),
      ready('huge', huge),
      ready('nowhere'),
      ready('bad-address', 'not an address'),
      { ...ready('booting', good.address), state: 'starting' },
    ]
    const metrics = await collect(s, instances, 0)
    const load = metrics.load!
    assert.deepEqual(load.perInstance, { good: 0.42 })
    assert.deepEqual(load.missing, ['refused', 'garbage', 'broken', 'huge', 'nowhere', 'bad-address'])
    const errors = load.errors ?? []
    assert.match(errors[0]!, /^refused: http:\/\/127\.0\.0\.1:\d+\/metrics: connection refused$/)
    assert.match(
      errors[1]!,
      /^garbage: http:\/\/.*: line 1: expected a metric name: "<html>not metrics<\/html>"$/,
    )
    assert.match(errors[2]!, /^broken: http:\/\/.*: HTTP 500$/)
    assert.match(errors[3]!, /^huge: http:\/\/.*: response larger than the 10 MB limit$/)
    assert.equal(errors[4], 'nowhere: no address yet')
    assert.equal(errors[5], 'bad-address: address "not an address" is not host:port')

    // A failure is logged when it starts, not again while it lasts.
    assert.equal(warnings.length, 6)
    await collect(s, instances.slice(0, 2), 1000)
    assert.equal(warnings.length, 6)
  })

  test('an instance that does not answer within the timeout', async () => {
    const slow = await serve(() => {}) // accepts the request and never answers
    const s = source({ timeout: '200ms', metrics: { load: { family: 'node_load1' } } })
    const metrics = await collect(s, [ready('slow', slow)], 0)
    assert.deepEqual(metrics.load?.missing, ['slow'])
    assert.match(
      metrics.load?.errors?.[0] ?? '',
      /^slow: http:\/\/127\.0\.0\.1:\d+\/metrics: no complete response within 200ms$/,
    )
  })

  test('a declared Content-Length over the limit is refused before reading', async () => {
    const address = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': String(20 * 1024 * 1024) })
      res.write('node_load1 1\n')
    })
    const s = source({ metrics: { load: { family: 'node_load1' } } })
    const metrics = await collect(s, [ready('a', address)], 0)
    assert.match(metrics.load?.errors?.[0] ?? '', /larger than the 10 MB limit/)
  })
})

describe('scrapeUrl', () => {
  const cases: Array<[string | undefined, number | undefined, string | undefined]> = [
    ['10.0.0.5:8080', undefined, 'http://10.0.0.5:8080/metrics'],
    ['10.0.0.5:8080', 9110, 'http://10.0.0.5:9110/metrics'],
    ['10.0.0.5', 9110, 'http://10.0.0.5:9110/metrics'],
    ['10.0.0.5', undefined, undefined],
    ['[::1]:80', 9100, 'http://[::1]:9100/metrics'],
    ['[fd00::5]', 9100, 'http://[fd00::5]:9100/metrics'],
    ['evil.example/x?', 9100, undefined],
    [undefined, 9100, undefined],
  ]
  for (const [address, port, want] of cases) {
    test(`${address} with port ${port} → ${want}`, () =>
      assert.equal(scrapeUrl(address, port, '/metrics'), want))
  }
})
