/**
 * `predictive`: target tracking that scales up ahead of the load it expects, keeps room for the
 * bursts it has seen, and lets a burst go once it is over.
 *
 *   - kind: predictive
 *     metric: request_rate
 *     per_instance: 30       # the value an instance should carry (here 75 % of the 40 it can)
 *     lead: 70s              # boot time of a new instance + one evaluation interval
 *     burst: { deviations: 1, window: 2h }   # room for the rate + 1 σ of the last 2 h, at capacity
 *     hold: { window: 5m, above: 0.5 }       # scale in slowly, but not by holding a burst's size
 *     mode: scale            # or forecast-only: say what it would do, do what `target` does
 *
 * It is the `target` policy (HPA's formula, same tolerance and missing-data rules) with three
 * additions, each of which can only ask for more instances than `target` does:
 *
 * 1. A forecast, from the group's own history of the metric (PolicyInput.history):
 *
 *      level     = mean of the last 5 minutes
 *      growth_k  = mean around (M + 1 min + lead − k days) ÷ mean of (the 5 minutes before
 *                  M − k days), for k = 1, 2, 3 days (daily seasonality) and 7, 14 days
 *                  (weekly); M is the start of the current minute
 *      growth    = median of the daily ratios, averaged with the median of the weekly ones
 *      trend     = least-squares slope of the last 15 minutes, carried `lead` ahead
 *      forecast  = max(level × growth, level + trend × lead)
 *
 *    size = ceil(forecast / per_instance). Rules (AWS predictive scaling's, anchors.md §5): it
 *    scales UP to the forecast when that is more than `target` asks for; it never scales in on a
 *    forecast alone (a scale-in comes from the observed load, and the forecast may only hold it
 *    back, not below what is expected within `lead`); with less than one day of history there
 *    is no forecast. Ratios rather than absolute values: the seasonal shape carries over between
 *    days whose level differs (a launch day, a weekend), and a gap or outage in one past day only
 *    moves the median a little.
 *
 * 2. Burst room: at least ceil((value now + deviations × σ) / burst.per_instance) instances,
 *    where σ is the standard deviation of the metric over the last `burst.window` (up to the
 *    start of the current minute) and
 *    burst.per_instance is what an instance can carry at most (default per_instance ÷ 0.75).
 *    A steady service gets little room beyond `per_instance`'s; a bursty one gets more, sized
 *    by the bursts it has actually had (provisioning for mean + kσ, as capacity planners do).
 *
 * 3. Hold: a scale-in goes no lower than the highest need of the last `hold.window`, but a
 *    hold never keeps more than `hold.above` (as a fraction, at least one instance) above what
 *    is needed now. Small dips are held, as HPA's scale-down stabilization does; a burst that is
 *    over is let go at once instead of being paid for during the whole window. With `hold`,
 *    give the group `scale_down.stabilization: 0s`, or the group holds the bursts anyway.
 *
 * `forecast-only` answers exactly what `target` answers, with what the forecast would have
 * done in the sentence, so the decision log shows it before anyone trusts it.
 *
 * Slow-moving parts (the seasonal growth, σ) are computed from windows that end at the start of
 * the current minute, once per minute and history source: `tide simulate` evaluates every 10 s
 * for weeks of trace, and those windows do not change within a minute.
 */
import { z } from 'zod'
import { METRIC_NAME } from '../core/condition.js'
import { formatDuration } from '../core/duration.js'
import { duration } from '../core/schema.js'
import type { Policy, PolicyInput, Recommendation } from '../core/types.js'
import { decideTarget, explains, type TargetConfig } from './target.js'

const MINUTE = 60_000
const DAY = 86_400_000
/** The window the current level is measured over. */
const RECENT = 5 * MINUTE
/** The window the trend is fitted over. */
const TREND = 15 * MINUTE
/** Past days looked at: three daily lags and two weekly ones. */
const DAILY_LAGS = [1, 2, 3]
const WEEKLY_LAGS = [7, 14]
/** Growth is kept within these factors: one odd day must not ask for 20× the load. */
const MAX_GROWTH = 4
/** burst.per_instance by default: per_instance is taken to be 75 % of what an instance can carry. */
const DEFAULT_BURST_SHARE = 0.75

export const predictiveSchema = z
  .object({
    kind: z
      .literal('predictive')
      .describe("Target tracking that also scales up ahead of a forecast from the group's history."),
    name: z.string().min(1).optional().describe('Name in decisions and logs. @default "predictive[<index>]"'),
    metric: z
      .string()
      .regex(METRIC_NAME, { message: 'must be a metric name such as "request_rate"' })
      .describe('The metric to track and forecast (its group total), e.g. request_rate.'),
    per_instance: z
      .number()
      .positive({ message: 'must be > 0' })
      .describe('The value each instance should carry, as in `target`.'),
    tolerance: z
      .number()
      .min(0, { message: 'must be ≥ 0' })
      .lt(1, { message: 'must be < 1 (0.1 means ±10%)' })
      .default(0.1)
      .describe('No reactive change while observed / per_instance is within 1 ± tolerance. @default 0.1'),
    lead: duration('90s').describe(
      'How far ahead to forecast: the time a new instance takes to serve, plus one evaluation interval. @default 90s',
    ),
    burst: z
      .object({
        deviations: z
          .number()
          .min(0, { message: 'must be ≥ 0 (0 turns burst room off)' })
          .default(1)
          .describe(
            'Keep room for the value now plus this many standard deviations of the last `window`; 0 turns it off. @default 1',
          ),
        window: duration('2h').describe('How far back the standard deviation looks. @default 2h'),
        per_instance: z
          .number()
          .positive({ message: 'must be > 0' })
          .optional()
          .describe('What one instance can carry at most, for burst room. @default per_instance ÷ 0.75'),
      })
      .strict()
      .prefault({})
      .describe('Room for bursts, sized from how much the metric has varied recently.'),
    hold: z
      .object({
        window: duration('5m').describe(
          'A scale-in goes no lower than the highest need of this window; 0s turns holding off. @default 5m',
        ),
        above: z
          .number()
          .min(0, { message: 'must be ≥ 0' })
          .default(0.5)
          .describe(
            'A hold keeps at most this fraction (and at least one instance) above what is needed now, so a burst that is over is let go. @default 0.5',
          ),
      })
      .strict()
      .prefault({})
      .describe(
        'Scale in slowly without paying for a past burst; use it with the group’s scale_down.stabilization at 0s.',
      ),
    mode: z
      .enum(['scale', 'forecast-only'])
      .default('scale')
      .describe(
        '`scale` acts on the forecast; `forecast-only` acts like `target` and only says what the forecast would have done. @default scale',
      ),
  })
  .strict()

export type PredictiveConfig = z.output<typeof predictiveSchema>

export function predictiveMetrics(config: PredictiveConfig): string[] {
  return [config.metric]
}

/**
 * How far back the policy reads its metric's history (ms): the oldest weekly lag (14 days and
 * 5 minutes), or a longer burst or hold window. The group's `store.history` must keep that much,
 * or the forecast quietly loses its seasonality (src/config/load.ts checks it).
 */
export function predictiveHistory(config: PredictiveConfig): number {
  const weekly = Math.max(...WEEKLY_LAGS) * DAY + RECENT
  const burst = config.burst.deviations > 0 ? config.burst.window : 0
  return Math.max(weekly, burst, config.hold.window, TREND)
}

type History = NonNullable<PolicyInput['history']>
type Samples = ReadonlyArray<{ at: number; value: number }>

/** The seasonal growth expected within `lead`, from windows that end at the start of a minute. */
interface Seasonal {
  growth: number
  daily: number
  weekly: number
}

/** What changes at most once a minute, computed once per minute and history source. */
interface Slow {
  seasonal: Seasonal | { none: string }
  /** Standard deviation of the metric over burst.window; undefined without samples. */
  spread: number | undefined
}

/** Remembers the slow parts of the last minute; one per policy instance. */
export interface Memo {
  history?: History
  minute: number
  slow?: Slow
  /** Per-minute sums of the metric over burst.window, oldest first, for σ. */
  buckets: Bucket[]
}

/** The samples of one minute [minute, minute + 1 min), summed. */
interface Bucket {
  minute: number
  n: number
  sum: number
  squares: number
}

/**
 * σ of the metric over [minute − window, minute), from per-minute sums: with the same history
 * source as last time only the minutes since are read (one read either way).
 */
function spreadOf(
  history: History,
  metric: string,
  minute: number,
  window: number,
  buckets: Bucket[],
  same: boolean,
): number | undefined {
  const since = minute - window
  if (!same) buckets.length = 0
  let drop = 0
  while (drop < buckets.length && buckets[drop]!.minute < since) drop++
  if (drop > 0) buckets.splice(0, drop)
  const last = buckets[buckets.length - 1]
  const from = last === undefined ? since : last.minute + MINUTE
  if (from < minute) {
    // Times are whole ms: [from, minute − 1] is [from, minute).
    let bucket: Bucket | undefined
    for (const s of history(metric, from, minute - 1)) {
      if (s.at < from || s.at >= minute) continue
      const m = from + Math.floor((s.at - from) / MINUTE) * MINUTE
      if (bucket === undefined || bucket.minute !== m) {
        bucket = { minute: m, n: 0, sum: 0, squares: 0 }
        buckets.push(bucket)
      }
      bucket.n++
      bucket.sum += s.value
      bucket.squares += s.value * s.value
    }
    // Minutes with no sample are remembered as empty, so they are not read again.
    const end = buckets[buckets.length - 1]
    if (end === undefined || end.minute < minute - MINUTE)
      buckets.push({ minute: minute - MINUTE, n: 0, sum: 0, squares: 0 })
  }
  let n = 0
  let sum = 0
  let squares = 0
  for (const b of buckets) {
    n += b.n
    sum += b.sum
    squares += b.squares
  }
  if (n < 2) return undefined
  const m = sum / n
  return Math.sqrt(Math.max(0, squares / n - m * m))
}

export function buildPredictive(config: PredictiveConfig): Policy {
  const target: TargetConfig = {
    kind: 'target',
    metric: config.metric,
    per_instance: config.per_instance,
    tolerance: config.tolerance,
  }
  const memo: Memo = { minute: Number.NaN, buckets: [] }
  return (input) => decidePredictive(config, input, target, memo)
}

/** A forecast of the metric's group value `lead` from now, and how it was made. */
export interface Forecast {
  value: number
  /** "120 now × 1.08 seasonal growth (3 daily lags)"; empty when the caller reads no sentence. */
  how: string
}

/**
 * growth_k: the mean around (M + 1 min + lead − k days) ÷ the mean of the 5 minutes before M − k days;
 * undefined when either window has no history.
 */
function growthAt(
  history: History,
  metric: string,
  minute: number,
  lead: number,
  k: number,
  base?: Samples,
): number | undefined {
  const back = k * DAY
  const before = base ?? history(metric, minute - RECENT - back, minute - back)
  if (before.length === 0) return undefined
  // Centred on the end of the current minute + lead: never nearer than now + lead.
  const at = minute + MINUTE + lead - back
  const ahead = history(metric, at - RECENT / 2, at + RECENT / 2)
  if (ahead.length === 0) return undefined
  const b = mean(before)
  const a = mean(ahead)
  if (b <= 0) return a <= 0 ? 1 : undefined
  return a / b
}

function computeSlow(config: PredictiveConfig, history: History, minute: number, memo: Memo): Slow {
  const { metric, lead } = config
  let spread: number | undefined
  if (config.burst.deviations > 0) {
    const same = memo.history === history && memo.minute < minute
    spread = spreadOf(history, metric, minute, config.burst.window, memo.buckets, same)
  }
  const oldest = history(metric, minute - DAY - RECENT, minute - DAY)
  if (oldest.length === 0) {
    return {
      seasonal: { none: `less than a day of ${metric} history, so no seasonality to learn yet` },
      spread,
    }
  }
  const daily: number[] = []
  const weekly: number[] = []
  for (const k of DAILY_LAGS) {
    const r = growthAt(history, metric, minute, lead, k, k === 1 ? oldest : undefined)
    if (r !== undefined) daily.push(r)
  }
  for (const k of WEEKLY_LAGS) {
    const r = growthAt(history, metric, minute, lead, k)
    if (r !== undefined) weekly.push(r)
  }
  let growth = median(daily)
  if (weekly.length > 0) growth = (growth + median(weekly)) / 2
  growth = Math.min(MAX_GROWTH, Math.max(1 / MAX_GROWTH, growth))
  return { seasonal: { growth, daily: daily.length, weekly: weekly.length }, spread }
}

/** The slow parts for `now`: from the memo when the same history source asked this minute. */
function slowParts(config: PredictiveConfig, history: History, now: number, memo?: Memo): Slow {
  const minute = Math.floor(now / MINUTE) * MINUTE
  if (memo === undefined) return computeSlow(config, history, minute, { minute: Number.NaN, buckets: [] })
  if (memo.slow !== undefined && memo.history === history && memo.minute === minute) return memo.slow
  const slow = computeSlow(config, history, minute, memo)
  memo.history = history
  memo.minute = minute
  memo.slow = slow
  return slow
}

/** Why no forecast could be made, or the forecast. Pure (the memo only saves work). */
export function forecast(
  config: PredictiveConfig,
  input: PolicyInput,
  memo?: Memo,
  recent?: Samples,
): Forecast | { none: string } {
  const { history, now } = input
  const { metric, lead } = config
  if (!history) return { none: 'no history is kept for this group' }
  // One read for the trend window; the level is its last RECENT.
  const trend = recent ?? history(metric, now - TREND, now)
  // The level: the samples of the last RECENT, at the end (oldest first).
  let level = 0
  let n = 0
  for (let i = trend.length - 1; i >= 0; i--) {
    const s = trend[i]!
    if (s.at < now - RECENT) break
    if (s.at <= now) {
      level += s.value
      n++
    }
  }
  if (n === 0) return { none: `no history of ${metric} in the last ${formatDuration(RECENT)}` }
  level /= n
  const { seasonal: s } = slowParts(config, history, now, memo)
  if ('none' in s) return s
  const seasonal = level * s.growth
  const fit = slope(trend, now - TREND)
  const trended = Math.max(0, level + fit * (lead + RECENT / 2))
  let how = ''
  if (explains(input)) {
    const lags = `${s.daily} daily${s.weekly > 0 ? ` and ${s.weekly} weekly` : ''} lag${s.daily + s.weekly === 1 ? '' : 's'}`
    how =
      trended > seasonal
        ? `${short(level)} now, rising ${short(fit * MINUTE)}/min over the last ${formatDuration(TREND)}`
        : `${short(level)} now × ${short(s.growth)} seasonal growth (${lags})`
  }
  return { value: Math.max(seasonal, trended), how }
}

/** The metric's group value in this evaluation's reading (total, group value, or sum); undefined if unusable. */
function valueNow(input: PolicyInput, metric: string): number | undefined {
  const r = input.metrics[metric]
  if (r === undefined || input.now - r.at > input.staleAfter) return undefined
  if (r.total !== undefined && Number.isFinite(r.total)) return r.total
  if (r.group !== undefined && Number.isFinite(r.group)) return r.group
  let sum = 0
  let n = 0
  for (const id in r.perInstance) {
    const v = r.perInstance[id]!
    if (Number.isFinite(v)) {
      sum += v
      n++
    }
  }
  return n > 0 && r.missing.length === 0 ? sum : undefined
}

function instances(n: number): string {
  return `${n} instance${n === 1 ? '' : 's'}`
}

function ceil(x: number): number {
  return Math.max(0, Math.ceil(x - 1e-9 * Math.max(1, Math.abs(x))))
}

function decidePredictive(
  config: PredictiveConfig,
  input: PolicyInput,
  target: TargetConfig,
  memo: Memo,
): Recommendation {
  const reactive = decideTarget(target, input)
  const say = explains(input)
  const { current, history, now } = input
  const { metric, per_instance: perInstance } = config
  const window = Math.max(TREND, config.hold.window)
  const recent = history ? history(metric, now - window, now) : undefined
  const f = forecast(config, input, memo, recent)
  const wanted = reactive.kind === 'scale' ? reactive.to : reactive.kind === 'hold' ? current : undefined
  let to = wanted
  let reason = ''

  // 1. The forecast.
  if ('none' in f) {
    if (say) reason = `${reactive.reason} (no forecast: ${f.none})`
  } else {
    const need = ceil(f.value / perInstance)
    const expected = say
      ? `${metric} ${short(f.value)} expected in ${formatDuration(config.lead)} (${f.how}) → ${instances(need)}`
      : ''
    if (need > current && (wanted === undefined || need > wanted)) {
      // Ahead of the load: the forecast asks for more than the load seen now.
      if (config.mode === 'forecast-only') {
        if (say)
          reason = `${reactive.reason}; forecast-only: would scale up ${current} → ${need} ahead of the load, ${expected}`
      } else {
        to = need
        if (say) reason = `${expected}, scaling ahead of the load`
      }
    } else if (wanted !== undefined && wanted < current && need > wanted) {
      // The load seen now allows a scale-in, but not below what is expected within `lead`.
      const held = Math.min(current, need)
      if (config.mode === 'forecast-only') {
        if (say) {
          const would = held === current ? `hold at ${current}` : `scale in only to ${held}`
          reason = `${reactive.reason}; forecast-only: would ${would}, ${expected}`
        }
      } else {
        to = held
        if (say) reason = `${reactive.reason}, but ${expected}`
      }
    } else if (say) reason = `${reactive.reason}; ${expected}`
  }

  // 2. Burst room and 3. hold: only on a usable reading, and never in forecast-only mode.
  const value = config.mode === 'scale' && to !== undefined ? valueNow(input, metric) : undefined
  if (value !== undefined && to !== undefined && history) {
    const { spread } = slowParts(config, history, now, memo)
    if (spread !== undefined && spread > 0) {
      const capacity = config.burst.per_instance ?? perInstance / DEFAULT_BURST_SHARE
      const room = ceil((value + config.burst.deviations * spread) / capacity)
      if (room > to) {
        if (say) {
          reason += `; room for bursts: ${metric} ${short(value)} + ${short(config.burst.deviations)} × σ ${short(spread)} (last ${formatDuration(config.burst.window)}) at ${short(capacity)} each → ${instances(room)}`
        }
        to = room
      }
    }
    if (to < current && config.hold.window > 0 && recent !== undefined) {
      let highest = 0
      for (let i = recent.length - 1; i >= 0; i--) {
        const s = recent[i]!
        if (s.at < now - config.hold.window) break
        if (s.value > highest) highest = s.value
      }
      const peak = ceil(highest / perInstance)
      const needNow = Math.max(to, ceil(value / perInstance))
      const limit = needNow + Math.max(1, ceil(config.hold.above * needNow))
      const held = Math.min(current, peak, limit)
      if (held > to) {
        if (say) {
          const capped =
            held === limit && limit < peak
              ? `, at most ${instances(limit - needNow)} above the ${needNow} needed now`
              : ''
          reason += `; holding ${held}: the highest need of the last ${formatDuration(config.hold.window)} is ${peak}${capped}`
        }
        to = held
      }
    }
  }

  if (to === undefined) return say ? { kind: 'unknown', reason } : reactive
  if (to === current) return { kind: 'hold', reason }
  return { kind: 'scale', to, reason }
}

function mean(samples: Samples): number {
  let total = 0
  for (const s of samples) total += s.value
  return total / samples.length
}

/** Median of a short list; 1 (no growth) for an empty one. */
function median(values: number[]): number {
  const n = values.length
  if (n === 0) return 1
  if (n === 1) return values[0]!
  if (n === 2) return (values[0]! + values[1]!) / 2
  const sorted = [...values].sort((a, b) => a - b)
  const mid = n >> 1
  return n % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** About three significant digits, cheaply. */
function short(n: number): string {
  if (Number.isInteger(n)) return String(n)
  const a = Math.abs(n)
  if (a >= 100) return String(Math.round(n))
  if (a >= 1) return String(Math.round(n * 100) / 100)
  return String(Number(n.toPrecision(3)))
}

/**
 * Least-squares slope (value per ms) of the samples at or after `since`; 0 with fewer than 3
 * or no spread in time. One pass, with times taken from `since` to keep the sums small.
 */
function slope(samples: Samples, since: number): number {
  let n = 0
  let st = 0
  let sv = 0
  let stt = 0
  let stv = 0
  for (const s of samples) {
    if (s.at < since) continue
    const t = s.at - since
    n++
    st += t
    sv += s.value
    stt += t * t
    stv += t * s.value
  }
  if (n < 3) return 0
  const den = n * stt - st * st
  return den > 0 ? (n * stv - st * sv) / den : 0
}
