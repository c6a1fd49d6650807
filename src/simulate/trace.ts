/**
 * A request-rate trace: CSV with a header and two columns, a time and a rate.
 *
 *   t,rps            ← the shared traces (../shared/traces/README.md): seconds from the start
 *   0,0.7
 *   60,1.033333
 *
 * The first column is seconds, either from the start of the trace or since the Unix epoch (a
 * Prometheus export: `timestamp,value`); times are made relative to the first row. The second is
 * the mean request rate (requests per second) from that row's time until the next row's. Rows
 * must be in increasing time order; the last row lasts as long as the step before it.
 *
 * Pure: text in, trace out. Bad input throws BadRequestError naming the line and the bad value.
 */
import { readFile } from 'node:fs/promises'
import { basename } from 'node:path'
import { formatDuration, parseDuration } from '../core/duration.js'
import { BadRequestError } from '../core/errors.js'

export interface Trace {
  /** The file name, for reports. */
  name: string
  /** Start of each row in ms from the start of the trace (the first is 0). */
  at: Float64Array
  /** Mean requests per second over each row. */
  rps: Float64Array
  /** End of the last row, ms. */
  end: number
  /** Prefix integrals: requests from the start until `at[i]`; `cum[n]` is the total. */
  cum: Float64Array
}

const MAX_ROWS = 10_000_000

/** Parses CSV text into a trace. `name` labels errors ("nasa.csv line 7: …"). */
export function parseTrace(text: string, name = 'trace'): Trace {
  const lines = text.split(/\r?\n/)
  const times: number[] = []
  const rates: number[] = []
  let sawHeader = false
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (line === '' || line.startsWith('#')) continue
    const cells = line.split(',').map((c) => c.trim().replace(/^"(.*)"$/, '$1'))
    const where = `${name} line ${i + 1}`
    if (cells.length < 2) {
      throw new BadRequestError(`${where}: expected two columns "time,rps", got ${JSON.stringify(line)}`)
    }
    const t = Number(cells[0])
    const r = Number(cells[1])
    if (!sawHeader && times.length === 0 && (Number.isNaN(t) || Number.isNaN(r)) && cells[0] !== '') {
      sawHeader = true // a header such as "t,rps" or "timestamp,value"
      continue
    }
    if (cells[0] === '' || !Number.isFinite(t)) {
      throw new BadRequestError(
        `${where}: the time must be a number of seconds, not ${JSON.stringify(cells[0])}`,
      )
    }
    if (cells[1] === '' || !Number.isFinite(r) || r < 0) {
      throw new BadRequestError(
        `${where}: the rate must be a number of requests per second ≥ 0, not ${JSON.stringify(cells[1])}`,
      )
    }
    if (times.length > 0 && t <= times[times.length - 1]!) {
      throw new BadRequestError(
        `${where}: times must increase, but ${cells[0]} follows ${times[times.length - 1]}`,
      )
    }
    if (times.length >= MAX_ROWS) throw new BadRequestError(`${name}: more than ${MAX_ROWS} rows`)
    times.push(t)
    rates.push(r)
  }
  if (times.length < 2) {
    throw new BadRequestError(`${name}: needs at least two rows of "time,rps", found ${times.length}`)
  }
  const n = times.length
  const first = times[0]!
  const at = new Float64Array(n)
  const rps = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    at[i] = Math.round((times[i]! - first) * 1000)
    rps[i] = rates[i]!
  }
  const lastStep = at[n - 1]! - at[n - 2]!
  return withCum(name, at, rps, at[n - 1]! + lastStep)
}

function withCum(name: string, at: Float64Array, rps: Float64Array, end: number): Trace {
  const n = at.length
  const cum = new Float64Array(n + 1)
  for (let i = 0; i < n; i++) {
    const next = i + 1 < n ? at[i + 1]! : end
    cum[i + 1] = cum[i]! + (rps[i]! * (next - at[i]!)) / 1000
  }
  return { name, at, rps, end, cum }
}

export async function loadTrace(path: string): Promise<Trace> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new BadRequestError(
      `--trace ${path}: ${code === 'ENOENT' ? 'no such file' : `cannot be read (${String(err)})`}`,
    )
  }
  return parseTrace(text, basename(path))
}

/** The row that covers time `t` (ms); the first row before the start, the last after the end. */
export function rowAt(trace: Trace, t: number): number {
  const { at } = trace
  if (t <= 0) return 0
  let lo = 0
  let hi = at.length - 1
  if (t >= at[hi]!) return hi
  // Uniform steps (the usual case) land at once; otherwise binary search.
  const step = at[1]! - at[0]!
  const guess = Math.floor(t / step)
  if (guess < hi && at[guess]! <= t && at[guess + 1]! > t) return guess
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if (at[mid]! <= t) lo = mid
    else hi = mid - 1
  }
  return lo
}

/** Requests from the start of the trace until `t` (ms); before the start, the first row's rate extends back. */
export function requestsUntil(trace: Trace, t: number): number {
  if (t <= 0) return (trace.rps[0]! * t) / 1000
  if (t >= trace.end) {
    const last = trace.rps.length - 1
    return trace.cum[last + 1]! + (trace.rps[last]! * (t - trace.end)) / 1000
  }
  const i = rowAt(trace, t)
  return trace.cum[i]! + (trace.rps[i]! * (t - trace.at[i]!)) / 1000
}

/** Mean request rate over [from, to] (ms); the rate at `to` when the window is empty. */
export function meanRate(trace: Trace, from: number, to: number): number {
  if (to - from <= 0) return trace.rps[rowAt(trace, to)]!
  return ((requestsUntil(trace, to) - requestsUntil(trace, from)) * 1000) / (to - from)
}

/** The largest per-row rate. */
export function peakRate(trace: Trace): number {
  let peak = 0
  for (const r of trace.rps) if (r > peak) peak = r
  return peak
}

/**
 * The part of the trace between `from` and `to` (durations from its start, e.g. "7d", "2h"),
 * made to start at 0. Throws BadRequestError naming the option when the range is empty.
 */
export function sliceTrace(trace: Trace, from?: string, to?: string): Trace {
  if (from === undefined && to === undefined) return trace
  const parse = (flag: string, text: string): number => {
    const ms = parseDuration(text)
    if (ms === undefined) {
      throw new BadRequestError(
        `${flag} must be a duration from the start of the trace, like "36h" or "7d", not ${JSON.stringify(text)}`,
      )
    }
    return ms
  }
  const start = from === undefined ? 0 : parse('--from', from)
  const stop = to === undefined ? trace.end : parse('--to', to)
  if (start >= trace.end) {
    throw new BadRequestError(
      `--from ${from} is at or after the end of ${trace.name} (${formatDuration(trace.end)})`,
    )
  }
  if (stop <= start) throw new BadRequestError(`--to ${to} must be after --from ${from ?? '0'}`)
  const first = rowAt(trace, start)
  const end = Math.min(stop, trace.end)
  let last = first
  while (last + 1 < trace.at.length && trace.at[last + 1]! < end) last++
  const n = last - first + 1
  const at = new Float64Array(n)
  const rps = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    at[i] = Math.max(0, trace.at[first + i]! - start)
    rps[i] = trace.rps[first + i]!
  }
  return withCum(trace.name, at, rps, end - start)
}
