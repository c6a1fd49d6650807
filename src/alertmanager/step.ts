/**
 * Docker Scaler's arithmetic, pure (seeds.md §3.2–§3.4): which step size wins, which bounds
 * apply, and where a scale request lands. No I/O; the receiver feeds it what it read.
 *
 * Step precedence (issue #11 of docker-scaler): query `by` > the alert's `by` label > the
 * service's label (`com.df.scaleUpBy` / `com.df.scaleDownBy`) > the configured default.
 * A `by` of 0 means "not given", a negative query `by` counts as its absolute value (both as the
 * original). Unlike the original, a `by` that is not a number is an error naming where it came
 * from, and label values may be strings, as Alertmanager always sends them.
 */
import { BadRequestError } from '../core/errors.js'
import { ServiceLabelError } from '../targets/docker-swarm/errors.js'

export type Direction = 'up' | 'down'
export type StepSource = 'query' | 'alert' | 'label' | 'default'

/** The keys of the labels a service (or an alerting service, for nodes) may carry. */
export interface LabelKeys {
  min: string
  max: string
  up_by: string
  down_by: string
}

/** Bounds and steps when no label says otherwise. */
export interface ScaleDefaults {
  min: number
  max: number
  up_by: number
  down_by: number
}

/**
 * A request's `by`: a whole number, its sign ignored; 0, empty or absent is "not given".
 * `where` names the parameter in the error ("query parameter by", "groupLabels.by").
 */
export function parseBy(value: unknown, where: string): number | undefined {
  if (value === undefined || value === null || value === '') return undefined
  const text =
    typeof value === 'number' ? String(value) : typeof value === 'string' ? value.trim() : undefined
  if (text === undefined || !/^[-+]?\d+$/.test(text)) {
    throw new BadRequestError(`${where} must be a whole number (got ${JSON.stringify(value)})`)
  }
  const n = Math.abs(Number(text))
  return n === 0 ? undefined : n
}

/** A label that must be a whole number ≥ 0, or undefined when the service does not carry it. */
function labelNumber(service: string, labels: Record<string, string>, key: string): number | undefined {
  const raw = labels[key]
  if (raw === undefined || raw.trim() === '') return undefined
  if (!/^\d+$/.test(raw.trim())) throw new ServiceLabelError(service, key, raw)
  return Number(raw.trim())
}

export interface Resolved {
  by: number
  byFrom: StepSource
  min: number
  max: number
}

/**
 * The step and bounds for one request. `query` and `alert` are already parsed (`parseBy`);
 * the service's labels are read with `keys`; anything missing falls back to `defaults`.
 * Throws E_SWARM_LABEL for a label that is not a whole number.
 */
export function resolve(input: {
  direction: Direction
  query?: number
  alert?: number
  service: string
  labels: Record<string, string>
  keys: LabelKeys
  defaults: ScaleDefaults
}): Resolved {
  const { direction, service, labels, keys, defaults } = input
  const labelBy = labelNumber(service, labels, direction === 'up' ? keys.up_by : keys.down_by)
  const defaultBy = direction === 'up' ? defaults.up_by : defaults.down_by
  let by: number
  let byFrom: StepSource
  if (input.query !== undefined) [by, byFrom] = [input.query, 'query']
  else if (input.alert !== undefined) [by, byFrom] = [input.alert, 'alert']
  else if (labelBy !== undefined && labelBy > 0) [by, byFrom] = [labelBy, 'label']
  else [by, byFrom] = [defaultBy, 'default']
  return {
    by,
    byFrom,
    min: labelNumber(service, labels, keys.min) ?? defaults.min,
    max: labelNumber(service, labels, keys.max) ?? defaults.max,
  }
}

/**
 * Where `current` goes when asked to move `by` in `direction` within [min, max] (max wins when
 * min > max; never below 0). The size never moves against the asked direction: an `up` on a
 * service above `max` changes nothing (the original scaled it down to max, seeds.md §3.9 item 9).
 * `atBound` is set when nothing changes.
 */
export function plan(
  current: number,
  direction: Direction,
  by: number,
  min: number,
  max: number,
): { to: number; atBound?: 'min' | 'max' } {
  const moved = Math.max(0, current + (direction === 'up' ? by : -by))
  const wanted = Math.min(max, Math.max(min, moved))
  const to = direction === 'up' ? Math.max(current, wanted) : Math.min(current, wanted)
  if (to !== current) return { to }
  return { to, atBound: direction === 'up' ? 'max' : 'min' }
}

/** Docker Scaler's sentences for a service (seeds.md §3.3). */
export function serviceMessage(
  name: string,
  from: number,
  to: number,
  r: { min: number; max: number },
  atBound?: 'min' | 'max',
): string {
  if (atBound === 'max') return `${name} is already scaled to the maximum number of ${r.max} replicas`
  if (atBound === 'min') return `${name} is already descaled to the minimum number of ${r.min} replicas`
  return `Scaling ${name} from ${from} to ${to} replicas (min: ${r.min}, max: ${r.max})`
}

/** `scale` as given (query or label), or the seed's 400 messages. */
export function parseDirection(value: string | undefined): Direction {
  if (value === undefined || value === '') throw new BadRequestError('No scale direction in request')
  if (value !== 'up' && value !== 'down') {
    throw new BadRequestError(
      `Incorrect scale direction in request: scale must be "up" or "down" (got ${JSON.stringify(value)})`,
    )
  }
  return value
}
