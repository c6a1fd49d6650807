/**
 * The thin wrapper over @kubernetes/client-node that the kubernetes target uses: exactly the calls
 * listed in deploy/kubernetes/rbac.yaml, each with a timeout, retries with back-off on 429 and 5xx
 * (honouring Retry-After), and errors turned into coded KubernetesErrors that say what to do.
 *
 *   get    deployments/scale | statefulsets/scale   readScale
 *   update deployments/scale | statefulsets/scale   replaceScale (with resourceVersion: a stale write is a 409)
 *   list   pods | endpointslices                    list
 *   watch  pods | endpointslices                    watch
 *   patch  pods                                     annotatePod (pod-deletion-cost)
 */
import { setTimeout as sleep } from 'node:timers/promises'
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  DiscoveryV1Api,
  type KubeConfig,
  Observable,
  PatchStrategy,
  type RequestContext,
  type ResponseContext,
  type V1Scale,
  Watch,
} from '@kubernetes/client-node'
import { errorMessage } from '../../core/errors.js'
import { KubernetesError } from './errors.js'

export type WorkloadKind = 'deployment' | 'statefulset'

export interface Workload {
  kind: WorkloadKind
  name: string
  namespace: string
}

/** What the watches see: a pod or an EndpointSlice, as plain JSON. */
export interface KubeObject {
  metadata?: { name?: string; resourceVersion?: string; [k: string]: unknown }
  [k: string]: unknown
}

export interface WatchEvent {
  type: string
  object: KubeObject
}

const RETRIES = 3

/** `deployments.apps "web"`: how the API server names an object in its messages. */
export function describeWorkload(w: Workload): string {
  return `${w.kind} ${w.namespace}/${w.name}`
}

export class KubeClient {
  private readonly apps: AppsV1Api
  private readonly core: CoreV1Api
  private readonly discovery: DiscoveryV1Api
  private readonly watcher: Watch

  constructor(
    readonly config: KubeConfig,
    readonly workload: Workload,
    private readonly timeoutMs: number,
  ) {
    this.apps = config.makeApiClient(AppsV1Api)
    this.core = config.makeApiClient(CoreV1Api)
    this.discovery = config.makeApiClient(DiscoveryV1Api)
    this.watcher = new Watch(config)
  }

  get server(): string {
    return this.config.getCurrentCluster()?.server ?? '(no cluster)'
  }

  readScale(signal: AbortSignal): Promise<V1Scale> {
    const { name, namespace, kind } = this.workload
    return this.call('get', `${kind}s/scale`, signal, (options) =>
      kind === 'deployment'
        ? this.apps.readNamespacedDeploymentScale({ name, namespace }, options)
        : this.apps.readNamespacedStatefulSetScale({ name, namespace }, options),
    )
  }

  /** PUT the scale with its resourceVersion: if someone changed it since it was read, the API answers 409. */
  replaceScale(scale: V1Scale, signal: AbortSignal): Promise<V1Scale> {
    const { name, namespace, kind } = this.workload
    return this.call('update', `${kind}s/scale`, signal, (options) =>
      kind === 'deployment'
        ? this.apps.replaceNamespacedDeploymentScale({ name, namespace, body: scale }, options)
        : this.apps.replaceNamespacedStatefulSetScale({ name, namespace, body: scale }, options),
    )
  }

  async list(
    resource: 'pods' | 'endpointslices',
    labelSelector: string,
    signal: AbortSignal,
  ): Promise<{ items: KubeObject[]; resourceVersion: string }> {
    const { namespace } = this.workload
    const list = await this.call('list', resource, signal, (options) =>
      resource === 'pods'
        ? this.core.listNamespacedPod({ namespace, labelSelector }, options)
        : this.discovery.listNamespacedEndpointSlice({ namespace, labelSelector }, options),
    )
    // The generated client turns JSON into classes with Date objects; the target reads plain JSON.
    const items = JSON.parse(JSON.stringify(list.items)) as KubeObject[]
    return { items, resourceVersion: list.metadata?.resourceVersion ?? '' }
  }

  /** A merge patch of one pod's annotations. */
  annotatePod(
    pod: string,
    annotations: Record<string, string | null>,
    signal: AbortSignal,
  ): Promise<unknown> {
    const { namespace } = this.workload
    return this.call('patch', 'pods', signal, (options) =>
      this.core.patchNamespacedPod(
        { name: pod, namespace, body: { metadata: { annotations } } },
        withContentType(options, PatchStrategy.MergePatch),
      ),
    )
  }

  /**
   * Starts a watch from `resourceVersion`; events go to `onEvent`, and `done` is called once when
   * the stream ends (null) or fails. Returns a function that stops it.
   */
  async watch(
    resource: 'pods' | 'endpointslices',
    labelSelector: string,
    resourceVersion: string,
    onEvent: (event: WatchEvent) => void,
    done: (err: unknown) => void,
  ): Promise<() => void> {
    const { namespace } = this.workload
    const path =
      resource === 'pods'
        ? `/api/v1/namespaces/${namespace}/pods`
        : `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`
    const controller = await this.watcher.watch(
      path,
      { labelSelector, resourceVersion, allowWatchBookmarks: true },
      (type, object) => onEvent({ type, object: object as KubeObject }),
      (err) => done(err ? this.translate(err, 'watch', resource) : null),
    )
    return () => controller.abort()
  }

  /** One call: timeout, retries on 429/5xx/network errors (idempotent or precondition-guarded calls only), coded errors. */
  private async call<T>(
    verb: string,
    resource: string,
    signal: AbortSignal,
    fn: (options: ReturnType<typeof withSignal>) => Promise<T>,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      signal.throwIfAborted()
      const timeout = AbortSignal.timeout(this.timeoutMs)
      try {
        return await fn(withSignal(AbortSignal.any([signal, timeout])))
      } catch (err) {
        signal.throwIfAborted()
        const status = err instanceof ApiException ? err.code : undefined
        const retryable = status === undefined ? isNetworkError(err) : status === 429 || status >= 500
        if (!retryable || attempt > RETRIES) {
          if (timeout.aborted) {
            throw new KubernetesError(
              'E_K8S_API',
              `${verb} ${resource} in namespace ${this.workload.namespace} timed out after ${this.timeoutMs}ms (${this.server})`,
              { cause: err },
            )
          }
          throw this.translate(err, verb, resource)
        }
        await sleep(retryDelay(err, attempt), undefined, { signal })
      }
    }
  }

  /** A coded error that names the call, the object and what to do. */
  translate(err: unknown, verb: string, resource: string): KubernetesError {
    if (err instanceof KubernetesError) return err
    const { namespace } = this.workload
    const status =
      err instanceof ApiException ? err.code : (err as { statusCode?: number } | undefined)?.statusCode
    const message = apiMessage(err)
    const what = `${verb} ${resource} in namespace ${namespace}`
    switch (status) {
      case 401:
        return new KubernetesError(
          'E_K8S_CREDENTIALS',
          `the Kubernetes API at ${this.server} refused Tide's credentials (401) on ${what}: ${message}`,
          { cause: err, apiStatus: status },
        )
      case 403:
        return new KubernetesError(
          'E_K8S_FORBIDDEN',
          `RBAC forbids ${what}: ${message}. Grant verb "${verb}" on "${resource}" to Tide's service account (deploy/kubernetes/rbac.yaml lists what Tide needs)`,
          { cause: err, apiStatus: status },
        )
      case 404:
        return new KubernetesError(
          'E_K8S_NOT_FOUND',
          resource.endsWith('/scale')
            ? `${describeWorkload(this.workload)} does not exist (${message}); check target.workload and the namespace (${namespace})`
            : `${what}: not found (${message})`,
          { cause: err, apiStatus: status },
        )
      case 409:
        return new KubernetesError('E_K8S_CONFLICT', `${what}: ${message}`, { cause: err, apiStatus: status })
      default:
        return new KubernetesError(
          'E_K8S_API',
          `${what} failed${status ? ` (HTTP ${status})` : ''} at ${this.server}: ${message}`,
          { cause: err, apiStatus: status },
        )
    }
  }
}

/** The message of a Kubernetes Status body, or of the error. */
function apiMessage(err: unknown): string {
  if (err instanceof ApiException) {
    const body = err.body as unknown
    if (typeof body === 'string') {
      try {
        const parsed = JSON.parse(body) as { message?: string }
        if (parsed.message) return parsed.message
      } catch {
        return body.slice(0, 200) || `HTTP ${err.code}`
      }
    } else if (body && typeof body === 'object' && 'message' in body)
      return String((body as { message: unknown }).message)
    return `HTTP ${err.code}`
  }
  return errorMessage(err)
}

/** A failure to reach the server (refused, reset, DNS), worth another try; not a client-side config error. */
function isNetworkError(err: unknown): boolean {
  const e = err as { name?: string; code?: string; type?: string } | undefined
  return (
    e?.name === 'FetchError' ||
    e?.type === 'system' ||
    /^E(CONN|TIMEDOUT|PIPE|AI_AGAIN|HOSTUNREACH|NETUNREACH)/.test(e?.code ?? '')
  )
}

function retryDelay(err: unknown, attempt: number): number {
  const headers =
    err instanceof ApiException ? (err.headers as Record<string, string> | undefined) : undefined
  const after = Number(headers?.['retry-after'] ?? headers?.['Retry-After'])
  if (Number.isFinite(after) && after > 0) return Math.min(after * 1000, 30_000)
  return Math.min(200 * 2 ** (attempt - 1), 5_000)
}

/** Per-call options: the request carries `signal` (client-node has no timeout of its own). */
function withSignal(signal: AbortSignal) {
  return {
    middleware: [
      {
        pre: (context: RequestContext) => {
          context.setSignal(signal as never)
          return new Observable(Promise.resolve(context))
        },
        post: (context: ResponseContext) => new Observable(Promise.resolve(context)),
      },
    ],
    middlewareMergeStrategy: 'append' as const,
  }
}

/** Adds a Content-Type header to per-call options (client-node 1.x sends json-patch by default). */
function withContentType(
  options: ReturnType<typeof withSignal>,
  type: string,
): ReturnType<typeof withSignal> {
  return {
    ...options,
    middleware: [
      ...options.middleware,
      {
        pre: (context: RequestContext) => {
          context.setHeaderParam('Content-Type', type)
          return new Observable(Promise.resolve(context))
        },
        post: (context: ResponseContext) => new Observable(Promise.resolve(context)),
      },
    ],
  }
}
