/**
 * Tide's router: an HTTP/1.1 reverse proxy on a group's `route.listen`, in front of the group's
 * ready instances. It balances (least outstanding requests, or p2c), keeps connections to the
 * instances alive, counts concurrency for the `router` source, drains an instance before it is
 * removed, and while no instance is ready holds requests in a bounded queue and wakes the group
 * (the activator of Knative and the interceptor of KEDA's HTTP add-on; anchors.md §2–3).
 *
 * `workers: 1` runs the data path (proxy.ts) in Tide's own process (local.ts); more workers run it
 * in that many processes sharing the port (cluster.ts, worker.ts), with backends, drains and
 * demand sent over IPC and the counters added up in Tide's process.
 *
 * @example
 * const router = createRouter('web', routeSchema.parse({ listen: '127.0.0.1:8080' }))
 * router.onDemand(() => wake('web'))
 * await router.start()
 * router.setBackends([{ id: 'web-1', address: '127.0.0.1:9001' }])
 * await router.drain('web-1')       // before stopping web-1: no request is lost
 */
import { availableParallelism } from 'node:os'
import { ClusterRouter } from './cluster.js'
import { LocalRouter } from './local.js'
import type { RouteConfig } from './schema.js'
import type { Router, RouterDeps } from './types.js'

export { ROUTER_ERRORS, type RouterErrorCode } from './errors.js'
export type { RouterLogger } from './proxy.js'
export { type RouteConfig, routeSchema } from './schema.js'
export {
  LATENCY_BUCKETS_MS,
  type RouterCounters,
  type RouterStats,
  type RouterWindow,
  windowOf,
} from './stats.js'
export {
  type Backend,
  DEFAULT_STATS_WINDOW_MS,
  type DrainResult,
  type Router,
  type RouterDeps,
} from './types.js'

/**
 * Starts nothing: call `start()`. `workers` absent means one fewer than the cores (at least 1):
 * the instances behind the router usually share the machine, and on 2 cores one worker served
 * 30k requests/s where two served 23k (bench/RESULTS.md, run D).
 */
export function createRouter(group: string, config: RouteConfig, deps: RouterDeps = {}): Router {
  const workers = config.workers ?? Math.max(1, availableParallelism() - 1)
  return workers > 1
    ? new ClusterRouter(group, { ...config, workers }, deps)
    : new LocalRouter(group, config, deps)
}
