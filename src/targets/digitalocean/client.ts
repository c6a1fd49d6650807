/**
 * A thin typed client for the parts of the DigitalOcean API v2 that Tide uses
 * (../shared/apis/digitalocean-openapi.yaml): droplets, images and snapshots, tags, load
 * balancers and the Monitoring API. The official `@digitalocean/dots` SDK is not used: it is
 * broken on Node 20 with current dependencies and weighs 71 MB (issue 3, item 7).
 *
 * Every call goes through `request`, which
 * - times out (`timeout`, per attempt) and bounds the response size;
 * - waits before sending when the last response said `ratelimit-remaining: 0`, until
 *   `ratelimit-reset` (capped by `maxRateWait`), so Tide does not spend requests on 429s;
 * - retries 429 (after `Retry-After` when given, else until `ratelimit-reset`, else back-off)
 *   and 5xx and network failures with exponential back-off and jitter, `retries` times;
 * - never repeats a request that may have created something: a droplet create that failed in a
 *   way that may have reached the API (5xx, timeout, reset connection) looks for the droplet by
 *   the create's own marker tag before trying again and returns the droplet it finds
 *   (`createDroplet`). DigitalOcean allows two droplets with one name, so without this a retried
 *   create would make a second one, and a look-up by name could take a racing process's droplet.
 *
 * Build it with `createDigitalOceanClient({ token, apiUrl, timeout, logger })`.
 */
import { randomBytes } from 'node:crypto'
import { setTimeout as sleepTimer } from 'node:timers/promises'
import { TargetError } from '../../core/errors.js'
import { networkFailure } from '../../core/network.js'

/** The public API; `DIGITALOCEAN_API_URL` points Tide elsewhere (the emulator). */
export const DEFAULT_API_URL = 'https://api.digitalocean.com'
/** Largest page the API serves (parameters.per_page.maximum). */
export const MAX_PER_PAGE = 200
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024
/**
 * Prefix of the tag each droplet create puts on its droplet so that a retried create finds its
 * own droplet and nobody else's (`createDroplet`). Deleted once the create is done.
 */
export const CREATE_MARKER = 'tide-create-'

// ─── API shapes (the fields Tide reads; responses carry more, kept as they are) ─────────────

export interface NetworkV4 {
  ip_address: string
  netmask?: string
  gateway?: string
  type: 'public' | 'private'
}

export interface Droplet {
  id: number
  name: string
  memory: number
  vcpus: number
  disk: number
  locked: boolean
  status: 'new' | 'active' | 'off' | 'archive'
  created_at: string
  features: string[]
  image: { id?: number; name?: string; slug?: string | null; [key: string]: unknown }
  size: { slug: string; [key: string]: unknown }
  size_slug: string
  networks: { v4?: NetworkV4[]; v6?: Array<{ ip_address: string; type: string }> }
  region: { slug: string; name?: string; [key: string]: unknown }
  tags: string[]
  vpc_uuid?: string
  [key: string]: unknown
}

export interface DropletCreateRequest {
  name: string
  region: string
  size: string
  /** Image id (a snapshot) or slug. */
  image: number | string
  ssh_keys?: Array<number | string>
  backups?: boolean
  ipv6?: boolean
  monitoring?: boolean
  tags?: string[]
  user_data?: string
  vpc_uuid?: string
  with_droplet_agent?: boolean
}

export interface Image {
  id: number
  name: string
  type?: string
  slug?: string | null
  public?: boolean
  regions?: string[]
  created_at?: string
  status?: string
  [key: string]: unknown
}

export interface Snapshot {
  id: string
  name: string
  created_at: string
  regions: string[]
  resource_id: string
  resource_type: 'droplet' | 'volume'
  min_disk_size: number
  size_gigabytes: number
  tags: string[] | null
}

export interface LoadBalancer {
  id: string
  name: string
  status?: string
  droplet_ids?: number[]
  /** Set for a tag-based load balancer: its members are the droplets with this tag. */
  tag?: string
  region?: { slug: string; [key: string]: unknown }
  [key: string]: unknown
}

export interface Tag {
  name: string
  resources?: { count?: number; droplets?: { count?: number }; [key: string]: unknown }
}

export interface TagResource {
  resource_id: string
  resource_type: 'droplet' | 'image' | 'volume' | 'volume_snapshot'
}

/** A Monitoring API answer: a Prometheus range-query matrix. */
export interface MetricsResponse {
  status: 'success' | 'error'
  data: {
    resultType: 'matrix'
    result: Array<{ metric: Record<string, string>; values: Array<[number, string]> }>
  }
}

/** The droplet metrics of the Monitoring API (paths /v2/monitoring/metrics/droplet/<name>). */
export type DropletMetricName =
  | 'bandwidth'
  | 'cpu'
  | 'filesystem_free'
  | 'filesystem_size'
  | 'load_1'
  | 'load_5'
  | 'load_15'
  | 'memory_cached'
  | 'memory_free'
  | 'memory_total'
  | 'memory_available'

export interface MetricQuery {
  /** The droplet id. */
  hostId: number | string
  /** Unix seconds. */
  start: number
  end: number
  /** `bandwidth` only. */
  interface?: 'public' | 'private'
  direction?: 'inbound' | 'outbound'
}

// ─── Errors ──────────────────────────────────────────────────────────────────

/** The API answered with an error status (after the retries, for 429 and 5xx). */
export class DigitalOceanApiError extends TargetError {
  readonly httpStatus: number
  /** The body's `id` ("not_found", "unauthorized", "too_many_requests"). */
  readonly apiId?: string
  constructor(method: string, path: string, httpStatus: number, apiId?: string, apiMessage?: string) {
    super(
      `DigitalOcean API ${method} ${path} answered ${httpStatus}${apiId ? ` ${apiId}` : ''}${apiMessage ? `: ${apiMessage}` : ''}`,
      { code: 'E_DO_API' },
    )
    this.httpStatus = httpStatus
    this.apiId = apiId
  }
}

/** No answer: network failure or timeout (after the retries). */
export class DigitalOceanUnreachableError extends TargetError {
  constructor(method: string, url: string, cause: string, error?: unknown) {
    super(`DigitalOcean API ${method} ${url}: ${cause}`, { code: 'E_DO_UNREACHABLE', cause: error })
  }
}

// ─── Client ──────────────────────────────────────────────────────────────────

export interface ClientLogger {
  debug?(obj: object, msg: string): void
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
}

export interface DigitalOceanClientOptions {
  /** A read/write API token. */
  token: string
  /** @default https://api.digitalocean.com */
  apiUrl?: string
  /** Per attempt, ms. @default 30000 */
  timeout?: number
  logger?: ClientLogger
  /** Attempts after the first for 429, 5xx and network failures. @default 5 */
  retries?: number
  /** First back-off, ms; doubles per attempt, with jitter. @default 500 */
  backoff?: number
  /** Longest single wait for a rate limit (Retry-After or ratelimit-reset), ms. @default 60000 */
  maxRateWait?: number
  /** For tests: how to wait. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>
  /** For tests: epoch ms. */
  now?: () => number
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>
  body?: unknown
  signal?: AbortSignal
  /**
   * May the request be sent again after a failure that may have reached the API (5xx, timeout,
   * reset connection)? True for GET, PUT, DELETE and POSTs that are idempotent (attach to a load
   * balancer, tag); false makes such a failure final. 429 is always retried: nothing was done.
   */
  repeatable?: boolean
  /** Called before a repeat; returning a value ends the request with it (idempotent create). */
  beforeRepeat?: () => Promise<unknown>
}

export interface RateLimitState {
  limit?: number
  remaining?: number
  /** Epoch seconds. */
  reset?: number
}

export interface PageOptions {
  signal?: AbortSignal
  /** @default 200 */
  perPage?: number
}

export class DigitalOceanClient {
  readonly apiUrl: string
  private readonly token: string
  private readonly timeout: number
  private readonly retries: number
  private readonly backoff: number
  private readonly maxRateWait: number
  private readonly logger?: ClientLogger
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>
  private readonly now: () => number
  /** What the last response's ratelimit-* headers said. */
  readonly rateLimit: RateLimitState = {}

  constructor(options: DigitalOceanClientOptions) {
    if (!options.token) throw new TypeError('DigitalOcean client: token is empty')
    this.token = options.token
    this.apiUrl = (options.apiUrl ?? DEFAULT_API_URL).replace(/\/+$/, '')
    this.timeout = options.timeout ?? 30_000
    this.retries = options.retries ?? 5
    this.backoff = options.backoff ?? 500
    this.maxRateWait = options.maxRateWait ?? 60_000
    this.logger = options.logger
    this.sleep = options.sleep ?? ((ms, signal) => sleepTimer(ms, undefined, { signal }))
    this.now = options.now ?? Date.now
  }

  /**
   * One API call with the waits and retries described at the top of the file. Resolves to the
   * parsed JSON body (undefined for 204). Throws DigitalOceanApiError or DigitalOceanUnreachableError.
   */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const url = this.url(path, options.query)
    const repeatable = options.repeatable ?? method !== 'POST'
    const started = this.now()
    for (let attempt = 0; ; attempt++) {
      options.signal?.throwIfAborted()
      await this.waitForRateLimit(options.signal)
      const outcome = await this.attempt(method, url, options)
      const last = attempt >= this.retries
      if (outcome.kind === 'ok') {
        this.logger?.debug?.(
          { method, path, status: outcome.status, ms: this.now() - started, attempts: attempt + 1 },
          'DigitalOcean API call',
        )
        return outcome.body as T
      }
      if (outcome.kind === 'status') {
        const { status, body, retryAfter } = outcome
        const error = new DigitalOceanApiError(method, path, status, body?.id, body?.message)
        const retryable = status === 429 || (status >= 500 && repeatable)
        if (!retryable || last) throw error
        let wait: number
        if (status === 429) {
          wait = retryAfter ?? this.untilReset() ?? this.backoffDelay(attempt)
          wait = Math.min(wait, this.maxRateWait)
        } else wait = this.backoffDelay(attempt)
        this.logger?.warn(
          { method, path, status, attempt: attempt + 1, waitMs: wait },
          `DigitalOcean API answered ${status}; retrying in ${wait}ms`,
        )
        await this.sleep(wait, options.signal)
        // That wait was for this limit: do not wait for it again before the next attempt.
        if (status === 429) this.rateLimit.remaining = undefined
      } else {
        if (options.signal?.aborted) throw options.signal.reason
        const error = new DigitalOceanUnreachableError(method, url, outcome.cause, outcome.error)
        if (!repeatable || last) throw error
        const wait = this.backoffDelay(attempt)
        this.logger?.warn(
          { method, path, cause: outcome.cause, attempt: attempt + 1, waitMs: wait },
          `DigitalOcean API unreachable (${outcome.cause}); retrying in ${wait}ms`,
        )
        await this.sleep(wait, options.signal)
      }
      if (options.beforeRepeat) {
        const found = await options.beforeRepeat()
        if (found !== undefined) return found as T
      }
    }
  }

  /** Every item of a paginated list, following `links.pages.next` (every page read). */
  async listAll<T>(
    path: string,
    key: string,
    query: Record<string, string | number | boolean | undefined> = {},
    options: PageOptions = {},
  ): Promise<T[]> {
    const items: T[] = []
    const perPage = options.perPage ?? MAX_PER_PAGE
    let page = 1
    // A bound, so a server that always says "next" cannot loop us forever.
    for (let n = 0; n < 10_000; n++) {
      const body = await this.request<Record<string, unknown>>('GET', path, {
        query: { ...query, page, per_page: perPage },
        signal: options.signal,
      })
      const list = body?.[key]
      if (!Array.isArray(list)) {
        throw new DigitalOceanApiError('GET', path, 200, 'bad_response', `the answer has no "${key}" list`)
      }
      items.push(...(list as T[]))
      const next = (body.links as { pages?: { next?: string } } | undefined)?.pages?.next
      if (!next || list.length === 0) return items
      const nextPage = Number(new URL(next, this.apiUrl).searchParams.get('page'))
      page = Number.isInteger(nextPage) && nextPage > page ? nextPage : page + 1
    }
    return items
  }

  // ─── Droplets ──────────────────────────────────────────────────────────────

  listDroplets(filter: { tagName?: string; name?: string } = {}, options: PageOptions = {}) {
    return this.listAll<Droplet>(
      '/v2/droplets',
      'droplets',
      { tag_name: filter.tagName, name: filter.name },
      options,
    )
  }

  /** The droplet, or undefined when the API says 404. */
  async getDroplet(id: number, signal?: AbortSignal): Promise<Droplet | undefined> {
    try {
      const body = await this.request<{ droplet: Droplet }>('GET', `/v2/droplets/${id}`, { signal })
      return body.droplet
    } catch (err) {
      if (err instanceof DigitalOceanApiError && err.httpStatus === 404) return undefined
      throw err
    }
  }

  /**
   * Creates one droplet and never two, and never takes another's for its own.
   *
   * Each call tags its droplet with a tag of its own, `tide-create-<random>` (CREATE_MARKER).
   * When an attempt fails in a way that may have reached the API (5xx, timeout, reset), the
   * droplets carrying that tag are listed before the next attempt and the one found is returned.
   * Looking up by name alone (DigitalOcean allows two droplets with one name) could adopt a
   * droplet another process created with the same name meanwhile: both would then think they
   * own it and one create's answer would be lost. Once the droplet is known, the marker tag is
   * deleted (best effort: a marker a crash leaves behind is harmless, and the `digitalocean`
   * target removes it when it adopts the clone).
   */
  async createDroplet(
    request: DropletCreateRequest,
    options: { signal?: AbortSignal } = {},
  ): Promise<Droplet> {
    const signal = options.signal
    const marker = `${CREATE_MARKER}${randomBytes(8).toString('hex')}`
    const body = await this.request<{ droplet: Droplet }>('POST', '/v2/droplets', {
      body: { ...request, tags: [...(request.tags ?? []), marker] },
      signal,
      repeatable: true,
      beforeRepeat: async () => {
        const found = (await this.listDroplets({ tagName: marker }, { signal })).find(
          (d) => d.name === request.name,
        )
        if (found) {
          this.logger?.info(
            { droplet: found.id, name: request.name },
            'the failed create had reached DigitalOcean: using the droplet it made',
          )
          return { droplet: found }
        }
        return undefined
      },
    })
    await this.deleteTag(marker, signal).catch((err: unknown) => {
      this.logger?.warn(
        { droplet: body.droplet.id, tag: marker, err },
        `could not delete the create marker tag ${marker}; it is removed when the clone is adopted`,
      )
    })
    return { ...body.droplet, tags: body.droplet.tags.filter((t) => t !== marker) }
  }

  /** Deletes a droplet; one that is already gone (404) counts as deleted. */
  async deleteDroplet(id: number, signal?: AbortSignal): Promise<void> {
    try {
      await this.request('DELETE', `/v2/droplets/${id}`, { signal })
    } catch (err) {
      if (err instanceof DigitalOceanApiError && err.httpStatus === 404) return
      throw err
    }
  }

  // ─── Images and snapshots ──────────────────────────────────────────────────

  /** `private: true` lists the account's own images (snapshots, backups, custom images). */
  listImages(
    filter: { private?: boolean; type?: 'application' | 'distribution' } = {},
    options: PageOptions = {},
  ) {
    return this.listAll<Image>(
      '/v2/images',
      'images',
      { private: filter.private, type: filter.type },
      options,
    )
  }

  listSnapshots(filter: { resourceType?: 'droplet' | 'volume' } = {}, options: PageOptions = {}) {
    return this.listAll<Snapshot>(
      '/v2/snapshots',
      'snapshots',
      { resource_type: filter.resourceType },
      options,
    )
  }

  // ─── Load balancers ────────────────────────────────────────────────────────

  listLoadBalancers(options: PageOptions = {}) {
    return this.listAll<LoadBalancer>('/v2/load_balancers', 'load_balancers', {}, options)
  }

  async getLoadBalancer(id: string, signal?: AbortSignal): Promise<LoadBalancer | undefined> {
    try {
      const body = await this.request<{ load_balancer: LoadBalancer }>('GET', `/v2/load_balancers/${id}`, {
        signal,
      })
      return body.load_balancer
    } catch (err) {
      if (err instanceof DigitalOceanApiError && err.httpStatus === 404) return undefined
      throw err
    }
  }

  /** Adding a droplet that is already a member changes nothing, so this may be repeated. */
  async addDropletsToLoadBalancer(id: string, dropletIds: number[], signal?: AbortSignal): Promise<void> {
    await this.request('POST', `/v2/load_balancers/${id}/droplets`, {
      body: { droplet_ids: dropletIds },
      signal,
      repeatable: true,
    })
  }

  async removeDropletsFromLoadBalancer(
    id: string,
    dropletIds: number[],
    signal?: AbortSignal,
  ): Promise<void> {
    await this.request('DELETE', `/v2/load_balancers/${id}/droplets`, {
      body: { droplet_ids: dropletIds },
      signal,
    })
  }

  // ─── Tags ──────────────────────────────────────────────────────────────────

  listTags(options: PageOptions = {}) {
    return this.listAll<Tag>('/v2/tags', 'tags', {}, options)
  }

  async getTag(name: string, signal?: AbortSignal): Promise<Tag | undefined> {
    try {
      const body = await this.request<{ tag: Tag }>('GET', `/v2/tags/${encodeURIComponent(name)}`, { signal })
      return body.tag
    } catch (err) {
      if (err instanceof DigitalOceanApiError && err.httpStatus === 404) return undefined
      throw err
    }
  }

  /** Creating a tag that exists is not an error. */
  async createTag(name: string, signal?: AbortSignal): Promise<Tag> {
    const body = await this.request<{ tag: Tag }>('POST', '/v2/tags', {
      body: { name },
      signal,
      repeatable: true,
    })
    return body.tag
  }

  /** Deletes the tag everywhere (it is untagged from every resource); a missing tag is not an error. */
  async deleteTag(name: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.request('DELETE', `/v2/tags/${encodeURIComponent(name)}`, { signal })
    } catch (err) {
      if (err instanceof DigitalOceanApiError && err.httpStatus === 404) return
      throw err
    }
  }

  async tagResources(name: string, resources: TagResource[], signal?: AbortSignal): Promise<void> {
    await this.request('POST', `/v2/tags/${encodeURIComponent(name)}/resources`, {
      body: { resources },
      signal,
      repeatable: true,
    })
  }

  async untagResources(name: string, resources: TagResource[], signal?: AbortSignal): Promise<void> {
    await this.request('DELETE', `/v2/tags/${encodeURIComponent(name)}/resources`, {
      body: { resources },
      signal,
    })
  }

  // ─── Monitoring ────────────────────────────────────────────────────────────

  getDropletMetric(metric: DropletMetricName, query: MetricQuery, signal?: AbortSignal) {
    return this.request<MetricsResponse>('GET', `/v2/monitoring/metrics/droplet/${metric}`, {
      query: {
        host_id: String(query.hostId),
        interface: query.interface,
        direction: query.direction,
        start: String(Math.floor(query.start)),
        end: String(Math.floor(query.end)),
      },
      signal,
    })
  }

  // ─── Account ───────────────────────────────────────────────────────────────

  /** Checks the token: resolves to the account, or throws E_DO_API 401. */
  getAccount(signal?: AbortSignal) {
    return this.request<{ account: { email?: string; uuid: string; status: string; droplet_limit: number } }>(
      'GET',
      '/v2/account',
      { signal },
    )
  }

  // ─── Internals ─────────────────────────────────────────────────────────────

  private url(path: string, query: RequestOptions['query']): string {
    const url = new URL(this.apiUrl + path)
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v))
    return url.toString()
  }

  /** ms until `ratelimit-reset` when the last answer left no requests, else undefined. */
  private untilReset(): number | undefined {
    const { remaining, reset } = this.rateLimit
    if (remaining !== 0 || reset === undefined) return undefined
    return Math.max(0, reset * 1000 - this.now()) + 100
  }

  private async waitForRateLimit(signal?: AbortSignal): Promise<void> {
    const wait = this.untilReset()
    if (wait === undefined) return
    const capped = Math.min(wait, this.maxRateWait)
    this.logger?.warn(
      { waitMs: capped, reset: this.rateLimit.reset },
      `DigitalOcean rate limit reached (ratelimit-remaining 0); waiting ${capped}ms`,
    )
    await this.sleep(capped, signal)
    // The next answer tells the new state; until then, assume one request is free.
    this.rateLimit.remaining = undefined
  }

  private backoffDelay(attempt: number): number {
    const base = this.backoff * 2 ** attempt
    return Math.round(base / 2 + Math.random() * (base / 2))
  }

  private noteRateLimit(headers: Headers): void {
    const read = (name: string) => {
      const value = headers.get(name)
      if (value === null || value.trim() === '') return undefined
      const n = Number(value)
      return Number.isFinite(n) ? n : undefined
    }
    const limit = read('ratelimit-limit')
    const remaining = read('ratelimit-remaining')
    const reset = read('ratelimit-reset')
    if (limit !== undefined) this.rateLimit.limit = limit
    if (remaining !== undefined) this.rateLimit.remaining = remaining
    if (reset !== undefined) this.rateLimit.reset = reset
  }

  private async attempt(
    method: string,
    url: string,
    options: RequestOptions,
  ): Promise<
    | { kind: 'ok'; status: number; body: unknown }
    | { kind: 'status'; status: number; body?: { id?: string; message?: string }; retryAfter?: number }
    | { kind: 'network'; cause: string; error?: unknown }
  > {
    const timeout = AbortSignal.timeout(this.timeout)
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.token}`,
      accept: 'application/json',
    }
    if (options.body !== undefined) headers['content-type'] = 'application/json'
    let response: Response
    let text: string
    try {
      response = await fetch(url, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal,
      })
      text = await readBounded(response)
    } catch (err) {
      if (options.signal?.aborted) return { kind: 'network', cause: 'cancelled', error: err }
      if (timeout.aborted) return { kind: 'network', cause: `no answer within ${this.timeout}ms`, error: err }
      return { kind: 'network', cause: describeNetworkError(err), error: err }
    }
    this.noteRateLimit(response.headers)
    let body: unknown
    if (text.length > 0) {
      try {
        body = JSON.parse(text)
      } catch {
        if (response.ok)
          return { kind: 'status', status: 502, body: { id: 'bad_response', message: 'not JSON' } }
      }
    }
    if (response.ok) return { kind: 'ok', status: response.status, body }
    const retryAfterHeader = response.headers.get('retry-after')
    const retryAfter =
      retryAfterHeader !== null && /^\d+(\.\d+)?$/.test(retryAfterHeader.trim())
        ? Number(retryAfterHeader) * 1000
        : undefined
    const errorBody =
      body && typeof body === 'object' ? (body as { id?: string; message?: string }) : undefined
    return { kind: 'status', status: response.status, body: errorBody, retryAfter }
  }
}

async function readBounded(response: Response): Promise<string> {
  if (!response.body) return ''
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.length
    if (size > MAX_RESPONSE_BYTES) throw new Error(`response larger than ${MAX_RESPONSE_BYTES} bytes`)
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function describeNetworkError(err: unknown): string {
  const cause = (err as { cause?: { message?: string } })?.cause
  return networkFailure(err) ?? cause?.message ?? (err instanceof Error ? err.message : String(err))
}

/** Builds a client; `apiUrl` and `token` default to DIGITALOCEAN_API_URL and DIGITALOCEAN_TOKEN. */
export function createDigitalOceanClient(
  options: Omit<DigitalOceanClientOptions, 'token'> & { token?: string },
): DigitalOceanClient {
  const token = options.token || process.env.DIGITALOCEAN_TOKEN
  if (!token) {
    throw new TargetError(
      'no DigitalOcean API token: set `token` in the config or the DIGITALOCEAN_TOKEN environment variable',
      { code: 'E_DO_TOKEN' },
    )
  }
  return new DigitalOceanClient({
    ...options,
    token,
    apiUrl: options.apiUrl || process.env.DIGITALOCEAN_API_URL || DEFAULT_API_URL,
  })
}

/** The droplet's IPv4 of that type, if it has one yet. */
export function dropletIPv4(droplet: Droplet, type: 'private' | 'public'): string | undefined {
  return droplet.networks?.v4?.find((n) => n.type === type)?.ip_address
}
