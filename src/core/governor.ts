/**
 * The governor: turns the policies' recommendations into one decision, with a sentence for
 * each step and one for the whole. Pure: `now` and the remembered state come in, the decision
 * and the new state go out; the engine keeps the state and sets `lastChange` once a change is
 * applied (`recordChange`).
 *
 *   recommendations
 *     │ (a) none, or only unknowns ────────────────────────▶ hold at current
 *     ▼ (c) largest `to` wins (hold = current, unknown = no vote; HPA multi-metric max)
 *     │ (b) any unknown and the result is below current ──▶ current ("missing data never scales down")
 *     ▼ (d) record the raw result in history; prune beyond the longest window
 *     ▼ (e) stabilization (HPA): below current → highest in stabilizationDown,
 *     │                          above current → lowest in stabilizationUp
 *     ▼ (f) step limits maxStepUp / maxStepDown
 *     ▼ (g) clamp to [min, max]: always, even in cooldown
 *     ▼ (h) cooldown (seed 000's SCALING_INTERVAL, per direction): only the bounds may move it
 *     ▼ (i) decision: "scale up 2 → 3: …" / "hold at 3: …"
 */

import { formatDuration } from './duration.js'
import { BadRequestError } from './errors.js'
import type { Decision, GovernorConfig, GovernorState, NamedRecommendation } from './types.js'

export type Direction = 'up' | 'down'

export interface GovernInput {
  now: number
  /** The group's size now (the target's `desired`). */
  current: number
  config: GovernorConfig
  recommendations: NamedRecommendation[]
  state: GovernorState
  /**
   * false: build no sentence (the decision's `reason` is empty and `steps` too), for a caller
   * that reads none: `tide simulate` makes half a million decisions. The size and the state are
   * the same either way (one code path, `decide` below). @default true
   */
  explain?: boolean
}

export interface GovernResult {
  decision: Decision
  /** The state to keep for the next evaluation (history updated; `lastChange` untouched). */
  state: GovernorState
}

/** A state for a group that has never been evaluated. */
export function newGovernorState(): GovernorState {
  return { history: [] }
}

/** Returns `state` with the change the engine just applied; the cooldown starts now. */
export function recordChange(state: GovernorState, now: number, direction: Direction): GovernorState {
  return { ...state, lastChange: { at: now, direction } }
}

/**
 * `n` within the bounds, and never below 0. When a config has min > max, max wins (seed 003's
 * rule); config validation should refuse that anyway.
 */
export function clampToBounds(n: number, config: Pick<GovernorConfig, 'min' | 'max'>): number {
  return Math.max(0, Math.min(config.max, Math.max(config.min, n)))
}

/** Milliseconds until a change in `direction` is allowed again; 0 when it is allowed now. */
export function cooldownLeft(
  config: GovernorConfig,
  state: GovernorState,
  now: number,
  direction: Direction,
): number {
  const last = state.lastChange
  if (last === undefined) return 0
  const period = (direction === 'up' ? config.cooldownUp : config.cooldownDown) ?? config.cooldown
  return Math.max(0, last.at + period - now)
}

function cooldownSentence(state: GovernorState, left: number): string {
  const after = state.lastChange ? ` after scaling ${state.lastChange.direction}` : ''
  return `cooling down for ${formatDuration(left)} more${after}`
}

/** A policy with no opinion (a one-rule threshold whose rule does not hold): no vote, no veto. */
function abstains(r: NamedRecommendation): boolean {
  return r.kind === 'hold' && r.abstain === true
}

/** The size a recommendation votes for; undefined for no vote (unknown, or not a number). */
function voteOf(r: NamedRecommendation, current: number): number | undefined {
  if (r.kind === 'unknown') return undefined
  if (r.kind === 'hold') return current
  // A fractional size rounds up (more capacity is the safe side); NaN is no vote.
  return Number.isFinite(r.to) ? Math.max(0, Math.ceil(r.to)) : undefined
}

function describeRecommendation(r: NamedRecommendation, current: number): string {
  if (abstains(r)) return `${r.policy} has no opinion: ${r.reason}`
  const vote = voteOf(r, current)
  if (r.kind === 'unknown') return `${r.policy} cannot tell: ${r.reason}`
  if (vote === undefined) return `${r.policy} recommended a size that is not a number, ignored: ${r.reason}`
  if (r.kind === 'hold' || vote === current)
    return `${r.policy} recommends staying at ${current}: ${r.reason}`
  return `${r.policy} recommends ${vote}: ${r.reason}`
}

export function govern(input: GovernInput): GovernResult {
  const told = decide(input, input.explain !== false)
  return {
    decision: makeDecision(input.current, told.to, told.reason, told.steps, input.recommendations),
    state: { ...input.state, history: told.history },
  }
}

function boundSentence(n: number, config: GovernorConfig): string {
  return n > config.max ? `max ${config.max}` : `min ${config.min}`
}

function outside(current: number, config: GovernorConfig): string {
  return `${current} is ${current > config.max ? 'above' : 'below'} ${boundSentence(current, config)}`
}

interface Told {
  to: number
  history: Array<{ at: number; to: number }>
  reason: string
  steps: string[]
}

/** The governor's pipeline (see the top of this file); the sentences only when `say`. */
function decide(input: GovernInput, say: boolean): Told {
  const { now, current, config, recommendations, state } = input
  const steps: string[] = []
  if (say) for (const r of recommendations) steps.push(describeRecommendation(r, current))
  /** Why the size changes (the winning policy's sentence, or the bounds). */
  let cause = ''
  /** Why it does not, set by the step that stopped a change. */
  let holdReason: string | undefined
  /** Steps that changed the size on the way, for the reason sentence. */
  const qualifiers: string[] = []

  // (a) + (c): the largest vote wins; holds vote for the current size.
  let raw = current
  let best: NamedRecommendation | undefined
  let votes = 0
  let blind = 0
  for (const r of recommendations) {
    if (abstains(r)) continue
    const vote = voteOf(r, current)
    if (vote === undefined) blind++
    else {
      votes++
      if (best === undefined || vote > raw) {
        best = r
        raw = vote
      }
    }
  }
  if (recommendations.length === 0) {
    if (say) {
      holdReason = 'no policy made a recommendation'
      steps.push(`${holdReason}: staying at ${current}`)
    }
  } else if (best === undefined && blind === 0) {
    if (say) {
      holdReason = recommendations.map((r) => r.reason).join('; ')
      steps.push(`no policy asks for a change: staying at ${current}`)
    }
  } else if (best === undefined) {
    if (say) {
      // Every policy answered `unknown`: some may have partial data, so "no data" would be untrue.
      const unknowns = recommendations.filter((r) => !abstains(r))
      const why =
        unknowns.length === 1
          ? unknowns[0]!.reason
          : unknowns.map((r) => `${r.policy}: ${r.reason}`).join('; ')
      holdReason = `not enough data to decide: ${why}`
      steps.push(`not enough data to decide: staying at ${current}`)
    }
  } else {
    if (say) {
      cause = best.reason
      if (votes > 1) steps.push(`the largest recommendation wins: ${raw} from ${best.policy}`)
      if (raw === current) {
        holdReason = recommendations
          .filter((r) => !abstains(r) && voteOf(r, current) === current)
          .map((r) => r.reason)
          .join('; ')
      }
    }
    // (b) A policy without data might have wanted more: never go down on the others' word.
    if (blind > 0 && raw < current) {
      if (say) {
        const unknowns = recommendations.filter(
          (r) => r.kind === 'unknown' || voteOf(r, current) === undefined,
        )
        const names = unknowns.map((r) => r.policy).join(', ')
        holdReason = `missing data never scales down (${unknowns.map((r) => `${r.policy}: ${r.reason}`).join('; ')})`
        steps.push(
          `${names} ${blind === 1 ? 'has' : 'have'} no data, so ${raw} becomes ${current}: missing data never scales down`,
        )
      }
      raw = current
    }
  }

  // (d) Remember the raw result; forget what no window can see any more.
  // (e) HPA's stabilizeRecommendationWithBehaviors: clamp current between the lowest
  // recommendation of the up window and the highest of the down window (both include raw).
  const longest = Math.max(config.stabilizationDown, config.stabilizationUp)
  const history: Array<{ at: number; to: number }> = []
  let upFloor = raw
  let downCeiling = raw
  for (const h of state.history) {
    if (!(h.at > now - longest)) continue
    history.push(h)
    if (h.at > now - config.stabilizationUp && h.to < upFloor) upFloor = h.to
    if (h.at > now - config.stabilizationDown && h.to > downCeiling) downCeiling = h.to
  }
  history.push({ at: now, to: raw })
  const stabilized = Math.min(Math.max(current, upFloor), downCeiling)
  if (say && raw < current && stabilized > raw) {
    const window = formatDuration(config.stabilizationDown)
    const highest = `the highest recommendation in the last ${window} is ${downCeiling}`
    steps.push(`scale-down stabilization: ${highest}, so ${stabilized}`)
    if (stabilized === current)
      holdReason = `waiting out the ${window} scale-down stabilization window (${highest})`
    else qualifiers.push(`stabilized: ${highest}`)
  } else if (say && raw > current && stabilized < raw) {
    const window = formatDuration(config.stabilizationUp)
    const lowest = `the lowest recommendation in the last ${window} is ${upFloor}`
    steps.push(`scale-up stabilization: ${lowest}, so ${stabilized}`)
    if (stabilized === current)
      holdReason = `waiting out the ${window} scale-up stabilization window (${lowest})`
    else qualifiers.push(`stabilized: ${lowest}`)
  }

  // (f) Step limits.
  let limited = stabilized
  if (limited > current && config.maxStepUp !== undefined && limited - current > config.maxStepUp) {
    limited = current + config.maxStepUp
    if (say) {
      const sentence = `at most ${config.maxStepUp} added per decision`
      steps.push(`${sentence}: ${stabilized} becomes ${limited}`)
      if (limited === current) holdReason = `${sentence} (${cause})`
      else qualifiers.push(`${sentence}`)
    }
  } else if (
    limited < current &&
    config.maxStepDown !== undefined &&
    current - limited > config.maxStepDown
  ) {
    limited = current - config.maxStepDown
    if (say) {
      const sentence = `at most ${config.maxStepDown} removed per decision`
      steps.push(`${sentence}: ${stabilized} becomes ${limited}`)
      if (limited === current) holdReason = `${sentence} (${cause})`
      else qualifiers.push(`${sentence}`)
    }
  }

  // (g) Bounds always apply. A group outside them is brought back whatever the policies say.
  const inBounds = clampToBounds(current, config)
  const bounded = clampToBounds(limited, config)
  // When the group is outside its bounds and goes just to them, the bounds are the cause.
  const boundsAreCause = inBounds !== current && bounded === inBounds
  if (say) {
    if (bounded !== limited) {
      steps.push(`${limited} is outside the bounds: ${boundSentence(limited, config)} gives ${bounded}`)
      if (bounded === current) holdReason = `already at ${boundSentence(limited, config)} (${cause})`
      else if (!boundsAreCause) qualifiers.push(`held to ${boundSentence(limited, config)}`)
    }
    if (boundsAreCause) cause = outside(current, config)
  }

  // (h) Cooldown: no metric-driven change in that direction yet; the bounds still apply.
  let to = bounded
  if (to !== current) {
    const left = cooldownLeft(config, state, now, to > current ? 'up' : 'down')
    if (left > 0 && to !== inBounds) {
      to = inBounds
      if (say) {
        const sentence = cooldownSentence(state, left)
        if (to === current) {
          holdReason = sentence
          steps.push(sentence)
        } else {
          cause = outside(current, config)
          steps.push(`${sentence}: only the bounds apply, ${to}`)
          qualifiers.length = 0 // what limited the policies' size no longer matters
          qualifiers.push(`${sentence}: only the bounds apply`)
        }
      }
    }
  }

  // (i) One sentence.
  const reason = !say
    ? ''
    : to === current
      ? `hold at ${current}: ${holdReason ?? 'nothing to change'}`
      : `scale ${to > current ? 'up' : 'down'} ${current} → ${to}: ${cause}${qualifiers.length > 0 ? ` (${qualifiers.join('; ')})` : ''}`
  return { to, history, reason, steps }
}

/** A decision from `from` to `to`: a hold when they are equal, a scale otherwise. */
export function makeDecision(
  from: number,
  to: number,
  reason: string,
  steps: string[] = [reason],
  recommendations: NamedRecommendation[] = [],
): Decision {
  return { kind: to === from ? 'hold' : 'scale', from, to, reason, steps, recommendations }
}

// ─── Manual requests ─────────────────────────────────────────────────────────

export interface ManualInput {
  now: number
  current: number
  /** The size asked for; exactly one of `to` and `by`. */
  to?: number
  /** Instances to add (negative: remove). */
  by?: number
  /** Skip the cooldown. Bounds still apply. */
  force?: boolean
  config: GovernorConfig
  state: GovernorState
  /** Who or what asked, for the sentence ("deploy prep"). */
  note?: string
}

export type ManualPlan =
  | { ok: true; from: number; to: number; reason: string; steps: string[]; forced: boolean }
  /** Refused because of the cooldown; `retryAfter` ms until it ends. */
  | { ok: false; from: number; reason: string; steps: string[]; retryAfter: number }

/**
 * Plans a manual request (`tide up|down`, `POST /v1/groups/:name/scale`). Bounds always apply.
 * The cooldown applies unless `force` (seed 000's manual up/down ignore the cooldown; Tide asks
 * for it to be said). Throws BadRequestError (E_BAD_REQUEST) for a malformed request.
 */
export function planManual(input: ManualInput): ManualPlan {
  const { now, current, to, by, config, state } = input
  if ((to === undefined) === (by === undefined)) throw new BadRequestError('give exactly one of "to" or "by"')
  if (to !== undefined && !(Number.isInteger(to) && to >= 0)) {
    throw new BadRequestError(`"to" must be a whole number ≥ 0, not ${to}`, { to })
  }
  if (by !== undefined && !Number.isInteger(by))
    throw new BadRequestError(`"by" must be a whole number, not ${by}`, { by })
  const requested = to ?? current + by!
  const asked = to !== undefined ? `asked for ${to}` : `asked for ${by! >= 0 ? '+' : ''}${by}`
  const note = input.note ? ` (${input.note})` : ''
  const steps = [`manual request${note}: ${asked}`]
  const bounded = clampToBounds(requested, config)
  const bound =
    requested > config.max
      ? `max ${config.max}`
      : requested < config.min
        ? `min ${config.min}`
        : 'no fewer than 0'
  if (bounded !== requested) steps.push(`${requested} is outside the bounds: ${bound} gives ${bounded}`)
  if (bounded === current) {
    const why = bounded !== requested ? `${asked}, but ${bound} applies` : `already at ${current}`
    return {
      ok: true,
      from: current,
      to: current,
      reason: `hold at ${current}: ${why}`,
      steps,
      forced: false,
    }
  }
  const direction: Direction = bounded > current ? 'up' : 'down'
  const left = cooldownLeft(config, state, now, direction)
  let forced = false
  if (left > 0) {
    const sentence = cooldownSentence(state, left)
    if (!input.force) {
      steps.push(sentence)
      return {
        ok: false,
        from: current,
        reason: `refused to scale ${direction} ${current} → ${bounded}: ${sentence}; force skips the cooldown`,
        steps,
        retryAfter: left,
      }
    }
    forced = true
    steps.push(`cooldown skipped (force): ${formatDuration(left)} was left`)
  }
  const extras = [
    bounded !== requested ? `limited to ${bound}` : '',
    forced ? 'cooldown skipped (force)' : '',
  ]
    .filter((s) => s !== '')
    .join('; ')
  const reason = `scale ${direction} ${current} → ${bounded}: manual request${note}, ${asked}${extras ? `; ${extras}` : ''}`
  return { ok: true, from: current, to: bounded, reason, steps, forced }
}
