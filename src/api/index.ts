/**
 * Tide's HTTP API on node:http (docs/api.md). Every request goes through one chain:
 *
 *   strip prefix → match route (404 / 405) → access check (403 / 401) → handler → reply
 *                                                     └──── any error → status + {code, message}
 *
 * Handlers only translate to and from the Controller, so they stay small and fast; anything slow
 * (a scale with `wait`) is the engine's work.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import { BadRequestError, TideError } from '../core/errors.js'
import { isLoopback, splitHostPort } from '../core/schema.js'
import type { Controller } from '../engine/controller.js'
import { createAccessCheck } from './auth.js'
import { compatRoutes } from './compat.js'
import { asTideError, closeServer, listen, MethodNotAllowedError, readJson, send, sendError } from './http.js'
import { type RequestContext, type Route, v1Routes } from './routes.js'

export type { RequestContext, Route } from './routes.js'

export interface ApiOptions {
  /**
   * `host:port`; port 0 picks a free port (see the URL `start()` returns).
   * @default '127.0.0.1:7070' (the config's default; required here)
   */
  listen: string
  /**
   * Bearer token for calls that change something. Required when `listen` is not loopback.
   * @example 'b3f1c2…' (at least 16 characters, checked by the config schema)
   */
  token?: string
  logger?: Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>
  /**
   * Also serve every route under this path (e.g. behind a proxy at `/tide`), besides the root
   * (as docker-scaler's SERVER_PREFIX does, seeds.md §3.7).
   * @example '/tide'
   */
  prefix?: string
  /** More routes with the same auth and errors (Alertmanager receiver, Docker Scaler routes, dashboard). */
  routes?: Route[]
}

export interface ApiServer {
  /** Starts listening; resolves to the base URL with the real port, e.g. `http://127.0.0.1:40123`. */
  start(): Promise<string>
  /** Stops accepting connections and closes idle and open ones. */
  close(): Promise<void>
}

interface CompiledRoute {
  route: Route
  segments: string[]
}

function compile(routes: Route[]): CompiledRoute[] {
  return routes.map((route) => ({ route, segments: route.path.split('/').slice(1) }))
}

/** Matches a path to its params, or undefined. A `:name` segment must not be empty. */
function match(segments: string[], parts: string[]): Record<string, string> | undefined {
  if (segments.length !== parts.length) return undefined
  const params: Record<string, string> = {}
  for (let i = 0; i < segments.length; i++) {
    const want = segments[i]!
    const got = parts[i]!
    if (want.startsWith(':')) {
      if (got === '') return undefined
      params[want.slice(1)] = got
    } else if (want !== got) {
      return undefined
    }
  }
  return params
}

function normalisePrefix(prefix: string | undefined): string {
  if (!prefix) return ''
  const trimmed = `/${prefix.replace(/^\/+|\/+$/g, '')}`
  return trimmed === '/' ? '' : trimmed
}

export function createApiServer(controller: Controller, options: ApiOptions): ApiServer {
  let host: string
  let port: number
  try {
    ;({ host, port } = splitHostPort(options.listen))
  } catch {
    throw new TideError(
      'E_API_LISTEN',
      `api.listen must be host:port, e.g. "127.0.0.1:7070" (got "${options.listen}")`,
      {
        status: 400,
      },
    )
  }
  if (!isLoopback(host) && !options.token) {
    throw new TideError(
      'E_API_INSECURE',
      `refusing to serve the API on ${options.listen} without a token: any host that can reach it could scale ` +
        'your groups. Set api.token (at least 16 characters), or listen on 127.0.0.1.',
      { status: 400 },
    )
  }

  const routes = compile([...v1Routes, ...compatRoutes, ...(options.routes ?? [])])
  const prefix = normalisePrefix(options.prefix)
  const authorize = createAccessCheck(options.token || undefined)
  const log = options.logger

  /** The route for a method and path, or the 404 / 405 that explains why there is none. */
  function find(
    method: string,
    pathname: string,
    parts: string[],
  ): { route: Route; params: Record<string, string> } {
    // HEAD is GET without a body; node:http drops the body of a HEAD response itself.
    const wanted = method === 'HEAD' ? 'GET' : method
    const allowed = new Set<string>()
    for (const candidate of routes) {
      const params = match(candidate.segments, parts)
      if (!params) continue
      if (candidate.route.method === wanted) return { route: candidate.route, params }
      allowed.add(candidate.route.method)
    }
    if (allowed.size === 0) {
      throw new TideError('E_NOT_FOUND', `there is no route ${JSON.stringify(pathname)}`, { status: 404 })
    }
    if (allowed.has('GET')) allowed.add('HEAD')
    throw new MethodNotAllowedError(method, pathname, [...allowed])
  }

  async function dispatch(req: IncomingMessage, res: ServerResponse, started: number): Promise<void> {
    let route: Route | undefined
    // Concatenated, not resolved against a base: `//x/y` must stay a path, not become host `x`.
    const raw = req.url ?? '/'
    const url = URL.canParse(`http://tide.invalid${raw}`) ? new URL(`http://tide.invalid${raw}`) : undefined
    const where = url?.pathname ?? raw
    try {
      if (!url || !raw.startsWith('/'))
        throw new BadRequestError(`the request target ${JSON.stringify(raw)} is not a path`)
      let path = url.pathname
      if (prefix && (path === prefix || path.startsWith(`${prefix}/`)))
        path = path.slice(prefix.length) || '/'
      if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1)
      let parts: string[]
      try {
        parts = path.split('/').slice(1).map(decodeURIComponent)
      } catch {
        throw new BadRequestError(`the path ${JSON.stringify(url.pathname)} is not validly encoded`)
      }
      const found = find(req.method ?? 'GET', url.pathname, parts)
      route = found.route
      authorize(req, route.mutating)
      let bodyRead = false
      const ctx: RequestContext = {
        req,
        url,
        params: found.params,
        controller,
        json: () => {
          if (bodyRead) throw new Error('the request body was already read')
          bodyRead = true
          return readJson(req)
        },
        authorize: (mutating) => authorize(req, mutating),
      }
      send(res, await route.handle(ctx))
      // Changes are worth a line at info; reads (dashboards poll) only at debug.
      const line = {
        method: req.method,
        path: url.pathname,
        status: res.statusCode,
        ms: Date.now() - started,
      }
      if (req.method === 'POST') log?.info(line, 'api call')
      else log?.debug(line, 'api call')
    } catch (thrown) {
      const err = asTideError(thrown)
      if (err.status >= 500) log?.error({ err: thrown, method: req.method, path: where }, 'api call failed')
      else log?.debug({ method: req.method, path: where, code: err.code, status: err.status }, err.message)
      sendError(res, err, route?.errorBody ? route.errorBody(err) : err)
    }
  }

  const server: Server = createServer((req, res) => {
    void dispatch(req, res, Date.now())
  })

  return {
    start: async () => {
      const url = await listen(server, options.listen, host, port)
      log?.info({ url }, 'API listening')
      return url
    },
    close: () => closeServer(server),
  }
}
