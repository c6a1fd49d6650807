/**
 * Tide's own metrics (`GET /metrics`), with prom-client. Gauges are read from the groups at
 * scrape time, so nothing is updated on the hot path.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { GroupView } from './controller.js'

export class Telemetry {
  readonly registry = new Registry()
  readonly decisions: Counter<'group' | 'outcome' | 'direction'>
  readonly scaleDuration: Histogram<'group' | 'direction' | 'result'>
  readonly evaluationDuration: Histogram<'group'>
  readonly evaluationErrors: Counter<'group' | 'stage'>
  readonly notifications: Counter<'group' | 'notifier' | 'result'>
  readonly coldStartWait: Histogram<'group' | 'result'>

  constructor(groups: () => GroupView[]) {
    collectDefaultMetrics({ register: this.registry, prefix: 'tide_' })
    const registers = [this.registry]
    this.decisions = new Counter({
      name: 'tide_decisions_total',
      help: 'Scaling decisions, by outcome (applied, failed, held, shadow) and direction.',
      labelNames: ['group', 'outcome', 'direction'],
      registers,
    })
    this.scaleDuration = new Histogram({
      name: 'tide_scale_duration_seconds',
      help: 'How long scaling operations took, until the new size was ready.',
      labelNames: ['group', 'direction', 'result'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    })
    this.evaluationDuration = new Histogram({
      name: 'tide_evaluation_duration_seconds',
      help: 'How long one observe-and-decide evaluation took.',
      labelNames: ['group'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    })
    this.evaluationErrors = new Counter({
      name: 'tide_evaluation_errors_total',
      help: 'Evaluations that could not observe or decide, by stage (target, source, policy).',
      labelNames: ['group', 'stage'],
      registers,
    })
    this.notifications = new Counter({
      name: 'tide_notifications_total',
      help: 'Events handed to notifiers, by result (ok, failed, dropped when a notifier fell 100 events behind).',
      labelNames: ['group', 'notifier', 'result'],
      registers,
    })
    this.coldStartWait = new Histogram({
      name: 'tide_router_cold_start_wait_seconds',
      help:
        "How long requests waited in a group's router for an instance to become ready (a cold start), " +
        'by result: served (then sent to the instance) or failed (503: timeout, failed wake, shutdown).',
      labelNames: ['group', 'result'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    })
    new Gauge({
      name: 'tide_group_desired_instances',
      help: 'Instances the group is working towards.',
      labelNames: ['group'],
      registers,
      collect() {
        for (const g of groups()) this.set({ group: g.name }, g.desired)
      },
    })
    new Gauge({
      name: 'tide_group_ready_instances',
      help: 'Instances ready to serve.',
      labelNames: ['group'],
      registers,
      collect() {
        for (const g of groups()) this.set({ group: g.name }, g.ready)
      },
    })
    new Gauge({
      name: 'tide_group_bounds',
      help: 'The group bounds (bound="min" or "max").',
      labelNames: ['group', 'bound'],
      registers,
      collect() {
        for (const g of groups()) {
          this.set({ group: g.name, bound: 'min' }, g.min)
          this.set({ group: g.name, bound: 'max' }, g.max)
        }
      },
    })
    new Gauge({
      name: 'tide_group_metric',
      help: 'The latest group-level value of each metric Tide reads for the group.',
      labelNames: ['group', 'metric'],
      registers,
      collect() {
        this.reset()
        for (const g of groups()) {
          for (const [metric, view] of Object.entries(g.metrics)) {
            if (view.value !== undefined && Number.isFinite(view.value))
              this.set({ group: g.name, metric }, view.value)
          }
        }
      },
    })
  }
}
