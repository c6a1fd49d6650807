/**
 * A stateful DigitalOcean API emulator on loopback, following the official definition
 * (../shared/apis/digitalocean-openapi.yaml) for the endpoints Tide uses: droplets (new →
 * active after a delay, networks assigned then), private images and snapshots, tags and tagged
 * resources, load balancers and their droplets, the Monitoring API (series set by the test),
 * pagination (`page`, `per_page`, `links.pages`, `meta.total`), `ratelimit-*` headers on every
 * answer, and injected faults (429 with Retry-After, 5xx, resets, hangs, "never becomes
 * active", a request that takes effect but whose answer is lost).
 *
 * With `validate` on (the default) every request and every answer is checked against the
 * definition, and what does not match is collected in `violations` (tests assert it is empty).
 *
 * With `agents` on, each active droplet also serves a do-agent endpoint (node_exporter names,
 * ../shared/apis/do-agent-metrics.md) on `<private IPv4>:<agentPort>`, from the same values the
 * Monitoring API serves. Droplet addresses are on 127.0.0.0/8 so that this works on loopback.
 *
 * ```ts
 * const em = new DigitalOceanEmulator({ bootDelay: 100 })
 * await em.start()
 * const base = em.addDroplet({ name: 'web-base', tags: ['web'] })
 * em.addSnapshot({ name: 'web-snapshot' })
 * em.addLoadBalancer({ name: 'web-lb', dropletIds: [base.id] })
 * em.setMetric(base.id, 'load_1', 0.9)
 * // … point the client at em.url with token em.token …
 * await em.close()
 * ```
 */
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { loadSpec, type OpenApi } from './openapi.js'

export interface EmulatorOptions {
  /** The bearer token the emulator accepts. @default 'emulator-token' */
  token?: string
  /** ms from create to `active` (with networks). @default 50 */
  bootDelay?: number
  /** Check every request and answer against the definition. @default true */
  validate?: boolean
  /** Requests allowed per `rateWindow` (the API's hourly limit). @default 5000 */
  rateLimit?: number
  /** @default 3600000 (one hour, as the API) */
  rateWindow?: number
  /** Serve a do-agent endpoint for every active droplet. @default false */
  agents?: boolean
  /** Port of the do-agent endpoints (one per droplet address). @default a free port */
  agentPort?: number
  /** Epoch ms. @default Date.now */
  now?: () => number
  /** The region of droplets added without one. @default 'nyc3' */
  region?: string
}

/** Metrics the test sets per droplet; bandwidth values are Mbps, memory bytes, cpu percent busy. */
export type EmulatedMetric =
  | 'load_1'
  | 'load_5'
  | 'load_15'
  | 'memory_free'
  | 'memory_available'
  | 'memory_total'
  | 'memory_cached'
  | 'cpu'
  | 'bandwidth_public_outbound'
  | 'bandwidth_private_outbound'
  | 'bandwidth_public_inbound'
  | 'bandwidth_private_inbound'

/** A value, or a series spread over the window (one point a minute, oldest first). */
export type MetricValue = number | number[]

export interface EmDroplet {
  id: number
  name: string
  tags: string[]
  region: string
  size: string
  imageId: number | string
  vpcUuid: string
  sshKeys: Array<number | string>
  monitoring: boolean
  /** Created with `ipv6: true`: a public IPv6 once active. */
  ipv6?: boolean
  /** Created with `backups: true`. */
  backups?: boolean
  userData?: string
  createdAt: number
  /** When it becomes active; undefined: never. */
  activeAt?: number
  privateIp: string
  publicIp: string
  /** Set when deleted (kept for inspection in `deleted`). */
  deletedAt?: number
}

export interface EmImage {
  id: number
  name: string
  type: 'snapshot' | 'base' | 'custom' | 'backup'
  public: boolean
  regions: string[]
  createdAt: number
  slug: string | null
}

export interface EmLoadBalancer {
  id: string
  name: string
  dropletIds: number[]
  tag?: string
  region: string
}

export type Fault =
  /** Answer with this status (and Retry-After seconds) without doing anything. */
  | { kind: 'status'; status: number; retryAfter?: number }
  /** Do the request, then answer with this status (the caller cannot know it worked). */
  | { kind: 'after'; status: number }
  /** Close the connection without an answer; with `apply`, after doing the request. */
  | { kind: 'reset'; apply?: boolean }
  /** Say nothing for `ms` (then close); with `apply`, the request was done. */
  | { kind: 'hang'; ms: number; apply?: boolean }

export interface FaultRule {
  method?: string
  /** A substring of the path, or a pattern. */
  path?: string | RegExp
  /** How many matching requests it hits. @default 1 */
  times?: number
  fault: Fault
}

export interface RequestRecord {
  at: number
  method: string
  path: string
  query: Record<string, string>
  body?: unknown
  status: number | 'reset'
}

interface Pending {
  rule: FaultRule
  left: number
}

/**
 * Public images a create may name by slug or id (`image` in components.schemas.droplet_create:
 * "the image ID of a public or private image or the slug identifier for a public image").
 * Images added with `addImage({ public: true, slug })` are found too.
 */
const PUBLIC_IMAGES: ReadonlyArray<{
  id: number
  slug: string
  name: string
  distribution: string
  type: 'base' | 'snapshot'
}> = [
  { id: 6918990, slug: 'ubuntu-24-04-x64', name: '24.04 (LTS) x64', distribution: 'Ubuntu', type: 'base' },
  { id: 6918991, slug: 'ubuntu-22-04-x64', name: '22.04 (LTS) x64', distribution: 'Ubuntu', type: 'base' },
  { id: 6918992, slug: 'ubuntu-20-04-x64', name: '20.04 (LTS) x64', distribution: 'Ubuntu', type: 'base' },
  { id: 6918993, slug: 'debian-12-x64', name: '12 x64', distribution: 'Debian', type: 'base' },
  { id: 6918994, slug: 'rockylinux-9-x64', name: '9 x64', distribution: 'Rocky Linux', type: 'base' },
  {
    id: 6918995,
    slug: 'docker-20-04',
    name: 'Docker on Ubuntu 20.04',
    distribution: 'Ubuntu',
    type: 'snapshot',
  }, // a 1-Click app
]
/** Regions public images are in. */
const REGIONS = ['nyc1', 'nyc3', 'sfo2', 'sfo3', 'ams3', 'fra1', 'lon1', 'sgp1', 'tor1', 'blr1', 'syd1']
/** components.schemas.droplet_create.user_data: "may not exceed 64 KiB". */
const USER_DATA_MAX = 64 * 1024

const SIZES: Record<string, { memory: number; vcpus: number; disk: number; price: number }> = {
  's-1vcpu-1gb': { memory: 1024, vcpus: 1, disk: 25, price: 6 },
  's-1vcpu-2gb': { memory: 2048, vcpus: 1, disk: 50, price: 12 },
  's-2vcpu-2gb': { memory: 2048, vcpus: 2, disk: 60, price: 18 },
  's-2vcpu-4gb': { memory: 4096, vcpus: 2, disk: 80, price: 24 },
}

export class DigitalOceanEmulator {
  readonly token: string
  readonly options: Required<Omit<EmulatorOptions, 'agentPort' | 'token'>> & { agentPort?: number }
  /** Every request, in order. */
  readonly requests: RequestRecord[] = []
  /** Requests and answers that do not follow the definition (when `validate` is on). */
  readonly violations: string[] = []
  private server?: Server
  private baseUrl = ''
  private readonly sockets = new Set<Socket>()
  private readonly spec?: OpenApi
  private nextDropletId = 3164400
  private nextImageId = 7555620
  private nextActionId = 36804636
  private readonly dropletMap = new Map<number, EmDroplet>()
  private readonly deletedList: EmDroplet[] = []
  private readonly imageMap = new Map<number, EmImage>()
  private readonly lbMap = new Map<string, EmLoadBalancer>()
  private readonly tagSet = new Set<string>()
  private readonly metricMap = new Map<string, MetricValue>()
  private readonly faults: Pending[] = []
  private readonly neverActiveNames = new Set<string>()
  private neverActiveCount = 0
  private readonly rateTimes: number[] = []
  private readonly octet: number
  private hostCount = 0
  private readonly agentServers = new Map<number, Server>()
  private readonly downAgents = new Set<number>()
  private agentTimer?: NodeJS.Timeout
  private agentPortChosen?: number

  constructor(options: EmulatorOptions = {}) {
    this.token = options.token ?? 'emulator-token'
    this.options = {
      bootDelay: options.bootDelay ?? 50,
      validate: options.validate ?? true,
      rateLimit: options.rateLimit ?? 5000,
      rateWindow: options.rateWindow ?? 3_600_000,
      agents: options.agents ?? false,
      agentPort: options.agentPort,
      now: options.now ?? Date.now,
      region: options.region ?? 'nyc3',
    }
    if (this.options.validate) this.spec = loadSpec()
    // Each emulator its own 127.N.x.y block, so emulators running at once do not share addresses.
    this.octet = 2 + Math.floor(Math.random() * 250)
  }

  /** The API's base URL (`http://127.0.0.1:<port>`), after start(). */
  get url(): string {
    return this.baseUrl
  }

  async start(port = 0, host = '127.0.0.1'): Promise<string> {
    const server = createServer((req, res) => void this.handle(req, res))
    server.on('connection', (socket) => {
      this.sockets.add(socket)
      socket.on('close', () => this.sockets.delete(socket))
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => resolve())
    })
    this.server = server
    const address = server.address() as AddressInfo
    this.baseUrl = `http://${host}:${address.port}`
    if (this.options.agents) {
      this.agentTimer = setInterval(() => void this.syncAgents(), 25)
      this.agentTimer.unref()
    }
    return this.baseUrl
  }

  async close(): Promise<void> {
    if (this.agentTimer) clearInterval(this.agentTimer)
    await Promise.all([...this.agentServers.values()].map((s) => closeServer(s)))
    this.agentServers.clear()
    for (const socket of this.sockets) socket.destroy()
    if (this.server) await closeServer(this.server)
    this.server = undefined
  }

  // ─── State set-up ────────────────────────────────────────────────────────

  /** A droplet that exists already (the base droplet, or a clone from an earlier run). Active at once unless `status: 'new'`. */
  addDroplet(spec: {
    name: string
    tags?: string[]
    region?: string
    size?: string
    imageId?: number | string
    vpcUuid?: string
    sshKeys?: Array<number | string>
    status?: 'new' | 'active'
    createdAt?: number
  }): EmDroplet {
    const now = this.now()
    const droplet = this.newDroplet({
      name: spec.name,
      tags: spec.tags ?? [],
      region: spec.region ?? this.options.region,
      size: spec.size ?? 's-1vcpu-1gb',
      imageId: spec.imageId ?? 'ubuntu-24-04-x64',
      vpcUuid: spec.vpcUuid ?? '760e09ef-dc84-11e8-981e-3cfdfeaae000',
      sshKeys: spec.sshKeys ?? [],
      monitoring: true,
      createdAt: spec.createdAt ?? now,
      activeAt: spec.status === 'new' ? now + this.options.bootDelay : (spec.createdAt ?? now),
    })
    return droplet
  }

  /** A private snapshot clones can boot from. */
  addSnapshot(spec: { name: string; regions?: string[] }): EmImage {
    return this.addImage({ name: spec.name, type: 'snapshot', public: false, regions: spec.regions })
  }

  /** An image; `id` gives it that id (a template's `image: 12345678`). */
  addImage(spec: {
    id?: number
    name: string
    type?: EmImage['type']
    public?: boolean
    regions?: string[]
    slug?: string
  }): EmImage {
    if (spec.id !== undefined && this.imageMap.has(spec.id)) throw new Error(`image ${spec.id} exists`)
    const image: EmImage = {
      id: spec.id ?? this.nextImageId++,
      name: spec.name,
      type: spec.type ?? 'snapshot',
      public: spec.public ?? false,
      regions: spec.regions ?? [this.options.region],
      createdAt: this.now(),
      slug: spec.slug ?? null,
    }
    this.imageMap.set(image.id, image)
    return image
  }

  addLoadBalancer(spec: {
    name: string
    dropletIds?: number[]
    tag?: string
    region?: string
  }): EmLoadBalancer {
    const lb: EmLoadBalancer = {
      id: randomUUID(),
      name: spec.name,
      dropletIds: [...(spec.dropletIds ?? [])],
      tag: spec.tag,
      region: spec.region ?? this.options.region,
    }
    this.lbMap.set(lb.id, lb)
    return lb
  }

  addTag(name: string): void {
    this.tagSet.add(name)
  }

  /** What the Monitoring API (and the droplet's agent) report; `undefined` removes it (no data). */
  setMetric(dropletId: number, metric: EmulatedMetric, value: MetricValue | undefined): void {
    const key = `${dropletId}/${metric}`
    if (value === undefined) this.metricMap.delete(key)
    else this.metricMap.set(key, value)
  }

  /** Sets several metrics of one droplet at once. */
  setMetrics(dropletId: number, values: Partial<Record<EmulatedMetric, MetricValue>>): void {
    for (const [k, v] of Object.entries(values)) this.setMetric(dropletId, k as EmulatedMetric, v)
  }

  // ─── Faults ──────────────────────────────────────────────────────────────

  /** Adds a fault for the next matching requests. */
  inject(rule: FaultRule): void {
    this.faults.push({ rule, left: rule.times ?? 1 })
  }

  /** The next `times` requests (matching `path`, if given) get 429 with `Retry-After: retryAfter` seconds. */
  throttle(times: number, retryAfter = 0, path?: string | RegExp): void {
    this.inject({ times, path, fault: { kind: 'status', status: 429, retryAfter } })
  }

  /** Droplets created with this name (or the next `count` created, when a number) never become active. */
  neverActive(nameOrCount: string | number): void {
    if (typeof nameOrCount === 'number') this.neverActiveCount += nameOrCount
    else this.neverActiveNames.add(nameOrCount)
  }

  /** Makes a droplet's agent refuse connections (true) or serve again (false). */
  agentDown(dropletId: number, down = true): void {
    if (down) this.downAgents.add(dropletId)
    else this.downAgents.delete(dropletId)
    void this.syncAgents()
  }

  clearFaults(): void {
    this.faults.length = 0
  }

  // ─── Inspection ──────────────────────────────────────────────────────────

  /** Droplets that exist, oldest first. */
  droplets(filter: { tag?: string } = {}): EmDroplet[] {
    return [...this.dropletMap.values()].filter((d) => !filter.tag || d.tags.includes(filter.tag))
  }

  droplet(id: number): EmDroplet | undefined {
    return this.dropletMap.get(id)
  }

  dropletByName(name: string): EmDroplet | undefined {
    return this.droplets().find((d) => d.name === name)
  }

  /** Droplets deleted so far, in order. */
  get deleted(): EmDroplet[] {
    return [...this.deletedList]
  }

  dropletStatus(d: EmDroplet): 'new' | 'active' {
    return d.activeAt !== undefined && this.now() >= d.activeAt ? 'active' : 'new'
  }

  loadBalancer(idOrName: string): EmLoadBalancer | undefined {
    return this.lbMap.get(idOrName) ?? [...this.lbMap.values()].find((lb) => lb.name === idOrName)
  }

  /** Members of a load balancer (for a tag-based one, the droplets with its tag). */
  members(lb: EmLoadBalancer): number[] {
    if (lb.tag) return this.droplets({ tag: lb.tag }).map((d) => d.id)
    return lb.dropletIds.filter((id) => this.dropletMap.has(id))
  }

  tags(): string[] {
    return [...this.tagSet]
  }

  /** Requests matching a method and path (exact path or pattern). */
  calls(method: string, path: string | RegExp): RequestRecord[] {
    return this.requests.filter(
      (r) => r.method === method && (typeof path === 'string' ? r.path === path : path.test(r.path)),
    )
  }

  /** The do-agent address of a droplet (`<private IPv4>:<port>`), once agents serve. */
  agentAddress(dropletId: number): string | undefined {
    const d = this.dropletMap.get(dropletId)
    if (!d || this.agentPortChosen === undefined) return undefined
    return `${d.privateIp}:${this.agentPortChosen}`
  }

  get agentPort(): number | undefined {
    return this.agentPortChosen
  }

  // ─── HTTP ────────────────────────────────────────────────────────────────

  private now(): number {
    return this.options.now()
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://emulator')
    const method = req.method ?? 'GET'
    const path = url.pathname
    const query = Object.fromEntries(url.searchParams)
    let body: unknown
    const text = await readBody(req)
    const record: RequestRecord = { at: this.now(), method, path, query, status: 0 }
    this.requests.push(record)
    if (text.length > 0) {
      try {
        body = JSON.parse(text)
      } catch {
        return this.send(req, res, record, 400, {
          id: 'bad_request',
          message: 'The request body is not JSON.',
        })
      }
    }
    record.body = body
    if (this.spec && path.startsWith('/v2/')) {
      for (const p of this.spec.checkRequest(method, path, url.searchParams, body))
        this.violations.push(`request: ${p}`)
    }
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      return this.send(req, res, record, 401, { id: 'unauthorized', message: 'Unable to authenticate you' })
    }
    // Rate limit: each request counts for one window (the API's per-request timers).
    const now = this.now()
    while (this.rateTimes.length > 0 && this.rateTimes[0]! <= now - this.options.rateWindow)
      this.rateTimes.shift()
    if (this.rateTimes.length >= this.options.rateLimit) {
      return this.send(req, res, record, 429, {
        id: 'too_many_requests',
        message: 'API Rate limit exceeded.',
      })
    }
    this.rateTimes.push(now)

    const fault = this.takeFault(method, path)
    if (fault?.kind === 'status') {
      const extra: Record<string, string> =
        fault.retryAfter !== undefined ? { 'retry-after': String(fault.retryAfter) } : {}
      return this.send(req, res, record, fault.status, errorBody(fault.status), extra)
    }
    const applies = !fault || fault.kind === 'after' || fault.apply === true
    let answer: { status: number; body?: unknown } = { status: 500, body: errorBody(500) }
    if (applies) {
      try {
        answer = this.route(method, path, url.searchParams, body)
      } catch (err) {
        answer = { status: 500, body: { id: 'server_error', message: String(err) } }
      }
    }
    if (fault?.kind === 'after') return this.send(req, res, record, fault.status, errorBody(fault.status))
    if (fault?.kind === 'reset') {
      record.status = 'reset'
      req.socket.destroy()
      return
    }
    if (fault?.kind === 'hang') {
      record.status = 'reset'
      const timer = setTimeout(() => req.socket.destroy(), fault.ms)
      req.socket.once('close', () => clearTimeout(timer))
      return
    }
    this.send(req, res, record, answer.status, answer.body)
  }

  private takeFault(method: string, path: string): Fault | undefined {
    for (const pending of this.faults) {
      const { rule } = pending
      if (pending.left <= 0) continue
      if (rule.method && rule.method !== method) continue
      if (rule.path !== undefined) {
        const hit = typeof rule.path === 'string' ? path.includes(rule.path) : rule.path.test(path)
        if (!hit) continue
      }
      pending.left--
      return rule.fault
    }
    return undefined
  }

  private send(
    req: IncomingMessage,
    res: ServerResponse,
    record: RequestRecord,
    status: number,
    body?: unknown,
    extraHeaders: Record<string, string> = {},
  ): void {
    record.status = status
    const now = this.now()
    const remaining = Math.max(0, this.options.rateLimit - this.rateTimes.length)
    const oldest = this.rateTimes[0] ?? now
    const headers: Record<string, string> = {
      'ratelimit-limit': String(this.options.rateLimit),
      'ratelimit-remaining': String(status === 429 ? 0 : remaining),
      'ratelimit-reset': String(Math.ceil((oldest + this.options.rateWindow) / 1000)),
      'x-request-id': randomUUID(),
      ...extraHeaders,
    }
    if (status === 429 && extraHeaders['retry-after'] !== undefined) {
      // A burst limit: the reset the client should wait for is Retry-After away.
      headers['ratelimit-reset'] = String(Math.ceil(now / 1000) + Number(extraHeaders['retry-after']))
    }
    if (this.spec && record.path.startsWith('/v2/')) {
      const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]))
      for (const p of this.spec.checkResponse(req.method ?? 'GET', record.path, status, lower, body))
        this.violations.push(`response: ${p}`)
    }
    if (body === undefined) {
      res.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8' })
      res.end()
      return
    }
    const text = JSON.stringify(body)
    res.writeHead(status, {
      ...headers,
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
    })
    res.end(text)
  }

  /** The API itself: returns the answer for a request that has passed auth, rate limit and faults. */
  private route(
    method: string,
    path: string,
    q: URLSearchParams,
    body: unknown,
  ): { status: number; body?: unknown } {
    const seg = path.split('/').filter(Boolean).map(decodeURIComponent)
    if (seg[0] !== 'v2') return notFound()
    const [, a, b, c, d] = seg
    switch (a) {
      case 'account':
        if (method === 'GET' && seg.length === 2) {
          return ok({
            account: {
              droplet_limit: 25,
              floating_ip_limit: 3,
              email: 'sammy@example.com',
              uuid: 'b6fr89dbf6d9156cace5f3c78dc9851d957381ef',
              email_verified: true,
              status: 'active',
              status_message: '',
            },
          })
        }
        break
      case 'droplets':
        if (seg.length === 2) {
          if (method === 'GET') {
            let list = this.droplets()
            const tag = q.get('tag_name')
            const name = q.get('name')
            if (tag) list = list.filter((x) => x.tags.includes(tag))
            if (name) list = list.filter((x) => x.name === name)
            return this.page(
              'droplets',
              list.map((x) => this.dropletJson(x)),
              q,
              path,
            )
          }
          if (method === 'POST') return this.createDroplets(body)
          if (method === 'DELETE') {
            const tag = q.get('tag_name')
            if (!tag) return { status: 400, body: { id: 'bad_request', message: 'tag_name is required' } }
            for (const x of this.droplets({ tag })) this.deleteDroplet(x.id)
            return { status: 204 }
          }
        } else if (seg.length === 3) {
          const droplet = this.dropletMap.get(Number(b))
          if (!droplet) return notFound()
          if (method === 'GET') return ok({ droplet: this.dropletJson(droplet) })
          if (method === 'DELETE') {
            this.deleteDroplet(droplet.id)
            return { status: 204 }
          }
        }
        break
      case 'actions':
        if (method === 'GET' && seg.length === 3) {
          const id = Number(b)
          if (!Number.isInteger(id) || id < 36804636 || id >= this.nextActionId) return notFound()
          return ok({
            action: {
              id,
              status: 'completed',
              type: 'create',
              started_at: new Date(this.now()).toISOString(),
              completed_at: new Date(this.now()).toISOString(),
              resource_id: null,
              resource_type: 'droplet',
              region_slug: this.options.region,
            },
          })
        }
        break
      case 'images':
        if (method === 'GET' && seg.length === 2) {
          let list = [...this.imageMap.values()]
          if (q.get('private') === 'true') list = list.filter((i) => !i.public)
          const type = q.get('type')
          if (type === 'distribution') list = list.filter((i) => i.type === 'base')
          else if (type === 'application') list = []
          return this.page(
            'images',
            list.map((i) => this.imageJson(i)),
            q,
            path,
          )
        }
        break
      case 'snapshots':
        if (method === 'GET' && seg.length === 2) {
          const type = q.get('resource_type')
          const list = [...this.imageMap.values()].filter((i) => i.type === 'snapshot' && type !== 'volume')
          return this.page(
            'snapshots',
            list.map((i) => ({
              id: String(i.id),
              name: i.name,
              created_at: new Date(i.createdAt).toISOString(),
              regions: i.regions,
              resource_id: '3164400',
              resource_type: 'droplet',
              min_disk_size: 25,
              size_gigabytes: 2.34,
              tags: [],
            })),
            q,
            path,
          )
        }
        break
      case 'tags':
        return this.routeTags(method, seg, body, q, path)
      case 'load_balancers':
        if (seg.length === 2 && method === 'GET') {
          return this.page(
            'load_balancers',
            [...this.lbMap.values()].map((lb) => this.lbJson(lb)),
            q,
            path,
          )
        }
        if (seg.length >= 3) {
          const lb = this.lbMap.get(b!)
          if (!lb) return notFound()
          if (seg.length === 3 && method === 'GET') return ok({ load_balancer: this.lbJson(lb) })
          if (seg.length === 3 && method === 'DELETE') {
            this.lbMap.delete(lb.id)
            return { status: 204 }
          }
          if (c === 'droplets' && seg.length === 4) {
            const ids = (body as { droplet_ids?: unknown })?.droplet_ids
            if (!Array.isArray(ids) || !ids.every((x) => Number.isInteger(x))) {
              return unprocessable('droplet_ids must be a list of droplet ids')
            }
            if (lb.tag) return unprocessable('a load balancer with a tag takes its droplets from the tag')
            if (method === 'POST') {
              for (const id of ids as number[]) {
                if (!this.dropletMap.has(id)) return unprocessable(`droplet ${id} does not exist`)
              }
              for (const id of ids as number[]) if (!lb.dropletIds.includes(id)) lb.dropletIds.push(id)
              return { status: 204 }
            }
            if (method === 'DELETE') {
              lb.dropletIds = lb.dropletIds.filter((id) => !(ids as number[]).includes(id))
              return { status: 204 }
            }
          }
        }
        break
      case 'monitoring':
        if (method === 'GET' && b === 'metrics' && c === 'droplet' && d && seg.length === 5) {
          return this.metrics(d, q)
        }
        break
    }
    return notFound()
  }

  private routeTags(
    method: string,
    seg: string[],
    body: unknown,
    q: URLSearchParams,
    path: string,
  ): { status: number; body?: unknown } {
    if (seg.length === 2) {
      if (method === 'GET')
        return this.page(
          'tags',
          [...this.tagSet].map((t) => this.tagJson(t)),
          q,
          path,
        )
      if (method === 'POST') {
        const name = (body as { name?: unknown })?.name
        if (typeof name !== 'string' || !/^[a-zA-Z0-9_\-:]+$/.test(name) || name.length > 255) {
          return { status: 400, body: { error: 'invalid tag name', root_causes: ['name'] } }
        }
        this.tagSet.add(name)
        return { status: 201, body: { tag: this.tagJson(name) } }
      }
    }
    const name = seg[2]!
    if (seg.length === 3) {
      if (!this.tagSet.has(name)) return notFound()
      if (method === 'GET') return ok({ tag: this.tagJson(name) })
      if (method === 'DELETE') {
        this.tagSet.delete(name)
        for (const droplet of this.dropletMap.values()) droplet.tags = droplet.tags.filter((t) => t !== name)
        return { status: 204 }
      }
    }
    if (seg.length === 4 && seg[3] === 'resources') {
      if (!this.tagSet.has(name)) return notFound()
      const resources = (body as { resources?: Array<{ resource_id?: unknown; resource_type?: unknown }> })
        ?.resources
      if (!Array.isArray(resources)) return unprocessable('resources must be a list')
      for (const r of resources) {
        if (r.resource_type !== 'droplet') continue
        const droplet = this.dropletMap.get(Number(r.resource_id))
        if (!droplet) return notFound()
        if (method === 'POST' && !droplet.tags.includes(name)) droplet.tags.push(name)
        if (method === 'DELETE') droplet.tags = droplet.tags.filter((t) => t !== name)
      }
      if (method === 'POST' || method === 'DELETE') return { status: 204 }
    }
    return notFound()
  }

  private createDroplets(body: unknown): { status: number; body?: unknown } {
    const req = (body ?? {}) as Record<string, unknown>
    const names =
      typeof req.name === 'string' ? [req.name] : Array.isArray(req.names) ? (req.names as string[]) : []
    if (names.length === 0) return unprocessable('name is required')
    if (typeof req.size !== 'string' || !SIZES[req.size])
      return unprocessable(`size ${JSON.stringify(req.size)} is invalid`)
    if (typeof req.region !== 'string') return unprocessable('region is required')
    const image = req.image
    if (typeof image !== 'number' && typeof image !== 'string') return unprocessable('image is required')
    // A number is any image's id; a string is a public image's slug (a private image has none).
    const found = this.findImage(image)
    if (!found) return unprocessable(`You specified an invalid image for Droplet creation.`)
    if (!found.regions.includes(req.region))
      return unprocessable(`image ${JSON.stringify(image)} is not available in ${req.region}`)
    if (typeof req.user_data === 'string' && Buffer.byteLength(req.user_data) > USER_DATA_MAX)
      return unprocessable('user_data may not exceed 64 KiB')
    if (req.ipv6 === true && req.public_networking === false)
      return unprocessable('ipv6 must be false when public_networking is false')
    const now = this.now()
    const created = names.map((name) => {
      let never = this.neverActiveNames.has(name)
      if (!never && this.neverActiveCount > 0) {
        this.neverActiveCount--
        never = true
      }
      const tags = Array.isArray(req.tags) ? (req.tags as string[]) : []
      for (const t of tags) this.tagSet.add(t)
      return this.newDroplet({
        name,
        tags: [...tags],
        region: req.region as string,
        size: req.size as string,
        imageId: image as number | string,
        vpcUuid: typeof req.vpc_uuid === 'string' ? req.vpc_uuid : '760e09ef-dc84-11e8-981e-3cfdfeaae000',
        sshKeys: Array.isArray(req.ssh_keys) ? (req.ssh_keys as Array<number | string>) : [],
        monitoring: req.monitoring === true,
        ipv6: req.ipv6 === true,
        backups: req.backups === true,
        userData: typeof req.user_data === 'string' ? req.user_data : undefined,
        createdAt: now,
        activeAt: never ? undefined : now + this.options.bootDelay,
      })
    })
    const links = {
      actions: created.map(() => {
        const id = this.nextActionId++
        return { id, rel: 'create', href: `${this.baseUrl}/v2/actions/${id}` }
      }),
    }
    if (typeof req.name === 'string')
      return { status: 202, body: { droplet: this.dropletJson(created[0]!), links } }
    return { status: 202, body: { droplets: created.map((x) => this.dropletJson(x)), links } }
  }

  /**
   * The image a create names: an id (private or public), or a public image's slug. Stored by
   * what the request said (`imageId`), as the droplet's `image` object shows it.
   */
  private findImage(
    ref: number | string,
  ): { id: number; slug: string | null; regions: string[]; json: Record<string, unknown> } | undefined {
    const own = [...this.imageMap.values()].find((i) =>
      typeof ref === 'number' ? i.id === ref : i.public && i.slug === ref,
    )
    if (own) return { id: own.id, slug: own.slug, regions: own.regions, json: this.imageJson(own) }
    const pub = PUBLIC_IMAGES.find((i) => (typeof ref === 'number' ? i.id === ref : i.slug === ref))
    if (!pub) return undefined
    return {
      id: pub.id,
      slug: pub.slug,
      regions: REGIONS,
      json: {
        id: pub.id,
        name: pub.name,
        distribution: pub.distribution,
        slug: pub.slug,
        public: true,
        regions: REGIONS,
        created_at: '2024-04-24T00:00:00Z',
        type: pub.type,
        min_disk_size: 15,
        size_gigabytes: 2.34,
        status: 'available',
      },
    }
  }

  private newDroplet(fields: Omit<EmDroplet, 'id' | 'privateIp' | 'publicIp'>): EmDroplet {
    const n = ++this.hostCount
    const droplet: EmDroplet = {
      ...fields,
      id: this.nextDropletId++,
      privateIp: `127.${this.octet}.${Math.floor(n / 250)}.${(n % 250) + 2}`,
      publicIp: `127.${this.octet}.${100 + Math.floor(n / 250)}.${(n % 250) + 2}`,
    }
    this.dropletMap.set(droplet.id, droplet)
    return droplet
  }

  private deleteDroplet(id: number): void {
    const droplet = this.dropletMap.get(id)
    if (!droplet) return
    this.dropletMap.delete(id)
    droplet.deletedAt = this.now()
    this.deletedList.push(droplet)
    // DigitalOcean takes a deleted droplet out of its load balancers.
    for (const lb of this.lbMap.values()) lb.dropletIds = lb.dropletIds.filter((x) => x !== id)
    void this.syncAgents()
  }

  private page(
    key: string,
    items: unknown[],
    q: URLSearchParams,
    path: string,
  ): { status: number; body: unknown } {
    const perPage = Math.min(200, Math.max(1, Number(q.get('per_page') ?? 20) || 20))
    const page = Math.max(1, Number(q.get('page') ?? 1) || 1)
    const last = Math.max(1, Math.ceil(items.length / perPage))
    const slice = items.slice((page - 1) * perPage, page * perPage)
    const link = (p: number) => {
      const u = new URL(this.baseUrl + path)
      for (const [k, v] of q) if (k !== 'page') u.searchParams.set(k, v)
      u.searchParams.set('page', String(p))
      return u.toString()
    }
    const pages: Record<string, string> = {}
    if (page > 1) {
      pages.first = link(1)
      pages.prev = link(Math.min(page - 1, last))
    }
    if (page < last) {
      pages.last = link(last)
      pages.next = link(page + 1)
    }
    return ok({ [key]: slice, links: { pages }, meta: { total: items.length } })
  }

  private metrics(name: string, q: URLSearchParams): { status: number; body?: unknown } {
    const hostId = Number(q.get('host_id'))
    const start = Number(q.get('start'))
    const end = Number(q.get('end'))
    if (!Number.isFinite(start) || !Number.isFinite(end) || end < start) {
      return {
        status: 400,
        body: { id: 'bad_request', message: 'start and end must be unix seconds, start ≤ end' },
      }
    }
    const empty = ok({ status: 'success', data: { resultType: 'matrix', result: [] } })
    const droplet = this.dropletMap.get(hostId)
    if (!droplet) return empty
    const times: number[] = []
    // One point a minute, as the API's 4-minute windows show, aligned to whole minutes.
    for (let t = Math.ceil(start / 60) * 60; t <= end; t += 60) times.push(t)
    if (times.length === 0) times.push(end)
    const valuesOf = (metric: EmulatedMetric): number[] | undefined => {
      const v = this.metricMap.get(`${hostId}/${metric}`)
      if (v === undefined) return undefined
      if (typeof v === 'number') return times.map(() => v)
      // A series: its last `times.length` points, newest last.
      return times.map((_, i) => v[Math.max(0, v.length - times.length + i)] ?? v[v.length - 1]!)
    }
    const labels = { host_id: String(hostId) }
    const series = (metric: Record<string, string>, values: number[]) => ({
      metric,
      values: times.map((t, i) => [t, formatValue(values[i]!)]),
    })
    switch (name) {
      case 'load_1':
      case 'load_5':
      case 'load_15':
      case 'memory_free':
      case 'memory_available':
      case 'memory_total':
      case 'memory_cached': {
        const v = valuesOf(name)
        if (!v) return empty
        return ok({ status: 'success', data: { resultType: 'matrix', result: [series(labels, v)] } })
      }
      case 'bandwidth': {
        const iface = q.get('interface')
        const dir = q.get('direction')
        if ((iface !== 'public' && iface !== 'private') || (dir !== 'inbound' && dir !== 'outbound')) {
          return { status: 400, body: { id: 'bad_request', message: 'interface and direction are required' } }
        }
        const v = valuesOf(`bandwidth_${iface}_${dir}` as EmulatedMetric)
        if (!v) return empty
        const metric = { ...labels, interface: iface, direction: dir }
        return ok({ status: 'success', data: { resultType: 'matrix', result: [series(metric, v)] } })
      }
      case 'cpu': {
        // Cumulative CPU seconds per mode (as sonar_cpu), consistent with the busy percentage set.
        const v = valuesOf('cpu')
        if (!v) return empty
        const vcpus = SIZES[droplet.size]?.vcpus ?? 1
        let busy = 1000
        let idle = 100000
        const user: number[] = []
        const idles: number[] = []
        v.forEach((pct, i) => {
          if (i > 0) {
            busy += (60 * vcpus * pct) / 100
            idle += 60 * vcpus * (1 - pct / 100)
          }
          user.push(busy)
          idles.push(idle)
        })
        return ok({
          status: 'success',
          data: {
            resultType: 'matrix',
            result: [series({ ...labels, mode: 'idle' }, idles), series({ ...labels, mode: 'user' }, user)],
          },
        })
      }
      case 'filesystem_free':
      case 'filesystem_size':
        return empty
    }
    return notFound()
  }

  // ─── JSON shapes (components.schemas in the definition) ──────────────────

  private dropletJson(x: EmDroplet): Record<string, unknown> {
    const size = SIZES[x.size] ?? SIZES['s-1vcpu-1gb']!
    const active = this.dropletStatus(x) === 'active'
    const image = this.findImage(x.imageId)?.json
    const features = [
      ...(x.backups ? ['backups'] : []),
      ...(x.ipv6 ? ['ipv6'] : []),
      ...(x.monitoring ? ['monitoring'] : []),
      'private_networking',
    ]
    const created = new Date(x.createdAt)
    return {
      id: x.id,
      name: x.name,
      memory: size.memory,
      vcpus: size.vcpus,
      disk: size.disk,
      locked: false,
      status: active ? 'active' : 'new',
      kernel: null,
      created_at: new Date(x.createdAt).toISOString(),
      features,
      backup_ids: [],
      next_backup_window: x.backups
        ? {
            start: new Date(
              Date.UTC(created.getUTCFullYear(), created.getUTCMonth(), created.getUTCDate() + 1),
            ).toISOString(),
            end: new Date(
              Date.UTC(created.getUTCFullYear(), created.getUTCMonth(), created.getUTCDate() + 1, 23),
            ).toISOString(),
          }
        : null,
      snapshot_ids: [],
      image: image ?? {
        id: 6918990,
        name: '24.04 (LTS) x64',
        distribution: 'Ubuntu',
        slug: typeof x.imageId === 'string' ? x.imageId : 'ubuntu-24-04-x64',
        public: true,
        regions: [x.region],
        created_at: '2024-04-24T00:00:00Z',
        type: 'base',
        min_disk_size: 15,
        size_gigabytes: 2.34,
        status: 'available',
      },
      volume_ids: [],
      size: {
        slug: x.size,
        memory: size.memory,
        vcpus: size.vcpus,
        disk: size.disk,
        transfer: 1,
        price_monthly: size.price,
        price_hourly: Math.round((size.price / 730) * 100000) / 100000,
        regions: [x.region],
        available: true,
        description: 'Basic',
      },
      size_slug: x.size,
      networks: active
        ? {
            v4: [
              { ip_address: x.privateIp, netmask: '255.255.0.0', gateway: '', type: 'private' },
              { ip_address: x.publicIp, netmask: '255.255.240.0', gateway: '127.0.0.1', type: 'public' },
            ],
            v6: x.ipv6
              ? [
                  {
                    ip_address: `2604:a880:400:d1::${x.id.toString(16)}`,
                    netmask: 64,
                    gateway: '2604:a880:400:d1::1',
                    type: 'public',
                  },
                ]
              : [],
          }
        : { v4: [], v6: [] },
      region: {
        name: 'Emulated Region',
        slug: x.region,
        features: ['private_networking', 'backups', 'ipv6', 'metadata'],
        available: true,
        sizes: Object.keys(SIZES),
      },
      tags: [...x.tags],
      vpc_uuid: x.vpcUuid,
    }
  }

  private imageJson(i: EmImage): Record<string, unknown> {
    return {
      id: i.id,
      name: i.name,
      type: i.type,
      distribution: 'Ubuntu',
      slug: i.slug,
      public: i.public,
      regions: i.regions,
      created_at: new Date(i.createdAt).toISOString(),
      min_disk_size: 25,
      size_gigabytes: 2.34,
      status: 'available',
    }
  }

  private lbJson(lb: EmLoadBalancer): Record<string, unknown> {
    return {
      id: lb.id,
      name: lb.name,
      ip: '104.131.186.241',
      size_unit: 1,
      status: 'active',
      created_at: '2024-01-01T00:00:00Z',
      forwarding_rules: [
        { entry_protocol: 'http', entry_port: 80, target_protocol: 'http', target_port: 80 },
      ],
      health_check: { protocol: 'http', port: 80, path: '/', check_interval_seconds: 10 },
      region: {
        name: 'Emulated Region',
        slug: lb.region,
        features: ['private_networking'],
        available: true,
        sizes: Object.keys(SIZES),
      },
      droplet_ids: this.members(lb),
      ...(lb.tag ? { tag: lb.tag } : {}),
    }
  }

  private tagJson(name: string): Record<string, unknown> {
    const count = this.droplets({ tag: name }).length
    return { name, resources: { count, droplets: { count } } }
  }

  // ─── do-agent endpoints ──────────────────────────────────────────────────

  /** Starts an agent for each active droplet, stops those of deleted or downed ones. */
  private async syncAgents(): Promise<void> {
    if (!this.options.agents || !this.server) return
    for (const [id, server] of this.agentServers) {
      const d = this.dropletMap.get(id)
      if (!d || this.downAgents.has(id)) {
        this.agentServers.delete(id)
        await closeServer(server)
      }
    }
    for (const d of this.dropletMap.values()) {
      if (this.agentServers.has(d.id) || this.downAgents.has(d.id) || this.dropletStatus(d) !== 'active')
        continue
      const server = createServer((req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' })
        res.end(this.exposition(d.id))
      })
      this.agentServers.set(d.id, server)
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject)
          server.listen(this.agentPortChosen ?? this.options.agentPort ?? 0, d.privateIp, () => resolve())
        })
        this.agentPortChosen ??= (server.address() as AddressInfo).port
      } catch {
        this.agentServers.delete(d.id)
      }
    }
  }

  /** The droplet's metrics as do-agent's local endpoint shows them (node_exporter names). */
  exposition(dropletId: number): string {
    const get = (m: EmulatedMetric): number | undefined => {
      const v = this.metricMap.get(`${dropletId}/${m}`)
      if (v === undefined) return undefined
      return typeof v === 'number' ? v : v[v.length - 1]
    }
    const lines: string[] = []
    const gauge = (name: string, help: string, value: number | undefined) => {
      if (value === undefined) return
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${formatValue(value)}`)
    }
    gauge('node_load1', '1m load average.', get('load_1'))
    gauge('node_load5', '5m load average.', get('load_5'))
    gauge('node_load15', '15m load average.', get('load_15'))
    gauge('node_memory_Cached_bytes', 'Memory information field Cached_bytes.', get('memory_cached'))
    gauge(
      'node_memory_MemAvailable_bytes',
      'Memory information field MemAvailable_bytes.',
      get('memory_available'),
    )
    gauge('node_memory_MemFree_bytes', 'Memory information field MemFree_bytes.', get('memory_free'))
    gauge('node_memory_MemTotal_bytes', 'Memory information field MemTotal_bytes.', get('memory_total'))
    lines.push(
      "# HELP sonar_build_info A metric with a constant '1' value labeled by version from which the agent was built.",
      '# TYPE sonar_build_info gauge',
      'sonar_build_info{revision="0dfcad2",version="3.18.14"} 1',
    )
    return `${lines.join('\n')}\n`
  }
}

function ok(body: unknown): { status: number; body: unknown } {
  return { status: 200, body }
}

function notFound(): { status: number; body: unknown } {
  return {
    status: 404,
    body: { id: 'not_found', message: 'The resource you were accessing could not be found.' },
  }
}

function unprocessable(message: string): { status: number; body: unknown } {
  return { status: 422, body: { id: 'unprocessable_entity', message } }
}

function errorBody(status: number): { id: string; message: string } {
  if (status === 429) return { id: 'too_many_requests', message: 'API Rate limit exceeded.' }
  if (status >= 500) return { id: 'server_error', message: 'Unexpected server-side error' }
  return { id: 'error', message: `emulated ${status}` }
}

function formatValue(v: number): string {
  return String(v)
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections?.()
  })
}
