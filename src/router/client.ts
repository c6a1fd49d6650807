/**
 * One client connection of the router: reads request heads, sends each request to a backend (or
 * queues it while none is ready), streams the body, and answers with the router's own error when
 * it must. Reused for every request on the connection (see proxy.ts for the whole data path).
 */

import type { Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { type BackendState, FAIL_BACKOFF_MS } from './backend.js'
import { CHUNKED_BAD, CHUNKED_MORE, ChunkedScanner } from './chunked.js'
import { coldStartLine, errorResponse, type RouterErrorCode } from './errors.js'
import {
  BODY_CHUNKED,
  BODY_LENGTH,
  BODY_NONE,
  type Forwarding,
  parseRequestHead,
  RequestHead,
} from './http1.js'
import { adopt, coarse, copyOut, findHead, headAt, headText, join, keep, MAX_HEAD, send } from './io.js'
import type { ProxyServer } from './proxy.js'
import type { UpstreamConn } from './upstream.js'

// Client connection states.
export const C_HEAD = 0 // reading a request head (or idle between requests)
export const C_QUEUED = 1 // waiting for a backend
export const C_ACTIVE = 2 // attached to an upstream connection
export const C_DONE = 3 // the router answered itself and will close
export const C_CLOSED = 4
export const C_TUNNEL = 5 // the instance answered 101: bytes go both ways raw until either side closes

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
  /** The client sent its FIN. */
  private ended = false
  backend: BackendState | null = null
  up: UpstreamConn | null = null
  pausedForUp = false
  private pausedForQueue = false
  private pausedForPending = false
  // Queue links.
  qPrev: ClientConn | null = null
  qNext: ClientConn | null = null
  qDeadline = 0
  /** performance.now() when the current request first waited for an instance; 0 if it has not. */
  waitStart = 0
  /** How long the current request waited for an instance, in ms, once it stopped waiting; -1 if it never did. */
  waited = -1

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
      case C_TUNNEL:
        this.toTunnel(copyOut(buf, 0, n))
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
    this.waitStart = 0
    this.waited = -1
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
    // An upgrade may turn the connection into a tunnel: never one from (or back to) the pool.
    const up = this.proxy.acquire(backend, fresh || this.req.upgrade)
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

  /**
   * The instance answered 101 to an upgrade request (its head is written): from now on bytes pass
   * raw both ways. Bytes the client sent after its request head were held; they go first.
   */
  tunnelOpened(): void {
    this.state = C_TUNNEL
    this.backend!.tunnels.add(this)
    const pending = this.pending
    this.pending = null
    if (pending !== null && pending.length > 0) this.toTunnel(pending)
    if (this.pausedForPending) {
      this.pausedForPending = false
      this.resume()
    }
    // The client already finished sending: nothing more will come, so the tunnel is over.
    if (this.ended) this.closeTunnel()
  }

  private toTunnel(data: string | Buffer): void {
    const up = this.up!
    up.active = true
    if (!send(up.socket, data) && !this.pausedForUp) {
      this.pausedForUp = true
      this.socket.pause()
    }
  }

  /**
   * Ends a tunnel (either side closed, or a drain timed out): what was written is flushed, then
   * both connections close, and the request it was counts as done.
   */
  closeTunnel(): void {
    if (this.state !== C_TUNNEL) return
    const up = this.up!
    const backend = this.backend!
    this.up = null
    this.backend = null
    backend.tunnels.delete(this)
    up.closeTunnel()
    const now = performance.now()
    this.proxy.finished(backend, now - this.t0, now, false)
    this.closeNow()
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
    if (this.state === C_QUEUED) {
      this.proxy.unqueue(this, now)
      this.waited = now - this.waitStart
      this.proxy.waitEnded(this.waited, false)
    }
    this.proxy.finished(backend, now - this.t0, now, true)
    if (this.started) {
      this.closeNow(true)
      return
    }
    const close = this.closeAfter || !this.reqDone || this.proxy.closing
    this.socket.write(errorResponse(code, message, close, coldStartLine(this.waited)))
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
    this.waitStart = 0
    this.waited = -1
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
    this.ended = true
    if (this.state === C_TUNNEL) {
      this.closeTunnel()
      return
    }
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
    if (state === C_TUNNEL) this.backend?.tunnels.delete(this)
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
