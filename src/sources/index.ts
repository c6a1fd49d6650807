/**
 * Source kinds, one alphabetical table: a new kind is one folder under src/sources/ plus one
 * entry here, which also says which metrics the kind provides so config validation can tell
 * a user that no source gives the metric a policy reads.
 */
import { z } from 'zod'
import type { Source } from '../core/types.js'
import type { Logger } from '../engine/log.js'
import type { Router } from '../router/index.js'
import { createDigitalOceanSource, digitaloceanSourceSchema } from './digitalocean/index.js'
import { createProcessSource, processSourceSchema } from './process/index.js'
import { createPrometheusSource, prometheusSourceSchema } from './prometheus/index.js'
import { createRouterSource, routerSourceSchema } from './router/index.js'
import { createScrapeSource, scrapeSourceSchema } from './scrape/index.js'

export const sourceSchema = z.discriminatedUnion('kind', [
  digitaloceanSourceSchema,
  processSourceSchema,
  prometheusSourceSchema,
  routerSourceSchema,
  scrapeSourceSchema,
])

export type SourceConfig = z.output<typeof sourceSchema>

/** The metrics the router source reports. */
export const ROUTER_METRICS = ['concurrency', 'request_rate', 'latency_p50', 'latency_p90', 'latency_p99']

/**
 * Source kinds whose readings do not come from the group's instances, so they can show demand
 * while the group has none: a group with `min: 0` needs a route or one of these to be woken
 * (config validation says so). A new kind that reads an outside system (a queue, Prometheus,
 * Alertmanager) belongs here.
 */
export const SOURCES_AT_ZERO: ReadonlySet<string> = new Set(['prometheus', 'router'])

/** Which metric names a source of this config provides. */
export function sourceMetrics(config: SourceConfig): string[] {
  switch (config.kind) {
    case 'digitalocean':
      return [...config.metrics]
    case 'process':
      return ['cpu', 'memory']
    case 'prometheus':
      return Object.keys(config.metrics)
    case 'router':
      return ROUTER_METRICS
    case 'scrape':
      return Object.keys(config.metrics)
  }
}

export interface SourceDeps {
  logger: Logger
  /** The group's router, once started (undefined for a group without a route). */
  router: () => Router | undefined
}

export function createSource(config: SourceConfig, deps: SourceDeps): Source {
  switch (config.kind) {
    case 'digitalocean':
      return createDigitalOceanSource(config, { logger: deps.logger })
    case 'process':
      return createProcessSource(config, { logger: deps.logger })
    case 'prometheus':
      return createPrometheusSource(config, { logger: deps.logger })
    case 'router':
      return createRouterSource(config, { router: deps.router })
    case 'scrape':
      return createScrapeSource(config, { logger: deps.logger })
  }
}
