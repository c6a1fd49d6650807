/**
 * Seed 000's three metrics per droplet (reference/seeds.md §1.5), read by the `digitalocean`
 * source (src/sources/digitalocean) through the target's client: the mean over the last 4
 * minutes of `load_1`, `memory_free` in MB (10^6 bytes) and outbound bandwidth (public +
 * private, Mbit/s). A droplet without load or memory data is `missing` for that metric (it makes
 * the droplet invalid and blocks a scale-down); an interface with no bandwidth data counts 0, as
 * the seed does for a droplet that just came up. Droplets are read concurrently (the seed read
 * them one after another, item 13).
 */
import type { Instance, Metrics } from '../../core/types.js'
import { createDigitalOceanSource, digitaloceanSourceSchema } from '../../sources/digitalocean/index.js'
import type { DigitalOceanTarget } from '../../targets/digitalocean/target.js'

/** The metric names the drop-in's policy reads (the `digitalocean` source's names). */
export const SEED_METRICS = ['load_1', 'memory_free', 'bandwidth_out'] as const

export async function readMetrics(
  target: DigitalOceanTarget,
  group: string,
  instances: Instance[],
  now: number,
  signal?: AbortSignal,
): Promise<Metrics> {
  // One invocation reads once: no reuse between readings (refresh 0).
  const config = digitaloceanSourceSchema.parse({
    kind: 'digitalocean',
    window: '4m',
    refresh: '0s',
    metrics: [...SEED_METRICS],
  })
  const source = createDigitalOceanSource(config, { client: target.client })
  return source.collect({ group, now, instances, signal: signal ?? new AbortController().signal })
}
