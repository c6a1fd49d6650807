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
 * Files: client.ts (ClientConn), upstream.ts (UpstreamConn), http1.ts (heads), chunked.ts
 * (chunked framing), io.ts (shared read buffer, copies, limits), backend.ts (backends, balancer),
 * this file (ProxyServer: listening, backends, drain, queue, counters, timeouts).
 * Runs inside Tide (workers: 1) or in each worker process (worker.ts).
 *
 * What was measured to matter (bench/RESULTS.md): reading into one shared buffer (`onread`) rather
 * than a Buffer and a stream event per read; writing a head and a small body in one write; not
 * allocating per request. What was tried and did not: writing through the stream handle directly,
 * single-threaded GC, client-to-upstream connection affinity, the kernel spreading connections.
 */
import { createServer, type Server } from 'node:net'
import { performance } from 'node:perf_hooks'
import { splitHostPort } from '../core/schema.js'
import { type BackendSpec, BackendState, Balancer } from './backend.js'
import { C_DONE, C_HEAD, C_QUEUED, C_TUNNEL, ClientConn } from './client.js'
import { type Forwarding, forwardingFor } from './http1.js'
import { CLIENT_IDLE_MS, CONNECT_TIMEOUT_MS, coarse, HEADERS_TIMEOUT_MS, tickClock } from './io.js'
import { emptyHistogram, latencyBucket, type RouterCounters } from './stats.js'
import { UpstreamConn } from './upstream.js'

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
  /**
   * A request stopped waiting for a backend after `ms`: `served` when it was sent to one, false
   * when it was answered with an error (timeout, failed wake, shutdown). For the cold-start histogram.
   */
  onWait?: (ms: number, served: boolean) => void
  logger?: RouterLogger
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

  /**
   * Stops new requests to `id`; resolves when its requests in flight are done or after `timeoutMs`,
   * and then (`cutTunnels`) closes the upgraded connections still open to it.
   */
  drain(id: string, timeoutMs: number, cutTunnels = true): Promise<{ inFlight: number; timedOut: boolean }> {
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
        backend.undrains.delete(cancel)
        resolve({ inFlight: backend.inFlight, timedOut: true })
        // An upgraded connection has no end of its own: past the drain timeout, the router ends it.
        if (cutTunnels) for (const c of [...backend.tunnels]) c.closeTunnel()
      }, timeoutMs)
      const done = () => {
        clearTimeout(timer)
        backend.undrains.delete(cancel)
        resolve({ inFlight: 0, timedOut: false })
      }
      // Taken back into rotation before its requests ended: the drain is over, nothing is cut.
      const cancel = () => {
        clearTimeout(timer)
        const i = backend.waiters.indexOf(done)
        if (i >= 0) backend.waiters.splice(i, 1)
        resolve({ inFlight: backend.inFlight, timedOut: false })
      }
      backend.waiters.push(done)
      backend.undrains.add(cancel)
    })
  }

  /**
   * Takes a drained backend back into rotation (the target kept the instance it was about to
   * remove, or the operation failed): it takes new requests again, and a drain still waiting on
   * it resolves now. False when `id` is not a current backend or was not draining.
   */
  undrain(id: string): boolean {
    const backend = this.byId.get(id)
    if (backend === undefined || !backend.draining) return false
    backend.draining = false
    for (const cancel of [...backend.undrains]) cancel()
    backend.undrains.clear()
    this.refreshReady()
    return true
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
    if (this.closing) {
      this.demand()
      c.fail('E_ROUTER_CLOSED', 'the router is shutting down')
      return
    }
    if (this.queued >= this.opts.queueDepth) {
      this.demand()
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
    if (c.waitStart === 0) c.waitStart = now
    c.qDeadline = now + this.opts.queueTimeoutMs
    c.qPrev = this.qTail
    c.qNext = null
    if (this.qTail !== null) this.qTail.qNext = c
    else this.qHead = c
    this.qTail = c
    if (this.queueTimer === null) {
      this.queueTimer = setTimeout(() => this.expire(), this.opts.queueTimeoutMs)
    }
    // Told once the request is in the queue, so a listener that answers the queue at once (its
    // group cannot start an instance: failQueue) answers this request too.
    this.demand()
  }

  /** A request found no ready backend: tells `onDemand` once per episode (until backends appear). */
  private demand(): void {
    if (this.demanded) return
    this.demanded = true
    try {
      this.opts.onDemand()
    } catch (err) {
      this.logger?.error({ group: this.opts.group, err }, 'router: onDemand listener threw')
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
      c.waited = now - c.waitStart
      this.waitEnded(c.waited, true)
      c.state = C_HEAD
      c.dispatch(null, now)
    }
  }

  /** Tells the listener how long a request waited; a throwing listener never reaches the data path. */
  waitEnded(ms: number, served: boolean): void {
    const listener = this.opts.onWait
    if (listener === undefined) return
    try {
      listener(ms, served)
    } catch (err) {
      this.logger?.error({ group: this.opts.group, err }, 'router: onWait listener threw')
    }
  }

  /**
   * The wake the waiting requests were for failed: answer each one now (503 with Retry-After)
   * rather than let them wait out `queue.timeout` for an instance that is not coming, and end the
   * demand episode so the next request asks for a wake again (seed 004 cached a failure for 60 s
   * and handed it to every new request; §4.7, bug 5).
   */
  failQueue(code: 'E_ROUTER_WAKE_FAILED', message: string): number {
    let failed = 0
    while (this.qHead !== null) {
      this.qHead.fail(code, message)
      failed++
    }
    this.demanded = false
    return failed
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
    const now = tickClock()
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
      // A tunnel (after a 101) may stay silent as long as its two ends like: no timeout applies.
      if (up !== null && c.state !== C_TUNNEL) {
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
