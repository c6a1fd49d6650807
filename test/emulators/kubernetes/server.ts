/**
 * The Kubernetes API emulator's HTTP side: a real server on loopback speaking the parts of the
 * API that Tide uses, following ../shared/apis/kubernetes-apps-v1.json and
 * kubernetes-core-v1-subset.json (Kubernetes 1.35):
 *
 * - discovery: /api, /apis, /api/v1, /apis/apps/v1, /apis/discovery.k8s.io/v1, /version
 * - apps/v1 deployments and statefulsets, with the `scale` subresource (GET, PUT, and PATCH as
 *   application/merge-patch+json, application/strategic-merge-patch+json or
 *   application/json-patch+json)
 * - core/v1 pods, services, endpoints; discovery.k8s.io/v1 endpointslices
 * - get, list (labelSelector), create, replace, patch, delete; watch as `?watch=true` on a
 *   collection or under `/watch/`: JSON lines, resuming from `resourceVersion`, an ERROR event
 *   with a 410 Expired Status when that version is older than the kept history (what the real
 *   server does on a too-old version), `timeoutSeconds`
 * - errors as meta/v1 Status objects with the real codes and reasons (404 NotFound,
 *   409 Conflict on a stale resourceVersion, 422 Invalid, 403 Forbidden, 401 Unauthorized)
 *
 * Test controls: a bearer token to require, RBAC rules to enforce (the Role's rules, so a test can
 * check that a Role allows exactly what Tide does), injected faults, and a log of every request
 * with its RBAC attributes. With `validate`, every JSON response (and watch event) is checked
 * against the definitions and problems are collected in `schemaProblems`.
 *
 * Strategic merge patch is applied as a JSON merge patch: Tide patches only maps (annotations,
 * replicas), where the two agree. Lists and directives (`$patch`, `$retainKeys`, merge keys) are
 * where they differ, and are not emulated: such a patch is refused with a 422 that says so, so a
 * test relying on them fails loudly instead of passing on the wrong semantics.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { checkResponse, checkWatchEvent } from './openapi.js'
import {
  AlreadyExistsError,
  ConflictError,
  formatSelector,
  NotFoundError,
  now,
  type Obj,
  parseSelector,
  type Resource,
  Store,
} from './store.js'

interface ResourceInfo {
  group: string
  version: string
  kind: string
  singular: string
  /** The definition's schema for one object, when ../shared/apis has one. */
  schema?: string
  verbs: string[]
}

export const RESOURCES: Record<Resource, ResourceInfo> = {
  pods: {
    group: '',
    version: 'v1',
    kind: 'Pod',
    singular: 'pod',
    schema: 'io.k8s.api.core.v1.Pod',
    verbs: ALL(),
  },
  services: {
    group: '',
    version: 'v1',
    kind: 'Service',
    singular: 'service',
    schema: 'io.k8s.api.core.v1.Service',
    verbs: ALL(),
  },
  endpoints: {
    group: '',
    version: 'v1',
    kind: 'Endpoints',
    singular: 'endpoints',
    schema: 'io.k8s.api.core.v1.Endpoints',
    verbs: ALL(),
  },
  endpointslices: {
    group: 'discovery.k8s.io',
    version: 'v1',
    kind: 'EndpointSlice',
    singular: 'endpointslice',
    verbs: ALL(),
  },
  deployments: {
    group: 'apps',
    version: 'v1',
    kind: 'Deployment',
    singular: 'deployment',
    schema: 'io.k8s.api.apps.v1.Deployment',
    verbs: ALL(),
  },
  statefulsets: {
    group: 'apps',
    version: 'v1',
    kind: 'StatefulSet',
    singular: 'statefulset',
    schema: 'io.k8s.api.apps.v1.StatefulSet',
    verbs: ALL(),
  },
}

function ALL(): string[] {
  return ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch']
}

/** One rule of a Role, as in rbac.authorization.k8s.io/v1. */
export interface PolicyRule {
  apiGroups: string[]
  resources: string[]
  verbs: string[]
  resourceNames?: string[]
}

/** What RBAC sees of a request. */
export interface RequestAttributes {
  verb: string
  group: string
  /** `pods`, `deployments/scale`. */
  resource: string
  namespace?: string
  name?: string
}

export interface Fault {
  verb?: string
  resource?: string
  status: number
  /** How many requests it hits (default 1). */
  times?: number
  message?: string
}

export interface ApiServerOptions {
  /** Require `Authorization: Bearer <token>`; absent: any request is authenticated. */
  token?: string
  /** Enforce these rules (a Role's); absent: everything is allowed. */
  rbac?: PolicyRule[]
  /** The user named in Forbidden messages. */
  user?: string
  /** Check every response against the definitions (default true). */
  validate?: boolean
}

interface Route {
  resource: Resource
  namespace?: string
  name?: string
  subresource?: string
  watchPath: boolean
}

const ROUTE =
  /^\/(?:api\/v1|apis\/(apps|discovery\.k8s\.io)\/v1)(\/watch)?(?:\/namespaces\/([^/]+))?\/(pods|services|endpoints|endpointslices|deployments|statefulsets)(?:\/([^/]+))?(?:\/(scale|status))?$/

const GROUP_OF: Record<string, string> = {
  pods: '',
  services: '',
  endpoints: '',
  endpointslices: 'discovery.k8s.io',
  deployments: 'apps',
  statefulsets: 'apps',
}

const MAX_BODY = 3 * 1024 * 1024

export class ApiServer {
  readonly store: Store
  private server?: Server
  /** Every request, with its RBAC attributes and the status it got. */
  readonly requests: Array<RequestAttributes & { code: number; path: string }> = []
  /** Responses that did not follow the definitions. */
  readonly schemaProblems: string[] = []
  private faults: Array<Fault & { left: number }> = []
  /** Open watches, each with what ends it. */
  private readonly watches = new Map<ServerResponse, () => void>()
  rbac?: PolicyRule[]
  url = ''

  constructor(
    store: Store,
    private readonly options: ApiServerOptions = {},
  ) {
    this.store = store
    this.rbac = options.rbac
  }

  async start(host = '127.0.0.1'): Promise<string> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) this.status(req, res, 500, 'InternalError', String(err))
        else res.destroy()
      })
    })
    server.keepAliveTimeout = 5000
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, host, () => resolve())
    })
    const { port } = server.address() as AddressInfo
    this.url = `http://${host}:${port}`
    return this.url
  }

  async close(): Promise<void> {
    this.dropWatches()
    const server = this.server
    if (!server) return
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  /** Ends every open watch (as an API server restart would); clients must resume. */
  dropWatches(): void {
    for (const [res, stop] of this.watches) {
      stop()
      res.end()
    }
  }

  /** The next `times` requests matching `verb`/`resource` get `status`. */
  inject(fault: Fault): void {
    this.faults.push({ ...fault, left: fault.times ?? 1 })
  }

  // ─── Request handling ──────────────────────────────────────────────────────

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://emulator')
    const path = url.pathname.replace(/\/$/, '') || '/'
    if (this.options.token !== undefined && req.headers.authorization !== `Bearer ${this.options.token}`) {
      return this.status(req, res, 401, 'Unauthorized', 'Unauthorized')
    }
    const discovery = this.discovery(path)
    if (discovery) return this.json(req, res, 200, discovery)

    const m = ROUTE.exec(path)
    if (!m) return this.status(req, res, 404, 'NotFound', 'the server could not find the requested resource')
    const [, , watchSegment, namespace, resourceText, name, subresource] = m
    const resource = resourceText as Resource
    if ((m[1] ?? '') !== GROUP_OF[resource]) {
      return this.status(req, res, 404, 'NotFound', 'the server could not find the requested resource')
    }
    const route: Route = { resource, namespace, name, subresource, watchPath: watchSegment !== undefined }
    const watch =
      route.watchPath || url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1'
    const attrs = attributes(req.method ?? 'GET', route, watch)
    const record = { ...attrs, code: 0, path }
    this.requests.push(record)
    res.on('finish', () => {
      record.code = res.statusCode
    })

    if (!this.allowed(attrs)) {
      const what = `${resource}${RESOURCES[resource].group ? `.${RESOURCES[resource].group}` : ''}`
      const target = name ? `${what} "${name}"` : what
      const scope = namespace ? ` in the namespace "${namespace}"` : ' at the cluster scope'
      return this.status(
        req,
        res,
        403,
        'Forbidden',
        `${target} is forbidden: User "${this.options.user ?? 'system:serviceaccount:default:tide'}" cannot ${attrs.verb} resource "${attrs.resource}" in API group "${attrs.group}"${scope}`,
        { name, group: RESOURCES[resource].group, kind: resource },
      )
    }
    const fault = this.faults.find(
      (f) =>
        f.left > 0 && (!f.verb || f.verb === attrs.verb) && (!f.resource || f.resource === attrs.resource),
    )
    if (fault) {
      fault.left--
      const reasons: Record<number, string> = {
        403: 'Forbidden',
        404: 'NotFound',
        409: 'Conflict',
        429: 'TooManyRequests',
        500: 'InternalError',
        503: 'ServiceUnavailable',
      }
      if (fault.status === 429) res.setHeader('Retry-After', '1')
      return this.status(
        req,
        res,
        fault.status,
        reasons[fault.status] ?? 'Unknown',
        fault.message ?? 'injected fault',
        {
          name,
          group: RESOURCES[resource].group,
          kind: resource,
        },
      )
    }

    try {
      if (watch) return this.watch(req, res, route, url)
      switch (req.method) {
        case 'GET':
          return this.get(req, res, route, url)
        case 'POST':
          return await this.create(req, res, route)
        case 'PUT':
          return await this.replace(req, res, route)
        case 'PATCH':
          return await this.patch(req, res, route)
        case 'DELETE':
          return this.remove(req, res, route)
        default:
          return this.status(req, res, 405, 'MethodNotAllowed', `${req.method} is not supported`)
      }
    } catch (err) {
      const details = { name, group: RESOURCES[resource].group, kind: resource }
      if (err instanceof NotFoundError)
        return this.status(req, res, 404, 'NotFound', notFound(resource, name), details)
      if (err instanceof ConflictError) return this.status(req, res, 409, 'Conflict', err.message, details)
      if (err instanceof AlreadyExistsError)
        return this.status(req, res, 409, 'AlreadyExists', err.message, details)
      if (err instanceof BadRequest) return this.status(req, res, err.code, err.reason, err.message, details)
      throw err
    }
  }

  private allowed(attrs: RequestAttributes): boolean {
    if (!this.rbac) return true
    return this.rbac.some(
      (rule) =>
        (rule.apiGroups.includes('*') || rule.apiGroups.includes(attrs.group)) &&
        (rule.resources.includes('*') || rule.resources.includes(attrs.resource)) &&
        (rule.verbs.includes('*') || rule.verbs.includes(attrs.verb)) &&
        (!rule.resourceNames?.length ||
          (attrs.name !== undefined && rule.resourceNames.includes(attrs.name))),
    )
  }

  private get(req: IncomingMessage, res: ServerResponse, route: Route, url: URL): void {
    const { resource, namespace, name, subresource } = route
    if (name === undefined) {
      const selector = this.selector(url)
      const items = this.store.list(resource, namespace, selector)
      const info = RESOURCES[resource]
      return this.json(req, res, 200, {
        apiVersion: apiVersion(info),
        kind: `${info.kind}List`,
        metadata: { resourceVersion: this.store.resourceVersion },
        items,
      })
    }
    const object = this.must(resource, namespace, name)
    if (subresource === 'scale') return this.json(req, res, 200, scaleOf(resource, object))
    return this.json(req, res, 200, object)
  }

  private async create(req: IncomingMessage, res: ServerResponse, route: Route): Promise<void> {
    if (route.name !== undefined || route.namespace === undefined)
      return this.status(req, res, 405, 'MethodNotAllowed', 'create needs a namespaced collection')
    const body = (await readJson(req)) as Obj
    const info = RESOURCES[route.resource]
    if (body.kind !== undefined && body.kind !== info.kind)
      throw new BadRequest(400, 'BadRequest', `kind ${body.kind} does not match ${info.kind}`)
    body.apiVersion = apiVersion(info)
    body.kind = info.kind
    body.metadata = { ...body.metadata, namespace: route.namespace }
    if (!body.metadata.name && !body.metadata.generateName)
      throw new BadRequest(
        422,
        'Invalid',
        `${info.kind} is invalid: metadata.name: Required value: name or generateName is required`,
      )
    const created = this.store.create(route.resource, defaults(route.resource, body))
    return this.json(req, res, 201, created)
  }

  private async replace(req: IncomingMessage, res: ServerResponse, route: Route): Promise<void> {
    const { resource, namespace, name, subresource } = route
    if (name === undefined || namespace === undefined)
      return this.status(req, res, 405, 'MethodNotAllowed', 'replace needs an object')
    const body = (await readJson(req)) as Obj
    const current = this.must(resource, namespace, name)
    if (subresource === 'scale') {
      const updated = this.setReplicas(resource, current, body)
      return this.json(req, res, 200, scaleOf(resource, updated))
    }
    if (body.metadata?.name !== undefined && body.metadata.name !== name)
      throw new BadRequest(
        400,
        'BadRequest',
        `the name of the object (${body.metadata.name}) does not match the name on the URL (${name})`,
      )
    const object = {
      ...body,
      apiVersion: current.apiVersion,
      kind: current.kind,
      metadata: { ...body.metadata, name, namespace },
    }
    if (subresource !== 'status') object.status = current.status
    else object.spec = current.spec
    return this.json(req, res, 200, this.store.update(resource, object, body.metadata?.resourceVersion))
  }

  private async patch(req: IncomingMessage, res: ServerResponse, route: Route): Promise<void> {
    const { resource, namespace, name, subresource } = route
    if (name === undefined || namespace === undefined)
      return this.status(req, res, 405, 'MethodNotAllowed', 'patch needs an object')
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim()
    const patchBody = await readJson(req)
    const current = this.must(resource, namespace, name)
    const base = subresource === 'scale' ? scaleOf(resource, current) : current
    let patched: Obj
    if (type === 'application/merge-patch+json' || type === 'application/strategic-merge-patch+json') {
      if (typeof patchBody !== 'object' || patchBody === null || Array.isArray(patchBody))
        throw new BadRequest(400, 'BadRequest', 'a merge patch must be a JSON object')
      const unlike =
        type === 'application/strategic-merge-patch+json' ? listOrDirective(patchBody) : undefined
      if (unlike !== undefined)
        throw new BadRequest(
          422,
          'Invalid',
          `the emulator applies strategic merge patches to maps only (as a JSON merge patch); this one has ${unlike}, where the two differ`,
        )
      patched = mergePatch(base, patchBody) as Obj
    } else if (type === 'application/json-patch+json') {
      if (!Array.isArray(patchBody))
        throw new BadRequest(400, 'BadRequest', 'a JSON patch must be an array of operations')
      patched = jsonPatch(base, patchBody)
    } else {
      return this.status(
        req,
        res,
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got ${JSON.stringify(type)})`,
      )
    }
    // A resourceVersion in the patch is a precondition, as on the real server.
    const expect =
      patched.metadata?.resourceVersion !== base.metadata.resourceVersion
        ? patched.metadata?.resourceVersion
        : undefined
    if (expect !== undefined && expect !== current.metadata.resourceVersion) {
      throw new ConflictError(
        `Operation cannot be fulfilled on ${resource} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      )
    }
    if (subresource === 'scale') {
      const updated = this.setReplicas(resource, current, patched)
      return this.json(req, res, 200, scaleOf(resource, updated))
    }
    if (patched.metadata?.name !== name)
      throw new BadRequest(400, 'BadRequest', 'metadata.name cannot be changed by a patch')
    patched.apiVersion = current.apiVersion
    patched.kind = current.kind
    patched.metadata.namespace = namespace
    if (subresource !== 'status') patched.status = current.status
    else patched.spec = current.spec
    return this.json(req, res, 200, this.store.update(resource, patched))
  }

  private remove(req: IncomingMessage, res: ServerResponse, route: Route): void {
    const { resource, namespace, name } = route
    if (name === undefined || namespace === undefined)
      return this.status(req, res, 405, 'MethodNotAllowed', 'delete needs an object')
    const current = this.must(resource, namespace, name)
    if (resource === 'pods') {
      // Graceful deletion: the kubelet stops the containers, then the pod goes.
      if (!current.metadata.deletionTimestamp) {
        const grace = current.spec?.terminationGracePeriodSeconds ?? 30
        current.metadata.deletionTimestamp = new Date(Date.now() + grace * 1000)
          .toISOString()
          .replace(/\.\d+Z$/, 'Z')
        current.metadata.deletionGracePeriodSeconds = grace
        return this.json(req, res, 200, this.store.update('pods', current))
      }
      return this.json(req, res, 200, current)
    }
    this.store.delete(resource, namespace, name)
    return this.json(req, res, 200, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Success',
      details: { name, group: RESOURCES[resource].group, kind: resource, uid: current.metadata.uid },
    })
  }

  /** Sets a workload's replicas from a Scale (PUT or patched), with its resourceVersion as precondition. */
  private setReplicas(resource: Resource, current: Obj, scale: Obj): Obj {
    if (resource !== 'deployments' && resource !== 'statefulsets')
      throw new BadRequest(404, 'NotFound', 'the server could not find the requested resource')
    const replicas = scale.spec?.replicas
    if (!Number.isInteger(replicas) || replicas < 0) {
      throw new BadRequest(
        422,
        'Invalid',
        `Scale.autoscaling "${current.metadata.name}" is invalid: spec.replicas: Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0`,
      )
    }
    const updated = { ...current, spec: { ...current.spec, replicas } }
    return this.store.update(resource, updated, scale.metadata?.resourceVersion)
  }

  private must(resource: Resource, namespace: string | undefined, name: string): Obj {
    const found = namespace === undefined ? undefined : this.store.get(resource, namespace, name)
    if (!found) throw new NotFoundError(notFound(resource, name))
    return found
  }

  private selector(url: URL): ((l: Record<string, string>) => boolean) | undefined {
    try {
      return parseSelector(url.searchParams.get('labelSelector') ?? undefined)
    } catch (err) {
      throw new BadRequest(400, 'BadRequest', `unable to parse requirement: ${(err as Error).message}`)
    }
  }

  // ─── Watch ─────────────────────────────────────────────────────────────────

  private watch(req: IncomingMessage, res: ServerResponse, route: Route, url: URL): void {
    if (req.method !== 'GET') return this.status(req, res, 405, 'MethodNotAllowed', 'watch is a GET')
    const { resource, namespace, name } = route
    const selector = this.selector(url)
    const schema = RESOURCES[resource].schema
    const wanted = (o: Obj) =>
      (namespace === undefined || o.metadata.namespace === namespace) &&
      (name === undefined || o.metadata.name === name) &&
      (!selector || selector(o.metadata.labels ?? {}))
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Transfer-Encoding': 'chunked',
      'Cache-Control': 'no-cache',
    })
    // Headers now, as the API server does: a client waits for them before it reads events.
    res.flushHeaders()
    const send = (event: { type: string; object: unknown }) => {
      if (this.options.validate !== false) {
        for (const p of checkWatchEvent(event, schema))
          this.schemaProblems.push(`watch ${resource} ${event.type}: ${p}`)
      }
      res.write(`${JSON.stringify(event)}\n`)
    }
    const from = url.searchParams.get('resourceVersion')
    if (from && from !== '0') {
      const rv = Number(from)
      const changes = Number.isInteger(rv) ? this.store.since(resource, rv) : undefined
      if (!changes) {
        send({
          type: 'ERROR',
          object: {
            kind: 'Status',
            apiVersion: 'v1',
            metadata: {},
            status: 'Failure',
            message: `too old resource version: ${from} (${this.store.oldestResumable})`,
            reason: 'Expired',
            code: 410,
          },
        })
        res.end()
        return
      }
      for (const c of changes) if (wanted(c.object)) send({ type: c.type, object: c.object })
    } else {
      for (const o of this.store.list(resource, namespace, selector))
        if (wanted(o)) send({ type: 'ADDED', object: o })
    }
    const onChange = (c: { resource: Resource; type: string; object: Obj }) => {
      if (c.resource === resource && wanted(c.object)) send({ type: c.type, object: c.object })
    }
    this.store.on('change', onChange)
    const timeout = Number(url.searchParams.get('timeoutSeconds') ?? 0)
    const timer = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : undefined
    const stop = () => {
      clearTimeout(timer)
      this.store.off('change', onChange)
      this.watches.delete(res)
    }
    this.watches.set(res, stop)
    res.on('close', stop)
    req.on('close', stop)
  }

  // ─── Discovery ─────────────────────────────────────────────────────────────

  private discovery(path: string): object | undefined {
    const host = this.url.replace(/^https?:\/\//, '')
    switch (path) {
      case '/version':
        return { major: '1', minor: '35', gitVersion: 'v1.35.0-tide-emulator', platform: 'linux/amd64' }
      case '/api':
        return {
          kind: 'APIVersions',
          versions: ['v1'],
          serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: host }],
        }
      case '/apis':
        return {
          kind: 'APIGroupList',
          apiVersion: 'v1',
          groups: ['apps', 'discovery.k8s.io'].map((name) => ({
            name,
            versions: [{ groupVersion: `${name}/v1`, version: 'v1' }],
            preferredVersion: { groupVersion: `${name}/v1`, version: 'v1' },
          })),
        }
      case '/api/v1':
        return resourceList('v1', ['pods', 'services', 'endpoints'])
      case '/apis/apps/v1':
        return resourceList('apps/v1', ['deployments', 'statefulsets'])
      case '/apis/discovery.k8s.io/v1':
        return resourceList('discovery.k8s.io/v1', ['endpointslices'])
    }
    return undefined
  }

  // ─── Responses ─────────────────────────────────────────────────────────────

  private json(req: IncomingMessage, res: ServerResponse, code: number, body: unknown): void {
    if (this.options.validate !== false) {
      const path = new URL(req.url ?? '/', 'http://e').pathname.replace(/\/$/, '') || '/'
      const problems = checkResponse(req.method ?? 'GET', path, code, body)
      for (const p of problems ?? []) this.schemaProblems.push(`${req.method} ${path} ${code}: ${p}`)
    }
    const text = JSON.stringify(body)
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) })
    res.end(text)
  }

  private status(
    req: IncomingMessage,
    res: ServerResponse,
    code: number,
    reason: string,
    message: string,
    details?: { name?: string; group?: string; kind?: string },
  ): void {
    const body: Record<string, unknown> = {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message,
      reason,
      code,
    }
    if (details)
      body.details = Object.fromEntries(
        Object.entries(details).filter(([, v]) => v !== undefined && v !== ''),
      )
    this.json(req, res, code, body)
  }
}

class BadRequest extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message)
  }
}

function attributes(method: string, route: Route, watch: boolean): RequestAttributes {
  const verbs: Record<string, string> = { POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' }
  const verb = watch
    ? 'watch'
    : method === 'GET'
      ? route.name === undefined
        ? 'list'
        : 'get'
      : (verbs[method] ?? method.toLowerCase())
  return {
    verb: verb === 'delete' && route.name === undefined ? 'deletecollection' : verb,
    group: GROUP_OF[route.resource]!,
    resource: route.subresource ? `${route.resource}/${route.subresource}` : route.resource,
    namespace: route.namespace,
    name: route.name,
  }
}

function apiVersion(info: ResourceInfo): string {
  return info.group ? `${info.group}/${info.version}` : info.version
}

function notFound(resource: Resource, name: string | undefined): string {
  const info = RESOURCES[resource]
  return `${resource}${info.group ? `.${info.group}` : ''} "${name}" not found`
}

function resourceList(groupVersion: string, names: Resource[]): object {
  const resources = []
  for (const name of names) {
    const info = RESOURCES[name]
    resources.push({
      name,
      singularName: info.singular,
      namespaced: true,
      kind: info.kind,
      verbs: [...info.verbs, 'deletecollection'],
    })
    if (name === 'deployments' || name === 'statefulsets') {
      resources.push({
        name: `${name}/scale`,
        singularName: '',
        namespaced: true,
        group: 'autoscaling',
        version: 'v1',
        kind: 'Scale',
        verbs: ['get', 'patch', 'update'],
      })
      resources.push({
        name: `${name}/status`,
        singularName: '',
        namespaced: true,
        kind: info.kind,
        verbs: ['get', 'patch', 'update'],
      })
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion, resources }
}

/** The autoscaling/v1 Scale of a workload: same name, uid and resourceVersion. */
export function scaleOf(_resource: Resource, object: Obj): Obj {
  const { name, namespace, uid, resourceVersion, creationTimestamp } = object.metadata
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: { name, namespace, uid, resourceVersion, creationTimestamp },
    spec: { replicas: object.spec?.replicas ?? 1 },
    status: {
      replicas: object.status?.replicas ?? 0,
      selector: formatSelector(object.spec?.selector ?? {}),
    },
  }
}

/** The defaults the API server fills in, for the fields the emulator reads. */
function defaults(resource: Resource, object: Obj): Obj {
  if (resource === 'deployments' || resource === 'statefulsets') {
    object.spec = { replicas: 1, ...object.spec }
    object.status = {
      replicas: 0,
      readyReplicas: 0,
      availableReplicas: 0,
      updatedReplicas: 0,
      observedGeneration: 0,
    }
    if (resource === 'statefulsets') {
      object.spec.podManagementPolicy ??= 'OrderedReady'
      object.status.currentReplicas = 0
    }
  }
  if (resource === 'pods') {
    object.spec = { terminationGracePeriodSeconds: 30, ...object.spec }
    object.status = { phase: 'Pending', ...object.status }
  }
  if (resource === 'services') {
    object.spec = { type: 'ClusterIP', ...object.spec }
    object.status = { loadBalancer: {} }
  }
  if (object.metadata.creationTimestamp === undefined) object.metadata.creationTimestamp = now()
  return object
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_BODY) throw new BadRequest(413, 'RequestEntityTooLarge', 'request body too large')
    chunks.push(chunk)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  try {
    return JSON.parse(text)
  } catch {
    throw new BadRequest(400, 'BadRequest', `the request body is not JSON: ${text.slice(0, 80)}`)
  }
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return structuredClone(patch)
  const result: Record<string, unknown> =
    typeof target === 'object' && target !== null && !Array.isArray(target)
      ? structuredClone(target as Record<string, unknown>)
      : {}
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key]
    else result[key] = mergePatch(result[key], value)
  }
  return result
}

/** RFC 6902 JSON patch: add, replace, remove and test on object paths. */
function jsonPatch(target: Obj, ops: unknown[]): Obj {
  const doc = structuredClone(target) as Record<string, unknown>
  for (const raw of ops) {
    const op = raw as { op?: string; path?: string; value?: unknown }
    if (typeof op.path !== 'string' || !op.path.startsWith('/'))
      throw new BadRequest(400, 'BadRequest', `bad JSON patch path ${JSON.stringify(op.path)}`)
    const keys = op.path
      .slice(1)
      .split('/')
      .map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'))
    const last = keys.pop()!
    let parent: Record<string, unknown> = doc
    for (const key of keys) {
      const next = parent[key]
      if (typeof next !== 'object' || next === null) {
        if (op.op === 'add') parent[key] = {}
        else throw new BadRequest(422, 'Invalid', `the JSON patch path ${op.path} does not exist`)
      }
      parent = parent[key] as Record<string, unknown>
    }
    switch (op.op) {
      case 'add':
      case 'replace':
        if (op.op === 'replace' && !(last in parent))
          throw new BadRequest(422, 'Invalid', `replace: ${op.path} does not exist`)
        parent[last] = structuredClone(op.value)
        break
      case 'remove':
        if (!(last in parent)) throw new BadRequest(422, 'Invalid', `remove: ${op.path} does not exist`)
        delete parent[last]
        break
      case 'test':
        if (JSON.stringify(parent[last]) !== JSON.stringify(op.value))
          throw new BadRequest(422, 'Invalid', `test failed at ${op.path}`)
        break
      default:
        throw new BadRequest(400, 'BadRequest', `unsupported JSON patch op ${JSON.stringify(op.op)}`)
    }
  }
  return doc as Obj
}

/** Where a strategic merge patch differs from a JSON merge patch: the first list or `$` directive, or undefined. */
function listOrDirective(value: unknown, path = ''): string | undefined {
  if (Array.isArray(value)) return `a list at ${path || '(root)'}`
  if (typeof value !== 'object' || value === null) return undefined
  for (const [key, inner] of Object.entries(value)) {
    const at = path ? `${path}.${key}` : key
    if (key.startsWith('$')) return `the directive ${at}`
    const found = listOrDirective(inner, at)
    if (found !== undefined) return found
  }
  return undefined
}
