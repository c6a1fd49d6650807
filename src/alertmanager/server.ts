/**
 * A server for the receiver's routes alone (`tide docker-scaler`): no groups, no engine. The
 * same chain as the API: match route (404 / 405) → credentials → handler → reply, any error →
 * status + `{"status":"NOK","message":…,"code":…}`. `GET /metrics` serves the receiver's
 * metrics (src/alertmanager/metrics.ts) when a registry is given.
 *
 * Without credentials it refuses cross-site browser requests (Sec-Fetch-Site, Origin), so a web
 * page cannot post to it; it still answers anyone else who can reach it, as Docker Scaler did,
 * which is why `tide docker-scaler` insists on credentials or an explicit opt-out beyond loopback.
 */
import { createServer, type Server } from 'node:http'
import type { Registry } from 'prom-client'
import { ForbiddenError } from '../api/auth.js'
import {
  asTideError,
  closeServer,
  errorHeaders,
  listen,
  MethodNotAllowedError,
  send,
  sendError,
} from '../api/http.js'
import { TideError } from '../core/errors.js'
import { splitHostPort } from '../core/schema.js'
import type { Logger } from '../engine/log.js'
import { nokBody, receiverAuth, receiverRoutes } from './routes.js'
import type { Receiver } from './receiver.js'

export interface ReceiverServer {
  /** Resolves to the base URL with the real port. */
  start(): Promise<string>
  close(): Promise<void>
}

function crossSite(req: import('node:http').IncomingMessage): string | undefined {
  const site = req.headers['sec-fetch-site']
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `a ${site} browser request`
  const origin = req.headers.origin
  const host = req.headers.host
  if (origin !== undefined && host !== undefined) {
    let originHost = origin
    try {
      originHost = new URL(origin).host
    } catch {}
    if (originHost.toLowerCase() !== host.toLowerCase()) return `a request from ${origin}`
  }
  return undefined
}

export function createReceiverServer(
  receiver: Receiver,
  options: {
    listen: string
    logger: Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>
    /** Served at `GET /metrics` (Prometheus text) when given. */
    registry?: Registry
  },
): ReceiverServer {
  const { host, port } = splitHostPort(options.listen)
  const routes = receiverRoutes(receiver)
  const check = receiverAuth(receiver.config.auth)
  const log = options.logger

  const server: Server = createServer((req, res) => {
    void (async () => {
      const started = Date.now()
      const url = new URL(`http://receiver.invalid${(req.url ?? '/').startsWith('/') ? req.url : '/'}`)
      const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, '') : url.pathname
      try {
        if (path === '/metrics' && options.registry && (req.method === 'GET' || req.method === 'HEAD')) {
          const registry = options.registry
          send(res, { text: await registry.metrics(), contentType: registry.contentType })
          return
        }
        const candidates = routes.filter((r) => r.path === path)
        if (candidates.length === 0) {
          throw new TideError('E_NOT_FOUND', `there is no route ${JSON.stringify(url.pathname)}`, {
            status: 404,
          })
        }
        const method = req.method === 'HEAD' ? 'GET' : req.method
        const route = candidates.find((r) => r.method === method)
        if (!route)
          throw new MethodNotAllowedError(
            req.method ?? '',
            url.pathname,
            candidates.map((r) => r.method),
          )
        if (route.mutating) {
          if (check) check(req)
          else {
            const why = crossSite(req)
            if (why) throw new ForbiddenError(`${why} may not scale; configure credentials to allow it`)
          }
        }
        const out = await route.handle(req, url)
        send(res, out)
        const line = {
          method: req.method,
          path: url.pathname,
          status: res.statusCode,
          ms: Date.now() - started,
        }
        if (route.mutating) log.info(line, 'receiver call')
        else log.debug(line, 'receiver call')
      } catch (thrown) {
        const err = asTideError(thrown)
        if (err.status >= 500) log.error({ err: thrown, path: url.pathname }, 'receiver call failed')
        const headers = errorHeaders(err)
        if (err.status === 401)
          headers['www-authenticate'] = 'token' in (receiver.config.auth ?? {}) ? 'Bearer' : 'Basic'
        sendError(res, err, nokBody(err), headers)
      }
    })()
  })

  return {
    start: () => listen(server, options.listen, host, port),
    close: () => closeServer(server),
  }
}
