/**
 * Who may call what.
 *
 * - With a token configured, calls that change something need `Authorization: Bearer <token>`
 *   (RFC 6750 §2.1); reads stay open so dashboards and `tide status` work without secrets.
 * - Without a token the API only listens on loopback (createApiServer refuses anything else), and
 *   the one remaining way in is a web browser on this machine. Two guards close it:
 *   the Host header must be a loopback name (a DNS-rebinding page arrives with its own host name),
 *   and a change must not come from another site (`Sec-Fetch-Site`, `Origin`).
 *   Seed 000 had no authentication at all (seeds.md §1.12 item 8).
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { TideError } from '../core/errors.js'
import { isLoopback } from '../core/schema.js'

export class UnauthorizedError extends TideError {
  constructor(message: string) {
    super('E_UNAUTHORIZED', message, { status: 401 })
  }
}

export class ForbiddenError extends TideError {
  constructor(message: string) {
    super('E_FORBIDDEN', message, { status: 403 })
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest()
}

/** Host of a `Host` header value or URL authority, without port or IPv6 brackets. */
function hostOf(authority: string): string {
  const v6 = /^\[([^\]]+)\]/.exec(authority)
  if (v6) return v6[1]!
  return authority.replace(/:\d*$/, '').toLowerCase()
}

/** Builds the check the server runs before every handler; it throws when the call is not allowed. */
export function createAccessCheck(
  token: string | undefined,
): (req: IncomingMessage, mutating: boolean) => void {
  // Comparing fixed-length digests keeps the comparison constant-time whatever the lengths.
  const expected = token === undefined ? undefined : digest(token)
  return (req, mutating) => {
    if (expected !== undefined) {
      if (!mutating) return
      const header = req.headers.authorization ?? ''
      const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)
      if (!m)
        throw new UnauthorizedError(
          'this call changes a group and needs an Authorization: Bearer <token> header',
        )
      if (!timingSafeEqual(digest(m[1]!), expected))
        throw new UnauthorizedError('the bearer token is not valid')
      return
    }
    const host = req.headers.host
    if (host !== undefined && !isLoopback(hostOf(host))) {
      throw new ForbiddenError(
        `Host ${JSON.stringify(host)} is not a loopback name; to serve other hosts or a proxy, configure api.token`,
      )
    }
    if (!mutating) return
    const site = req.headers['sec-fetch-site']
    if (site !== undefined && site !== 'same-origin' && site !== 'none') {
      throw new ForbiddenError(
        `a ${site} browser request may not change a group; configure api.token to allow it`,
      )
    }
    const origin = req.headers.origin
    if (origin !== undefined && host !== undefined) {
      let originHost: string
      try {
        originHost = new URL(origin).host
      } catch {
        originHost = origin
      }
      if (originHost.toLowerCase() !== host.toLowerCase()) {
        throw new ForbiddenError(
          `a request from ${origin} may not change a group; configure api.token to allow it`,
        )
      }
    }
  }
}
