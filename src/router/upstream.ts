/**
 * One kept-alive connection from the router to a backend: carries one exchange at a time for a
 * client connection, rewrites the response head (hop-by-hop fields out, framing for the client in)
 * and streams the body back with back-pressure; then returns to its backend's idle pool.
 */

import { connect, type Socket } from 'node:net'
import type { BackendState } from './backend.js'
import { CHUNKED_BAD, CHUNKED_MORE, ChunkedScanner } from './chunked.js'
import type { ClientConn } from './client.js'
import { BODY_CHUNKED, BODY_CLOSE, BODY_LENGTH, BODY_NONE, parseResponseHead, ResponseHead } from './http1.js'
import {
  CONNECT_TIMEOUT_MS,
  coarse,
  copyOut,
  findHead,
  headAt,
  headText,
  join,
  keep,
  latin1,
  MAX_HEAD,
  MAX_IDLE_PER_BACKEND,
  READ_BUFFER,
  send,
  SMALL,
  UPSTREAM_IDLE_MAX_MS,
  UPSTREAM_IDLE_MS,
} from './io.js'
import { coldStartLine } from './errors.js'
import type { ProxyServer } from './proxy.js'

// Upstream connection states.
const U_IDLE = 0
const U_HEAD = 1
const U_BODY = 2
const U_CLOSED = 3
const U_TUNNEL = 4 // after a 101: bytes pass raw to the client

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
    } else if (this.state === U_TUNNEL) {
      this.toClient(buf, 0, n)
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
      if (res.status === 101) {
        // Only an upgrade request may be answered 101, and the answer must say what to (RFC 9110 §15.2.2).
        if (!c.req.upgrade || res.upgrade === '') {
          this.broken('unexpected 101 Switching Protocols', true)
          return
        }
        this.state = U_TUNNEL
        c.write(`${res.head}Connection: Upgrade\r\nUpgrade: ${res.upgrade}\r\n\r\n`)
        // Bytes of the new protocol that came with the head.
        if (start < end) this.toClient(buf, start, end)
        c.tunnelOpened()
        return
      }
      // Interim responses (100 Continue, 103 Early Hints) go to HTTP/1.1 clients; the final one follows.
      if (!c.req.http10) c.write(`${res.head}\r\n`)
      if (start < end) this.head(buf, start, end)
      return
    }
    // A request that waited for an instance says so, and for how long (Tide-Cold-Start).
    let extra = coldStartLine(c.waited)
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
    // A small chunk is already text (findHead converted it): its body part is reused, not copied again.
    if (start < end) this.body(buf, start, end, head, headText.length === end - off ? start - off : -1)
    else c.write(head)
  }

  /**
   * Passes buf[off, end) on. With `head`, the response head goes in the same write; `textAt` ≥ 0
   * says headText holds these bytes from that offset.
   */
  private body(buf: Buffer, off: number, end: number, head: string | null, textAt = -1): void {
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
        const text = textAt >= 0 ? headText.slice(textAt, textAt + stop - off) : latin1(buf, off, stop)
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

  /** Tunnel bytes to the client, with back-pressure. */
  private toClient(buf: Buffer, off: number, end: number): void {
    const c = this.client!
    if (!send(c.socket, copyOut(buf, off, end)) && !this.pausedForClient) {
      this.pausedForClient = true
      this.socket.pause()
    }
  }

  /** The tunnel is over: flush what was written to the instance, then close. */
  closeTunnel(): void {
    if (this.state === U_CLOSED) return
    this.state = U_CLOSED
    this.client = null
    this.socket.destroySoon()
  }

  private onEnd(): void {
    if (this.state === U_TUNNEL) {
      this.client?.closeTunnel()
      return
    }
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
      !c.req.upgrade &&
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
    if (this.state === U_TUNNEL) {
      const c = this.client
      this.destroy()
      c?.closeTunnel()
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
