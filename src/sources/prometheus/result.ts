/**
 * Turning a Prometheus query response (../shared/apis/alertmanager-webhook.md §2, the HTTP API's
 * envelope and result formats) into numbers. Pure, and fuzzed: any JSON in, a value or a
 * reason out, never a throw. NaN and ±Inf are "no data", never zero.
 */

/** One series reduced to one number, with its labels. */
export interface SeriesValue {
  labels: Record<string, string>
  /** undefined: the series had no usable sample (NaN, Inf, or none in the range). */
  value: number | undefined
}

export type QueryOutcome =
  | { ok: true; kind: 'scalar'; value: number | undefined; warnings: string[] }
  | { ok: true; kind: 'series'; series: SeriesValue[]; warnings: string[] }
  | { ok: false; error: string }

export type Reducer = 'mean' | 'median' | 'min' | 'max' | 'sum' | 'last'

/** A sample value as Prometheus sends it: a string, with "NaN", "+Inf", "-Inf" possible. */
export function sampleValue(raw: unknown): number | undefined {
  if (typeof raw !== 'string' && typeof raw !== 'number') return undefined
  const n = typeof raw === 'number' ? raw : raw.trim() === '' ? Number.NaN : Number(raw)
  return Number.isFinite(n) ? n : undefined
}

function reduce(values: number[], how: Reducer): number | undefined {
  if (values.length === 0) return undefined
  switch (how) {
    case 'last':
      return values[values.length - 1]
    case 'sum':
      return values.reduce((a, b) => a + b, 0)
    case 'mean':
      return values.reduce((a, b) => a + b, 0) / values.length
    // reduce, not Math.min(...values): a long range would overflow the call stack
    case 'min':
      return values.reduce((a, b) => Math.min(a, b))
    case 'max':
      return values.reduce((a, b) => Math.max(a, b))
    case 'median': {
      const s = [...values].sort((a, b) => a - b)
      const mid = s.length >> 1
      return s.length % 2 ? s[mid] : (s[mid - 1]! + s[mid]!) / 2
    }
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

function labelsOf(v: unknown): Record<string, string> {
  const out: Record<string, string> = {}
  if (isObject(v)) for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x
  return out
}

/** The value of a `[t, "v"]` pair. */
function pairValue(pair: unknown): number | undefined {
  return Array.isArray(pair) && pair.length === 2 ? sampleValue(pair[1]) : undefined
}

/**
 * Reads a parsed response body. `range` says a query_range was made (a matrix is then expected
 * and each series is reduced with `reducer`); for an instant query a matrix is an error that
 * tells the user to wrap the range selector in a function.
 */
export function readResponse(body: unknown, range: boolean, reducer: Reducer = 'mean'): QueryOutcome {
  if (!isObject(body)) return { ok: false, error: 'the answer is not a JSON object' }
  if (body.status === 'error') {
    const type = typeof body.errorType === 'string' ? `${body.errorType}: ` : ''
    return {
      ok: false,
      error: `Prometheus said ${type}${typeof body.error === 'string' ? body.error : 'error'}`,
    }
  }
  if (body.status !== 'success') return { ok: false, error: 'the answer has no "status": "success"' }
  const warnings = Array.isArray(body.warnings) ? body.warnings.filter((w) => typeof w === 'string') : []
  const data = body.data
  if (!isObject(data)) return { ok: false, error: 'the answer has no "data" object' }
  const result = data.result
  switch (data.resultType) {
    case 'scalar':
      return { ok: true, kind: 'scalar', value: pairValue(result), warnings }
    case 'vector': {
      if (!Array.isArray(result)) return { ok: false, error: 'a vector result that is not a list' }
      const series = result
        .filter(isObject)
        .map((s) => ({ labels: labelsOf(s.metric), value: pairValue(s.value) }))
      return { ok: true, kind: 'series', series, warnings }
    }
    case 'matrix': {
      if (!range) {
        return {
          ok: false,
          error:
            'the query returns a range vector (a selector like x[5m]); wrap it in a function such as rate() or avg_over_time(), or set `range`',
        }
      }
      if (!Array.isArray(result)) return { ok: false, error: 'a matrix result that is not a list' }
      const series = result.filter(isObject).map((s) => {
        const values = (Array.isArray(s.values) ? s.values : []).map(pairValue).filter((v) => v !== undefined)
        return { labels: labelsOf(s.metric), value: reduce(values, reducer) }
      })
      return { ok: true, kind: 'series', series, warnings }
    }
    case 'string':
      return { ok: false, error: 'the query returns a string, not a number' }
    default:
      return { ok: false, error: `unknown resultType ${JSON.stringify(data.resultType)}` }
  }
}
