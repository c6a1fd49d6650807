/**
 * The modelled group a trace is replayed against, and the replay itself.
 *
 *   trace (rps per row) ─▶ demand d(t), constant within a row
 *   every `interval` ───▶ controller.evaluate(observation) → desired size
 *                          observation: sizes now, and rate(w) = mean demand over the w ms that
 *                          ended `lag` ms ago (what a metric pipeline shows now)
 *   scale up   ─────────▶ new instances are billed at once and serve after `boot`
 *   scale down ─────────▶ newest first (starting ones before ready ones); billing stops at once
 *   between events ─────▶ ready capacity = ready × capacity; demand above it is under capacity
 *
 * Exact for piecewise-constant demand: time advances from event to event (evaluation, row
 * boundary, an instance becoming ready), so no sub-step error and no per-second loop.
 */
import { BadRequestError } from '../core/errors.js'
import { meanRate, type Trace } from './trace.js'

export interface GroupModel {
  /** Requests per second one ready instance serves. */
  capacity: number
  /** ms from the request of an instance until it serves. */
  boot: number
  /** ms between a moment and a metric showing it. */
  lag: number
  min: number
  max: number
  /** Ready instances at the start; default: enough for the first row at full capacity, within bounds. */
  initial?: number
}

/** What a controller sees when it is evaluated. */
export interface Observation {
  /** ms from the start of the trace. */
  now: number
  /** Instances counted towards the size (starting + ready): the target's `desired`. */
  current: number
  ready: number
  starting: number
  capacity: number
  /** Mean demand (rps) over the `window` ms that ended `lag` ms ago; the rate then for window 0. */
  rate(window: number): number
}

/** A policy under test: stateful, one per run. */
export interface Controller {
  readonly name: string
  /** ms between evaluations. */
  readonly interval: number
  /** The size it wants now (a whole number ≥ 0; the controller applies its own bounds). */
  evaluate(observation: Observation): number
}

/** The figures the issue asks for, per policy. */
export interface Result {
  policy: string
  /** Instance-hours billed: every instance from its request until its removal. */
  instanceHours: number
  /** Minutes during which demand exceeded what ready instances can serve. */
  underCapacityMinutes: number
  /** Requests that arrived above ready capacity (would have queued or failed). */
  overCapacityRequests: number
  /** Changes of size. */
  actions: number
  /** Requests served / (billed instance-seconds × capacity), 0–1. */
  meanUtilization: number
}

/** One value per trace row, for plots. */
export interface Timeline {
  /** Start of each row, ms. */
  at: Float64Array
  demand: Float32Array
  /** Time-weighted mean of ready capacity (rps) over the row. */
  capacity: Float32Array
  /** Highest desired size during the row. */
  desired: Float32Array
}

export interface Run {
  result: Result
  timeline: Timeline
}

export function checkModel(model: GroupModel): void {
  const bad = (flag: string, value: unknown, must: string) =>
    new BadRequestError(`${flag} must be ${must}, not ${String(value)}`, { [flag]: value })
  if (!(Number.isFinite(model.capacity) && model.capacity > 0))
    throw bad('--capacity', model.capacity, 'a number of requests per second > 0')
  if (!(Number.isFinite(model.boot) && model.boot >= 0)) throw bad('--boot', model.boot, 'a duration ≥ 0')
  if (!(Number.isFinite(model.lag) && model.lag >= 0)) throw bad('--lag', model.lag, 'a duration ≥ 0')
  if (!(Number.isInteger(model.min) && model.min >= 0)) throw bad('--min', model.min, 'a whole number ≥ 0')
  if (!(Number.isInteger(model.max) && model.max >= Math.max(1, model.min)))
    throw bad('--max', model.max, `a whole number ≥ max(1, min ${model.min})`)
}

/** Replays `trace` through `controller` against `model`. Deterministic. */
export function simulate(trace: Trace, model: GroupModel, controller: Controller): Run {
  checkModel(model)
  const { capacity, boot, lag } = model
  const interval = controller.interval
  if (!(Number.isFinite(interval) && interval > 0)) {
    throw new BadRequestError(`policy ${controller.name}: the interval must be > 0 ms, not ${interval}`)
  }
  const rows = trace.at.length
  const timeline: Timeline = {
    at: trace.at,
    demand: Float32Array.from(trace.rps),
    capacity: new Float32Array(rows),
    desired: new Float32Array(rows),
  }
  const first = trace.rps[0]!
  let ready = model.initial ?? Math.min(model.max, Math.max(model.min, Math.ceil(first / capacity)))
  // Starting instances' ready times, oldest first; `head` is the next to become ready.
  const starting: number[] = []
  let head = 0
  let t = 0
  let row = 0
  let nextEval = 0
  let billed = 0 // instance-ms
  let underMs = 0
  let overRequests = 0
  let served = 0 // requests
  let actions = 0
  let rowCapacity = 0 // capacity × ms within the row
  let rowDesired = ready

  const observation: Observation = {
    now: 0,
    current: 0,
    ready: 0,
    starting: 0,
    capacity,
    rate: (window) => meanRate(trace, observation.now - lag - window, observation.now - lag),
  }

  const end = trace.end
  while (t < end) {
    while (head < starting.length && starting[head]! <= t) {
      head++
      ready++
    }
    if (t >= nextEval) {
      const count = starting.length - head
      observation.now = t
      observation.current = ready + count
      observation.ready = ready
      observation.starting = count
      const to = controller.evaluate(observation)
      if (!(Number.isInteger(to) && to >= 0)) {
        throw new BadRequestError(`policy ${controller.name} wanted ${to} instances at ${t}ms`)
      }
      const current = ready + count
      if (to !== current) actions++
      if (to > current) {
        for (let i = current; i < to; i++) {
          if (boot === 0) ready++
          else starting.push(t + boot)
        }
      } else if (to < current) {
        let remove = current - to
        while (remove > 0 && starting.length > head) {
          starting.pop()
          remove--
        }
        ready -= remove
      }
      if (head > 1024 && head * 2 > starting.length) {
        starting.splice(0, head)
        head = 0
      }
      if (to > rowDesired) rowDesired = to
      nextEval += interval
      while (nextEval <= t) nextEval += interval
    }
    const rowEnd = row + 1 < rows ? trace.at[row + 1]! : end
    let next = Math.min(nextEval, rowEnd, end)
    if (head < starting.length && starting[head]! < next) next = starting[head]!
    const dt = next - t
    const demand = trace.rps[row]!
    const cap = ready * capacity
    const instances = ready + (starting.length - head)
    billed += instances * dt
    rowCapacity += cap * dt
    if (demand > cap) {
      underMs += dt
      overRequests += ((demand - cap) * dt) / 1000
      served += (cap * dt) / 1000
    } else served += (demand * dt) / 1000
    t = next
    if (t >= rowEnd) {
      const length = rowEnd - trace.at[row]!
      timeline.capacity[row] = length > 0 ? rowCapacity / length : cap
      timeline.desired[row] = rowDesired
      rowCapacity = 0
      rowDesired = ready + (starting.length - head)
      row++
      if (row >= rows) break
    }
  }
  const billedSeconds = billed / 1000
  return {
    result: {
      policy: controller.name,
      instanceHours: billedSeconds / 3600,
      underCapacityMinutes: underMs / 60_000,
      overCapacityRequests: overRequests,
      actions,
      meanUtilization: billedSeconds > 0 ? served / (billedSeconds * capacity) : 0,
    },
    timeline,
  }
}
