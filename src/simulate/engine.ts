/**
 * A controller that runs Tide's own policies and governor, as the daemon's group loop does
 * (src/engine/group.ts decide()): every policy is called with a PolicyInput, the governor
 * (`govern`) combines them, and an applied change starts the cooldown (`recordChange`).
 * Nothing here re-implements a policy; only the metrics are modelled.
 *
 * Modelled metrics (what a source would report, from the trace and the group's state):
 *   request_rate  the router's: a group `total` (demand, over-capacity requests included) and
 *                 an equal share per ready instance; averaged over one interval
 *   concurrency   the router's, by Little's law: demand × `latency` (overload queueing is not modelled)
 *   load_1, load, utilization
 *                 per ready instance: demand ÷ (ready × capacity), so 1 is a fully busy one-vCPU
 *                 machine (load_1 keeps rising past 1 as requests queue); starting instances
 *                 do not report yet (`missing`), as a booting machine's agent does not
 * Every value is seen `lag` late (the simulator applies it) and recorded in the group's history
 * the way the daemon's store records it, for policies that read PolicyInput.history.
 */
import { BadRequestError, errorMessage } from '../core/errors.js'
import { govern, newGovernorState, recordChange } from '../core/governor.js'
import type {
  GovernorConfig,
  GovernorState,
  MetricReading,
  Metrics,
  NamedRecommendation,
  Policy,
  PolicyInput,
} from '../core/types.js'
import type { Controller, Observation } from './model.js'

export const MODELLED_METRICS = ['concurrency', 'load', 'load_1', 'request_rate', 'utilization'] as const

export interface EngineControllerOptions {
  name: string
  policies: Array<{ name: string; decide: Policy; metrics: string[] }>
  interval: number
  staleAfter?: number
  governor: GovernorConfig
  /** Averaging window of the per-instance load metrics (seed 000 averages 4 minutes); default: interval. */
  loadWindow?: number
  /** Mean time a request spends in an instance, for `concurrency` (ms). */
  latency?: number
  /** A limit applied after the governor (HPA-style rate policies); default none. */
  limit?: (now: number, current: number, to: number) => number
}

/**
 * A metric's recorded group values, oldest first; windows are found by binary search over the
 * times, kept apart in a Float64Array (a search through 500,000 samples then touches a few
 * cache lines, not 19 scattered objects).
 */
class Series {
  // One object per sample, made once: a window is a slice of references, not new objects.
  private samples: Array<{ at: number; value: number }> = []
  private times = new Float64Array(1024)

  push(at: number, value: number): void {
    const n = this.samples.length
    if (n === this.times.length) {
      const grown = new Float64Array(n * 2)
      grown.set(this.times)
      this.times = grown
    }
    this.times[n] = at
    this.samples.push({ at, value })
  }

  /** First index with at >= t. */
  private lower(t: number): number {
    const times = this.times
    let lo = 0
    let hi = this.samples.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (times[mid]! < t) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** Samples with since <= at <= until. */
  range(since: number, until: number): Array<{ at: number; value: number }> {
    const n = this.samples.length
    if (n === 0 || since > this.times[n - 1]! || until < this.times[0]!) return []
    const from = this.lower(since)
    const to = until >= this.times[n - 1]! ? n : this.lower(until + 1e-9)
    return from < to ? this.samples.slice(from, to) : []
  }
}

const ids: string[] = []
function instanceId(i: number): string {
  while (ids.length <= i) ids.push(`i${ids.length + 1}`)
  return ids[i]!
}

export function engineController(options: EngineControllerOptions): Controller {
  const { interval, governor } = options
  const staleAfter = options.staleAfter ?? interval * 3
  const latency = options.latency ?? 100
  const wanted = new Set(options.policies.flatMap((p) => p.metrics))
  for (const metric of wanted) {
    if (!(MODELLED_METRICS as readonly string[]).includes(metric)) {
      throw new BadRequestError(
        `policy ${options.policies.find((p) => p.metrics.includes(metric))!.name} of ${options.name} reads metric "${metric}", which the simulator does not model (it models ${MODELLED_METRICS.join(', ')})`,
        { metric },
      )
    }
  }
  const history = new Map<string, Series>()
  for (const metric of wanted) history.set(metric, new Series())
  let state: GovernorState = newGovernorState()
  let now = 0
  // `explain: false`: the simulator reads no sentence, so the policies and the governor build
  // none (the sizes are the same; src/core/governor.ts, src/policies/target.ts).
  const input: PolicyInput = {
    explain: false,
    now: 0,
    group: options.name,
    current: 0,
    ready: 0,
    min: governor.min,
    max: governor.max,
    metrics: {},
    staleAfter,
    history: (metric, since, until) => history.get(metric)?.range(since, until ?? now) ?? [],
  }

  function reading(obs: Observation, metric: string): MetricReading {
    const perInstance: Record<string, number> = {}
    const missing: string[] = []
    if (metric === 'request_rate' || metric === 'concurrency') {
      const rate = obs.rate(interval)
      const total = metric === 'request_rate' ? rate : (rate * latency) / 1000
      for (let i = 0; i < obs.ready; i++) perInstance[instanceId(i)] = total / obs.ready
      return { at: obs.now, perInstance, missing, total }
    }
    const load = obs.ready > 0 ? obs.rate(options.loadWindow ?? interval) / (obs.ready * obs.capacity) : 0
    for (let i = 0; i < obs.ready; i++) perInstance[instanceId(i)] = load
    for (let i = 0; i < obs.starting; i++) missing.push(instanceId(obs.ready + i))
    return { at: obs.now, perInstance, missing }
  }

  return {
    name: options.name,
    interval,
    evaluate(obs: Observation): number {
      now = obs.now
      const metrics: Metrics = {}
      for (const metric of wanted) {
        const r = reading(obs, metric)
        metrics[metric] = r
        // The value the daemon's store keeps (group.ts groupValue): total, else the mean.
        let value = r.total
        if (value === undefined) {
          const values = Object.values(r.perInstance)
          if (values.length > 0) value = values.reduce((a, b) => a + b, 0) / values.length
        }
        if (value !== undefined) history.get(metric)!.push(obs.now, value)
      }
      input.now = obs.now
      input.current = obs.current
      input.ready = obs.ready
      input.metrics = metrics
      const recommendations: NamedRecommendation[] = options.policies.map(({ name, decide }) => {
        try {
          return { ...decide(input), policy: name }
        } catch (err) {
          return { kind: 'unknown', reason: `policy ${name} failed: ${errorMessage(err)}`, policy: name }
        }
      })
      const result = govern({
        now: obs.now,
        current: obs.current,
        config: governor,
        recommendations,
        state,
        explain: false,
      })
      state = result.state
      let to = result.decision.to
      if (options.limit) to = options.limit(obs.now, obs.current, to)
      if (to !== obs.current) state = recordChange(state, obs.now, to > obs.current ? 'up' : 'down')
      return to
    },
  }
}
