/**
 * The errors the router answers with itself. Each is a TideError with a stable code; on the wire
 * it is the status, the JSON body `{ code, message }` and, for 503s, `Retry-After` (as Knative's
 * activator answers a full queue or an expired wait with a 503; anchors.md §2).
 */
import { TideError } from '../core/errors.js'

export const ROUTER_ERRORS = {
  /** The request is not well-formed HTTP/1.1, or uses framing the router refuses (smuggling guards). */
  E_ROUTER_BAD_REQUEST: 400,
  /** The client took too long to send the request head. */
  E_ROUTER_REQUEST_TIMEOUT: 408,
  /** The request head is larger than 64 KiB. */
  E_ROUTER_HEADERS_TOO_LARGE: 431,
  /** Neither HTTP/1.0 nor HTTP/1.1. */
  E_ROUTER_HTTP_VERSION: 505,
  /** The instance could not be reached or broke the connection before answering, or answered with invalid HTTP. */
  E_ROUTER_UPSTREAM: 502,
  /** The instance stayed silent longer than `upstream_timeout`. */
  E_ROUTER_UPSTREAM_TIMEOUT: 504,
  /** No instance is ready and the queue of waiting requests is full. */
  E_ROUTER_QUEUE_FULL: 503,
  /** No instance became ready within `queue.timeout`. */
  E_ROUTER_QUEUE_TIMEOUT: 503,
  /** The group could not be woken from zero (its target failed to start an instance); the next request tries again. */
  E_ROUTER_WAKE_FAILED: 503,
  /** The router is shutting down. */
  E_ROUTER_CLOSED: 503,
  /** The router could not listen on its address (in use, not permitted) or a worker failed to start. */
  E_ROUTER_LISTEN: 500,
} as const

export type RouterErrorCode = keyof typeof ROUTER_ERRORS

/** Seconds a client is told to wait after a 503: about how long an instance takes to start. */
export const RETRY_AFTER_SECONDS = 5

export function routerError(code: RouterErrorCode, message: string, cause?: unknown): TideError {
  return new TideError(code, message, { status: ROUTER_ERRORS[code], cause })
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
}

/**
 * The response header that tells a client its request waited for an instance to become ready
 * (a cold start) and for how long, e.g. `Tide-Cold-Start: 412ms`. Absent when it did not wait.
 */
export const COLD_START_HEADER = 'Tide-Cold-Start'

/** The header line for a request that waited `ms` milliseconds; '' when it did not wait (ms < 0). */
export function coldStartLine(ms: number): string {
  return ms < 0 ? '' : `${COLD_START_HEADER}: ${Math.round(ms)}ms\r\n`
}

/** The message held requests get when their group could not be woken. */
export function wakeFailedMessage(group: string, reason: string): string {
  // Clients see the first line only: a start failure's later lines are the app's own output.
  let first = reason.split('\n', 1)[0]!.trim()
  if (first.length > 200) first = `${first.slice(0, 197)}...`
  return `group ${group} could not be woken from zero: ${first}; the next request tries again`
}

/** A complete HTTP/1.1 response carrying the error, ready to write; `extra` is more header lines. */
export function errorResponse(code: RouterErrorCode, message: string, close: boolean, extra = ''): string {
  const status = ROUTER_ERRORS[code]
  const body = JSON.stringify({ code, message })
  return (
    `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\n` +
    'Content-Type: application/json\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'Cache-Control: no-store\r\n' +
    (status === 503 ? `Retry-After: ${RETRY_AFTER_SECONDS}\r\n` : '') +
    (close ? 'Connection: close\r\n' : '') +
    extra +
    `\r\n${body}`
  )
}
