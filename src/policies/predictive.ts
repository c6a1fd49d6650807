/**
 * `predictive`: target tracking that also scales up ahead of the load it expects.
 *
 *   - kind: predictive
 *     metric: request_rate
 *     per_instance: 25
 *     lead: 90s              # boot time of a new instance + one evaluation interval
 *     mode: scale            # or forecast-only: say what it would do, do what `target` does
 *
 * It is the `target` policy (HPA's formula, same tolerance and missing-data rules) with a
 * forecast on top, made from the group's own history of the metric (PolicyInput.history):
 *
 *   level     = mean of the last 5 minutes
 *   growth_k  = mean around (now + lead − k days) ÷ mean of (the last 5 minutes − k days),
 *               for k = 1, 2, 3 days (daily seasonality) and 7, 14 days (weekly)
 *   growth    = median of the daily ratios, averaged with the median of the weekly ones
 *   trend     = least-squares slope of the last 15 minutes, carried `lead` ahead
 *   forecast  = max(level × growth, level + trend × lead)
 *
 * and then: size = ceil(forecast / per_instance). Rules (AWS predictive scaling's, anchors.md §5):
 *   - it scales UP to the forecast when that is more than `target` asks for;
 *   - it never scales in on a forecast alone: a scale-in comes from the observed load (`target`),
 *     and the forecast may only hold it back (not below what is expected within `lead`);
 *   - with less than one day of history (no seasonality to learn) it is exactly `target`;
 *   - `forecast-only` returns what `target` returns, with what the forecast would have done in
 *     the sentence, so the decision log shows it before anyone trusts it.
 *
 * Ratios rather than absolute values: the seasonal shape (how much demand grows in the next
 * minutes at this time of day) carries over between days whose level differs (a launch day,
 * a weekend), and a gap or outage in one past day only moves the median a little.
 */
import { z } from 'zod'
import { METRIC_NAME } from '../core/condition.js'
import { formatDuration } from '../core/duration.js'
import { duration } from '../core/schema.js'
import type { Policy, PolicyInput, Recommendation } from '../core/types.js'
import { decideTarget, type TargetConfig } from './target.js'

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

export function buildPredictive(config: PredictiveConfig): Policy {
  const target: TargetConfig = {
    kind: 'target',
    metric: config.metric,
    per_instance: config.per_instance,
    tolerance: config.tolerance,
  }
  return (input) => decidePredictive(config, input, target)
}

/** A forecast of the metric's group value `lead` from now, and how it was made. */
export interface Forecast {
  value: number
  /** "level 120 × daily growth 1.08 (3 days) …" */
  how: string
}

/** Why no forecast could be made, or the forecast. Pure. */
export function forecast(config: PredictiveConfig, input: PolicyInput): Forecast | { none: string } {
  const { history, now } = input
  const { metric, lead } = config
  if (!history) return { none: 'no history is kept for this group' }
  const recent = history(metric, now - RECENT, now)
  if (recent.length === 0) return { none: `no history of ${metric} in the last ${formatDuration(RECENT)}` }
  const oldest = history(metric, now - DAY - RECENT, now - DAY)
  if (oldest.length === 0) {
    return { none: `less than a day of ${metric} history, so no seasonality to learn yet` }
  }
  const level = mean(recent)
  const ratio = (k: number): number | undefined => {
    const back = k * DAY
    const base = history(metric, now - RECENT - back, now - back)
    const ahead = history(metric, now + lead - RECENT / 2 - back, now + lead + RECENT / 2 - back)
    if (base.length === 0 || ahead.length === 0) return undefined
    const b = mean(base)
    const a = mean(ahead)
    if (b <= 0) return a <= 0 ? 1 : undefined
    return a / b
  }
  const daily: number[] = []
  const weekly: number[] = []
  for (const k of DAILY_LAGS) {
    const r = ratio(k)
    if (r !== undefined) daily.push(r)
  }
  for (const k of WEEKLY_LAGS) {
    const r = ratio(k)
    if (r !== undefined) weekly.push(r)
  }
  let growth = median(daily)
  if (weekly.length > 0) growth = (growth + median(weekly)) / 2
  growth = Math.min(MAX_GROWTH, Math.max(1 / MAX_GROWTH, growth))
  const seasonal = level * growth
  const fit = slope(history(metric, now - TREND, now))
  const trended = Math.max(0, level + fit * (lead + RECENT / 2))
  const lags = `${daily.length} daily${weekly.length > 0 ? ` and ${weekly.length} weekly` : ''} lag${daily.length + weekly.length === 1 ? '' : 's'}`
  const how =
    trended > seasonal
      ? `${short(level)} now, rising ${short(fit * MINUTE)}/min over the last ${formatDuration(TREND)}`
      : `${short(level)} now × ${short(growth)} seasonal growth (${lags})`
  return { value: Math.max(seasonal, trended), how }
}

function decidePredictive(
  config: PredictiveConfig,
  input: PolicyInput,
  target: TargetConfig,
): Recommendation {
  const reactive = decideTarget(target, input)
  const f = forecast(config, input)
  if ('none' in f) return { ...reactive, reason: `${reactive.reason} (no forecast: ${f.none})` }
  const { current } = input
  const need = Math.max(0, Math.ceil(f.value / config.per_instance - 1e-9))
  const wanted = reactive.kind === 'scale' ? reactive.to : reactive.kind === 'hold' ? current : undefined
  const expected = `${config.metric} ${short(f.value)} expected in ${formatDuration(config.lead)} (${f.how}) → ${need} instance${need === 1 ? '' : 's'}`
  const onlyWould = (would: string): Recommendation => ({
    ...reactive,
    reason: `${reactive.reason}; forecast-only: would ${would}, ${expected}`,
  })
  if (need > current && (wanted === undefined || need > wanted)) {
    // Ahead of the load: the forecast asks for more than the load seen now.
    if (config.mode === 'forecast-only') return onlyWould(`scale up ${current} → ${need} ahead of the load`)
    return { kind: 'scale', to: need, reason: `${expected}, scaling ahead of the load` }
  }
  if (wanted !== undefined && wanted < current && need > wanted) {
    // The load seen now allows a scale-in, but not below what is expected within `lead`.
    const to = Math.min(current, need)
    const would = to === current ? `hold at ${current}` : `scale in only to ${to}`
    if (config.mode === 'forecast-only') return onlyWould(would)
    if (to === current) return { kind: 'hold', reason: `${reactive.reason}, but ${expected}` }
    return { kind: 'scale', to, reason: `${reactive.reason}, but ${expected}` }
  }
  return { ...reactive, reason: `${reactive.reason}; ${expected}` }
}

function mean(samples: ReadonlyArray<{ value: number }>): number {
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

/** About three significant digits, cheaply: this runs at every evaluation. */
function short(n: number): string {
  if (Number.isInteger(n)) return String(n)
  const a = Math.abs(n)
  if (a >= 100) return String(Math.round(n))
  if (a >= 1) return String(Math.round(n * 100) / 100)
  return String(Number(n.toPrecision(3)))
}

/** Least-squares slope (value per ms); 0 with fewer than 3 samples or no spread in time. */
function slope(samples: ReadonlyArray<{ at: number; value: number }>): number {
  const n = samples.length
  if (n < 3) return 0
  let st = 0
  let sv = 0
  for (const s of samples) {
    st += s.at
    sv += s.value
  }
  const mt = st / n
  const mv = sv / n
  let num = 0
  let den = 0
  for (const s of samples) {
    num += (s.at - mt) * (s.value - mv)
    den += (s.at - mt) * (s.at - mt)
  }
  return den > 0 ? num / den : 0
}
