/**
 * The DigitalOcean Functions entry (deploy/digitalocean-functions/): `main(event, context)` runs
 * one of seed 000's operations and answers `{ statusCode, headers, body }`.
 *
 * - The op comes from the event's parameters (`?op=…` or the JSON body, which the platform
 *   merges into the event), as the seed's did.
 * - Web invocations need the token (seeds.md §1.12 item 8: the seed's function was public):
 *   `Authorization: Bearer <TIDE_FUNCTION_TOKEN>` or `X-Tide-Token: <…>`, compared in constant
 *   time; with no TIDE_FUNCTION_TOKEN configured, web calls are refused. A scheduled trigger is
 *   not a web invocation (it has no HTTP headers) and needs none.
 * - Real status codes (item 9), and the seed's bodies.
 * - It answers before the platform's time limit (item 4): the remaining time the context reports
 *   (else TIDE_TIME_LIMIT seconds, else 180 s, the package's limit) minus a margin bounds the
 *   operation; a clone still booting then is left for the next invocation to attach.
 */
import { timingSafeEqual } from 'node:crypto'
import { renderBody, runDropin } from './ops.js'

/** Time kept back for answering and for releasing the lock after the deadline. */
export const MARGIN_MS = 20_000
const DEFAULT_LIMIT_MS = 180_000

export interface FunctionEvent {
  op?: unknown
  /** DigitalOcean's web event. */
  http?: { headers?: Record<string, string>; method?: string }
  /** OpenWhisk's spelling of the same (older runtimes). */
  __ow_headers?: Record<string, string>
  __ow_method?: string
  [key: string]: unknown
}

export interface FunctionContext {
  getRemainingTimeInMillis?: () => number
}

export interface FunctionResponse {
  statusCode: number
  headers: Record<string, string>
  body: string
}

function headersOf(event: FunctionEvent): Record<string, string> | undefined {
  const raw = event.http?.headers ?? event.__ow_headers
  if (raw === undefined) return undefined
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k.toLowerCase(), String(v)]))
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given)
  const b = Buffer.from(expected)
  return a.length === b.length && timingSafeEqual(a, b)
}

function reply(statusCode: number, body: unknown, extra: Record<string, string> = {}): FunctionResponse {
  return {
    statusCode,
    headers: { 'Content-Type': 'application/json', ...extra },
    body: `${JSON.stringify(body)}\n`,
  }
}

/** Why a web call is refused, or undefined when it may go on. */
export function checkToken(
  event: FunctionEvent,
  env: Record<string, string | undefined>,
): FunctionResponse | undefined {
  const headers = headersOf(event)
  if (headers === undefined) return undefined // a trigger or `doctl serverless functions invoke`
  const expected = env.TIDE_FUNCTION_TOKEN ?? ''
  if (expected === '') {
    return reply(403, {
      error: 'web calls are refused: TIDE_FUNCTION_TOKEN is not set for this function',
      code: 'E_FORBIDDEN',
    })
  }
  const bearer = /^Bearer\s+(.+)$/i.exec(headers.authorization ?? '')?.[1]?.trim()
  const given = bearer ?? headers['x-tide-token'] ?? ''
  if (given === '' || !sameSecret(given, expected)) {
    return reply(
      401,
      {
        error: 'send the function token: Authorization: Bearer <TIDE_FUNCTION_TOKEN>',
        code: 'E_UNAUTHORIZED',
      },
      { 'WWW-Authenticate': 'Bearer' },
    )
  }
  return undefined
}

/** How long the operation may take: what the platform has left, minus the margin. */
export function budgetMs(
  context: FunctionContext | undefined,
  env: Record<string, string | undefined>,
): number {
  const remaining =
    typeof context?.getRemainingTimeInMillis === 'function'
      ? context.getRemainingTimeInMillis()
      : Number(env.TIDE_TIME_LIMIT) > 0
        ? Number(env.TIDE_TIME_LIMIT) * 1000
        : DEFAULT_LIMIT_MS
  return Math.max(1000, remaining - MARGIN_MS)
}

/**
 * The handler. `env` is the process environment on the platform (project.yml maps every
 * variable into it); tests pass their own.
 */
export async function main(
  event: FunctionEvent = {},
  context?: FunctionContext,
  env: Record<string, string | undefined> = process.env,
): Promise<FunctionResponse> {
  const refused = checkToken(event, env)
  if (refused) return refused
  const signal = AbortSignal.timeout(budgetMs(context, env))
  const logger = {
    info: (obj: object, msg: string) => console.log(JSON.stringify({ level: 'info', msg, ...obj })),
    warn: (obj: object, msg: string) => console.error(JSON.stringify({ level: 'warn', msg, ...obj })),
  }
  const op = typeof event.op === 'string' ? event.op : undefined
  const result = await runDropin(op, env, { signal, logger })
  return {
    statusCode: result.status,
    headers: { 'Content-Type': 'application/json' },
    body: renderBody(result),
  }
}
