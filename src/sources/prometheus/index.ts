/**
 * The `prometheus` source: PromQL over Prometheus's HTTP API (or anything that speaks it:
 * Thanos, Mimir, VictoriaMetrics). Each metric is a query, instant or over a range, whose
 * template may name the group, a window and the group's instances. A metric is either one value
 * per instance (the series matched to instances by a label) or one value for the group.
 * An empty result, NaN or ±Inf is "no data" (missing, with the reason), never zero.
 *
 * ```yaml
 * sources:
 *   - kind: prometheus
 *     url: http://127.0.0.1:9090
 *     metrics:
 *       cpu:                                  # one value per instance
 *         query: avg by (instance) (rate(process_cpu_seconds_total{job="{{group}}"}[{{window}}]))
 *         per_instance: instance              # the label; matched to instance ids/addresses
 *       rps:                                  # the group's total, divided among instances by policies
 *         query: sum(rate(http_requests_total{job="{{group}}"}[{{window}}]))
 *         value: total
 *       p99:                                  # a group value over the last 5 minutes
 *         query: histogram_quantile(0.99, sum by (le) (rate(latency_bucket[1m])))
 *         range: 5m
 *         reduce: max
 * ```
 */
import { z } from 'zod'
import { METRIC_NAME } from '../../core/condition.js'
import { errorMessage } from '../../core/errors.js'
import { duration } from '../../core/schema.js'
import type { CollectContext, Instance, MetricReading, Metrics, Source } from '../../core/types.js'
import { emptyReading, FailureMemory, miss, settle } from '../reading.js'
import { PrometheusClient } from './client.js'
import { type QueryOutcome, readResponse, type Reducer } from './result.js'
import { PLACEHOLDERS, renderQuery, unknownPlaceholders } from './template.js'

export { promDuration, renderQuery } from './template.js'
export { readResponse } from './result.js'

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const placeholderList = PLACEHOLDERS.map((p) => `{{${p}}}`).join(', ')

const matchSchema = z
  .enum(['auto', 'id', 'address', 'host'])
  .describe(
    "How a label value finds its instance: `id` (the instance's id), `address` (its `host:port`), `host` (the host of its address: node_exporter's `instance` label names another port). `auto` tries id, then address, then host when only one instance has that host.",
  )

const perInstanceSchema = z
  .union([
    z.string().regex(LABEL_NAME, 'must be a label name like instance'),
    z
      .object({
        label: z.string().regex(LABEL_NAME, 'must be a label name like instance').describe('The label.'),
        match: matchSchema.default('auto'),
      })
      .strict(),
  ])
  .transform((v) => (typeof v === 'string' ? { label: v, match: 'auto' as const } : v))
  .describe(
    'Make one value per instance: the label whose value names the instance (`instance`), or `{ label, match }`. Each ready instance needs exactly one series; without it the instance is missing.',
  )

const metricSchema = z
  .object({
    query: z
      .string()
      .min(1, 'must not be empty')
      .superRefine((q, ctx) => {
        const unknown = unknownPlaceholders(q)
        if (unknown.length) {
          ctx.addIssue({
            code: 'custom',
            message: `unknown placeholder ${unknown.join(', ')}; the query may use ${placeholderList}`,
          })
        }
      })
      .describe(
        `The PromQL expression. Placeholders: ${placeholderList} (the group's name; \`window\` as a PromQL duration; the ready instances' ids or addresses as a regex alternation for \`=~"…"\`).`,
      ),
    window: duration('1m')
      .refine((ms) => ms >= 1000, { message: 'must be at least 1s' })
      .describe('What `{{window}}` becomes, e.g. in `rate(x[{{window}}])`.'),
    per_instance: perInstanceSchema.optional(),
    value: z
      .enum(['group', 'total'])
      .optional()
      .describe(
        'Without `per_instance`: `group` (default) is a value of the whole group that is never divided among instances (a latency, a queue length); `total` is a sum over the instances (requests per second) that per-instance policies divide by the number of instances.',
      ),
    range: duration()
      .refine((ms) => ms >= 1000, { message: 'must be at least 1s' })
      .optional()
      .describe(
        'Query the last `range` (a range query) and reduce each series over time with `reduce`. Default: an instant query.',
      ),
    step: duration()
      .refine((ms) => ms >= 1, { message: 'must be longer than 0' })
      .optional()
      .describe('With `range`: the resolution of the range query. Default: 15s, or `range` when shorter.'),
    reduce: z
      .enum(['mean', 'median', 'min', 'max', 'sum', 'last'])
      .default('mean')
      .describe("With `range`: how each series' values over time become one."),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.per_instance && m.value !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['value'],
        message: 'goes without `per_instance` (a per-instance metric has no group value)',
      })
    }
    if (m.step !== undefined && m.range === undefined) {
      ctx.addIssue({ code: 'custom', path: ['step'], message: 'goes with `range`' })
    }
    if (m.step !== undefined && m.range !== undefined && m.step > m.range) {
      ctx.addIssue({ code: 'custom', path: ['step'], message: 'must not be longer than `range`' })
    }
  })
  .describe('One Tide metric read with a PromQL query.')

export const prometheusSourceSchema = z
  .object({
    kind: z.literal('prometheus').describe('PromQL queries over the Prometheus HTTP API.'),
    url: z
      .url({ protocol: /^https?$/, error: 'must be an http(s) URL like "http://127.0.0.1:9090"' })
      .describe('The Prometheus base URL; a path prefix is kept (`http://host/prometheus`).'),
    headers: z
      .record(z.string(), z.string())
      .optional()
      .describe('Extra request headers, e.g. `{ Authorization: "Bearer ${PROM_TOKEN}" }`.'),
    timeout: duration('5s')
      .refine((ms) => ms > 0, { message: 'must be longer than 0' })
      .describe(
        'How long one query may take (one retry on 429/502/503/504 included); past it the metric is missing.',
      ),
    metrics: z
      .record(
        z
          .string()
          .regex(
            METRIC_NAME,
            'must be a metric name policies can read: a letter, _ or : first, then letters, digits, _, : or . (like cpu)',
          ),
        metricSchema,
      )
      .refine((metrics) => Object.keys(metrics).length > 0, 'needs at least one metric')
      .describe('The metrics this source provides, by the name policies use.'),
  })
  .strict()
  .describe('Queries Prometheus.')

export type PrometheusSourceConfig = z.output<typeof prometheusSourceSchema>
type MetricConfig = PrometheusSourceConfig['metrics'][string]

export interface PrometheusSourceDeps {
  logger?: { warn(obj: object, msg: string): void }
}

export function createPrometheusSource(
  config: PrometheusSourceConfig,
  deps: PrometheusSourceDeps = {},
): Source {
  const client = new PrometheusClient(config.url, config.timeout, config.headers)
  const failures = new FailureMemory()

  async function query(metric: MetricConfig, ctx: CollectContext, ready: Instance[]): Promise<QueryOutcome> {
    const expr = renderQuery(metric.query, {
      group: ctx.group,
      window: metric.window,
      ids: ready.map((i) => i.id),
      addresses: ready.flatMap((i) => (i.address ? [i.address] : [])),
    })
    const time = ctx.now / 1000
    try {
      if (metric.range === undefined) {
        return readResponse(
          await client.post('query', { query: expr, time: String(time) }, ctx.signal),
          false,
        )
      }
      const step = metric.step ?? Math.min(15_000, metric.range)
      const body = await client.post(
        'query_range',
        {
          query: expr,
          start: String(time - metric.range / 1000),
          end: String(time),
          step: String(step / 1000),
        },
        ctx.signal,
      )
      return readResponse(body, true, metric.reduce as Reducer)
    } catch (err) {
      return { ok: false, error: errorMessage(err) }
    }
  }

  function note(ctx: CollectContext, name: string, error: string | undefined): void {
    if (!failures.changed(name, error)) return
    deps.logger?.warn({ group: ctx.group, metric: name, cause: error }, `prometheus metric ${name}: ${error}`)
  }

  return {
    kind: 'prometheus',
    async collect(ctx: CollectContext): Promise<Metrics> {
      const ready = ctx.instances.filter((i) => i.state === 'ready')
      const entries = await Promise.all(
        Object.entries(config.metrics).map(async ([name, metric]): Promise<[string, MetricReading]> => {
          const reading =
            metric.per_instance === undefined
              ? groupReading(metric, await query(metric, ctx, ready), ctx.now)
              : ready.length === 0
                ? { at: ctx.now, perInstance: {}, missing: [] }
                : perInstanceReading(metric.per_instance, await query(metric, ctx, ready), ready, ctx.now)
          note(ctx, name, reading.errors?.join('; '))
          return [name, reading]
        }),
      )
      return Object.fromEntries(entries)
    },
    async close() {
      await client.close()
    },
  }
}

/** One value for the group, as `group` or `total`; anything but exactly one number is no data. */
export function groupReading(
  metric: { value?: 'group' | 'total' },
  outcome: QueryOutcome,
  at: number,
): MetricReading {
  const none = (error: string): MetricReading => ({ at, perInstance: {}, missing: [], errors: [error] })
  if (!outcome.ok) return none(outcome.error)
  let value: number | undefined
  if (outcome.kind === 'scalar') {
    value = outcome.value
  } else {
    if (outcome.series.length === 0) return none('the query returned no series (no data)')
    if (outcome.series.length > 1) {
      return none(
        `the query returned ${outcome.series.length} series, and a group value needs one: aggregate it (sum(…), max(…)) or set per_instance`,
      )
    }
    value = outcome.series[0]!.value
  }
  if (value === undefined) return none('the value is NaN or infinite (no data)')
  return {
    at,
    perInstance: {},
    missing: [],
    ...(metric.value === 'total' ? { total: value } : { group: value }),
  }
}

/** One value per ready instance, from the series whose label names it. */
export function perInstanceReading(
  by: { label: string; match: 'auto' | 'id' | 'address' | 'host' },
  outcome: QueryOutcome,
  ready: Instance[],
  at: number,
): MetricReading {
  const reading = emptyReading(at)
  if (!outcome.ok || outcome.kind === 'scalar') {
    const why = outcome.ok
      ? 'the query returned a scalar; per_instance needs series with a label'
      : outcome.error
    for (const instance of ready) miss(reading, instance, why)
    return reading
  }
  const found = new Map<string, number[]>()
  for (const s of outcome.series) {
    const key = s.labels[by.label]
    if (key === undefined) continue
    const instance = findInstance(key, ready, by.match)
    if (!instance) continue
    const list = found.get(instance.id) ?? []
    list.push(s.value ?? Number.NaN)
    found.set(instance.id, list)
  }
  for (const instance of ready) {
    const values = found.get(instance.id) ?? []
    if (values.length === 0) miss(reading, instance, `no series whose ${by.label} label names it (no data)`)
    else if (values.length > 1) {
      miss(reading, instance, `${values.length} series name it; aggregate the query by (${by.label})`)
    } else if (!Number.isFinite(values[0]!)) miss(reading, instance, 'the value is NaN or infinite (no data)')
    else reading.perInstance[instance.id] = values[0]!
  }
  return settle(reading)
}

function hostOf(address: string): string {
  const m = /^\[?([^\]]*?)\]?:\d+$/.exec(address)
  return m ? m[1]! : address
}

/** The instance a label value names (see `match`). */
export function findInstance(
  value: string,
  instances: Instance[],
  match: 'auto' | 'id' | 'address' | 'host',
): Instance | undefined {
  const byId = () => instances.find((i) => i.id === value)
  const byAddress = () => instances.find((i) => i.address === value)
  const byHost = () => {
    const host = hostOf(value)
    const same = instances.filter((i) => i.address !== undefined && hostOf(i.address) === host)
    return same.length === 1 ? same[0] : undefined
  }
  switch (match) {
    case 'id':
      return byId()
    case 'address':
      return byAddress()
    case 'host':
      return byHost()
    case 'auto':
      return byId() ?? byAddress() ?? byHost()
  }
}
