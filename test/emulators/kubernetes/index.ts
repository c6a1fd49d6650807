/**
 * A Kubernetes API emulator for tests: a real HTTP server on loopback (server.ts) over an object
 * store with resource versions and watch history (store.ts), with the controllers and a fake
 * kubelet that turn replicas into pods with real listening sockets or processes (kubelet.ts),
 * and pods that fail as real ones do (a missing image, a crash loop: see kubelet.ts' header).
 * No real API server can run here; this one follows the official definitions in
 * ../shared/apis/kubernetes-*.json and checks its own responses against them.
 *
 * @example
 * const k8s = await startKubernetesEmulator({ kubelet: { readyDelay: 200 } })
 * await k8s.createDeployment('web', { replicas: 0, port: 8080 })
 * const kubeconfig = k8s.writeKubeconfig(dir)       // for KubeConfig.loadFromFile
 * …
 * assert.deepEqual(k8s.api.schemaProblems, [])
 * await k8s.close()
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Kubelet, type KubeletOptions } from './kubelet.js'
import { ApiServer, type ApiServerOptions } from './server.js'
import { type Obj, Store } from './store.js'

export { EXIT_CODE_ANNOTATION, isReady } from './kubelet.js'
export type { Fault, PolicyRule, RequestAttributes } from './server.js'
export type { Obj } from './store.js'

export interface EmulatorOptions extends ApiServerOptions {
  /** Controllers and kubelet settings; `false` runs the API alone (objects never change by themselves). */
  kubelet?: KubeletOptions | false
  /** Changes kept for watches to resume from. @default 2000 */
  history?: number
}

export interface WorkloadOptions {
  namespace?: string
  replicas?: number
  /** The container port. @default 8080 */
  port?: number
  portName?: string
  /** Container command (the `process` runtime runs it). */
  command?: string[]
  env?: Record<string, string>
  /** Readiness probe path. @default '/healthz' */
  readinessPath?: string
  /** Pod termination grace, seconds. @default 2 */
  grace?: number
  labels?: Record<string, string>
  podManagementPolicy?: 'OrderedReady' | 'Parallel'
  /** The container image; see kubelet.ts for the names that fail to pull. @default 'example/app:1' */
  image?: string
  /** Pod template annotations (`EXIT_CODE_ANNOTATION` makes the container crash-loop). */
  annotations?: Record<string, string>
  /** More fields of the container, merged over the defaults (`env` with `valueFrom`, `envFrom`…). */
  container?: Record<string, unknown>
  /** The pod's init containers. */
  initContainers?: Array<Record<string, unknown>>
}

export interface KubernetesEmulator {
  url: string
  store: Store
  api: ApiServer
  kubelet?: Kubelet
  createDeployment(name: string, options?: WorkloadOptions): Promise<Obj>
  createStatefulSet(name: string, options?: WorkloadOptions): Promise<Obj>
  createService(
    name: string,
    options: {
      namespace?: string
      selector: Record<string, string>
      port?: number
      targetPort?: number | string
    },
  ): Promise<Obj>
  /** Pods of a namespace (default `default`), optionally only ready ones. */
  pods(namespace?: string): Obj[]
  /** Writes a kubeconfig for this server (with the token, when one is required) and returns its path. */
  writeKubeconfig(dir: string, options?: { namespace?: string; context?: string }): string
  close(): Promise<void>
}

export async function startKubernetesEmulator(options: EmulatorOptions = {}): Promise<KubernetesEmulator> {
  const store = new Store(options.history)
  const api = new ApiServer(store, options)
  const url = await api.start()
  const kubelet = options.kubelet === false ? undefined : new Kubelet(store, options.kubelet)

  const workload = (kind: 'Deployment' | 'StatefulSet', name: string, o: WorkloadOptions = {}): Obj => {
    const labels = o.labels ?? { app: name }
    const container: Record<string, unknown> = {
      name: 'app',
      image: o.image ?? 'example/app:1',
      ports: [
        { containerPort: o.port ?? 8080, ...(o.portName ? { name: o.portName } : {}), protocol: 'TCP' },
      ],
      readinessProbe: {
        httpGet: { path: o.readinessPath ?? '/healthz', port: o.port ?? 8080 },
        periodSeconds: 1,
      },
    }
    if (o.command) container.command = o.command
    if (o.env) container.env = Object.entries(o.env).map(([n, value]) => ({ name: n, value }))
    Object.assign(container, o.container)
    const podSpec: Record<string, unknown> = {
      containers: [container],
      terminationGracePeriodSeconds: o.grace ?? 2,
    }
    if (o.initContainers) podSpec.initContainers = o.initContainers
    const spec: Record<string, unknown> = {
      replicas: o.replicas ?? 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels, ...(o.annotations ? { annotations: o.annotations } : {}) },
        spec: podSpec,
      },
    }
    if (kind === 'StatefulSet') {
      spec.serviceName = name
      spec.podManagementPolicy = o.podManagementPolicy ?? 'OrderedReady'
    }
    return { apiVersion: 'apps/v1', kind, metadata: { name, namespace: o.namespace ?? 'default' }, spec }
  }

  return {
    url,
    store,
    api,
    kubelet,
    // Seeding goes around RBAC (a test's own setup is not the client under test).
    async createDeployment(name, o = {}) {
      return store.create('deployments', withDefaults(workload('Deployment', name, o)))
    },
    async createStatefulSet(name, o = {}) {
      return store.create('statefulsets', withDefaults(workload('StatefulSet', name, o)))
    },
    async createService(name, o) {
      const body = {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name, namespace: o.namespace ?? 'default' },
        spec: {
          selector: o.selector,
          ports: [{ name: 'http', port: o.port ?? 80, targetPort: o.targetPort ?? 8080, protocol: 'TCP' }],
        },
      }
      return store.create('services', {
        ...body,
        spec: { ...body.spec, type: 'ClusterIP' },
        status: { loadBalancer: {} },
      })
    },
    pods(namespace = 'default') {
      return store.list('pods', namespace)
    },
    writeKubeconfig(dir, o = {}) {
      const path = join(dir, 'kubeconfig')
      const context = o.context ?? 'emulator'
      const config = {
        apiVersion: 'v1',
        kind: 'Config',
        // client-node 1.x refuses plain http unless TLS verification is off (there is no TLS to verify).
        clusters: [{ name: 'emulator', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'tide', user: options.token ? { token: options.token } : {} }],
        contexts: [
          {
            name: context,
            context: {
              cluster: 'emulator',
              user: 'tide',
              ...(o.namespace ? { namespace: o.namespace } : {}),
            },
          },
        ],
        'current-context': context,
      }
      writeFileSync(path, JSON.stringify(config, null, 2))
      return path
    },
    async close() {
      await kubelet?.close()
      await api.close()
    },
  }
}

function withDefaults(object: Obj): Obj {
  object.status = {
    replicas: 0,
    readyReplicas: 0,
    availableReplicas: 0,
    updatedReplicas: 0,
    observedGeneration: 0,
  }
  if (object.kind === 'StatefulSet') object.status.currentReplicas = 0
  return object
}
