/**
 * Seed 000's three metrics per droplet from the Monitoring API (reference/seeds.md §1.5): the
 * mean over the last 4 minutes of `load_1`, `memory_free` in MB (10^6 bytes) and outbound
 * bandwidth (public + private, Mbit/s). A droplet whose load or memory has no data is `missing`
 * for that metric (it makes the droplet invalid and blocks a scale-down); missing bandwidth
 * counts as 0, as the seed does for a droplet that just came up.
 *
 * INTERIM: reads through the target's client until the `digitalocean` source
 * (src/sources/digitalocean) is in place, then delegates to it. Droplets are read concurrently
 * (the seed read them one after another, item 13).
 */
import { errorMessage } from '../../core/errors.js'
import type { Instance, MetricReading, Metrics } from '../../core/types.js'
import type { DigitalOceanTarget } from '../../targets/digitalocean/target.js'
import type { DropinConfig } from './env.js'

/** The metric names the drop-in's policy reads (the `digitalocean` source's names). */
export const SEED_METRICS = ['load_1', 'memory_free', 'bandwidth_out'] as const

export const WINDOW_S = 4 * 60

export async function readMetrics(
  target: DigitalOceanTarget,
  _config: DropinConfig,
  instances: Instance[],
  now: number,
  signal?: AbortSignal,
): Promise<Metrics> {
  const client = target.client
  const end = Math.floor(now / 1000)
  const start = end - WINDOW_S
  const readings: Record<string, MetricReading> = {}
  for (const name of SEED_METRICS) readings[name] = { at: now, perInstance: {}, missing: [], errors: [] }
  const mean = (values: Array<[number, string]> | undefined) => {
    const numbers = (values ?? []).map(([, v]) => Number(v)).filter(Number.isFinite)
    return numbers.length === 0 ? undefined : numbers.reduce((a, b) => a + b, 0) / numbers.length
  }
  await Promise.all(
    instances.map(async (instance) => {
      const hostId = instance.id
      const one = async (name: 'load_1' | 'memory_free', scale: number): Promise<void> => {
        try {
          const res = await client.getDropletMetric(name, { hostId, start, end }, signal)
          const result = res.data.result
          const value = result.length === 1 ? mean(result[0]!.values) : undefined
          if (value === undefined) {
            readings[name]!.missing.push(hostId)
            readings[name]!.errors!.push(
              `${instance.detail ?? hostId}: no ${name} data in the last 4 minutes`,
            )
          } else readings[name]!.perInstance[hostId] = value * scale
        } catch (err) {
          readings[name]!.missing.push(hostId)
          readings[name]!.errors!.push(`${instance.detail ?? hostId}: ${errorMessage(err)}`)
        }
      }
      const bandwidth = async (iface: 'public' | 'private'): Promise<number> => {
        try {
          const res = await client.getDropletMetric(
            'bandwidth',
            { hostId, start, end, interface: iface, direction: 'outbound' },
            signal,
          )
          return mean(res.data.result[0]?.values) ?? 0
        } catch {
          return 0
        }
      }
      const [, , pub, priv] = await Promise.all([
        one('load_1', 1),
        one('memory_free', 1e-6),
        bandwidth('public'),
        bandwidth('private'),
      ])
      readings.bandwidth_out!.perInstance[hostId] = pub + priv
    }),
  )
  return readings
}
