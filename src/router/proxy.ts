/**
 * The router's data path in one process: an HTTP/1.1 reverse proxy written directly on TCP
 * sockets. Node's http server and client allocate a request object, a response object, header
 * objects and several streams per request; a proxy needs none of that. Here a request costs two
 * reads and two writes: the head is scanned once as a latin1 string (http1.ts), hop-by-hop fields
 * are cut out, X-Forwarded-* appended, and the bytes go to a kept-alive upstream connection;
 * bodies stream through as they arrive (chunked framing is tracked, not re-encoded), with
 * back-pressure both ways. Per-connection objects are reused for each request on the connection.
 *
 *   client ──► ClientConn ──(pick backend: least outstanding | p2c)──► UpstreamConn ──► instance
 *                 │  no backend ready: bounded FIFO queue, onDemand, 503 when full or too late
 *                 └◄──────── response head rewritten, body streamed ◄──────┘
 *
 * Runs inside Tide (workers: 1) or in each worker process (worker.ts).
 */
import { connect, createServer, type Server, Socket, type SocketConstructorOpts } from 'node:net'
import { performance } from 'node:perf_hooks'
import { splitHostPort } from '../core/schema.js'
import { type BackendSpec, BackendState, Balancer, FAIL_BACKOFF_MS } from './backend.js'
import { CHUNKED_BAD, CHUNKED_MORE, ChunkedScanner } from './chunked.js'
import { errorResponse, type RouterErrorCode } from './errors.js'
import {
  BODY_CHUNKED,
  BODY_CLOSE,
  BODY_LENGTH,
  BODY_NONE,
  type Forwarding,
  forwardingFor,
  parseRequestHead,
  parseResponseHead,
  RequestHead,
  ResponseHead,
} from './http1.js'
import { emptyHistogram, latencyBucket, type RouterCounters } from './stats.js'

/** pino-compatible. */
export interface RouterLogger {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

export interface ProxyOptions {
  group: string
  /** Use p2c instead of least outstanding. */
  p2c: boolean
  /** Requests this process may hold while no backend is ready. */
  queueDepth: number
  queueTimeoutMs: number
  maxBody: number
  upstreamTimeoutMs: number
  /** Epoch ms the router started (stats). */
  since: number
  /** A request found no ready backend; called once per episode (until backends appear). */
  onDemand: () => void
  logger?: RouterLogger
}

/** Largest request or response head (Node's default limit is 16 KiB; nginx allows 4 × 8 KiB). */
export const MAX_HEAD = 64 * 1024
/** A client that sent part of a head and then nothing for this long gets a 408 (nginx client_header_timeout). */
export const HEADERS_TIMEOUT_MS = 60_000
/** Idle keep-alive client connections are closed after this long (nginx keepalive_timeout 75s; longer
 * than the 60s idle timeout of the cloud load balancers that may sit in front, so they close first). */
export const CLIENT_IDLE_MS = 75_000
/** Connecting to an instance longer than this is a failure (then retried on another). */
export const CONNECT_TIMEOUT_MS = 5_000
/**
 * Upstream idle connections are dropped before the instance drops them, so a request never races
 * the instance closing it: `Keep-Alive: timeout=N` from the instance is honoured minus 2 s (the
 * coarse clock is up to 1 s late), up to a minute; without it, 3 s (Node's default is 5 s).
 */
export const UPSTREAM_IDLE_MS = 3_000
const UPSTREAM_IDLE_MAX_MS = 60_000
/** Idle upstream connections kept per backend per process. */
export const MAX_IDLE_PER_BACKEND = 512

/**
 * Every socket reads into this one buffer (net.Socket's `onread`): no allocation and no stream
 * machinery per read. A read's bytes are valid only until the callback returns, so whatever must
 * outlive it (a partial head, a held body, a body piece written to a socket) is copied first.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024)
const HEAD_END = Buffer.from('\r\n\r\n')
/** Pieces up to this size travel as latin1 strings (one copy, and a head and body share one write). */
const SMALL = 16 * 1024

interface Latin1 {
  latin1Slice(start: number, end: number): string
}
/** Buffer#latin1Slice (what toString('latin1') calls, without its argument checks). */
function latin1(buf: Buffer, start: number, end: number): string {
  return (buf as unknown as Latin1).latin1Slice(start, end)
}

/** A private copy of buf[off, end). */
function keep(buf: Buffer, off: number, end: number): Buffer {
  const out = Buffer.allocUnsafe(end - off)
  buf.copy(out, 0, off, end)
  return out
}

/** A copy of buf[off, end) fit to write: a string when small. */
function copyOut(buf: Buffer, off: number, end: number): string | Buffer {
  return end - off <= SMALL ? latin1(buf, off, end) : keep(buf, off, end)
}

function join(a: Buffer, buf: Buffer, off: number, end: number): Buffer {
  const out = Buffer.allocUnsafe(a.length + end - off)
  a.copy(out, 0)
  buf.copy(out, a.length, off, end)
  return out
}

function send(socket: Socket, data: string | Buffer): boolean {
  return typeof data === 'string' ? socket.write(data, 'latin1') : socket.write(data)
}

// findHead's results (module variables rather than an object per call).
let headAt = -1
let headText = ''

/**
 * Looks for the end of a head in buf[off, end): sets headAt to the offset of its CRLF CRLF
 * (relative to off) and headText to the head as a latin1 string (for a small chunk, the whole
 * chunk: the parsers stop at the head's end). False when the head is not complete yet.
 */
function findHead(buf: Buffer, off: number, end: number): boolean {
  if (end - off <= SMALL) {
    headText = latin1(buf, off, end)
    headAt = headText.indexOf('\r\n\r\n')
  } else {
    headAt = buf.subarray(off, end).indexOf(HEAD_END)
    headText = headAt < 0 ? '' : latin1(buf, off, off + headAt + 4)
  }
  return headAt >= 0
}

type ReadCallback = (n: number, buf: Uint8Array) => boolean

/**
 * Re-wraps an accepted connection's handle in a socket that reads into READ_BUFFER. Node offers
 * `onread` only for sockets it builds from a handle or a connect, not for accepted ones, so the
 * server accepts with pauseOnConnect (nothing read yet) and the handle moves to a new Socket. If
 * a future Node hides the handle, this falls back to 'data' events on the accepted socket.
 */
function adopt(accepted: Socket, callback: ReadCallback): Socket {
  const inner = accepted as unknown as { _handle?: unknown }
  const handle = inner._handle
  if (handle === null || typeof handle !== 'object') {
    accepted.on('data', (chunk: Buffer) => callback(chunk.length, chunk))
    accepted.resume()
    return accepted
  }
  inner._handle = null
  accepted.destroy()
  const options = { handle, allowHalfOpen: true, onread: { buffer: READ_BUFFER, callback } }
  return new Socket(options as unknown as SocketConstructorOpts)
}

/** A coarse clock for timeouts and back-off, moved by the sweep timer (no clock read per event). */
let coarse = performance.now()

// Client connection states.
const C_HEAD = 0 // reading a request head (or idle between requests)
const C_QUEUED = 1 // waiting for a backend
const C_ACTIVE = 2 // attached to an upstream connection
const C_DONE = 3 // the router answered itself and will close
const C_CLOSED = 4

// Upstream connection states.
const U_IDLE = 0
const U_HEAD = 1
const U_BODY = 2
const U_CLOSED = 3

// How a response body goes to the client.
const PASS = 0
const DECHUNK = 1 // chunked upstream → HTTP/1.0 client
const ENCODE = 2 // close-delimited upstream → HTTP/1.1 client, sent chunked

export class UpstreamConn {
  readonly socket: Socket
  readonly backend: BackendState
  readonly proxy: ProxyServer
  client: ClientConn | null = null
  state = U_IDLE
  connected = false
  /** It carried a request before: a reset may mean the instance closed it while idle. */
  used = false
  private readonly res = new ResponseHead()
  private pending: Buffer | null = null
  private left = 0
  private mode = PASS
  private chunked: ChunkedScanner | null = null
  /** Bytes came after the response ended: the connection cannot be trusted again. */
  private spoiled = false
  idleSince = 0
  idleLimit = UPSTREAM_IDLE_MS
  /** Set on traffic; the sweep turns it into `lastActive`. */
  active = false
  lastActive = coarse
  pausedForClient = false

  constructor(backend: BackendState, proxy: ProxyServer) {
    this.backend = backend
    this.proxy = proxy
    const socket = connect({
      host: backend.host,
      port: backend.port,
      noDelay: true,
      onread: {
        buffer: READ_BUFFER,
        callback: (n, buf) => {
          this.onRead(buf as Buffer, n)
          return true
        },
      },
    })
    this.socket = socket
    socket.on('connect', () => {
      this.connected = true
    })
    socket.on('end', () => this.onEnd())
    socket.on('error', (err) => this.broken(err.message))
    socket.on('close', () => this.broken('connection closed'))
    socket.on('drain', () => {
      const c = this.client
      if (c?.pausedForUp) {
        c.pausedForUp = false
        c.resume()
      }
    })
  }

  /** Starts an exchange for `client`; the caller writes the request. */
  begin(client: ClientConn): void {
    this.client = client
    this.state = U_HEAD
    this.lastActive = coarse
    this.active = false
  }

  destroy(): void {
    if (this.state === U_CLOSED) return
    this.state = U_CLOSED
    this.client = null
    this.socket.destroy()
  }

  private onRead(buf: Buffer, n: number): void {
    this.active = true
    if (this.state === U_HEAD) {
      const pending = this.pending
      if (pending !== null) {
        this.pending = null
        const all = join(pending, buf, 0, n)
        this.head(all, 0, all.length)
      } else this.head(buf, 0, n)
    } else if (this.state === U_BODY) {
      this.body(buf, 0, n, null)
    } else {
      // Bytes nobody asked for: the instance is confused; do not reuse.
      this.spoiled = true
      if (this.state === U_IDLE) this.closeIdle()
    }
  }

  private head(buf: Buffer, off: number, end: number): void {
    const c = this.client!
    if (!findHead(buf, off, end)) {
      if (end - off > MAX_HEAD) {
        this.broken('response head too large', true)
        return
      }
      this.pending = keep(buf, off, end)
      return
    }
    const start = off + headAt + 4
    const res = this.res
    parseResponseHead(headText, res, c.req.isHead)
    if (res.error !== '') {
      this.broken(res.error, true)
      return
    }
    c.responseStarted()
    if (res.status < 200) {
      // 101 would switch protocols, but Upgrade was stripped, so it is a broken answer.
      if (res.status === 101) {
        this.broken('unexpected 101 Switching Protocols', true)
        return
      }
      // Interim responses (100 Continue, 103 Early Hints) go to HTTP/1.1 clients; the final one follows.
      if (!c.req.http10) c.write(`${res.head}\r\n`)
      if (start < end) this.head(buf, start, end)
      return
    }
    let extra = ''
    let close = c.closeAfter || !c.req.keepAlive || this.proxy.closing
    this.mode = PASS
    if (res.body === BODY_CHUNKED) {
      if (c.req.http10) {
        this.mode = DECHUNK
        close = true
      } else extra = 'Transfer-Encoding: chunked\r\n'
      this.chunked ??= new ChunkedScanner()
      this.chunked.reset()
    } else if (res.body === BODY_CLOSE) {
      if (c.req.http10) close = true
      else {
        this.mode = ENCODE
        extra = 'Transfer-Encoding: chunked\r\n'
      }
    }
    if (close) {
      c.closeAfter = true
      extra += 'Connection: close\r\n'
    } else if (c.req.http10) extra += 'Connection: keep-alive\r\n'
    const head = `${res.head}${extra}\r\n`
    this.state = U_BODY
    this.left = res.length
    if (res.body === BODY_NONE) {
      c.write(head)
      if (start < end) this.spoiled = true
      this.finish()
      return
    }
    if (start < end) this.body(buf, start, end, head)
    else c.write(head)
  }

  private body(buf: Buffer, off: number, end: number, head: string | null): void {
    const c = this.client!
    const res = this.res
    let stop = end
    let done = false
    let sink: Uint8Array[] | undefined
    if (res.body === BODY_LENGTH) {
      if (this.left <= end - off) {
        stop = off + this.left
        done = true
        this.left = 0
      } else this.left -= end - off
    } else if (res.body === BODY_CHUNKED) {
      if (this.mode === DECHUNK) sink = []
      const r = this.chunked!.scan(buf, off, end, sink)
      if (r === CHUNKED_BAD) {
        this.broken('malformed chunked response body', true)
        return
      }
      if (r !== CHUNKED_MORE) {
        stop = r
        done = true
      }
    }
    if (stop < end) this.spoiled = true
    let ok = true
    if (this.mode === PASS) {
      if (stop - off <= SMALL) {
        const text = latin1(buf, off, stop)
        ok = c.write(head === null ? text : head + text)
      } else {
        if (head !== null) c.socket.cork()
        if (head !== null) c.write(head)
        ok = c.socket.write(keep(buf, off, stop))
        if (head !== null) c.socket.uncork()
      }
    } else if (this.mode === ENCODE) {
      const text = stop > off ? `${(stop - off).toString(16)}\r\n${latin1(buf, off, stop)}\r\n` : ''
      ok = c.write(head === null ? text : head + text)
    } else {
      if (head !== null) c.write(head)
      for (const piece of sink!) ok = c.socket.write(Buffer.from(piece))
    }
    if (done) this.finish()
    else if (!ok) {
      this.pausedForClient = true
      this.socket.pause()
    }
  }

  private onEnd(): void {
    if (this.state === U_BODY && this.res.body === BODY_CLOSE && this.client !== null) {
      if (this.mode === ENCODE) this.client.write('0\r\n\r\n')
      this.finish()
    } else this.broken('the instance closed the connection')
  }

  /** The response is complete: hand the connection back (or close it) and tell the client. */
  private finish(): void {
    const c = this.client!
    this.client = null
    if (this.pausedForClient) {
      this.pausedForClient = false
      this.socket.resume()
    }
    const b = this.backend
    const reuse =
      this.res.reusable &&
      !this.spoiled &&
      c.reqDone &&
      !b.draining &&
      !b.removed &&
      !this.proxy.closing &&
      b.idle.length < MAX_IDLE_PER_BACKEND
    if (reuse) {
      this.state = U_IDLE
      this.used = true
      this.idleSince = coarse
      const ka = this.res.keepAliveMs
      this.idleLimit = ka >= 0 ? Math.min(UPSTREAM_IDLE_MAX_MS, Math.max(0, ka - 2000)) : UPSTREAM_IDLE_MS
      b.idle.push(this)
    } else this.destroy()
    c.responseDone()
  }

  private closeIdle(): void {
    const i = this.backend.idle.indexOf(this)
    if (i >= 0) this.backend.idle.splice(i, 1)
    this.destroy()
  }

  /**
   * The connection failed or the instance broke the protocol. An idle connection just leaves the
   * pool; a request in flight is retried or answered 502 by its client connection.
   */
  broken(reason: string, protocol = false): void {
    if (this.state === U_CLOSED) return
    if (this.state === U_IDLE) {
      this.closeIdle()
      return
    }
    const c = this.client
    const connectFailed = !this.connected && !protocol
    this.destroy()
    if (c !== null) c.upstreamFailed(this, reason, connectFailed)
  }

  /** The sweep found no traffic for too long. */
  timedOut(): void {
    const c = this.client
    const connecting = !this.connected
    this.destroy()
    if (c !== null) {
      if (connecting) c.upstreamFailed(this, `no connection within ${CONNECT_TIMEOUT_MS} ms`, true)
      else c.upstreamTimedOut()
    }
  }
}

export class ClientConn {
  readonly socket: Socket
  readonly proxy: ProxyServer
  readonly fwd: Forwarding
  readonly req = new RequestHead()
  state = C_HEAD
  private pending: Buffer | null = null
  headSince = 0
  active = false
  lastActive = coarse
  // The current request.
  private t0 = 0
  private reqLeft = 0
  reqDone = true
  private chunked: ChunkedScanner | null = null
  /** Body bytes kept while the request waits, or until the response starts (for a retry). */
  private held: Array<string | Buffer> | null = null
  private heldBytes = 0
  private retryable = false
  private retried = false
  private started = false
  closeAfter = false
  backend: BackendState | null = null
  up: UpstreamConn | null = null
  pausedForUp = false
  private pausedForQueue = false
  private pausedForPending = false
  // Queue links.
  qPrev: ClientConn | null = null
  qNext: ClientConn | null = null
  qDeadline = 0

  constructor(proxy: ProxyServer, accepted: Socket) {
    this.proxy = proxy
    const socket = adopt(accepted, (n, buf) => {
      this.onRead(buf as Buffer, n)
      return true
    })
    this.socket = socket
    this.fwd = proxy.forwarding(socket.remoteAddress)
    socket.on('end', () => this.onEnd())
    socket.on('error', () => {})
    socket.on('close', () => this.onClose())
    socket.on('drain', () => {
      const up = this.up
      if (up?.pausedForClient) {
        up.pausedForClient = false
        up.socket.resume()
      }
    })
  }

  write(data: string): boolean {
    return this.socket.write(data, 'latin1')
  }

  resume(): void {
    if (!this.pausedForUp && !this.pausedForQueue && !this.pausedForPending) this.socket.resume()
  }

  private onRead(buf: Buffer, n: number): void {
    this.active = true
    switch (this.state) {
      case C_HEAD: {
        const pending = this.pending
        if (pending !== null) {
          this.pending = null
          const all = join(pending, buf, 0, n)
          this.parse(all, 0, all.length)
        } else this.parse(buf, 0, n)
        return
      }
      case C_QUEUED:
      case C_ACTIVE:
        if (!this.reqDone) this.body(buf, 0, n)
        else this.stash(buf, 0, n)
        return
      case C_DONE:
        // Answered; reading what remains of the body so the client sees the answer.
        if (!this.reqDone) this.body(buf, 0, n)
        return
      default:
      // C_CLOSED: drop.
    }
  }

  /** Bytes of a later request (pipelining): kept until the current exchange ends. */
  private stash(buf: Buffer, off: number, end: number): void {
    this.pending = this.pending === null ? keep(buf, off, end) : join(this.pending, buf, off, end)
    if (this.pending.length > MAX_HEAD && !this.pausedForPending) {
      this.pausedForPending = true
      this.socket.pause()
    }
  }

  private parse(buf: Buffer, off: number, end: number): void {
    // RFC 9112 §2.2: ignore empty lines before a request line.
    while (off < end && (buf[off] === 13 || buf[off] === 10)) off++
    if (off === end) return
    if (!findHead(buf, off, end) || headAt + 4 > MAX_HEAD) {
      if (end - off > MAX_HEAD) {
        this.reject('E_ROUTER_HEADERS_TOO_LARGE', 'request head over 64 KiB')
        return
      }
      this.pending = keep(buf, off, end)
      if (this.headSince === 0) this.headSince = coarse
      return
    }
    this.headSince = 0
    const req = this.req
    const rest = off + headAt + 4
    parseRequestHead(headText, req, this.fwd)
    if (req.error !== 0) {
      const code = req.error === 505 ? 'E_ROUTER_HTTP_VERSION' : 'E_ROUTER_BAD_REQUEST'
      this.reject(code, req.reason)
      return
    }
    this.t0 = performance.now()
    this.retryable = true
    this.retried = false
    this.started = false
    if (req.body === BODY_NONE) this.reqDone = true
    else {
      this.reqDone = false
      if (req.body === BODY_LENGTH) this.reqLeft = req.length
      else {
        this.chunked ??= new ChunkedScanner()
        this.chunked.reset()
      }
    }
    if (!req.keepAlive) this.closeAfter = true
    this.dispatch(null, this.t0)
    if (rest < end) {
      if (!this.reqDone) this.body(buf, rest, end)
      // The router answered at once (a full queue): the next request may follow right away.
      else if (this.state === C_HEAD) this.parse(buf, rest, end)
      else if (this.state === C_QUEUED || this.state === C_ACTIVE) this.stash(buf, rest, end)
    }
  }

  private body(buf: Buffer, off: number, end: number): void {
    let stop = end
    if (this.req.body === BODY_CHUNKED) {
      const r = this.chunked!.scan(buf, off, end)
      if (r === CHUNKED_BAD) {
        this.badBody()
        return
      }
      if (r !== CHUNKED_MORE) {
        stop = r
        this.reqDone = true
      }
    } else if (this.reqLeft <= end - off) {
      stop = off + this.reqLeft
      this.reqLeft = 0
      this.reqDone = true
    } else this.reqLeft -= end - off
    if (stop > off) this.forward(buf, off, stop)
    if (this.state === C_DONE) {
      if (this.reqDone) this.closeNow()
      return
    }
    if (stop < end) this.stash(buf, stop, end)
  }

  private forward(buf: Buffer, off: number, end: number): void {
    if (this.state === C_ACTIVE) {
      const data = copyOut(buf, off, end)
      if (this.retryable) this.hold(data)
      const up = this.up!
      up.active = true
      if (!send(up.socket, data) && !this.pausedForUp) {
        this.pausedForUp = true
        this.socket.pause()
      }
    } else if (this.state === C_QUEUED) {
      this.hold(copyOut(buf, off, end))
      if (this.heldBytes >= this.proxy.opts.maxBody && !this.pausedForQueue) {
        this.pausedForQueue = true
        this.socket.pause()
      }
    }
  }

  private hold(piece: string | Buffer): void {
    if (this.state === C_ACTIVE && this.heldBytes + piece.length > this.proxy.opts.maxBody) {
      // Too big to keep for a retry: stream only.
      this.retryable = false
      this.held = null
      this.heldBytes = 0
      return
    }
    this.held ??= []
    this.held.push(piece)
    this.heldBytes += piece.length
  }

  private badBody(): void {
    const up = this.up
    const backend = this.backend
    if (up !== null) {
      this.up = null
      this.backend = null
      up.destroy()
    }
    this.closeAfter = true
    this.reqDone = true
    this.fail('E_ROUTER_BAD_REQUEST', 'malformed chunked request body', backend)
  }

  /** Sends the request to a backend, or queues it when none is ready. */
  dispatch(avoid: BackendState | null, now: number): void {
    const proxy = this.proxy
    const backend = proxy.balancer.pick(proxy.ready, avoid, coarse)
    if (backend === null) {
      proxy.enqueue(this, now)
      return
    }
    this.attach(backend, now, avoid !== null)
  }

  /** Writes the request (and any body held) to a connection to `backend`. */
  attach(backend: BackendState, now: number, fresh: boolean): void {
    this.state = C_ACTIVE
    this.backend = backend
    this.proxy.adjust(backend, 1, now)
    const up = this.proxy.acquire(backend, fresh)
    this.up = up
    up.begin(this)
    const held = this.held
    if (held === null) up.socket.write(this.req.head, 'latin1')
    else {
      up.socket.cork()
      up.socket.write(this.req.head, 'latin1')
      for (const piece of held) send(up.socket, piece)
      up.socket.uncork()
      if (!this.retryable) {
        this.held = null
        this.heldBytes = 0
      }
    }
    if (this.pausedForQueue) {
      this.pausedForQueue = false
      this.resume()
    }
  }

  /** The first byte of the response arrived: no retry from here on. */
  responseStarted(): void {
    this.started = true
    this.retryable = false
    this.held = null
    this.heldBytes = 0
  }

  responseDone(): void {
    const now = performance.now()
    this.proxy.finished(this.backend, now - this.t0, now, false)
    this.up = null
    this.backend = null
    // The instance answered before the body ended (say a 413): the rest cannot be framed now.
    if (!this.reqDone) this.closeAfter = true
    if (this.closeAfter) this.closeNow()
    else this.next()
  }

  /** Ready for the next request on the connection. */
  private next(): void {
    this.state = C_HEAD
    this.reqDone = true
    this.held = null
    this.heldBytes = 0
    if (this.pausedForPending) {
      this.pausedForPending = false
      this.resume()
    }
    const pending = this.pending
    if (pending !== null) {
      this.pending = null
      this.parse(pending, 0, pending.length)
    }
  }

  upstreamFailed(up: UpstreamConn, reason: string, connectFailed: boolean): void {
    if (this.up !== up) return
    this.up = null
    const backend = this.backend!
    this.backend = null
    const now = performance.now()
    if (connectFailed) backend.failedUntil = coarse + FAIL_BACKOFF_MS
    // A refused connection never reached the instance: any request may go elsewhere. A reset on an
    // open connection may come after the instance acted, so only idempotent requests are sent
    // again (RFC 9110 §9.2.2, RFC 9112 §9.3.1; nginx's proxy_next_upstream does the same).
    if (!this.started && this.retryable && !this.retried && (connectFailed || this.req.idempotent)) {
      this.retried = true
      this.proxy.adjust(backend, -1, now)
      this.dispatch(backend, now)
      return
    }
    this.proxy.logger?.warn(
      { group: this.proxy.opts.group, backend: backend.id, reason },
      'router: upstream failed',
    )
    this.fail('E_ROUTER_UPSTREAM', `instance ${backend.id} failed: ${reason}`, backend)
  }

  upstreamTimedOut(): void {
    const backend = this.backend
    this.up = null
    this.backend = null
    const seconds = Math.round(this.proxy.opts.upstreamTimeoutMs / 1000)
    this.fail(
      'E_ROUTER_UPSTREAM_TIMEOUT',
      `instance ${backend?.id} did not answer within ${seconds}s`,
      backend,
    )
  }

  /**
   * Answers with the router's own error: the request never got a backend, or lost it (`backend`,
   * still counted in flight there) before the response started. After the response started, the
   * connection is cut: that is all a proxy can still say.
   */
  fail(code: RouterErrorCode, message: string, backend: BackendState | null = null): void {
    const now = performance.now()
    if (this.state === C_QUEUED) this.proxy.unqueue(this, now)
    this.proxy.finished(backend, now - this.t0, now, true)
    if (this.started) {
      this.closeNow(true)
      return
    }
    const close = this.closeAfter || !this.reqDone || this.proxy.closing
    this.socket.write(errorResponse(code, message, close))
    if (!close) {
      this.next()
      return
    }
    this.state = C_DONE
    this.closeAfter = true
    // Read what remains of a small body so the client gets to read the answer; otherwise close now.
    if (this.reqDone || this.req.body !== BODY_LENGTH || this.reqLeft > this.proxy.opts.maxBody)
      this.closeNow()
  }

  /** A head the router will not forward: answer and close (the rest of the stream is unframed). */
  reject(code: RouterErrorCode, message: string): void {
    this.t0 = performance.now()
    this.started = false
    this.closeAfter = true
    this.reqDone = true
    this.fail(code, message)
  }

  closeNow(abort = false): void {
    if (this.state === C_CLOSED) return
    this.state = C_CLOSED
    this.pending = null
    // destroySoon: end, and close for good once written (a half-open client cannot linger).
    if (abort) this.socket.destroy()
    else this.socket.destroySoon()
  }

  private onEnd(): void {
    // The client finished sending (allowHalfOpen): answer what is in flight, then close.
    if (this.state === C_HEAD && this.pending === null) this.closeNow()
    else if (!this.reqDone) this.socket.destroy()
    else this.closeAfter = true
  }

  private onClose(): void {
    const state = this.state
    this.state = C_CLOSED
    this.proxy.clients.delete(this)
    if (state === C_QUEUED) this.proxy.unqueue(this, performance.now())
    const up = this.up
    if (up !== null) {
      // The client left mid-exchange; the upstream connection is in an unknown state.
      this.up = null
      up.destroy()
      const now = performance.now()
      this.proxy.finished(this.backend, now - this.t0, now, false)
      this.backend = null
    }
    this.proxy.maybeClosed()
  }
}

export class ProxyServer {
  readonly opts: ProxyOptions
  readonly logger: RouterLogger | undefined
  readonly server: Server
  readonly balancer: Balancer
  readonly clients = new Set<ClientConn>()
  /** Backends that take new requests. */
  ready: BackendState[] = []
  private byId = new Map<string, BackendState>()
  /** Removed or draining backends that still have requests in flight. */
  private finishing = new Set<BackendState>()
  closing = false
  private closed: (() => void) | null = null
  private demanded = false
  // Queue: a FIFO linked through the client connections.
  private qHead: ClientConn | null = null
  private qTail: ClientConn | null = null
  queued = 0
  private queueTimer: NodeJS.Timeout | null = null
  // Counters.
  inFlight = 0
  private busy = 0
  private queueBusy = 0
  private lastT = performance.now()
  private lastQT = performance.now()
  requests = 0
  errors = 0
  private readonly latency = emptyHistogram()
  private readonly sweeper: NodeJS.Timeout
  private readonly fwdCache = new Map<string, Forwarding>()
  private address = ''

  constructor(opts: ProxyOptions) {
    this.opts = opts
    this.logger = opts.logger
    this.balancer = new Balancer(opts.p2c)
    this.server = createServer({ noDelay: true, allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
      if (this.closing) {
        socket.destroy()
        return
      }
      this.clients.add(new ClientConn(this, socket))
    })
    this.sweeper = setInterval(() => this.sweep(), 1000)
    this.sweeper.unref()
  }

  /** Listens on host:port; resolves with the actual address. */
  listen(host: string, port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err)
      this.server.once('error', onError)
      this.server.listen({ host, port }, () => {
        this.server.off('error', onError)
        const a = this.server.address()
        const actual = a !== null && typeof a === 'object' ? a.port : port
        this.address = host.includes(':') ? `[${host}]:${actual}` : `${host}:${actual}`
        resolve(this.address)
      })
    })
  }

  forwarding(remote: string | undefined): Forwarding {
    let ip = remote ?? 'unknown'
    if (ip.startsWith('::ffff:')) ip = ip.slice(7)
    let fwd = this.fwdCache.get(ip)
    if (fwd === undefined) {
      if (this.fwdCache.size > 1024) this.fwdCache.clear()
      fwd = forwardingFor(ip, this.address)
      this.fwdCache.set(ip, fwd)
    }
    return fwd
  }

  // ─── backends ──────────────────────────────────────────────────────────────

  /** Replaces the set. Ids that stay keep their state; removed ones finish what they have. */
  setBackends(specs: BackendSpec[]): void {
    const now = performance.now()
    const next = new Map<string, BackendState>()
    for (const spec of specs) {
      const old = this.byId.get(spec.id)
      if (old !== undefined && old.address === spec.address && old.gen === spec.gen) {
        next.set(spec.id, old)
        continue
      }
      const { host, port } = splitHostPort(spec.address)
      next.set(spec.id, new BackendState(spec, host, port, now))
    }
    for (const [id, old] of this.byId) {
      if (next.get(id) === old) continue
      old.removed = true
      old.closeIdle()
      if (old.inFlight > 0) this.finishing.add(old)
    }
    this.byId = next
    this.refreshReady()
  }

  /** Stops new requests to `id`; resolves when its requests in flight are done or after `timeoutMs`. */
  drain(id: string, timeoutMs: number): Promise<{ inFlight: number; timedOut: boolean }> {
    const backend = this.byId.get(id) ?? [...this.finishing].find((b) => b.id === id)
    if (backend === undefined) return Promise.resolve({ inFlight: 0, timedOut: false })
    backend.draining = true
    backend.closeIdle()
    this.refreshReady()
    if (backend.inFlight === 0) return Promise.resolve({ inFlight: 0, timedOut: false })
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const i = backend.waiters.indexOf(done)
        if (i >= 0) backend.waiters.splice(i, 1)
        resolve({ inFlight: backend.inFlight, timedOut: true })
      }, timeoutMs)
      const done = () => {
        clearTimeout(timer)
        resolve({ inFlight: 0, timedOut: false })
      }
      backend.waiters.push(done)
    })
  }

  private refreshReady(): void {
    this.ready = [...this.byId.values()].filter((b) => !b.draining)
    if (this.ready.length > 0) {
      this.demanded = false
      this.release()
    }
  }

  acquire(backend: BackendState, fresh: boolean): UpstreamConn {
    const idle = backend.idle
    while (!fresh && idle.length > 0) {
      const conn = idle.pop()!
      if (coarse - conn.idleSince < conn.idleLimit) return conn
      conn.destroy()
    }
    return new UpstreamConn(backend, this)
  }

  /** Moves a backend's and the total in-flight counts, keeping their time integrals. */
  adjust(backend: BackendState, delta: number, now: number): void {
    this.busy += this.inFlight * (now - this.lastT)
    this.lastT = now
    this.inFlight += delta
    backend.adjust(delta, now)
    if (backend.inFlight === 0 && backend.removed) this.finishing.delete(backend)
  }

  /** A request ended (answered, failed or cut short); `backend` null when it never had one. */
  finished(backend: BackendState | null, ms: number, now: number, error: boolean): void {
    if (backend !== null) {
      this.adjust(backend, -1, now)
      backend.requests++
      if (error) backend.errors++
    }
    this.requests++
    if (error) this.errors++
    this.latency[latencyBucket(ms)]!++
  }

  // ─── queue ─────────────────────────────────────────────────────────────────

  enqueue(c: ClientConn, now: number): void {
    if (!this.demanded) {
      this.demanded = true
      try {
        this.opts.onDemand()
      } catch (err) {
        this.logger?.error({ group: this.opts.group, err }, 'router: onDemand listener threw')
      }
    }
    if (this.closing) {
      c.fail('E_ROUTER_CLOSED', 'the router is shutting down')
      return
    }
    if (this.queued >= this.opts.queueDepth) {
      c.fail(
        'E_ROUTER_QUEUE_FULL',
        `no instance of group ${this.opts.group} is ready and ${this.queued} requests are already waiting`,
      )
      return
    }
    this.queueBusy += this.queued * (now - this.lastQT)
    this.lastQT = now
    this.queued++
    c.state = C_QUEUED
    c.qDeadline = now + this.opts.queueTimeoutMs
    c.qPrev = this.qTail
    c.qNext = null
    if (this.qTail !== null) this.qTail.qNext = c
    else this.qHead = c
    this.qTail = c
    if (this.queueTimer === null) {
      this.queueTimer = setTimeout(() => this.expire(), this.opts.queueTimeoutMs)
    }
  }

  unqueue(c: ClientConn, now: number): void {
    this.queueBusy += this.queued * (now - this.lastQT)
    this.lastQT = now
    this.queued--
    if (c.qPrev !== null) c.qPrev.qNext = c.qNext
    else this.qHead = c.qNext
    if (c.qNext !== null) c.qNext.qPrev = c.qPrev
    else this.qTail = c.qPrev
    c.qPrev = null
    c.qNext = null
    if (this.qHead === null && this.queueTimer !== null) {
      clearTimeout(this.queueTimer)
      this.queueTimer = null
    }
  }

  /** Backends appeared: send every waiting request, oldest first. */
  private release(): void {
    while (this.qHead !== null && this.ready.length > 0) {
      const c = this.qHead
      const now = performance.now()
      this.unqueue(c, now)
      c.state = C_HEAD
      c.dispatch(null, now)
    }
  }

  private expire(): void {
    this.queueTimer = null
    const now = performance.now()
    while (this.qHead !== null && this.qHead.qDeadline <= now + 1) {
      const seconds = Math.round(this.opts.queueTimeoutMs / 1000)
      this.qHead.fail(
        'E_ROUTER_QUEUE_TIMEOUT',
        `no instance of group ${this.opts.group} became ready within ${seconds}s`,
      )
    }
    if (this.qHead !== null) {
      this.queueTimer = setTimeout(() => this.expire(), Math.max(1, this.qHead.qDeadline - now))
    }
  }

  // ─── housekeeping ──────────────────────────────────────────────────────────

  private sweep(): void {
    const now = performance.now()
    coarse = now
    for (const c of this.clients) {
      if (c.active) {
        c.active = false
        c.lastActive = now
      }
      if (c.state === C_HEAD) {
        if (c.headSince !== 0 && now - c.headSince > HEADERS_TIMEOUT_MS) {
          c.reject('E_ROUTER_REQUEST_TIMEOUT', 'the request head took too long to arrive')
        } else if (c.headSince === 0 && now - c.lastActive > CLIENT_IDLE_MS) c.closeNow()
      } else if (c.state === C_DONE && now - c.lastActive > 5000) {
        // Answered and waiting for the rest of a body that does not come.
        c.closeNow(true)
      }
      const up = c.up
      if (up !== null) {
        if (up.active) {
          up.active = false
          up.lastActive = now
        } else if (now - up.lastActive > (up.connected ? this.opts.upstreamTimeoutMs : CONNECT_TIMEOUT_MS)) {
          up.timedOut()
        }
      }
    }
    for (const b of this.byId.values()) this.expireIdle(b, now)
  }

  private expireIdle(b: BackendState, now: number): void {
    const idle = b.idle
    let keep = 0
    for (let i = 0; i < idle.length; i++) {
      const conn = idle[i]!
      if (now - conn.idleSince < conn.idleLimit) idle[keep++] = conn
      else conn.destroy()
    }
    idle.length = keep
  }

  counters(): RouterCounters {
    const now = performance.now()
    this.busy += this.inFlight * (now - this.lastT)
    this.lastT = now
    this.queueBusy += this.queued * (now - this.lastQT)
    this.lastQT = now
    const backends: RouterCounters['backends'] = {}
    for (const b of this.finishing) backends[b.id] = b.counters(now)
    for (const b of this.byId.values()) backends[b.id] = b.counters(now)
    return {
      at: Date.now(),
      since: this.opts.since,
      inFlight: this.inFlight,
      queued: this.queued,
      requests: this.requests,
      errors: this.errors,
      busy: this.busy,
      queueBusy: this.queueBusy,
      backends,
      latency: this.latency.slice(),
    }
  }

  /** Stops listening; in-flight requests finish (up to `timeoutMs`), then every connection is closed. */
  async close(timeoutMs: number): Promise<void> {
    if (this.closing) return
    this.closing = true
    clearInterval(this.sweeper)
    this.server.close()
    while (this.qHead !== null) this.qHead.fail('E_ROUTER_CLOSED', 'the router is shutting down')
    for (const c of this.clients) {
      if (c.state === C_HEAD && c.headSince === 0) c.closeNow()
      else c.closeAfter = true
    }
    if (this.clients.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs)
        this.closed = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
    for (const c of this.clients) c.socket.destroy()
    for (const b of this.byId.values()) b.closeIdle()
    if (this.queueTimer !== null) clearTimeout(this.queueTimer)
  }

  maybeClosed(): void {
    if (this.closing && this.clients.size === 0 && this.closed !== null) this.closed()
  }
}
