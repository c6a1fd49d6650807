/**
 * The `digitalocean` source: droplet metrics from the DigitalOcean Monitoring API
 * (`/v2/monitoring/metrics/droplet/*`), as seed 000 reads them, for the instances the group's
 * target reports (an instance id is a droplet id; the `digitalocean` target's are).
 *
 * ```yaml
 * sources:
 *   - kind: digitalocean
 *     window: 4m                       # look-back, seed 000's
 *     metrics: [load_1, memory_free, bandwidth_out]
 * ```
 *
 * Each metric is the mean of every sample in the window, per droplet (seed 000); policies
 * combine droplets (`aggregate: mean` is seed 000's cluster average). Units:
 *
 * | metric | unit | API call |
 * |---|---|---|
 * | load_1, load_5, load_15 | load average (not divided by vCPUs) | load_1, load_5, load_15 |
 * | memory_free, memory_available, memory_total, memory_cached | MB = 10^6 bytes | memory_* |
 * | cpu | percent of all vCPUs busy, 0–100, from the per-mode CPU seconds over the window | cpu |
 * | bandwidth_out, bandwidth_in | Mbps (megabits/s), public + private interfaces | bandwidth ×2 |
 *
 * Missing data (seed 000's validity, made per metric): an API error, or no series, or an empty
 * series for a load, memory or cpu metric puts the droplet in that metric's `missing`, which
 * blocks any scale-down. Bandwidth: an interface with no series counts 0 (a droplet that has
 * just come up has sent nothing, as in seed 000); an API error makes it missing (seed 000
 * ignored the error, and counted the interface as 0).
 *
 * The API has one point a minute and allows 250 requests a minute, so a droplet's metrics are
 * fetched at most once per `refresh` (default 60s) and reused in between.
 *
 * Token and endpoint: `token` and `api_url`, else DIGITALOCEAN_TOKEN and DIGITALOCEAN_API_URL,
 * as the target. A config that gives the target `token: ${MY_TOKEN}` gives the source the same.
 */
import { z } from 'zod'
import { errorMessage } from '../../core/errors.js'
import { duration } from '../../core/schema.js'
import type { CollectContext, Instance, MetricReading, Metrics, Source } from '../../core/types.js'
import { emptyReading, FailureMemory, forgetGone, miss, settleAll } from '../reading.js'
import {
  type ClientLogger,
  createDigitalOceanClient,
  type DigitalOceanClient,
  type DropletMetricName,
  type MetricsResponse,
} from '../../targets/digitalocean/client.js'

export const DIGITALOCEAN_METRICS = [
  'load_1',
  'load_5',
  'load_15',
  'memory_free',
  'memory_available',
  'memory_total',
  'memory_cached',
  'cpu',
  'bandwidth_out',
  'bandwidth_in',
] as const

export type DigitalOceanMetric = (typeof DIGITALOCEAN_METRICS)[number]

export const digitaloceanSourceSchema = z
  .object({
    kind: z.literal('digitalocean').describe('Droplet metrics from the DigitalOcean Monitoring API.'),
    token: z
      .string()
      .min(1)
      .optional()
      .describe('API token (read scope is enough). Default: the DIGITALOCEAN_TOKEN environment variable.'),
    api_url: z
      .url({ protocol: /^https?$/, message: 'must be an http(s) URL' })
      .optional()
      .describe('The API endpoint. Default: DIGITALOCEAN_API_URL, else https://api.digitalocean.com.'),
    window: duration('4m')
      .refine((ms) => ms >= 60_000, {
        message: 'window must be at least 1m (the API has one point a minute)',
      })
      .describe(
        'Look-back: each metric is the mean of the samples in this window, per droplet (seed 000: 4m).',
      ),
    refresh: duration('60s').describe(
      'Fetch a droplet’s metrics at most this often; readings in between reuse the last answer.',
    ),
    metrics: z
      .array(z.enum(DIGITALOCEAN_METRICS))
      .min(1)
      .default(['load_1', 'memory_free', 'bandwidth_out'])
      .describe(
        'Metrics to read: load_1/5/15, memory_free/available/total/cached (MB), cpu (% busy), bandwidth_out/in (Mbps, public + private). Default: seed 000’s three.',
      ),
    timeout: duration('30s').describe('How long one API request may take before it is retried.'),
  })
  .strict()
  .describe('Reads the Monitoring API for each ready droplet of the group.')

export type DigitalOceanSourceConfig = z.output<typeof digitaloceanSourceSchema>

export interface DigitalOceanSourceDeps {
  logger?: ClientLogger
  /** A client to use instead of one built from the config (tests, the drop-in mode). */
  client?: DigitalOceanClient
}

type Outcome = number | { error: string }

interface Cached {
  at: number
  values: Partial<Record<DigitalOceanMetric, Outcome>>
}

export function createDigitalOceanSource(
  config: DigitalOceanSourceConfig,
  deps: DigitalOceanSourceDeps = {},
): Source & { readDroplet(id: number, now: number, signal?: AbortSignal): Promise<Cached['values']> } {
  let client = deps.client
  const getClient = () =>
    (client ??= createDigitalOceanClient({
      token: config.token,
      apiUrl: config.api_url,
      timeout: config.timeout,
      logger: deps.logger,
    }))
  const cache = new Map<string, Cached>()
  const failures = new FailureMemory()

  /** Every configured metric of one droplet, now. */
  async function readDroplet(id: number, now: number, signal?: AbortSignal): Promise<Cached['values']> {
    const end = Math.floor(now / 1000)
    const start = end - Math.floor(config.window / 1000)
    const api = getClient()
    const values: Cached['values'] = {}
    const query = (metric: DropletMetricName, extra: Record<string, string> = {}) =>
      api.getDropletMetric(metric, { hostId: id, start, end, ...extra }, signal)
    await Promise.all(
      config.metrics.map(async (metric) => {
        try {
          values[metric] = await readMetric(metric, query)
        } catch (err) {
          values[metric] = { error: errorMessage(err) }
        }
      }),
    )
    return values
  }

  return {
    kind: 'digitalocean',
    readDroplet,
    async collect(ctx: CollectContext): Promise<Metrics> {
      const ready = ctx.instances.filter((i) => i.state === 'ready')
      const readings = new Map<DigitalOceanMetric, MetricReading>()
      for (const m of config.metrics) readings.set(m, emptyReading(ctx.now))
      const results = await Promise.all(
        ready.map(async (instance): Promise<[Instance, Cached['values']]> => {
          const id = Number(instance.id)
          if (!Number.isInteger(id) || id <= 0) {
            const error = { error: `instance id ${JSON.stringify(instance.id)} is not a droplet id` }
            return [instance, Object.fromEntries(config.metrics.map((m) => [m, error]))]
          }
          const hit = cache.get(instance.id)
          if (hit && ctx.now - hit.at < config.refresh) return [instance, hit.values]
          const values = await readDroplet(id, ctx.now, ctx.signal)
          const failed = Object.values(values).some((v) => typeof v !== 'number')
          // A failed read is retried at the next evaluation, not after `refresh`.
          if (!failed) cache.set(instance.id, { at: ctx.now, values })
          else cache.delete(instance.id)
          return [instance, values]
        }),
      )
      for (const [instance, values] of results) {
        const errors: string[] = []
        for (const metric of config.metrics) {
          const reading = readings.get(metric)!
          const v = values[metric]
          if (typeof v === 'number') reading.perInstance[instance.id] = v
          else {
            const cause = `${metric}: ${v?.error ?? 'not read'}`
            miss(reading, instance, cause)
            errors.push(`${instance.id}: ${cause}`)
          }
        }
        const summary = errors.join('; ')
        if (failures.changed(instance.id, summary || undefined)) {
          deps.logger?.warn(
            { group: ctx.group, instance: instance.id, cause: summary },
            'droplet metrics missing',
          )
        }
      }
      forgetGone(ctx.instances, cache, failures.last)
      return settleAll(readings)
    },
  }
}

type Query = (metric: DropletMetricName, extra?: Record<string, string>) => Promise<MetricsResponse>

/** One metric of one droplet over the window, in the units documented above. */
async function readMetric(metric: DigitalOceanMetric, query: Query): Promise<Outcome> {
  switch (metric) {
    case 'load_1':
    case 'load_5':
    case 'load_15':
      return meanOf(await query(metric), 1)
    case 'memory_free':
    case 'memory_available':
    case 'memory_total':
    case 'memory_cached':
      return meanOf(await query(metric), 1e-6)
    case 'cpu':
      return cpuBusy(await query('cpu'))
    case 'bandwidth_out':
    case 'bandwidth_in': {
      const direction = metric === 'bandwidth_out' ? 'outbound' : 'inbound'
      const [pub, priv] = await Promise.all([
        query('bandwidth', { interface: 'public', direction }),
        query('bandwidth', { interface: 'private', direction }),
      ])
      // No series: the interface sent nothing yet (seed 000 counts 0).
      const a = meanOf(pub, 1)
      const b = meanOf(priv, 1)
      return (typeof a === 'number' ? a : 0) + (typeof b === 'number' ? b : 0)
    }
  }
}

/** The mean of every sample of the one series, times `scale`; seed 000 needs exactly one series. */
export function meanOf(res: MetricsResponse, scale: number): Outcome {
  if (res.status !== 'success') return { error: `the API says status ${JSON.stringify(res.status)}` }
  const result = res.data?.result ?? []
  if (result.length !== 1)
    return { error: result.length === 0 ? 'no data in the window' : `${result.length} series, expected 1` }
  const values = result[0]!.values.map(([, v]) => Number(v)).filter(Number.isFinite)
  if (values.length === 0) return { error: 'no data in the window' }
  return (values.reduce((a, b) => a + b, 0) / values.length) * scale
}

/**
 * Percent of CPU time not idle over the window, from the cumulative seconds per mode
 * (`sonar_cpu{mode}` summed over CPUs): busy = Δ(all modes − idle) / Δ(all modes).
 */
export function cpuBusy(res: MetricsResponse): Outcome {
  const result = res.data?.result ?? []
  if (res.status !== 'success' || result.length === 0) return { error: 'no data in the window' }
  let total = 0
  let idle = 0
  for (const series of result) {
    const values = series.values.map(([, v]) => Number(v)).filter(Number.isFinite)
    if (values.length < 2) continue
    const delta = Math.max(0, values[values.length - 1]! - values[0]!)
    total += delta
    if (series.metric.mode === 'idle') idle += delta
  }
  if (total <= 0) return { error: 'fewer than two CPU samples in the window' }
  return ((total - idle) / total) * 100
}
