/**
 * The receiver's own metrics (prom-client), registered in the daemon's registry (`tide run`'s
 * `/metrics`) or in one of its own (`tide docker-scaler`'s `/metrics`). Docker Scaler had none
 * (seeds.md §6.10: "self-metrics and health for daemon modes").
 *
 *   tide_receiver_operations_total{operation, result}
 *     operation: scale_service | scale_nodes | reschedule_service (seed 003's alert names)
 *     result:    applied | unchanged | failed | ignored (inside the alert group's cooldown)
 *                | resolved (a resolved notification, never acted on) | bad_request
 *   tide_receiver_operation_duration_seconds{operation, result}   applied and failed only
 *   tide_receiver_node_wait_active                                1 while waiting for new nodes
 *   tide_notifications_total{group="receiver", notifier, result}  the receiver's notifications
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

export type ReceiverOperation = 'scale_service' | 'scale_nodes' | 'reschedule_service'
export type ReceiverResult = 'applied' | 'unchanged' | 'failed' | 'ignored' | 'resolved' | 'bad_request'

export interface ReceiverMetrics {
  operation(operation: ReceiverOperation, result: ReceiverResult, durationMs?: number): void
  /** Counts one notification delivery (the Dispatcher's `delivered` counter). */
  notification(notifier: string, result: string): void
}

/** Metric names are registered once per registry; a second receiver on the same registry shares them. */
function reuse<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make()
}

export function receiverMetrics(registry: Registry, nodeWaitActive: () => boolean): ReceiverMetrics {
  const registers = [registry]
  const operations = reuse(
    registry,
    'tide_receiver_operations_total',
    () =>
      new Counter({
        name: 'tide_receiver_operations_total',
        help:
          'Operations of the Alertmanager receiver, by operation (scale_service, scale_nodes, reschedule_service) ' +
          'and result (applied, unchanged, failed, ignored inside the cooldown, resolved, bad_request).',
        labelNames: ['operation', 'result'],
        registers,
      }),
  )
  const duration = reuse(
    registry,
    'tide_receiver_operation_duration_seconds',
    () =>
      new Histogram({
        name: 'tide_receiver_operation_duration_seconds',
        help: "How long the receiver's operations took (Docker and AWS calls), applied or failed.",
        labelNames: ['operation', 'result'],
        buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1000],
        registers,
      }),
  )
  reuse(
    registry,
    'tide_receiver_node_wait_active',
    () =>
      new Gauge({
        name: 'tide_receiver_node_wait_active',
        help: '1 while the receiver waits for new nodes to join before rescheduling, else 0.',
        registers,
        collect() {
          this.set(nodeWaitActive() ? 1 : 0)
        },
      }),
  )
  const notifications = reuse(
    registry,
    'tide_notifications_total',
    () =>
      new Counter({
        name: 'tide_notifications_total',
        help: 'Events handed to notifiers, by result (ok, failed, dropped when a notifier fell 100 events behind).',
        labelNames: ['group', 'notifier', 'result'],
        registers,
      }),
  )
  return {
    operation(operation, result, durationMs) {
      operations.inc({ operation, result })
      if (durationMs !== undefined) duration.observe({ operation, result }, durationMs / 1000)
    },
    notification(notifier, result) {
      notifications.inc({ group: 'receiver', notifier, result })
    },
  }
}
