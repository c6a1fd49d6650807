/**
 * The `scrape` source: reads each instance's Prometheus text endpoint (do-agent, node_exporter,
 * an app's own /metrics) and turns the families into named Tide metrics, one value per instance.
 * It covers seed 002 (do-scaler), which scraped do-agent on :9110 and folded several samples
 * per droplet with a reducer (seeds.md §2.3–2.4), without its failure modes: there it read only
 * the first sample of a name, ignored labels, waited forever on a silent droplet and crashed on
 * a missing one; here every instance is scraped at once with a timeout, samples are selected
 * by labels, and anything that goes wrong makes that one instance `missing` with a reason.
 *
 * ```yaml
 * sources:
 *   - kind: scrape
 *     port: 9110          # do-agent; default: the port of the instance's address
 *     path: /             # do-scaler scraped the root path
 *     timeout: 2s
 *     metrics:
 *       load: { family: node_load1 }
 *       rps: { family: http_requests_total, labels: { code: "200" } }
 *       mem_avail: { samples: [node_memory_MemFree_bytes, node_memory_Cached_bytes], reducer: "+", scale: 1e-6 }
 * ```
 */
import { Agent, request } from 'undici'
import { z } from 'zod'
import { METRIC_NAME } from '../../core/condition.js'
import { formatDuration } from '../../core/duration.js'
import { errorMessage } from '../../core/errors.js'
import { networkFailure } from '../../core/network.js'
import { duration, portNumber, splitHostPort } from '../../core/schema.js'
import type { CollectContext, Instance, MetricReading, Metrics, Source } from '../../core/types.js'
import { type MetricFamily, parseExposition, type Sample } from './parse.js'
import { emptyReading, FailureMemory, forgetGone, miss, settleAll } from '../reading.js'

/** Bigger than any sane exposition (node_exporter serves about 100 kB); protects Tide's memory. */
export const MAX_RESPONSE_BYTES = 10 * 1024 * 1024

/** Prometheus family and sample names (the exposition's rule, without `.`). */
const FAMILY_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/

const familyName = z
  .string()
  .regex(FAMILY_NAME, 'must be a Prometheus metric name like node_load1')
  .describe(
    'A family or sample name as it appears in the exposition. `x` also matches the samples `x_total` of a ' +
      'counter (seed 002 and OpenMetrics name counter families without `_total`).',
  )

// YAML reads `code: 200` as a number; a label value is always text, so numbers and booleans are accepted as text.
const labelMatchers = z
  .record(
    z.string().regex(LABEL_NAME, 'must be a label name like device'),
    z.union([z.string(), z.number(), z.boolean()]).transform(String),
  )
  .describe(
    'Only samples whose labels have these exact values; `""` matches a missing label (as in PromQL). ' +
      'Several matching samples are summed.',
  )

const sampleSelector = z
  .union([
    familyName,
    z
      .object({ family: familyName, labels: labelMatchers.optional() })
      .strict()
      .describe('A family with label matchers.'),
  ])
  .describe('A family name, or `{ family, labels }`.')

const metricSchema = z
  .object({
    family: familyName.optional().describe('The one family this metric reads (or use `samples`).'),
    labels: labelMatchers.optional(),
    samples: z
      .array(sampleSelector)
      .min(1)
      .optional()
      .describe('Several families folded left to right with `reducer` (seed 002), e.g. MemFree + Cached.'),
    reducer: z
      .enum(['+', '-', '*', '/'])
      .default('+')
      .describe('How `samples` combine, left to right: `+`, `-`, `*` or `/`.'),
    scale: z.number().default(1).describe('Multiplies the result, to change units (bytes → MB: `1e-6`).'),
    rate: z
      .boolean()
      .optional()
      .describe(
        'Report the per-second rate between scrapes instead of the value. Default: yes for counters (TYPE counter, ' +
          'untyped names ending in `_total`, and the `_sum`, `_count` and `_bucket` of histograms and summaries).',
      ),
  })
  .strict()
  .superRefine((metric, ctx) => {
    if ((metric.family === undefined) === (metric.samples === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'needs exactly one of `family` or `samples`' })
    }
    if (metric.labels !== undefined && metric.family === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['labels'],
        message: 'goes with `family`; in `samples` use `{ family, labels }`',
      })
    }
  })
  .describe('One Tide metric read from the exposition.')

export const scrapeSourceSchema = z
  .object({
    kind: z
      .literal('scrape')
      .describe('Prometheus text format from each instance (do-agent, node_exporter, /metrics).'),
    port: portNumber()
      .optional()
      .describe(
        "The port to scrape (do-agent: 9110, node_exporter: 9100). Default: the port of the instance's address.",
      ),
    path: z.string().startsWith('/').default('/metrics').describe('The HTTP path of the metrics endpoint.'),
    timeout: duration('2s').describe(
      'How long one instance may take to answer; a slower one counts as missing.',
    ),
    headers: z
      .record(z.string(), z.string())
      .optional()
      // the config's ${ENV} interpolation, shown to users
      .describe('Extra request headers, e.g. `{ Authorization: "Bearer ${METRICS_TOKEN}" }`.'),
    metrics: z
      .record(
        // The rule policies name metrics by (condition.ts), so every metric here can be used.
        z
          .string()
          .regex(
            METRIC_NAME,
            'must be a metric name policies can read: a letter, _ or : first, then letters, digits, _, : or . (like mem_avail)',
          ),
        metricSchema,
      )
      .refine((metrics) => Object.keys(metrics).length > 0, 'needs at least one metric')
      .describe('The metrics this source provides, by the name policies use.'),
  })
  .strict()
  .describe('Scrapes each ready instance over HTTP.')

export type ScrapeSourceConfig = z.output<typeof scrapeSourceSchema>

export interface ScrapeSourceDeps {
  logger?: { warn(obj: object, msg: string): void }
}

interface Selector {
  family: string
  labels: Record<string, string>
}

interface MetricPlan {
  name: string
  selectors: Selector[]
  reducer: '+' | '-' | '*' | '/'
  scale: number
  rate?: boolean
}

/** Counter values seen at an instance's last successful scrape, by series, for rates. */
interface CounterMemory {
  at: number
  series: Map<string, number>
}

type ScrapeResult = { families: MetricFamily[] } | { error: string }

/**
 * Builds the source. Each `collect` scrapes every `ready` instance once, concurrently (instances
 * still starting have no endpoint yet: they are neither values nor missing), and evaluates every
 * metric on that one response.
 */
export function createScrapeSource(config: ScrapeSourceConfig, deps: ScrapeSourceDeps = {}): Source {
  const plans: MetricPlan[] = Object.entries(config.metrics).map(([name, m]) => ({
    name,
    selectors:
      m.family !== undefined
        ? [{ family: m.family, labels: m.labels ?? {} }]
        : (m.samples ?? []).map((s) =>
            typeof s === 'string' ? { family: s, labels: {} } : { family: s.family, labels: s.labels ?? {} },
          ),
    reducer: m.reducer,
    scale: m.scale,
    ...(m.rate === undefined ? {} : { rate: m.rate }),
  }))
  // One connection pool for this source, kept alive between scrapes and closed with the source.
  const agent = new Agent({ connect: { timeout: config.timeout }, keepAliveTimeout: 60_000 })
  const counters = new Map<string, CounterMemory>()
  const failures = new FailureMemory()

  async function scrape(instance: Instance, signal: AbortSignal): Promise<ScrapeResult> {
    const url = scrapeUrl(instance.address, config.port, config.path)
    if (url === undefined) {
      return {
        error: instance.address
          ? `address ${JSON.stringify(instance.address)} is not host:port`
          : 'no address yet',
      }
    }
    const timeout = AbortSignal.timeout(config.timeout)
    try {
      const text = await fetchText(url, AbortSignal.any([signal, timeout]))
      return { families: parseExposition(text) }
    } catch (err) {
      let cause: string
      if (timeout.aborted) cause = `no complete response within ${formatDuration(config.timeout)}`
      else if (signal.aborted) cause = 'evaluation cancelled'
      else cause = describeFailure(err)
      return { error: `${url}: ${cause}` }
    }
  }

  async function fetchText(url: string, signal: AbortSignal): Promise<string> {
    const res = await request(url, {
      dispatcher: agent,
      signal,
      headers: { accept: 'text/plain;version=0.0.4;q=1,*/*;q=0.1', ...config.headers },
    })
    if (res.statusCode !== 200) {
      discard(res.body)
      throw new Error(`HTTP ${res.statusCode}`)
    }
    const declared = Number(res.headers['content-length'])
    if (declared > MAX_RESPONSE_BYTES) {
      discard(res.body)
      throw new Error(
        `response of ${declared} bytes is larger than the ${MAX_RESPONSE_BYTES / 1048576} MB limit`,
      )
    }
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length
      if (size > MAX_RESPONSE_BYTES) {
        discard(res.body)
        throw new Error(`response larger than the ${MAX_RESPONSE_BYTES / 1048576} MB limit`)
      }
      chunks.push(chunk as Buffer)
    }
    return Buffer.concat(chunks).toString('utf8')
  }

  /** Logs an instance's failure when it starts or changes, not on every evaluation. */
  function noteOutcome(ctx: CollectContext, instance: Instance, result: ScrapeResult): void {
    const error = 'error' in result ? result.error : undefined
    if (failures.changed(instance.id, error)) {
      deps.logger?.warn({ group: ctx.group, instance: instance.id, cause: error }, 'cannot scrape instance')
    }
  }

  return {
    kind: 'scrape',
    async collect(ctx: CollectContext): Promise<Metrics> {
      const instances = ctx.instances.filter((i) => i.state === 'ready')
      const results = await Promise.all(instances.map((i) => scrape(i, ctx.signal)))
      const readings = new Map<string, MetricReading>()
      for (const plan of plans) readings.set(plan.name, emptyReading(ctx.now))
      instances.forEach((instance, n) => {
        const result = results[n]!
        noteOutcome(ctx, instance, result)
        if ('error' in result) {
          for (const reading of readings.values()) miss(reading, instance, result.error)
          return
        }
        const previous = counters.get(instance.id)
        const next: CounterMemory = { at: ctx.now, series: new Map() }
        for (const plan of plans) {
          const reading = readings.get(plan.name)!
          const outcome = evaluate(plan, result.families, ctx.now, previous, next.series)
          if (typeof outcome === 'number') reading.perInstance[instance.id] = outcome
          else miss(reading, instance, `${plan.name}: ${outcome.error}`)
        }
        counters.set(instance.id, next)
      })
      forgetGone(ctx.instances, counters, failures.last)
      return settleAll(readings)
    },
    async close() {
      await agent.close()
    },
  }
}

/** Drops a response body unread. Destroying emits an "aborted" error, which nobody needs to hear. */
function discard(body: { on(event: 'error', listener: () => void): unknown; destroy(): unknown }): void {
  body.on('error', () => {})
  body.destroy()
}

/**
 * The URL of an instance's endpoint: the host of its `host:port` address with the configured
 * port (else the address's own). An address without a port is accepted when `port` is set.
 */
export function scrapeUrl(
  address: string | undefined,
  port: number | undefined,
  path: string,
): string | undefined {
  if (!address) return undefined
  let host: string
  let ownPort: number | undefined
  try {
    const split = splitHostPort(address)
    host = split.host
    ownPort = split.port
  } catch {
    if (port === undefined || /[\s/@?#]/.test(address)) return undefined
    host = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address
  }
  const hostPart = host.includes(':') ? `[${host}]` : host
  return `http://${hostPart}:${port ?? ownPort}${path}`
}

/**
 * One metric for one instance: each selector's value (summed over its matching samples, a
 * per-second rate for counters), folded with the reducer, times `scale`. Returns the number or
 * why there is none. Writes the counter values it reads into `nextSeries`.
 */
function evaluate(
  plan: MetricPlan,
  families: MetricFamily[],
  now: number,
  previous: CounterMemory | undefined,
  nextSeries: Map<string, number>,
): number | { error: string } {
  const values: number[] = []
  let firstScrape = false
  for (const selector of plan.selectors) {
    const matches = findSamples(families, selector)
    if (matches.length === 0) return { error: `no sample ${describeSelector(selector)} in the response` }
    const asRate = plan.rate ?? matches.every(({ family, sample }) => isCounter(family, sample))
    if (!asRate) {
      values.push(matches.reduce((sum, { sample }) => sum + sample.value, 0))
      continue
    }
    // Rate per series, then summed, so a series that disappears does not look like a reset.
    // A series with no previous value (first scrape, new label set) contributes nothing yet.
    let increase = 0
    let known = 0
    for (const { sample } of matches) {
      const key = seriesKey(sample)
      nextSeries.set(key, sample.value)
      const before = previous?.series.get(key)
      if (before === undefined) continue
      known++
      // A counter that went down was restarted from zero: all of its value is new.
      increase += sample.value >= before ? sample.value - before : sample.value
    }
    if (known === 0) {
      firstScrape = true
      continue
    }
    const elapsed = (now - previous!.at) / 1000
    if (elapsed <= 0) return { error: 'no time has passed since the previous scrape' }
    values.push(increase / elapsed)
  }
  if (firstScrape) return { error: 'first scrape; a rate needs two' }
  let result = values[0]!
  for (let i = 1; i < values.length; i++) result = reduce(plan.reducer, result, values[i]!)
  result *= plan.scale
  if (!Number.isFinite(result)) {
    return {
      error: `the value is ${result}${plan.reducer === '/' && values.length > 1 ? ' (division by zero?)' : ''}`,
    }
  }
  return result
}

function reduce(op: MetricPlan['reducer'], a: number, b: number): number {
  switch (op) {
    case '+':
      return a + b
    case '-':
      return a - b
    case '*':
      return a * b
    case '/':
      return a / b
  }
}

function findSamples(
  families: MetricFamily[],
  selector: Selector,
): Array<{ family: MetricFamily; sample: Sample }> {
  const out: Array<{ family: MetricFamily; sample: Sample }> = []
  const name = selector.family
  const totalName = `${name}_total`
  for (const family of families) {
    // Cheap skip: a family's samples all start with its name.
    if (!name.startsWith(family.name) && family.name !== totalName) continue
    for (const sample of family.samples) {
      const named = sample.name === name || (family.type === 'counter' && sample.name === totalName)
      if (named && labelsMatch(sample.labels, selector.labels)) out.push({ family, sample })
    }
  }
  return out
}

function labelsMatch(labels: Record<string, string>, wanted: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(wanted)) {
    if ((Object.hasOwn(labels, k) ? labels[k] : '') !== v) return false
  }
  return true
}

/** Cumulative samples: counters, untyped `_total`, and histogram and summary `_sum`/`_count`/`_bucket`. */
function isCounter(family: MetricFamily, sample: Sample): boolean {
  switch (family.type) {
    case 'counter':
      return true
    case 'gauge':
      return false
    case 'histogram':
      return true
    case 'summary':
      return sample.name !== family.name // the quantiles are gauges
    case 'untyped':
      return sample.name.endsWith('_total')
  }
}

function seriesKey(sample: Sample): string {
  const labels = Object.keys(sample.labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(sample.labels[k])}`)
  return `${sample.name}{${labels.join(',')}}`
}

function describeSelector(selector: Selector): string {
  const labels = Object.entries(selector.labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`)
  return labels.length === 0 ? selector.family : `${selector.family}{${labels.join(',')}}`
}

/** A network failure in the words a person reads ("connection refused"), else the error's message. */
function describeFailure(err: unknown): string {
  return networkFailure(err) ?? errorMessage(err)
}
