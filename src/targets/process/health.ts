/**
 * The health check: one HTTP GET to the instance's health path. 2xx means ready (or, for a
 * ready instance with liveness checks on, still alive). Kubernetes httpGet probes count
 * 200–399; Tide asks for 2xx because a redirect from a health path usually means the path is
 * wrong.
 */
import { request } from 'node:http'
import { formatDuration } from '../../core/duration.js'

/**
 * A failed check says why in `reason` ("answered 404", "connection refused", "no answer within
 * 1s"); `status` is set when the app answered, `timedOut` when it did not within the timeout.
 */
export type ProbeResult =
  | { ok: true; status: number }
  | { ok: false; reason: string; status?: number; timedOut?: true; refused?: true }

/**
 * GETs `http://host:port/path` with a new connection (no keep-alive pool: a pooled idle
 * connection would hold the app's graceful shutdown open). Never rejects.
 */
export function probe(host: string, port: number, path: string, timeoutMs: number, signal?: AbortSignal) {
  return new Promise<ProbeResult>((resolve) => {
    if (signal?.aborted) return resolve({ ok: false, reason: 'aborted' })
    let settled = false
    const done = (result: ProbeResult) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      req.destroy()
      resolve(result)
    }
    const req = request(
      { host, port, path, method: 'GET', agent: false, headers: { connection: 'close' } },
      (res) => {
        res.resume()
        const status = res.statusCode ?? 0
        done(
          status >= 200 && status < 300
            ? { ok: true, status }
            : { ok: false, reason: `answered ${status}`, status },
        )
      },
    )
    const timer = setTimeout(
      () => done({ ok: false, reason: `no answer within ${formatDuration(timeoutMs)}`, timedOut: true }),
      timeoutMs,
    )
    const onAbort = () => done({ ok: false, reason: 'aborted' })
    signal?.addEventListener('abort', onAbort, { once: true })
    req.on('error', (err: NodeJS.ErrnoException) => {
      done(
        err.code === 'ECONNREFUSED'
          ? { ok: false, reason: 'connection refused', refused: true }
          : { ok: false, reason: err.message },
      )
    })
    req.end()
  })
}
