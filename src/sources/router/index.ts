/**
 * The `router` source: what Tide's own router saw in front of the group.
 *
 * Concurrency is the time-weighted average of requests in flight over the interval since the
 * previous evaluation (exact: the router integrates in-flight time), not a point sample —
 * Knative averages concurrency for the same reason (anchors.md §2). The group `total` adds the
 * requests held while no instance was ready, so demand is visible at zero instances.
 * Latency percentiles (arrival to last byte, over the requests finished in the window) are
 * `group` values: a percentile is not a sum of instances, so no policy divides it among them.
 * An instance with no traffic in the interval reads 0, not missing: the router saw it idle.
 */
import { z } from 'zod'
import { duration } from '../../core/schema.js'
import type { CollectContext, Metrics, Source } from '../../core/types.js'
import { type Router, type RouterCounters, windowOf } from '../../router/index.js'

export const routerSourceSchema = z
  .object({
    kind: z.literal('router'),
    window: duration()
      .optional()
      .describe('Average over this trailing window instead of the time since the previous evaluation.'),
  })
  .strict()

export type RouterSourceConfig = z.output<typeof routerSourceSchema>

export interface RouterSourceDeps {
  /** The group's router, once started. */
  router: () => Router | undefined
}

export function createRouterSource(config: RouterSourceConfig, deps: RouterSourceDeps): Source {
  let previous: RouterCounters | undefined
  return {
    kind: 'router',
    async collect(ctx: CollectContext): Promise<Metrics> {
      const router = deps.router()
      if (!router) return {}
      const stats = router.stats(config.window === undefined ? undefined : { windowMs: config.window })
      const window =
        config.window === undefined && previous ? windowOf(previous, stats.counters) : stats.window
      previous = stats.counters
      const concurrency: Record<string, number> = {}
      const rate: Record<string, number> = {}
      for (const instance of ctx.instances) {
        if (instance.state !== 'ready') continue
        concurrency[instance.id] = window.perBackend[instance.id] ?? 0
        rate[instance.id] = window.perBackendRate[instance.id] ?? 0
      }
      const at = ctx.now
      const metrics: Metrics = {
        concurrency: { at, perInstance: concurrency, missing: [], total: window.concurrency },
        request_rate: { at, perInstance: rate, missing: [], total: window.requestRate },
      }
      if (window.latency) {
        // Percentiles of the whole group: a `group` value, never a `total` (they do not add up).
        metrics.latency_p50 = { at, perInstance: {}, missing: [], group: window.latency.p50 }
        metrics.latency_p90 = { at, perInstance: {}, missing: [], group: window.latency.p90 }
        metrics.latency_p99 = { at, perInstance: {}, missing: [], group: window.latency.p99 }
      }
      return metrics
    },
  }
}
