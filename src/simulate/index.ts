/**
 * Trace replay (`tide simulate`, docs/simulate.md): a recorded request rate goes through a
 * policy — a built-in baseline, or a group from a config file with the daemon's own policy and
 * governor code — against a modelled group, and comes out as cost and misses.
 */
import type { GroupConfig } from '../config/index.js'
import { BadRequestError } from '../core/errors.js'
import { groupSettings } from '../engine/daemon.js'
import { buildPolicy, policyMetrics, policyName } from '../policies/index.js'
import { BASELINES, type BaselineName, BUILDERS } from './baselines.js'
import { engineController } from './engine.js'
import { type Controller, type GroupModel, type Result, type Run, simulate } from './model.js'
import { peakRate, type Trace } from './trace.js'

export { BASELINES, type BaselineName, tideRecommended } from './baselines.js'
export type { Controller, GroupModel, Observation, Result, Run, Timeline } from './model.js'
export { simulate } from './model.js'
export { renderPlot } from './plot.js'
export { loadTrace, parseTrace, peakRate, sliceTrace, type Trace } from './trace.js'

/** The JSON `tide simulate --json` prints (the shape issue 6 fixes). */
export interface Report {
  trace: string
  results: Result[]
}

/** Instances the trace's busiest row needs at full capacity. */
export function peakNeed(trace: Trace, capacity: number): number {
  return Math.max(1, Math.ceil(peakRate(trace) / capacity - 1e-9))
}

/** A built-in policy by name; BadRequestError listing the names otherwise. */
export function baseline(name: string, model: GroupModel): Controller {
  if (!(BASELINES as readonly string[]).includes(name)) {
    throw new BadRequestError(
      `--policy must be one of ${BASELINES.join(', ')}, not ${JSON.stringify(name)}`,
      {
        policy: name,
      },
    )
  }
  return BUILDERS[name as BaselineName](model)
}

/**
 * A group from a config file, run with the daemon's policies and governor settings
 * (engine/daemon.ts groupSettings). Its own min, max and interval apply.
 */
export function configGroup(
  name: string,
  group: GroupConfig,
  options: { latency?: number } = {},
): Controller {
  const settings = groupSettings(group, 1000)
  return engineController({
    name,
    policies: group.policies.map((p, i) => ({
      name: policyName(p, i),
      decide: buildPolicy(p),
      metrics: policyMetrics(p),
    })),
    interval: settings.interval,
    staleAfter: settings.staleAfter,
    governor: settings.governor,
    latency: options.latency,
  })
}

/** Runs each controller (built fresh) over the same trace and model. */
export function run(trace: Trace, model: GroupModel, controllers: Array<() => Controller>): Run[] {
  return controllers.map((make) => simulate(trace, model, make()))
}
