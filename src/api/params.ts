/**
 * Request bodies and query parameters, validated with zod. A bad request is answered with 400 and
 * a message naming each bad field and the value that was sent:
 * `by: must be a non-zero integer (got "abc")`.
 */
import { z } from 'zod'
import { BadRequestError, type ConfigProblem, valueNote } from '../core/errors.js'
import type { ScaleRequest } from '../engine/controller.js'

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
