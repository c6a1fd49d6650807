/**
 * The receiver's HTTP routes (seeds.md §3.2), each under `/v1/...` and, with a prefix, also under
 * `<prefix>/v1/...`:
 *
 *   POST /v1/alerts                      Alertmanager webhook (payload version 4)
 *   POST /v1/scale-service               ?service=&scale=up|down&by=  (or the same as alert labels)
 *   POST /v1/scale-nodes                 ?scale=&type=worker|manager&by=&service=  (only with `nodes`)
 *   POST /v1/reschedule-services
 *   POST /v1/reschedule-service          ?service=  (required)
 *   GET  /v1/ping                        200, empty body
 *
 * Answers are Docker Scaler's `{"status": "OK"|"NOK", "message": …}` with real status codes (and
 * the error `code`). Used by the daemon's API (as api Routes) and by `tide docker-scaler`'s own
 * server (server.ts).
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { TideError } from '../core/errors.js'
import type { Route } from '../api/routes.js'
import { readBody, type Reply } from '../api/http.js'
import { UnauthorizedError } from '../api/auth.js'
import type { ReceiverConfig } from './config.js'
import { decodeBody, parseWebhook, type Webhook } from './payload.js'
import type { Outcome, Receiver } from './receiver.js'

export interface ReceiverRoute {
  method: 'GET' | 'POST'
  path: string
  /** Changes something: needs the receiver's credentials (or, in the daemon, the API's rule). */
  mutating: boolean
  handle(req: IncomingMessage, url: URL): Promise<Reply>
}

/** Docker Scaler's error body, with Tide's stable code. */
export function nokBody(err: TideError): unknown {
  return { status: 'NOK', message: err.message, code: err.code }
}

function reply(outcome: Outcome, extra: Record<string, unknown> = {}): Reply {
  return {
    status: outcome.status,
    json: {
      status: outcome.ok ? 'OK' : 'NOK',
      message: outcome.message,
      ...(outcome.code ? { code: outcome.code } : {}),
      ...extra,
    },
  }
}

async function readPayload(req: IncomingMessage): Promise<Webhook> {
  return parseWebhook(decodeBody(await readBody(req)))
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest()
}

/**
 * The check for the receiver's own credentials: `Authorization: Bearer <token>` or
 * `Authorization: Basic <base64 user:password>`, compared in constant time. Undefined without `auth`.
 */
export function receiverAuth(auth: ReceiverConfig['auth']): ((req: IncomingMessage) => void) | undefined {
  if (!auth) return undefined
  const scheme = 'token' in auth ? 'Bearer' : 'Basic'
  const expected = digest('token' in auth ? auth.token : `${auth.username}:${auth.password}`)
  return (req) => {
    const header = req.headers.authorization ?? ''
    const m = /^(\S+)[ \t]+(\S+)[ \t]*$/.exec(header)
    if (!m || m[1]!.toLowerCase() !== scheme.toLowerCase()) {
      throw new UnauthorizedError(
        `this call needs an Authorization: ${scheme} header (the receiver's credentials)`,
      )
    }
    const given = scheme === 'Basic' ? Buffer.from(m[2]!, 'base64').toString('utf8') : m[2]!
    if (!timingSafeEqual(digest(given), expected))
      throw new UnauthorizedError(`the ${scheme} credentials are not valid`)
  }
}

/** The routes of one receiver; `/v1/scale-nodes` only when a node backend is configured. */
export function receiverRoutes(receiver: Receiver): ReceiverRoute[] {
  const signal = () => AbortSignal.timeout(receiver.config.call_timeout * 4)
  const routes: ReceiverRoute[] = [
    {
      method: 'GET',
      path: '/v1/ping',
      mutating: false,
      handle: async () => ({ text: '', contentType: 'text/plain; charset=utf-8' }),
    },
    {
      method: 'POST',
      path: '/v1/alerts',
      mutating: true,
      async handle(req, url) {
        let payload: Webhook
        let actions
        try {
          payload = await readPayload(req)
          if (payload.version !== undefined && payload.version !== '4') {
            throw new TideError(
              'E_BAD_REQUEST',
              `request body: version must be "4" (Alertmanager's webhook payload; got ${JSON.stringify(payload.version)})`,
              { status: 400 },
            )
          }
          if (payload.status === 'resolved') {
            const type = payload.commonLabels.type ?? payload.groupLabels.type ?? 'service'
            receiver.count(type === 'service' ? 'scale_service' : 'scale_nodes', 'resolved')
            return reply({ status: 200, ok: true, message: 'resolved alerts never scale; nothing done' })
          }
          actions = receiver.alertActions(url.searchParams, payload)
        } catch (err) {
          return reply(receiver.badRequest(err))
        }
        if (actions.actions.length === 0) {
          const why = actions.skipped.join('; ') || 'no firing alerts'
          return reply(
            receiver.badRequest(new TideError('E_BAD_REQUEST', `nothing to scale: ${why}`, { status: 400 })),
          )
        }
        const results: Outcome[] = []
        for (const action of actions.actions) {
          results.push(await receiver.run(action, signal()))
        }
        const failed = results.find((r) => !r.ok)
        const message = [...results.map((r) => r.message), ...actions.skipped].join('; ')
        return reply({ status: failed?.status ?? 200, ok: !failed, message, code: failed?.code }, { results })
      },
    },
    {
      method: 'POST',
      path: '/v1/scale-service',
      mutating: true,
      async handle(req, url) {
        let payload: Webhook
        let action
        try {
          payload = await readPayload(req)
          if (payload.status === 'resolved') {
            receiver.count('scale_service', 'resolved')
            return reply({ status: 200, ok: true, message: 'resolved alerts never scale; nothing done' })
          }
          action = receiver.serviceAction(url.searchParams, payload)
        } catch (err) {
          return reply(receiver.badRequest(err))
        }
        return reply(await receiver.run(action, signal()))
      },
    },
    {
      method: 'POST',
      path: '/v1/reschedule-services',
      mutating: true,
      handle: async () => reply(await receiver.rescheduleAll(signal())),
    },
    {
      method: 'POST',
      path: '/v1/reschedule-service',
      mutating: true,
      async handle(_req, url) {
        const service = url.searchParams.get('service')
        if (!service) {
          return reply(
            receiver.badRequest(
              new TideError(
                'E_BAD_REQUEST',
                'the query parameter service is required (the service to reschedule)',
                {
                  status: 400,
                },
              ),
              'reschedule_service',
            ),
          )
        }
        return reply(await receiver.rescheduleOne(service, signal()))
      },
    },
  ]
  if (receiver.nodesEnabled) {
    routes.push({
      method: 'POST',
      path: '/v1/scale-nodes',
      mutating: true,
      async handle(req, url) {
        let action
        try {
          const payload = await readPayload(req)
          if (payload.status === 'resolved') {
            receiver.count('scale_nodes', 'resolved')
            return reply({ status: 200, ok: true, message: 'resolved alerts never scale; nothing done' })
          }
          action = receiver.nodeAction(url.searchParams, payload)
        } catch (err) {
          return reply(receiver.badRequest(err, 'scale_nodes'))
        }
        return reply(await receiver.run(action, signal()))
      },
    })
  }
  const prefix = normalisePrefix(receiver.config.prefix)
  return prefix ? [...routes, ...routes.map((r) => ({ ...r, path: `${prefix}${r.path}` }))] : routes
}

export function normalisePrefix(prefix: string | undefined): string {
  if (!prefix) return ''
  const trimmed = `/${prefix.replace(/^\/+|\/+$/g, '')}`
  return trimmed === '/' ? '' : trimmed
}

/**
 * The receiver's routes for the daemon's API. With `receiver.auth`, they check those credentials
 * themselves (Alertmanager sends its own, not Tide's API token); without, they are `mutating`
 * API routes under the API's token rule.
 */
export function apiRoutes(receiver: Receiver): Route[] {
  const check = receiverAuth(receiver.config.auth)
  return receiverRoutes(receiver).map((r) => ({
    method: r.method,
    path: r.path,
    mutating: check ? false : r.mutating,
    errorBody: nokBody,
    handle: async (ctx) => {
      if (check && r.mutating) check(ctx.req)
      return r.handle(ctx.req, ctx.url)
    },
  }))
}
