/**
 * What the sources share to build their readings (core/types.ts `MetricReading`): a reading to
 * fill, an instance's value marked missing with why, a clean finish, and a memory of failures so
 * each is logged when it starts or changes rather than every evaluation.
 */
import type { Instance, MetricReading, Metrics } from '../core/types.js'

/** A reading to fill at `at`: no values yet, nothing missing, an `errors` list to push to. */
export function emptyReading(at: number): MetricReading {
  return { at, perInstance: {}, missing: [], errors: [] }
}

/** Marks the instance's value missing, with why ("web-2: connection refused"). */
export function miss(reading: MetricReading, instance: Pick<Instance, 'id'>, cause: string): void {
  reading.missing.push(instance.id)
  reading.errors!.push(`${instance.id}: ${cause}`)
}

/** Drops an empty `errors` list, so a reading without problems carries none. */
export function settle(reading: MetricReading): MetricReading {
  if (reading.errors?.length === 0) delete reading.errors
  return reading
}

/** The readings by metric name, each settled. */
export function settleAll(readings: Iterable<[string, MetricReading]>): Metrics {
  const metrics: Metrics = {}
  for (const [name, reading] of readings) metrics[name] = settle(reading)
  return metrics
}

/** Forgets what `maps` hold for instances no longer in the group, so memory follows its size. */
export function forgetGone(
  instances: readonly Pick<Instance, 'id'>[],
  ...maps: Map<string, unknown>[]
): void {
  const present = new Set(instances.map((i) => i.id))
  for (const map of maps) for (const id of map.keys()) if (!present.has(id)) map.delete(id)
}

/** The last failure per key (an instance, a metric): a failure is worth a log line when it changes. */
export class FailureMemory {
  readonly last = new Map<string, string>()

  /**
   * Remembers `error` for `key` (`undefined`: it succeeded, forget it); true when the error is
   * new or different from the last one, i.e. when to log it.
   */
  changed(key: string, error: string | undefined): boolean {
    if (error === undefined) {
      this.last.delete(key)
      return false
    }
    if (this.last.get(key) === error) return false
    this.last.set(key, error)
    return true
  }
}
