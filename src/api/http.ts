/**
 * The small pieces of HTTP the API needs on top of node:http: reading a bounded JSON body,
 * writing JSON, turning anything thrown into a status code and a `{code, message}` body, and
 * starting and stopping a server (the API's and `tide docker-scaler`'s receiver server).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { BadRequestError, TideError } from '../core/errors.js'

/** Request bodies larger than this are refused with 413 (nothing the API takes comes close). */
export const BODY_LIMIT = 64 * 1024

/**
 * How much of an oversized body is read and thrown away before answering 413. Reading it lets
 * the client see the 413 instead of a connection reset; beyond this the connection is cut.
 */
const DRAIN_LIMIT = 1024 * 1024

export class PayloadTooLargeError extends TideError {
  constructor(limit: number) {
    super('E_PAYLOAD_TOO_LARGE', `request body is larger than ${limit / 1024} KiB`, { status: 413 })
  }
}

/** Reads the whole body, refusing more than `limit` bytes. */
export function readBody(req: IncomingMessage, limit = BODY_LIMIT): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? Number.NaN)
    if (declared > DRAIN_LIMIT) {
      reject(new PayloadTooLargeError(limit))
      return
    }
    const chunks: Buffer[] = []
    let size = 0
    let tooLarge = declared > limit
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) tooLarge = true
      if (tooLarge) {
        if (size > DRAIN_LIMIT) {
          req.removeAllListeners('data')
          req.pause()
          reject(new PayloadTooLargeError(limit))
        }
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => (tooLarge ? reject(new PayloadTooLargeError(limit)) : resolve(Buffer.concat(chunks))))
    req.on('error', reject)
    // A client that goes away mid-body: settle rather than wait forever.
    req.on('close', () => {
      if (!req.complete) reject(new BadRequestError('the request body was cut off'))
    })
  })
}

/**
 * Parses a JSON body. An empty body is `undefined`. A body with a Content-Type other than JSON
 * is refused: requiring `application/json` also makes browsers send a CORS preflight, which this
 * API never answers, so a web page cannot post to it (a cross-site request forgery guard).
 */
export async function readJson(req: IncomingMessage): Promise<unknown> {
  const body = await readBody(req)
  if (body.length === 0) return undefined
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
  if (type !== 'application/json' && !type.endsWith('+json')) {
    throw new TideError(
      'E_UNSUPPORTED_MEDIA_TYPE',
      `request body must be JSON with Content-Type: application/json (got ${type === '' ? 'no Content-Type' : JSON.stringify(type)})`,
      { status: 415 },
    )
  }
  try {
    return JSON.parse(body.toString('utf8'))
  } catch (err) {
    throw new BadRequestError(`request body is not valid JSON: ${(err as Error).message}`)
  }
}

/** What a handler returns; the server writes it. */
export interface Reply {
  status?: number
  /** Serialized as JSON, followed by a newline. */
  json?: unknown
  /** Indentation for `json` (the seed-compatible route uses one space, as seed 000 does). */
  indent?: number
  text?: string
  contentType?: string
  headers?: Record<string, string>
}

export function send(res: ServerResponse, reply: Reply): void {
  const headers: Record<string, string> = { 'cache-control': 'no-store', ...reply.headers }
  let body: string
  if (reply.text !== undefined) {
    body = reply.text
    headers['content-type'] = reply.contentType ?? 'text/plain; charset=utf-8'
  } else {
    body = `${JSON.stringify(reply.json ?? null, null, reply.indent)}\n`
    headers['content-type'] = reply.contentType ?? 'application/json; charset=utf-8'
  }
  headers['content-length'] = String(Buffer.byteLength(body))
  res.writeHead(reply.status ?? 200, headers)
  res.end(body)
}

/**
 * Any thrown value as a TideError. Unknown errors become `E_INTERNAL` with a fixed message, so
 * no stack trace or internal detail reaches the client (the caller logs the original).
 */
export function asTideError(err: unknown): TideError {
  if (err instanceof TideError) return err
  return new TideError('E_INTERNAL', "internal error; the daemon's log has the details", {
    status: 500,
    cause: err,
  })
}

export class MethodNotAllowedError extends TideError {
  constructor(
    method: string,
    path: string,
    readonly allow: string[],
  ) {
    super('E_METHOD_NOT_ALLOWED', `${method} is not allowed on ${path} (allowed: ${allow.join(', ')})`, {
      status: 405,
    })
  }
}

/** The headers an error needs besides its body (RFC 9110 §15.5.2 and §15.5.6). */
export function errorHeaders(err: TideError): Record<string, string> {
  if (err.status === 401) return { 'www-authenticate': 'Bearer' }
  if (err instanceof MethodNotAllowedError) return { allow: err.allow.join(', ') }
  return {}
}

export function errorReply(err: TideError): Reply {
  return { status: err.status, json: err, headers: errorHeaders(err) }
}

/**
 * Writes an error reply: status, the headers it needs, `json` as the body. A reply already under
 * way cannot change its status, so the connection is cut instead. An oversized body is not read
 * to its end: the connection is closed rather than reused.
 */
export function sendError(
  res: ServerResponse,
  err: TideError,
  json: unknown,
  headers: Record<string, string> = errorHeaders(err),
): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  if (err.status === 413) headers.connection = 'close'
  send(res, { status: err.status, json, headers })
}

/**
 * Starts `server` on `host:port` and resolves to its base URL with the real port, e.g.
 * `http://127.0.0.1:40123` (`[::1]` for IPv6). A port in use or any other listen failure rejects
 * with `E_API_LISTEN` naming `listen`, the address as the user wrote it.
 */
export function listen(server: Server, listen: string, host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'the address is already in use' : err.message
      reject(new TideError('E_API_LISTEN', `cannot listen on ${listen}: ${why}`, { cause: err }))
    }
    server.once('error', onError)
    server.listen(port, host, () => {
      server.off('error', onError)
      const address = server.address() as AddressInfo
      const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address
      resolve(`http://${shown}:${address.port}`)
    })
  })
}

/**
 * Stops accepting connections and closes idle and open ones; in-flight requests are cut (the
 * server is stopping anyway). Resolves at once for a server that is not listening.
 */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve()
      return
    }
    server.close(() => resolve())
    server.closeAllConnections()
  })
}
