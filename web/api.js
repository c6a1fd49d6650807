// @ts-check
/**
 * The dashboard's only way to Tide: the public HTTP API (docs/api.md), by relative URLs so the
 * page works under the API's `prefix` as well as at `/`.
 *
 * Changes may need a bearer token (`api.token`). The first 401 asks the person for it once; the
 * token is kept in sessionStorage (this tab only, gone when it closes) and the call is repeated.
 */

/** An API error: the HTTP status and Tide's `{code, message}` body. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   */
  constructor(status, code, message) {
    super(message)
    this.status = status
    this.code = code
  }
}

const TOKEN_KEY = 'tide.token'

/** @returns {string | undefined} */
export function savedToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? undefined
  } catch {
    return undefined // storage disabled: the person is asked again on every 401
  }
}

/** @param {string | undefined} token */
export function saveToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token)
    else sessionStorage.removeItem(TOKEN_KEY)
  } catch {}
}

/**
 * The JSON body of a reply, or an ApiError with Tide's code and message (or the status text
 * when the body is not Tide's, e.g. from a proxy in between).
 * @param {Response} res
 * @returns {Promise<any>}
 */
async function readReply(res) {
  const text = await res.text()
  /** @type {any} */
  let body
  try {
    body = text ? JSON.parse(text) : undefined
  } catch {
    body = undefined
  }
  if (res.ok && body !== undefined) return body
  if (res.ok) throw new ApiError(res.status, 'E_BAD_REPLY', `expected JSON from ${res.url}`)
  const code = typeof body?.code === 'string' ? body.code : `HTTP ${res.status}`
  const message =
    typeof body?.message === 'string' ? body.message : text.trim().slice(0, 300) || res.statusText
  throw new ApiError(res.status, code, message)
}

/**
 * GET a route (`v1/groups`); rejects with ApiError, or TypeError when Tide cannot be reached.
 * @param {string} path relative to the page
 * @returns {Promise<any>}
 */
export async function getJson(path) {
  const res = await fetch(path, { headers: { accept: 'application/json' }, cache: 'no-store' })
  return readReply(res)
}

/**
 * POST a change. On 401 asks for a token through `askToken` (once per call) and tries again;
 * a token that is refused is forgotten, so the next change asks again.
 * @param {string} path relative to the page
 * @param {unknown} body
 * @param {(hint?: string) => Promise<string | undefined>} askToken
 * @returns {Promise<any>}
 */
export async function postJson(path, body, askToken) {
  let token = savedToken()
  for (let attempt = 0; ; attempt++) {
    /** @type {Record<string, string>} */
    const headers = { 'content-type': 'application/json', accept: 'application/json' }
    if (token) headers.authorization = `Bearer ${token}`
    const res = await fetch(path, { method: 'POST', headers, body: JSON.stringify(body), cache: 'no-store' })
    if (res.status === 401) {
      await res.text().catch(() => '')
      saveToken(undefined)
      if (attempt > 0) throw new ApiError(401, 'E_UNAUTHORIZED', 'the token was refused; nothing changed')
      token = await askToken(token ? 'The saved token was refused. Enter the right one.' : undefined)
      if (!token) throw new ApiError(401, 'E_UNAUTHORIZED', 'no token given; nothing changed')
      saveToken(token)
      continue
    }
    return readReply(res)
  }
}

/**
 * A group's recorded series (`GET v1/groups/:name/history`), checked for shape: `until` (Tide's
 * clock, epoch ms) and each series as `[at, value]` pairs, oldest first. Rejects like getJson,
 * and with ApiError `E_BAD_REPLY` when the answer is not that shape (an older Tide has no route:
 * 404).
 * @param {string} groupPath `v1/groups/<name>`
 * @param {{ sinceMs: number, points: number }} range
 * @returns {Promise<{ until: number, series: Record<string, [number, number][]> }>}
 */
export async function getHistory(groupPath, { sinceMs, points }) {
  const body = await getJson(`${groupPath}/history?since=${Math.ceil(sinceMs / 1000)}s&points=${points}`)
  const until = body?.until
  const series = body?.series
  const ok =
    typeof until === 'number' &&
    series !== null &&
    typeof series === 'object' &&
    Object.values(series).every(
      (s) =>
        Array.isArray(s) &&
        s.every((p) => Array.isArray(p) && typeof p[0] === 'number' && typeof p[1] === 'number'),
    )
  if (!ok) throw new ApiError(200, 'E_BAD_REPLY', `unexpected history from ${groupPath}/history`)
  return { until, series }
}
