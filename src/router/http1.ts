/**
 * HTTP/1.1 message heads for the router's data path (RFC 9112). The router forwards bytes and
 * parses only what it must: the start line, the framing headers, and the hop-by-hop headers it
 * strips (RFC 9110 §7.6.1: Connection, the fields it names, Keep-Alive, Proxy-*, TE, Trailer,
 * Transfer-Encoding, Upgrade; `Connection: upgrade` and Upgrade stay on an upgrade request,
 * RFC 9110 §7.8). A head is handled as a latin1 string (one char per byte, so any
 * byte survives the round trip) and scanned once with charCodeAt: no regex, no header objects.
 *
 * Anything ambiguous about framing is refused rather than guessed, because a proxy and its
 * upstream that disagree on where a message ends are the recipe for request smuggling
 * (RFC 9112 §11.2): obs-fold, whitespace before a colon, bare CR, both Content-Length and
 * Transfer-Encoding, conflicting Content-Lengths, a coding other than chunked last.
 */

/** Where a message body ends. */
export const BODY_NONE = 0
export const BODY_LENGTH = 1
export const BODY_CHUNKED = 2
/** Responses only: the body runs until the upstream closes the connection (RFC 9112 §6.3 rule 8). */
export const BODY_CLOSE = 3

/** tchar (RFC 9110 §5.6.2): the characters of a method or a field name. */
const TCHAR = new Uint8Array(128)
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TCHAR[c.charCodeAt(0)] = 1
}

/** A parsed request head. One is reused per client connection (no allocation per request). */
export class RequestHead {
  /** HTTP status to answer instead of forwarding (400, 505); 0 when the head is fine. */
  error = 0
  /** Why, for the error body. */
  reason = ''
  /** The head to send upstream: request line, kept fields, X-Forwarded-*, ending with CRLF CRLF. */
  head = ''
  body = BODY_NONE
  length = 0
  /** The client wants the connection kept after this exchange. */
  keepAlive = true
  http10 = false
  isHead = false
  /** RFC 9110 §9.2.2: safe to send twice, so a reset on a reused connection may be retried. */
  idempotent = true
  /**
   * An HTTP/1.1 request without a body that asks to switch protocols (`Connection: upgrade` and
   * `Upgrade`, RFC 9110 §7.8): both fields are kept in `head`, and a 101 answer opens a tunnel.
   */
  upgrade = false
}

/** What the router adds to each request, fixed per client connection. */
export interface Forwarding {
  /** The client's address, appended to X-Forwarded-For. */
  clientIp: string
  /** `X-Forwarded-For: <ip>\r\nX-Forwarded-Proto: http\r\n`, prepared once per connection. */
  lines: string
  /** Host sent upstream when an HTTP/1.0 client sent none: the router's own address. */
  defaultHost: string
}

export function forwardingFor(clientIp: string, defaultHost: string): Forwarding {
  return { clientIp, lines: `X-Forwarded-For: ${clientIp}\r\nX-Forwarded-Proto: http\r\n`, defaultHost }
}

/** True when h[at, at+lit.length) equals the lower-case ASCII `lit`, ignoring case. */
function nameIs(h: string, at: number, lit: string): boolean {
  for (let i = 0; i < lit.length; i++) {
    // `| 0x20` folds A-Z onto a-z; the literals hold only letters and '-', which it leaves alone.
    if ((h.charCodeAt(at + i) | 0x20) !== lit.charCodeAt(i)) return false
  }
  return true
}

/**
 * Fields a client may not strip by naming them in Connection: the router's framing and forwarding
 * depend on them, and dropping Content-Length upstream while using it here would desynchronise the
 * two parsers (the "hop-by-hop header abuse" smuggling trick).
 */
const PROTECTED = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
])

/** Parses 1*DIGIT in h[start, end); -1 when it is not one (or is absurdly long). */
function decimal(h: string, start: number, end: number): number {
  if (end <= start || end - start > 15) return -1
  let n = 0
  for (let i = start; i < end; i++) {
    const d = h.charCodeAt(i) - 48
    if (d < 0 || d > 9) return -1
    n = n * 10 + d
  }
  return n
}

/** True when the last coding of a Transfer-Encoding value is `chunked`. */
function chunkedLast(value: string): boolean {
  const comma = value.lastIndexOf(',')
  return (
    value
      .slice(comma + 1)
      .trim()
      .toLowerCase() === 'chunked'
  )
}

/**
 * What one pass over a head's field lines found. One module-level instance is reused: parsing is
 * synchronous, so no two scans overlap.
 */
class Fields {
  error = ''
  /** The kept part of the head, up to (not including) the final CRLF. */
  head = ''
  hosts = 0
  hostStart = 0
  hostEnd = 0
  length = -1
  te: string | null = null
  xff: string | null = null
  xfHost = false
  xfProto = false
  close = false
  keepAlive = false
  /** Fields named by Connection (lower case), to strip as well. */
  named: string[] | null = null
  keepAliveMs = -1
  /** Connection has the `upgrade` token. */
  upgradeToken = false
  /** The Upgrade field's value (several lines joined); null when absent. */
  upgrade: string | null = null
}
const F = new Fields()

function connectionTokens(h: string, vs: number, ve: number): void {
  // Fast paths for what clients and servers actually send.
  const n = ve - vs
  if (n === 10 && nameIs(h, vs, 'keep-alive')) {
    F.keepAlive = true
    return
  }
  if (n === 5 && nameIs(h, vs, 'close')) {
    F.close = true
    return
  }
  if (n === 7 && nameIs(h, vs, 'upgrade')) {
    F.upgradeToken = true
    return
  }
  for (const raw of h.slice(vs, ve).split(',')) {
    const token = raw.trim().toLowerCase()
    if (token === '') continue
    if (token === 'close') F.close = true
    else if (token === 'keep-alive') F.keepAlive = true
    else if (token === 'upgrade') F.upgradeToken = true
    else if (!PROTECTED.has(token)) {
      F.named ??= []
      F.named.push(token)
    }
  }
}

function isNamed(h: string, start: number, length: number, named: string[]): boolean {
  for (const name of named) if (name.length === length && nameIs(h, start, name)) return true
  return false
}

/**
 * Scans the field lines of `h` from `p` (RFC 9112 §5: name ":" OWS value OWS CRLF) into F,
 * dropping hop-by-hop ones from F.head (which starts as h[copied..] appended to `head`).
 * One pass, character by character (a native call per line costs more than the loop): a CR
 * not followed by LF, an LF without a CR, obs-fold (a line starting with SP/HT) and whitespace
 * before the colon are refused. Precondition: `h` holds a CRLF CRLF after `p`, so every scan for
 * a CR ends. Returns false with F.error set on a malformed head.
 */
function scanFields(
  h: string,
  p: number,
  head: string,
  copied: number,
  request: boolean,
  named: string[] | null,
  dropLength: boolean,
): boolean {
  F.error = ''
  F.hosts = 0
  F.length = -1
  F.te = null
  F.xff = null
  F.xfHost = false
  F.xfProto = false
  F.close = false
  F.keepAlive = false
  F.named = null
  F.keepAliveMs = -1
  F.upgradeToken = false
  F.upgrade = null
  for (;;) {
    const ls = p
    const lf = h.indexOf('\n', p)
    if (lf <= p || h.charCodeAt(lf - 1) !== 13 || h.indexOf('\r', p) !== lf - 1) {
      F.error = 'malformed line ending (bare CR or LF)'
      return false
    }
    if (lf === p + 1) break
    let c = h.charCodeAt(p)
    while (TCHAR[c] === 1) c = h.charCodeAt(++p)
    const nameLength = p - ls
    if (nameLength === 0 || c !== 58) {
      F.error = 'malformed header line'
      return false
    }
    c = h.charCodeAt(++p)
    while (c === 32 || c === 9) c = h.charCodeAt(++p)
    const vs = p
    p = lf - 1
    let ve = p
    for (;;) {
      const t = h.charCodeAt(ve - 1)
      if (ve <= vs || (t !== 32 && t !== 9)) break
      ve--
    }
    p += 2

    let drop = false
    if (nameLength > 6 && (h.charCodeAt(ls) | 0x20) === 112 && nameIs(h, ls, 'proxy-')) drop = true
    else {
      switch (nameLength) {
        case 2:
          drop = nameIs(h, ls, 'te')
          break
        case 4:
          if (request && nameIs(h, ls, 'host')) {
            F.hosts++
            F.hostStart = vs
            F.hostEnd = ve
          }
          break
        case 7:
          if (nameIs(h, ls, 'upgrade')) {
            // Dropped here; put back by the caller when the message really is an upgrade.
            drop = true
            F.upgrade = F.upgrade === null ? h.slice(vs, ve) : `${F.upgrade}, ${h.slice(vs, ve)}`
          } else drop = nameIs(h, ls, 'trailer')
          break
        case 10:
          if (nameIs(h, ls, 'connection')) {
            drop = true
            connectionTokens(h, vs, ve)
          } else if (nameIs(h, ls, 'keep-alive')) {
            drop = true
            if (!request) keepAliveTimeout(h, vs, ve)
          }
          break
        case 14:
          if (nameIs(h, ls, 'content-length')) {
            const n = decimal(h, vs, ve)
            if (n < 0 || (F.length >= 0 && n !== F.length)) {
              F.error = 'invalid Content-Length'
              return false
            }
            F.length = n
            drop = dropLength
          }
          break
        case 15:
          if (request && nameIs(h, ls, 'x-forwarded-for')) {
            drop = true
            F.xff = F.xff === null ? h.slice(vs, ve) : `${F.xff}, ${h.slice(vs, ve)}`
          }
          break
        case 16:
          if (request && nameIs(h, ls, 'x-forwarded-host')) F.xfHost = true
          break
        case 17:
          if (nameIs(h, ls, 'transfer-encoding')) {
            drop = true
            F.te = F.te === null ? h.slice(vs, ve) : `${F.te}, ${h.slice(vs, ve)}`
          } else if (request && nameIs(h, ls, 'x-forwarded-proto')) F.xfProto = true
          break
      }
      if (!drop && named !== null) drop = isNamed(h, ls, nameLength, named)
    }
    if (drop) {
      head += h.slice(copied, ls)
      copied = p
    }
  }
  // p is at the final CRLF.
  F.head = copied === 0 ? h.slice(0, p) : head + h.slice(copied, p)
  return true
}

/** `Keep-Alive: timeout=N` (RFC 2068 §19.7.1.1, as Node and Apache send it): the instance's idle limit. */
function keepAliveTimeout(h: string, vs: number, ve: number): void {
  let at = h.startsWith('timeout=', vs) ? vs : h.slice(vs, ve).indexOf('timeout=')
  if (at < 0) return
  if (at !== vs) at += vs
  let end = at + 8
  while (end < ve && h.charCodeAt(end) >= 48 && h.charCodeAt(end) <= 57) end++
  const seconds = decimal(h, at + 8, end)
  if (seconds >= 0) F.keepAliveMs = seconds * 1000
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])

function failRequest(out: RequestHead, status: number, reason: string): void {
  out.error = status
  out.reason = reason
}

/**
 * Parses a request head at the start of `h` (which holds at least the whole head, up to its
 * CRLF CRLF) into `out` and prepares the head to send upstream: hop-by-hop fields removed,
 * HTTP/1.1 on the request line (the router keeps its upstream connections alive whatever the
 * client speaks), X-Forwarded-For appended to, X-Forwarded-Proto and X-Forwarded-Host added
 * unless a proxy in front already set them.
 */
export function parseRequestHead(
  h: string,
  out: RequestHead,
  fwd: Forwarding,
  named: string[] | null = null,
): void {
  out.error = 0
  out.body = BODY_NONE
  out.length = 0
  out.upgrade = false

  // Request line: method SP request-target SP HTTP-version CRLF (RFC 9112 §3).
  let p = 0
  let c = h.charCodeAt(0)
  while (TCHAR[c] === 1) c = h.charCodeAt(++p)
  const methodEnd = p
  if (methodEnd === 0 || c !== 32) {
    failRequest(out, 400, 'malformed request line')
    return
  }
  const targetStart = ++p
  c = h.charCodeAt(p)
  while (c > 32 && c < 127) c = h.charCodeAt(++p)
  const targetEnd = p
  if (targetEnd === targetStart || c !== 32) {
    failRequest(out, 400, 'malformed request target')
    return
  }
  if (!h.startsWith('HTTP/', p + 1)) {
    failRequest(out, 400, 'malformed request line')
    return
  }
  if (!h.startsWith('HTTP/1.', p + 1) || h.charCodeAt(p + 9) !== 13 || h.charCodeAt(p + 10) !== 10) {
    failRequest(out, 505, 'only HTTP/1.0 and HTTP/1.1 are supported')
    return
  }
  const minor = h.charCodeAt(p + 8)
  if (minor !== 49 && minor !== 48) {
    failRequest(out, 505, 'only HTTP/1.0 and HTTP/1.1 are supported')
    return
  }
  const http10 = minor === 48
  out.http10 = http10
  if (methodEnd === 3 && h.startsWith('GET')) {
    out.isHead = false
    out.idempotent = true
  } else {
    const method = h.slice(0, methodEnd)
    if (method === 'CONNECT') {
      failRequest(out, 400, 'CONNECT is not supported by a reverse proxy')
      return
    }
    out.isHead = method === 'HEAD'
    out.idempotent = IDEMPOTENT.has(method)
  }
  p += 11

  const rewrite = http10 ? `${h.slice(0, targetEnd)} HTTP/1.1\r\n` : ''
  if (!scanFields(h, p, rewrite, http10 ? p : 0, true, named, false)) {
    failRequest(out, 400, F.error)
    return
  }
  // Fields named by Connection are hop-by-hop too; they may come before it, so scan again knowing them.
  if (F.named !== null && named === null) {
    parseRequestHead(h, out, fwd, F.named)
    return
  }

  const te = F.te
  if (te !== null) {
    // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means faulty framing; with Content-Length, a
    // server MAY reject, and a proxy must (§6.3 rule 3 is where smuggling lives).
    if (http10) {
      failRequest(out, 400, 'Transfer-Encoding in an HTTP/1.0 request')
      return
    }
    if (F.length >= 0) {
      failRequest(out, 400, 'both Transfer-Encoding and Content-Length')
      return
    }
    // §6.3 rule 4: chunked not last → the length cannot be known → 400.
    if (!chunkedLast(te)) {
      failRequest(out, 400, 'Transfer-Encoding must end with chunked')
      return
    }
    out.body = BODY_CHUNKED
  } else if (F.length > 0) {
    out.body = BODY_LENGTH
    out.length = F.length
  }
  // RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without exactly one Host.
  if (F.hosts > 1 || (F.hosts === 0 && !http10)) {
    failRequest(out, 400, 'a request needs exactly one Host header')
    return
  }
  out.keepAlive = http10 ? F.keepAlive && !F.close : !F.close

  let head = F.head
  const xff = F.xff
  if (xff === null) head += F.xfProto ? `X-Forwarded-For: ${fwd.clientIp}\r\n` : fwd.lines
  else {
    head += `X-Forwarded-For: ${xff}, ${fwd.clientIp}\r\n`
    if (!F.xfProto) head += 'X-Forwarded-Proto: http\r\n'
  }
  if (F.hosts === 0) head += `Host: ${fwd.defaultHost}\r\n`
  else if (!F.xfHost) head += `X-Forwarded-Host: ${h.slice(F.hostStart, F.hostEnd)}\r\n`
  if (te !== null) head += `Transfer-Encoding: ${te}\r\n`
  // RFC 9110 §7.8: Upgrade is hop-by-hop, but a proxy that can tunnel passes the request on.
  // HTTP/1.0 requests must have it ignored; one with a body is forwarded as a plain request.
  const upgrade = F.upgrade
  if (F.upgradeToken && upgrade !== null && upgrade !== '' && !http10 && out.body === BODY_NONE) {
    out.upgrade = true
    head += `Connection: upgrade\r\nUpgrade: ${upgrade}\r\n`
  }
  out.head = `${head}\r\n`
}

/** A parsed response head. One is reused per upstream connection. */
export class ResponseHead {
  /** Non-empty when the upstream's head is unusable (answered 502). */
  error = ''
  status = 0
  /** Status line and kept fields, ending after the last field's CRLF (framing fields are added by the caller). */
  head = ''
  body = BODY_NONE
  length = 0
  /** The upstream connection may carry another request after this response. */
  reusable = true
  /** The upstream's idle timeout from `Keep-Alive: timeout=N`, in ms; -1 when not given. */
  keepAliveMs = -1
  /** The Upgrade field's value ('' when absent): what a 101 switches to. */
  upgrade = ''
}

/**
 * Parses a response head at the start of `h` (which holds at least the whole head) to a request
 * that was a HEAD request or not, deciding where its body ends (RFC 9112 §6.3) and stripping
 * hop-by-hop fields.
 */
export function parseResponseHead(
  h: string,
  out: ResponseHead,
  requestIsHead: boolean,
  named: string[] | null = null,
  dropLength = false,
): void {
  out.error = ''
  // Status line: HTTP-version SP 3DIGIT SP [reason] CRLF (RFC 9112 §4).
  if (!h.startsWith('HTTP/1.') || h.charCodeAt(8) !== 32) {
    out.error = 'malformed status line'
    return
  }
  const minor = h.charCodeAt(7)
  if (minor !== 49 && minor !== 48) {
    out.error = 'unsupported HTTP version'
    return
  }
  const status = (h.charCodeAt(9) - 48) * 100 + (h.charCodeAt(10) - 48) * 10 + (h.charCodeAt(11) - 48)
  if (!(status >= 100 && status <= 999) || !(h.charCodeAt(12) === 32 || h.charCodeAt(12) === 13)) {
    out.error = 'malformed status code'
    return
  }
  out.status = status
  let p = 12
  for (let c = h.charCodeAt(p); c !== 13; c = h.charCodeAt(++p)) {
    if (c === 10) {
      out.error = 'malformed status line'
      return
    }
  }
  if (h.charCodeAt(p + 1) !== 10) {
    out.error = 'malformed status line'
    return
  }
  p += 2
  const rewrite = minor === 48 ? `HTTP/1.1${h.slice(8, p)}` : ''
  if (!scanFields(h, p, rewrite, minor === 48 ? p : 0, false, named, dropLength)) {
    out.error = F.error
    return
  }
  // RFC 9112 §6.3 rule 3: with Transfer-Encoding, Content-Length is removed before forwarding.
  const conflict = F.te !== null && F.length >= 0 && !dropLength
  if ((F.named !== null && named === null) || conflict) {
    parseResponseHead(h, out, requestIsHead, F.named ?? named, dropLength || conflict)
    return
  }
  out.head = F.head
  out.keepAliveMs = F.keepAliveMs
  out.upgrade = F.upgrade ?? ''
  out.reusable = minor === 49 ? !F.close : F.keepAlive && !F.close
  // RFC 9112 §6.3 rules 1-2: HEAD responses, 1xx, 204 and 304 have no body whatever they say.
  if (requestIsHead || status < 200 || status === 204 || status === 304) {
    out.body = BODY_NONE
  } else if (F.te !== null) {
    // Rule 4: chunked not last → read until close.
    out.body = chunkedLast(F.te) ? BODY_CHUNKED : BODY_CLOSE
  } else if (F.length >= 0) {
    out.body = F.length === 0 ? BODY_NONE : BODY_LENGTH
    out.length = F.length
  } else {
    out.body = BODY_CLOSE
  }
  if (out.body === BODY_CLOSE) out.reusable = false
}
