/**
 * The built-in policies `tide simulate --compare` runs side by side, each as its authors
 * specify it (sources: ../shared/reference/seeds.md §1.5–1.7, anchors.md §1 and §2):
 *
 *   seed-threshold  seed 000 (droplet-autoscale): every minute, up by one when the mean load_1
 *                   over the last 4 minutes is > 0.35, down by one when it is < 0.15, 180 s
 *                   cooldown after any change. Run through Tide's `threshold` policy and governor,
 *                   which implement those semantics. Load is modelled as the utilization of a
 *                   one-vCPU droplet; its memory and bandwidth conditions are not modelled.
 *   hpa             Kubernetes HPA (replica_calculator.go, horizontal.go): 15 s sync, target 70 %
 *                   of what a pod serves, tolerance 0.1, not-ready pods counted at 0 on scale-up,
 *                   300 s scale-down stabilization, default rate policies (up: max(+100 %, +4
 *                   pods) per 15 s; down: 100 % per 15 s). Its metric is the demand per ready pod
 *                   (a Pods metric such as requests per second), not a CPU reading that saturates
 *                   at 100 %: the stronger of the two HPA set-ups.
 *   kpa             Knative's autoscaler (pkg/autoscaler/scaling/autoscaler.go): 2 s tick, target
 *                   70 % of what a pod serves, 60 s stable window, 6 s panic window, panic when
 *                   the panic-window demand needs ≥ 2× the ready pods, never down while panicking,
 *                   max scale-down rate 2, max scale-up rate 1000.
 *   tide            What Tide recommends (tideRecommended below, docs/simulate.md): the
 *                   `predictive` policy on the router's request_rate at 75 % of an instance's
 *                   capacity, forecasting one boot time and one evaluation ahead; 10 s interval;
 *                   300 s scale-down stabilization; no cooldown. Run through the same policy
 *                   and governor code as the daemon.
 *
 * All get the same bounds (the model's min and max) and see the same metric lag.
 */
import type { GovernorConfig } from '../core/types.js'
import { buildPolicy, type PolicyConfigInput, policyMetrics, policySchema } from '../policies/index.js'
import { engineController } from './engine.js'
import type { Controller, GroupModel, Observation } from './model.js'

export const BASELINES = ['seed-threshold', 'hpa', 'kpa', 'tide'] as const
export type BaselineName = (typeof BASELINES)[number]

/** The share of an instance's capacity the target-tracking policies aim for (HPA's and Knative's 70 %). */
export const TARGET_UTILIZATION = 0.7

function policy(config: PolicyConfigInput, name: string) {
  const parsed = policySchema.parse(config)
  return { name, decide: buildPolicy(parsed), metrics: policyMetrics(parsed) }
}

function clamp(n: number, model: Pick<GroupModel, 'min' | 'max'>): number {
  return Math.min(model.max, Math.max(model.min, n))
}

/** Seed 000's rule and defaults (SCALE_UP_WHEN_LOAD 0.35, SCALE_DOWN_WHEN_LOAD 0.15, SCALING_INTERVAL 180). */
export function seedThreshold(model: GroupModel): Controller {
  const governor: GovernorConfig = {
    min: model.min,
    max: model.max,
    cooldown: 180_000,
    stabilizationDown: 0,
    stabilizationUp: 0,
  }
  return engineController({
    name: 'seed-threshold',
    policies: [
      policy(
        {
          kind: 'threshold',
          name: 'seed-threshold',
          up: { match: 'any', step: 1, conditions: ['load_1 > 0.35'] },
          down: { match: 'all', step: 1, conditions: ['load_1 < 0.15'] },
        },
        'seed-threshold',
      ),
    ],
    interval: 60_000, // a scheduled trigger once a minute
    loadWindow: 240_000, // the mean of the last 4 minutes of load_1 samples (§1.5)
    governor,
  })
}

/** Kubernetes HPA with its defaults. */
export function hpa(model: GroupModel): Controller {
  const interval = 15_000
  const tolerance = 0.1
  const stabilizationDown = 300_000
  const period = 15_000
  const recommendations: Array<{ at: number; n: number }> = []
  const events: Array<{ at: number; delta: number }> = []
  const within = (ratio: number) => Math.abs(1 - ratio) <= tolerance
  /** replica_calculator.go GetResourceReplicas / GetMetricReplicas with not-ready pods. */
  function replicas(obs: Observation): number {
    const { current, ready, starting } = obs
    if (ready === 0) return current // no pod has metrics: HPA cannot compute, keeps the size
    const usage = obs.rate(interval) / (ready * obs.capacity)
    const ratio = usage / TARGET_UTILIZATION
    if (starting === 0 || ratio <= 1) {
      if (within(ratio)) return current
      return Math.ceil(ratio * ready - 1e-9)
    }
    // Scale-up with pods not yet ready: they count as 0 % (dampens the scale-up).
    const all = ready + starting
    const rebalanced = (usage * ready) / (all * TARGET_UTILIZATION)
    if (within(rebalanced) || rebalanced < 1) return current
    const n = Math.ceil(rebalanced * all - 1e-9)
    return n < current ? current : n
  }
  return {
    name: 'hpa',
    interval,
    evaluate(obs) {
      const { now, current } = obs
      const raw = replicas(obs)
      // stabilizeRecommendationWithBehaviors: up window 0 s, down window 300 s.
      while (recommendations.length > 0 && recommendations[0]!.at <= now - stabilizationDown)
        recommendations.shift()
      let down = raw
      for (const r of recommendations) down = Math.max(down, r.n)
      recommendations.push({ at: now, n: raw })
      let desired = Math.min(Math.max(current, raw), down)
      // convertDesiredReplicasWithBehaviorRate with the default policies.
      while (events.length > 0 && events[0]!.at <= now - period) events.shift()
      let change = 0
      for (const e of events) change += e.delta
      const periodStart = current - change
      if (desired > current) {
        const limit = Math.max(current, Math.ceil(periodStart * 2), periodStart + 4)
        desired = Math.min(desired, limit)
      }
      desired = clamp(desired, model)
      if (desired !== current) events.push({ at: now, delta: desired - current })
      return desired
    },
  }
}

/** Knative's KPA with its defaults. */
export function kpa(model: GroupModel): Controller {
  const tick = 2_000
  const stableWindow = 60_000
  const panicWindow = 6_000
  const panicThreshold = 2
  const maxScaleDownRate = 2
  const maxScaleUpRate = 1000
  let panicSince: number | undefined
  let maxPanicPods = 0
  return {
    name: 'kpa',
    interval: tick,
    evaluate(obs) {
      const target = obs.capacity * TARGET_UTILIZATION
      const readyPods = Math.max(1, obs.ready)
      const maxUp = Math.ceil(maxScaleUpRate * readyPods)
      const maxDown = Math.floor(readyPods / maxScaleDownRate)
      const dspc = Math.ceil(obs.rate(stableWindow) / target - 1e-9)
      const dppc = Math.ceil(obs.rate(panicWindow) / target - 1e-9)
      const stable = Math.min(Math.max(dspc, maxDown), maxUp)
      const panic = Math.min(Math.max(dppc, maxDown), maxUp)
      const over = dppc / readyPods >= panicThreshold
      if (over) panicSince = obs.now
      else if (panicSince !== undefined && obs.now >= panicSince + stableWindow) {
        panicSince = undefined
        maxPanicPods = 0
      }
      let desired = stable
      if (panicSince !== undefined) {
        desired = Math.max(panic, maxPanicPods)
        maxPanicPods = desired
      }
      return clamp(desired, model)
    },
  }
}

/** Knobs of the `tide` baseline, for sensitivity runs (bench/simulate); the defaults are Tide's recommendation. */
export interface TideKnobs {
  /** Share of an instance's capacity to aim for. @default 0.75 */
  utilization?: number
  /** The group's scale-down stabilization, ms. @default 0 (predictive's `hold` does it) */
  stabilization?: number
  /** Evaluation interval, ms. @default 10000 */
  interval?: number
  /** `predictive` (default) or plain `target`. */
  kind?: 'predictive' | 'target'
  /** predictive's burst.deviations (0: off). @default 1 */
  deviations?: number
  /** predictive's burst.window, ms. @default 2 h */
  burstWindow?: number
  /** predictive's hold.window, ms (0: off). @default 5 min */
  hold?: number
  /** predictive's hold.above. @default 0.5 */
  above?: number
}

/**
 * The settings Tide recommends for a group whose instances serve `capacity` rps each and take
 * `boot` ms to start (docs/simulate.md, "The tide policy"):
 * - `predictive` on request_rate at 75 % of capacity: the forecast covers the growth expected
 *   while a new instance boots, so the headroom only has to cover the forecast's error; HPA and
 *   Knative, which only react, keep 30 % for both;
 * - burst room for the rate + 1 σ of the last 2 h at full capacity, and a 5 min hold of at most
 *   half again what is needed now (predictive's defaults), with no group stabilization;
 * - lead = boot + one interval; 10 s interval; no cooldown.
 */
export function tideRecommended(
  model: Pick<GroupModel, 'capacity' | 'boot' | 'min' | 'max'>,
  knobs: TideKnobs = {},
) {
  const interval = knobs.interval ?? 10_000
  const perInstance = model.capacity * (knobs.utilization ?? 0.75)
  const seconds = (ms: number) => `${Math.round(ms / 1000)}s`
  const policy: PolicyConfigInput =
    knobs.kind === 'target'
      ? { kind: 'target', name: 'tide', metric: 'request_rate', per_instance: perInstance }
      : {
          kind: 'predictive',
          name: 'tide',
          metric: 'request_rate',
          per_instance: perInstance,
          lead: seconds(model.boot + interval),
          burst: {
            deviations: knobs.deviations ?? 1,
            window: seconds(knobs.burstWindow ?? 7_200_000),
            per_instance: model.capacity,
          },
          hold: { window: seconds(knobs.hold ?? 300_000), above: knobs.above ?? 0.5 },
        }
  return {
    interval,
    policies: [policy],
    governor: {
      min: model.min,
      max: model.max,
      cooldown: 0,
      stabilizationUp: 0,
      stabilizationDown: knobs.stabilization ?? 0,
    } satisfies GovernorConfig,
  }
}

export function tide(model: GroupModel, knobs: TideKnobs = {}, name = 'tide'): Controller {
  const settings = tideRecommended(model, knobs)
  return engineController({
    name,
    policies: settings.policies.map((p) => policy(p, 'tide')),
    interval: settings.interval,
    governor: settings.governor,
  })
}

export const BUILDERS: Record<BaselineName, (model: GroupModel) => Controller> = {
  'seed-threshold': seedThreshold,
  hpa,
  kpa,
  tide: (model) => tide(model),
}
