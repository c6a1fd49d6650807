/**
 * Request bodies and query parameters, validated with zod. A bad request is answered with 400 and
 * a message naming each bad field and the value that was sent:
 * `by: must be a non-zero integer (got "abc")`.
 */
import { z } from 'zod'
import { parseDuration } from '../core/duration.js'
import { BadRequestError, type ConfigProblem, valueNote } from '../core/errors.js'
import type { HistoryRequest, ScaleRequest } from '../engine/controller.js'

const nonNegativeInt = 'must be an integer ≥ 0'
const nonZeroInt = 'must be a non-zero integer'
const bool = 'must be true or false'

/** Body of `POST /v1/groups/:name/scale`: exactly one of `to` and `by`. */
export const scaleRequestSchema = z
  .strictObject({
    to: z
      .number({ error: nonNegativeInt })
      .int({ error: nonNegativeInt })
      .min(0, { error: nonNegativeInt })
      .optional(),
    by: z
      .number({ error: nonZeroInt })
      .int({ error: nonZeroInt })
      .refine((n) => n !== 0, { error: nonZeroInt })
      .optional(),
    force: z.boolean({ error: bool }).optional().describe('Skip the cooldown (bounds still apply).'),
    wait: z.boolean({ error: bool }).optional().describe('Answer only once the new size is ready.'),
    reason: z
      .string({ error: 'must be a string' })
      .max(500, { error: 'must be at most 500 characters' })
      .optional()
      .describe('Why, for the decision log.'),
  })
  .refine((body) => (body.to === undefined) !== (body.by === undefined), {
    error: 'give exactly one of "to" (a size) or "by" (a change, e.g. 2 or -1)',
  })

/** `?limit=` of the decisions route. */
export const LIMIT_DEFAULT = 50
export const LIMIT_MAX = 1000

const limitMessage = `must be an integer from 1 to ${LIMIT_MAX}`
const decisionsQuerySchema = z.strictObject({
  limit: z
    .string()
    .regex(/^\d+$/, { error: limitMessage })
    .transform(Number)
    .pipe(z.number().min(1, { error: limitMessage }).max(LIMIT_MAX, { error: limitMessage }))
    .prefault(String(LIMIT_DEFAULT)),
})

function valueAt(input: unknown, path: PropertyKey[]): unknown {
  let value = input
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined
    value = (value as Record<PropertyKey, unknown>)[key]
  }
  return value
}

/** Validates `input`; throws BadRequestError listing every problem with its field and value. */
export function parseWith<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input)
  if (result.success) return result.data
  const problems: ConfigProblem[] = result.error.issues.flatMap((issue): ConfigProblem[] => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({
        path: key,
        message: `unknown ${what === 'query' ? 'parameter' : 'field'}`,
      }))
    }
    const path = issue.path.map(String).join('.')
    if (path === '' && issue.code === 'invalid_type') {
      return [{ path, message: `${what} must be a JSON object`, value: input }]
    }
    return [{ path, message: issue.message, value: valueAt(input, issue.path) }]
  })
  const text = problems.map((p) => `${p.path ? `${p.path}: ` : ''}${p.message}${valueNote(p)}`).join('; ')
  throw new BadRequestError(text, problems)
}

export function parseScaleRequest(body: unknown): ScaleRequest {
  return parseWith(scaleRequestSchema, body ?? {}, 'body')
}

/** Query parameters as a plain object; a repeated parameter is a mistake worth naming. */
export function queryObject(params: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [key, value] of params) {
    if (key in out) throw new BadRequestError(`${key}: given more than once`)
    out[key] = value
  }
  return out
}

export function parseDecisionsQuery(params: URLSearchParams): { limit: number } {
  return parseWith(decisionsQuerySchema, queryObject(params), 'query')
}

/** `?points=` and `?since=` of the history route. */
export const POINTS_DEFAULT = 300
export const POINTS_MAX = 2000
export const SINCE_DEFAULT = '5m'
/** A bare number below this is not an epoch-ms time a client means (it is before 1973). */
const EPOCH_MS_MIN = 100_000_000_000

const pointsMessage = `must be an integer from 1 to ${POINTS_MAX}`
const timeMessage = 'must be a duration back from now ("30s", "5m", "1h") or a time in epoch milliseconds'

/** A point in time: `5m` (that long before `now`) or epoch ms (`1731000000000`). */
function timeParam(now: number) {
  return z.string().transform((text, ctx): number => {
    if (/^\d+(\.\d+)?$/.test(text)) {
      const at = Number(text)
      if (at >= EPOCH_MS_MIN && Number.isSafeInteger(at)) return at
      ctx.issues.push({
        code: 'custom',
        input: text,
        message: `${timeMessage}; a bare number is epoch ms, so a duration needs its unit ("${text}s")`,
      })
      return z.NEVER
    }
    const ago = /^\d/.test(text) ? parseDuration(text) : undefined
    if (ago === undefined) {
      ctx.issues.push({ code: 'custom', input: text, message: timeMessage })
      return z.NEVER
    }
    return now - ago
  })
}

function historyQuerySchema(now: number) {
  return z
    .strictObject({
      since: timeParam(now).prefault(SINCE_DEFAULT),
      until: timeParam(now).optional(),
      points: z
        .string()
        .regex(/^\d+$/, { error: pointsMessage })
        .transform(Number)
        .pipe(z.number().min(1, { error: pointsMessage }).max(POINTS_MAX, { error: pointsMessage }))
        .prefault(String(POINTS_DEFAULT)),
    })
    .superRefine((q, ctx) => {
      const until = q.until ?? now
      if (q.since > until) {
        ctx.addIssue({
          code: 'custom',
          path: ['since'],
          message: `must be earlier than ${q.until === undefined ? 'now' : 'until'} (epoch ms ${q.since} > ${until})`,
        })
      }
    })
}

/**
 * `GET /v1/groups/:name/history?since=5m&until=…&points=300`: times as durations back from `now`
 * or epoch ms. `since` is not bounded here: the engine moves it up to what the store keeps.
 */
export function parseHistoryQuery(params: URLSearchParams, now: number): HistoryRequest & { points: number } {
  return parseWith(historyQuerySchema(now), queryObject(params), 'query')
}
