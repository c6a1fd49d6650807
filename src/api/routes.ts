/**
 * The `/v1` routes: thin translations between HTTP and the Controller (src/engine/controller.ts).
 * Lists come wrapped in an object (`{"groups": […]}`) so fields can be added without breaking
 * clients; single resources and decisions are returned as they are.
 */
import type { IncomingMessage } from 'node:http'
import { TideError } from '../core/errors.js'
import type { Controller } from '../engine/controller.js'
import type { Reply } from './http.js'
import { parseDecisionsQuery, parseHistoryQuery, parseScaleRequest } from './params.js'
import { dashboardAsset, dashboardPage } from './web.js'

export interface RequestContext {
  req: IncomingMessage
  url: URL
  /** Path parameters, decoded (`:name` → `params.name`). */
  params: Record<string, string>
  controller: Controller
  /** The parsed JSON body, or undefined when empty; bounded to 64 KiB; read at most once. */
  json(): Promise<unknown>
  /**
   * Runs the access check for a call that changes something. The server already ran it for
   * routes marked `mutating`; routes where the request decides (seed 000's `op`) call it themselves.
   */
  authorize(mutating: boolean): void
}

export interface Route {
  method: 'GET' | 'POST'
  /** `/v1/groups/:name`: segments starting with `:` match one path segment. */
  path: string
  /** Changes something, so it needs the bearer token when one is configured. */
  mutating: boolean
  handle(ctx: RequestContext): Reply | Promise<Reply>
  /** Shapes this route's error bodies (default: `{code, message}`). */
  errorBody?: (err: TideError) => unknown
}

export const v1Routes: Route[] = [
  {
    method: 'GET',
    path: '/',
    mutating: false,
    // The dashboard (web/, docs/dashboard.md); it uses only the routes below.
    handle: ({ url }) => dashboardPage(url.pathname),
  },
  {
    method: 'GET',
    path: '/ui/:file',
    mutating: false,
    handle: ({ params }) => dashboardAsset(params.file!),
  },
  {
    method: 'GET',
    path: '/healthz',
    mutating: false,
    handle: () => ({ json: { status: 'ok' } }),
  },
  {
    method: 'GET',
    path: '/metrics',
    mutating: false,
    handle: async ({ controller }) => {
      const { contentType, body } = await controller.prometheus()
      return { text: body, contentType }
    },
  },
  {
    method: 'GET',
    path: '/v1/groups',
    mutating: false,
    handle: ({ controller }) => ({ json: { groups: controller.listGroups() } }),
  },
  {
    method: 'GET',
    path: '/v1/groups/:name',
    mutating: false,
    handle: ({ controller, params }) => ({ json: controller.getGroup(params.name!) }),
  },
  {
    method: 'POST',
    path: '/v1/groups/:name/scale',
    mutating: true,
    handle: async ({ controller, params, json }) => {
      const request = parseScaleRequest(await json())
      return { json: await controller.scale(params.name!, request) }
    },
  },
  {
    method: 'POST',
    path: '/v1/groups/:name/auto',
    mutating: true,
    handle: async ({ controller, params, json }) => {
      await json() // nothing is read from it, but the size limit and content type still apply
      return { json: await controller.auto(params.name!) }
    },
  },
  {
    method: 'GET',
    path: '/v1/groups/:name/decisions',
    mutating: false,
    handle: ({ controller, params, url }) => {
      const { limit } = parseDecisionsQuery(url.searchParams)
      return { json: { decisions: controller.decisions(params.name!, { limit }) } }
    },
  },
  {
    method: 'GET',
    path: '/v1/groups/:name/history',
    mutating: false,
    // Recorded desired, ready and metric values (docs/api.md#get-v1groupsnamehistory), for the
    // dashboard's charts: `{group, since, until, series: {desired: [[at, v], …], …}}`.
    handle: ({ controller, params, url }) => {
      const { since, until, points } = parseHistoryQuery(url.searchParams, Date.now())
      return { json: controller.history(params.name!, { since, until, points }) }
    },
  },
  {
    method: 'POST',
    path: '/v1/reload',
    mutating: true,
    // Reads the config file again (docs/api.md#reload): 200 with what changed, 400 (E_CONFIG) for
    // a bad file, 409 (E_RELOAD_REFUSED) when a change needs a restart; nothing changes on an error.
    handle: async ({ controller, json }) => {
      await json() // nothing is read from it, but the size limit and content type still apply
      if (!controller.reload)
        throw new TideError('E_NOT_FOUND', 'this Tide has no config file to reload', { status: 404 })
      return { json: await controller.reload() }
    },
  },
]
