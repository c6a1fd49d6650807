/**
 * The emulator's cluster side: the controllers and a fake kubelet, acting on the store the way
 * Kubernetes' own do, so a client sees real cause and effect:
 *
 * - Deployment controller: keeps `spec.replicas` pods (named `<deployment>-<template-hash>-<x>`;
 *   the ReplicaSet in between is not emulated), removes the ones the ReplicaSet controller would
 *   (unscheduled, then pending, then not ready, then lower `controller.kubernetes.io/pod-deletion-cost`,
 *   then newest), and keeps `status` (replicas, readyReplicas, availableReplicas).
 * - StatefulSet controller: pods `<name>-<ordinal>`; with `OrderedReady` (the default) it creates
 *   one ordinal at a time once the ones below are ready and removes from the highest down, one
 *   at a time; with `Parallel` all at once.
 * - Endpoints and EndpointSlice controllers: for each Service with a selector, the matching pods'
 *   IPs, ready or not, with terminating pods as `terminating` in the slice.
 * - kubelet: a new pod is scheduled after `startDelay` (image pull, scheduling), gets an IP on
 *   loopback (127.x.y.z: every pod its own address, the same container port, as in a cluster),
 *   and its container starts: a real listening HTTP server in this process (`socket`), or a real
 *   process running the container's `command` with PORT and HOST set (`process`). The pod turns
 *   Ready `readyDelay` after its readiness probe (httpGet) first passes. A deleted pod (graceful
 *   deletion sets deletionTimestamp) has its server closed after its requests in flight end, or
 *   its process sent SIGTERM (SIGKILL after the grace period), then goes from the store.
 *
 * `served` records every request a pod's socket server answered and whether the pod was Ready at
 * that moment, so a test can prove no request reached a pod before Kubernetes called it ready.
 *
 * Pods that cannot start, as real ones fail (container statuses as the kubelet writes them),
 * chosen by the pod template:
 *
 * - an image that does not exist: its registry host ends in `.invalid` (RFC 2606: never
 *   resolves; `no-such-registry.invalid/app:1`) or its name contains `does-not-exist`
 *   (`example/does-not-exist:1`). The container waits with `ErrImagePull`, then
 *   `ImagePullBackOff`, then `ErrImagePull` again… with a growing back-off; no IP, phase Pending.
 * - an image that is not a valid reference (`Example/App:1`, `app: 1`): `InvalidImageName`.
 * - an env `valueFrom.configMapKeyRef` / `secretKeyRef` or an `envFrom` `configMapRef` /
 *   `secretRef` that is not `optional: true`: `CreateContainerConfigError` (`configmap "x" not
 *   found`): the emulator stores no ConfigMaps or Secrets, so every reference is a missing one.
 * - the pod annotation `emulator.tide.dev/exit-code: "<n>"` (`EXIT_CODE_ANNOTATION`; set it in
 *   the template's metadata): the container (socket runtime) exits with code n `crashAfter` ms
 *   after it starts, without ever listening. With the `process` runtime, a command that exits is
 *   the same crash with its real exit code (a command that cannot run: exit 128, StartError).
 *   A crash is `state.terminated` {exitCode, reason Error|Completed, startedAt, finishedAt}; the
 *   first restart is at once, later ones wait `backoff` ms doubling up to `maxBackoff` in
 *   `waiting` {reason CrashLoopBackOff, message "back-off … restarting failed container=…"}, and
 *   every restart adds one to `restartCount` and keeps the crash in `lastState.terminated`.
 *   Removing the annotation from the pod makes its next restart succeed: a pod that recovers.
 *
 * The image and config checks apply to init containers too (`initContainerStatuses`, and the
 * app containers wait with PodInitializing); init containers that pass them count as completed.
 * Checks and the annotation are read again at every retry, so fixing the pod lets it start.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import { request } from 'node:http'
import { now, type Obj, randomSuffix, selectorOf, type Store } from './store.js'

export interface KubeletOptions {
  /** From a pod's creation to its container starting (scheduling, image pull). @default 30 */
  startDelay?: number
  /** From the readiness probe's first pass to Ready=True. @default 50 */
  readyDelay?: number
  /** Time between readiness probes (the real minimum is 1s; tests want faster). @default 25 */
  probeInterval?: number
  /** `socket`: an HTTP server in this process per pod; `process`: the container's command. @default 'socket' */
  runtime?: 'socket' | 'process'
  /** Working directory of `process` containers. */
  cwd?: string
  /** The first back-off of a crash loop or a failed image pull; it doubles each time. @default 100 */
  backoff?: number
  /** The longest back-off (the kubelet's is 5 minutes). @default 1600 */
  maxBackoff?: number
  /** How long a container with the exit-code annotation runs before it exits. @default 50 */
  crashAfter?: number
}

/** A pod annotation: its container exits with this code soon after every start (a crash loop). */
export const EXIT_CODE_ANNOTATION = 'emulator.tide.dev/exit-code'

export interface Served {
  pod: string
  path: string
  /** Was the pod Ready (as the API says) when the request arrived? */
  ready: boolean
  at: number
}

interface Running {
  uid: string
  name: string
  namespace: string
  ip?: string
  port?: number
  server?: Server
  child?: ChildProcess
  timers: NodeJS.Timeout[]
  stopping?: Promise<void>
  ready: boolean
  /** Restarts after crashes so far (the container status' restartCount). */
  restarts: number
  /** When the current container started. */
  startedAt?: string
  /** The last crash, for `lastState.terminated`. */
  lastTerminated?: Terminated
  /** Retries of a container that could not be created (image pull, config), for the back-off. */
  attempts: number
}

interface Terminated {
  exitCode: number
  signal?: number
  reason: string
  message?: string
  startedAt?: string
  finishedAt: string
  containerID: string
}

/** Why the kubelet cannot create a container: the waiting reason and message it reports. */
interface Blocked {
  init: boolean
  container: string
  reason: 'ErrImagePull' | 'InvalidImageName' | 'CreateContainerConfigError'
  message: string
}

const DELETION_COST = 'controller.kubernetes.io/pod-deletion-cost'

export class Kubelet {
  readonly served: Served[] = []
  private readonly running = new Map<string, Running>()
  private scheduled = false
  private closed = false
  private readonly ipBase = `127.${100 + Math.floor(Math.random() * 150)}.${Math.floor(Math.random() * 250)}`
  private nextIp = 1
  private readonly options: Required<Omit<KubeletOptions, 'cwd'>> & { cwd?: string }
  private readonly onChange = () => this.schedule()

  constructor(
    private readonly store: Store,
    options: KubeletOptions = {},
  ) {
    this.options = {
      startDelay: 30,
      readyDelay: 50,
      probeInterval: 25,
      runtime: 'socket',
      backoff: 100,
      maxBackoff: 1600,
      crashAfter: 50,
      ...options,
    }
    store.on('change', this.onChange)
    this.schedule()
  }

  /** Stops every container (no grace) and the controllers. */
  async close(): Promise<void> {
    this.closed = true
    this.store.off('change', this.onChange)
    await Promise.all(
      [...this.running.values()].map(async (r) => {
        r.timers.forEach(clearTimeout)
        r.child?.kill('SIGKILL')
        if (r.server) {
          r.server.closeAllConnections()
          await new Promise<void>((resolve) => r.server!.close(() => resolve()))
        }
      }),
    )
  }

  /** Pods the kubelet runs now, by name. */
  pods(): string[] {
    return [...this.running.values()].map((r) => r.name)
  }

  private schedule(): void {
    if (this.scheduled || this.closed) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      if (!this.closed) this.reconcile()
    })
  }

  private reconcile(): void {
    for (const d of this.store.list('deployments')) this.deployment(d)
    for (const s of this.store.list('statefulsets')) this.statefulSet(s)
    for (const pod of this.store.list('pods')) this.kubelet(pod)
    for (const svc of this.store.list('services')) this.endpoints(svc)
  }

  // ─── Controllers ───────────────────────────────────────────────────────────

  private owned(owner: Obj): Obj[] {
    return this.store
      .list('pods', owner.metadata.namespace)
      .filter((p) => p.metadata.ownerReferences?.some((o) => o.uid === owner.metadata.uid))
  }

  private deployment(d: Obj): void {
    const pods = this.owned(d)
    const active = pods.filter(isActive)
    const want = d.spec.replicas ?? 1
    if (active.length < want) {
      const hash = templateHash(d.spec.template)
      for (let i = active.length; i < want; i++) {
        this.createPod(d, `${d.metadata.name}-${hash}-${randomSuffix()}`, { 'pod-template-hash': hash })
      }
    } else if (active.length > want) {
      for (const victim of active.sort(deletionOrder).slice(0, active.length - want)) this.deletePod(victim)
    }
    const ready = active.filter(isReady).length
    this.setStatus('deployments', d, {
      ...d.status,
      observedGeneration: d.metadata.generation,
      replicas: active.length,
      updatedReplicas: active.length,
      readyReplicas: ready,
      availableReplicas: ready,
    })
  }

  private statefulSet(s: Obj): void {
    const pods = this.owned(s)
    const want = s.spec.replicas ?? 1
    const parallel = s.spec.podManagementPolicy === 'Parallel'
    const byOrdinal = new Map(pods.map((p) => [Number(p.metadata.name.slice(s.metadata.name.length + 1)), p]))
    for (let i = 0; i < want; i++) {
      const pod = byOrdinal.get(i)
      if (pod) {
        if (!parallel && !(isActive(pod) && isReady(pod))) break
        continue
      }
      this.createPod(s, `${s.metadata.name}-${i}`, {
        'statefulset.kubernetes.io/pod-name': `${s.metadata.name}-${i}`,
      })
      if (!parallel) break
    }
    const extra = [...byOrdinal.entries()].filter(([i]) => i >= want).sort(([a], [b]) => b - a)
    const terminating = pods.some((p) => p.metadata.deletionTimestamp)
    for (const [, pod] of parallel ? extra : terminating ? [] : extra.slice(0, 1)) this.deletePod(pod)
    const active = pods.filter(isActive)
    const ready = active.filter(isReady).length
    this.setStatus('statefulsets', s, {
      ...s.status,
      observedGeneration: s.metadata.generation,
      replicas: active.length,
      currentReplicas: active.length,
      updatedReplicas: active.length,
      readyReplicas: ready,
      availableReplicas: ready,
    })
  }

  private createPod(owner: Obj, name: string, extraLabels: Record<string, string>): void {
    const template = structuredClone(owner.spec.template ?? {})
    this.store.create('pods', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        ...template.metadata,
        name,
        namespace: owner.metadata.namespace,
        labels: { ...template.metadata?.labels, ...extraLabels },
        ownerReferences: [
          {
            apiVersion: 'apps/v1',
            kind: owner.kind,
            name: owner.metadata.name,
            uid: owner.metadata.uid!,
            controller: true,
          },
        ],
      },
      spec: { terminationGracePeriodSeconds: 30, ...template.spec },
      status: {
        phase: 'Pending',
        conditions: [{ type: 'PodScheduled', status: 'False', lastTransitionTime: now() }],
      },
    })
  }

  /** Graceful deletion, as the API server does it for a controller's DELETE. */
  private deletePod(pod: Obj): void {
    if (pod.metadata.deletionTimestamp) return
    const grace = pod.spec?.terminationGracePeriodSeconds ?? 30
    pod.metadata.deletionTimestamp = new Date(Date.now() + grace * 1000).toISOString().replace(/\.\d+Z$/, 'Z')
    pod.metadata.deletionGracePeriodSeconds = grace
    this.store.update('pods', pod)
  }

  private setStatus(
    resource: 'deployments' | 'statefulsets',
    object: Obj,
    status: Record<string, unknown>,
  ): void {
    if (JSON.stringify(object.status) === JSON.stringify(status)) return
    this.store.update(resource, { ...object, status })
  }

  private endpoints(svc: Obj): void {
    const selector = svc.spec?.selector
    if (!selector || Object.keys(selector).length === 0) return
    const { namespace, name } = svc.metadata
    const pods = this.store
      .list('pods', namespace, selectorOf({ matchLabels: selector }))
      .filter((p) => p.status?.podIP)
    const ports = (svc.spec.ports ?? []).map(
      (sp: { name?: string; port: number; targetPort?: number | string; protocol?: string }) => ({
        ...(sp.name ? { name: sp.name } : {}),
        port: resolvePort(sp.targetPort ?? sp.port, pods[0]) ?? sp.port,
        protocol: sp.protocol ?? 'TCP',
      }),
    )
    const address = (p: Obj) => ({
      ip: p.status.podIP,
      nodeName: p.spec.nodeName,
      targetRef: { kind: 'Pod', name: p.metadata.name, namespace, uid: p.metadata.uid },
    })
    const live = pods.filter((p) => !p.metadata.deletionTimestamp)
    const ready = live.filter(isReady).map(address)
    const notReady = live.filter((p) => !isReady(p)).map(address)
    const subset: Record<string, unknown> = { ports }
    if (ready.length) subset.addresses = ready
    if (notReady.length) subset.notReadyAddresses = notReady
    const endpoints: Obj = {
      apiVersion: 'v1',
      kind: 'Endpoints',
      metadata: { name, namespace, labels: svc.metadata.labels },
      subsets: ready.length || notReady.length ? [subset] : [],
    }
    this.put('endpoints', endpoints, (e) => ({ subsets: e.subsets }))

    const sliceName = `${name}-${createHash('sha1').update(svc.metadata.uid!).digest('hex').slice(0, 5)}`
    const slice: Obj = {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: sliceName,
        namespace,
        labels: {
          'kubernetes.io/service-name': name,
          'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
        },
        ownerReferences: [
          { apiVersion: 'v1', kind: 'Service', name, uid: svc.metadata.uid!, controller: true },
        ],
      },
      addressType: 'IPv4',
      endpoints: pods.map((p) => {
        const terminating = p.metadata.deletionTimestamp !== undefined
        return {
          addresses: [p.status.podIP],
          conditions: { ready: isReady(p) && !terminating, serving: isReady(p), terminating },
          nodeName: p.spec.nodeName,
          targetRef: { kind: 'Pod', name: p.metadata.name, namespace, uid: p.metadata.uid },
        }
      }),
      ports,
    }
    this.put('endpointslices', slice, (s) => ({ endpoints: s.endpoints, ports: s.ports }))
  }

  /** Creates or updates an object the controllers own, only when what matters changed. */
  private put(resource: 'endpoints' | 'endpointslices', object: Obj, content: (o: Obj) => unknown): void {
    const current = this.store.get(resource, object.metadata.namespace!, object.metadata.name)
    if (!current) this.store.create(resource, object)
    else if (JSON.stringify(content(current)) !== JSON.stringify(content(object)))
      this.store.update(resource, {
        ...current,
        ...object,
        metadata: { ...current.metadata, labels: object.metadata.labels },
      })
  }

  // ─── kubelet ───────────────────────────────────────────────────────────────

  private kubelet(pod: Obj): void {
    const uid = pod.metadata.uid!
    let run = this.running.get(uid)
    if (pod.metadata.deletionTimestamp) {
      if (!run) {
        this.store.delete('pods', pod.metadata.namespace!, pod.metadata.name)
        return
      }
      run.stopping ??= this.stop(run, pod).then(() => {
        this.running.delete(uid)
        if (this.store.get('pods', pod.metadata.namespace!, pod.metadata.name)) {
          this.store.delete('pods', pod.metadata.namespace!, pod.metadata.name)
        }
      })
      return
    }
    if (run) return
    if (pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded') return
    run = {
      uid,
      name: pod.metadata.name,
      namespace: pod.metadata.namespace!,
      timers: [],
      ready: false,
      restarts: 0,
      attempts: 0,
    }
    this.running.set(uid, run)
    const current = run
    current.timers.push(
      setTimeout(() => void this.startContainer(current).catch(() => {}), this.options.startDelay),
    )
  }

  private fresh(run: Running): Obj | undefined {
    const pod = this.store.get('pods', run.namespace, run.name)
    return pod && pod.metadata.uid === run.uid && !pod.metadata.deletionTimestamp ? pod : undefined
  }

  private async startContainer(run: Running): Promise<void> {
    let pod = this.fresh(run)
    if (!pod || this.closed) return
    const blocked = cannotCreate(pod)
    if (blocked) return this.holdBack(run, pod, blocked)
    run.attempts = 0
    const container = pod.spec.containers?.[0] ?? { name: 'app' }
    const port = container.ports?.[0]?.containerPort ?? 8080
    const exitCode = this.options.runtime === 'socket' ? crashCode(pod) : undefined
    run.port = port
    for (let attempt = 0; attempt < 20 && !run.server && !run.child; attempt++) {
      const ip = run.ip ?? `${this.ipBase}.${this.nextIp++}`
      if (this.nextIp > 254) this.nextIp = 1
      if (this.options.runtime === 'socket') {
        // A container that crashes at start never listens; the pod has its IP all the same.
        if (exitCode !== undefined) {
          run.ip = ip
          break
        }
        const server = this.socketServer(run)
        const ok = await new Promise<boolean>((resolve) => {
          server.once('error', () => resolve(false))
          server.listen(port, ip, () => resolve(true))
        })
        if (ok) {
          run.server = server
          run.ip = ip
        } else if (run.ip) break // the pod keeps its IP across restarts; nothing else to try
      } else {
        run.ip = ip
        const child = this.spawnContainer(container, ip, port)
        run.child = child
        child.once('error', (err) =>
          this.exited(run, child, { exitCode: 128, reason: 'StartError', message: err.message }),
        )
        child.once('exit', (code, signal) =>
          this.exited(run, child, {
            exitCode: code ?? 128 + (signal ? (SIGNALS[signal] ?? 0) : 0),
            ...(signal && SIGNALS[signal] ? { signal: SIGNALS[signal] } : {}),
          }),
        )
      }
    }
    pod = this.fresh(run)
    if (!pod || !run.ip) return
    const started = now()
    run.startedAt = started
    pod.spec.nodeName = 'emulated-node'
    pod.status = {
      phase: 'Running',
      hostIP: '127.0.0.1',
      podIP: run.ip,
      podIPs: [{ ip: run.ip }],
      startTime: pod.status?.startTime ?? started,
      conditions: [
        { type: 'PodScheduled', status: 'True', lastTransitionTime: started },
        { type: 'Initialized', status: 'True', lastTransitionTime: started },
        { type: 'ContainersReady', status: 'False', lastTransitionTime: started },
        { type: 'Ready', status: 'False', lastTransitionTime: started },
      ],
      containerStatuses: [
        {
          name: container.name,
          image: container.image ?? 'emulated',
          imageID: '',
          ready: false,
          started: true,
          restartCount: run.restarts,
          state: { running: { startedAt: started } },
          ...(run.lastTerminated ? { lastState: { terminated: run.lastTerminated } } : {}),
        },
      ],
    }
    const init = initStatuses(pod, started)
    if (init) pod.status.initContainerStatuses = init
    this.store.update('pods', pod)
    if (exitCode !== undefined) {
      run.timers.push(setTimeout(() => this.exited(run, undefined, { exitCode }), this.options.crashAfter))
      return
    }
    this.probe(run, container.readinessProbe?.httpGet?.path ?? '/')
  }

  /**
   * The container exited without being asked (a crash): Ready goes False, the container status
   * is `terminated`, and the kubelet restarts it, at once the first time, then after a back-off
   * that doubles (CrashLoopBackOff), each restart counted in `restartCount`.
   */
  private exited(
    run: Running,
    child: ChildProcess | undefined,
    how: { exitCode: number; signal?: number; reason?: string; message?: string },
  ): void {
    if (child && run.child !== child) return // an earlier container of the pod
    run.child = undefined
    const pod = this.fresh(run)
    if (!pod || this.closed || run.stopping) return
    run.ready = false
    run.timers.forEach(clearTimeout)
    run.timers = []
    if (run.server) {
      const server = run.server
      run.server = undefined
      server.closeAllConnections()
      server.close()
    }
    const container = pod.spec.containers?.[0] ?? { name: 'app' }
    const terminated: Terminated = {
      exitCode: how.exitCode,
      ...(how.signal ? { signal: how.signal } : {}),
      reason: how.reason ?? (how.exitCode === 0 ? 'Completed' : 'Error'),
      ...(how.message ? { message: how.message } : {}),
      ...(run.startedAt ? { startedAt: run.startedAt } : {}),
      finishedAt: now(),
      containerID: `emulated://${run.uid}/${run.restarts}`,
    }
    const at = now()
    for (const c of pod.status?.conditions ?? []) {
      if ((c.type === 'Ready' || c.type === 'ContainersReady') && c.status !== 'False') {
        c.status = 'False'
        c.lastTransitionTime = at
      }
    }
    const status = {
      name: container.name,
      image: container.image ?? 'emulated',
      imageID: '',
      ready: false,
      started: false,
      restartCount: run.restarts,
      state: { terminated },
      ...(run.lastTerminated ? { lastState: { terminated: run.lastTerminated } } : {}),
    }
    pod.status.containerStatuses = [status]
    this.store.update('pods', pod)
    run.lastTerminated = terminated
    const delay =
      run.restarts === 0
        ? 0
        : Math.min(this.options.backoff * 2 ** (run.restarts - 1), this.options.maxBackoff)
    const restart = () => {
      if (!this.fresh(run) || this.closed || run.stopping) return
      run.restarts++
      void this.startContainer(run).catch(() => {})
    }
    if (delay === 0) {
      run.timers.push(setTimeout(restart, 10))
      return
    }
    run.timers.push(
      setTimeout(
        () => {
          const current = this.fresh(run)
          if (!current || this.closed || run.stopping) return
          current.status.containerStatuses = [
            {
              ...status,
              state: {
                waiting: {
                  reason: 'CrashLoopBackOff',
                  message: `back-off ${seconds(delay)} restarting failed container=${container.name} pod=${run.name}_${run.namespace}(${run.uid})`,
                },
              },
              lastState: { terminated },
            },
          ]
          this.store.update('pods', current)
        },
        Math.min(10, delay / 2),
      ),
      setTimeout(restart, delay),
    )
  }

  /**
   * A container the kubelet cannot create: the pod stays Pending with the container waiting
   * for the reason, and the kubelet tries again after a back-off (an image pull alternates
   * ErrImagePull and ImagePullBackOff). Each try reads the pod again: a fixed pod starts.
   */
  private holdBack(run: Running, pod: Obj, blocked: Blocked): void {
    const attempt = run.attempts++
    const pulling = blocked.reason === 'ErrImagePull'
    const reason = pulling && attempt % 2 === 1 ? 'ImagePullBackOff' : blocked.reason
    const image = (blocked.init ? pod.spec.initContainers : pod.spec.containers)?.find(
      (c: { name: string }) => c.name === blocked.container,
    )?.image
    const message = reason === 'ImagePullBackOff' ? `Back-off pulling image "${image}"` : blocked.message
    const at =
      pod.status?.conditions?.find(
        (c: { type: string; status: string }) => c.type === 'PodScheduled' && c.status === 'True',
      )?.lastTransitionTime ?? now()
    const waitingFor = (c: { name: string; image?: string }, init: boolean) => ({
      name: c.name,
      image: c.image ?? 'emulated',
      imageID: '',
      ready: false,
      started: false,
      restartCount: 0,
      state: {
        waiting:
          init === blocked.init && c.name === blocked.container
            ? { reason, message }
            : { reason: blocked.init && !init ? 'PodInitializing' : 'ContainerCreating' },
      },
    })
    const notReady = (type: string, why: string) => ({
      type,
      status: 'False',
      lastTransitionTime: at,
      reason: why,
    })
    const status: Obj['status'] = {
      phase: 'Pending',
      hostIP: '127.0.0.1',
      startTime: pod.status?.startTime ?? at,
      conditions: [
        { type: 'PodScheduled', status: 'True', lastTransitionTime: at },
        blocked.init
          ? notReady('Initialized', 'ContainersNotInitialized')
          : { type: 'Initialized', status: 'True', lastTransitionTime: at },
        notReady('ContainersReady', 'ContainersNotReady'),
        notReady('Ready', 'ContainersNotReady'),
      ],
      containerStatuses: (pod.spec.containers ?? []).map((c: { name: string }) => waitingFor(c, false)),
    }
    if (pod.spec.initContainers?.length)
      status.initContainerStatuses = pod.spec.initContainers.map((c: { name: string }) => waitingFor(c, true))
    if (JSON.stringify(pod.status) !== JSON.stringify(status) || pod.spec.nodeName !== 'emulated-node') {
      pod.spec.nodeName = 'emulated-node'
      pod.status = status
      this.store.update('pods', pod)
    }
    const delay = pulling
      ? Math.min(this.options.backoff * 2 ** Math.floor(attempt / 2), this.options.maxBackoff)
      : this.options.maxBackoff
    run.timers.push(setTimeout(() => void this.startContainer(run).catch(() => {}), delay))
  }

  private spawnContainer(
    container: { command?: string[]; args?: string[]; env?: Array<{ name: string; value?: string }> },
    ip: string,
    port: number,
  ): ChildProcess {
    const argv = [...(container.command ?? []), ...(container.args ?? [])]
    if (argv.length === 0) throw new Error('process runtime: the container has no command')
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      PORT: String(port),
      HOST: ip,
    }
    for (const e of container.env ?? []) env[e.name] = e.value ?? ''
    return spawn(argv[0]!, argv.slice(1), { cwd: this.options.cwd, env, stdio: 'ignore' })
  }

  private socketServer(run: Running): Server {
    return createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0]!
      if (path === '/healthz' || req.headers['user-agent'] === 'kube-probe/1.35') {
        res.end('ok')
        return
      }
      this.served.push({ pod: run.name, path, ready: run.ready, at: Date.now() })
      const sleep = Number(new URL(req.url ?? '/', 'http://pod').searchParams.get('sleep') ?? 0)
      const answer = () => {
        res.setHeader('Content-Type', 'application/json')
        res.setHeader('X-Pod', run.name)
        res.end(JSON.stringify({ pod: run.name, path }))
      }
      req.resume()
      if (sleep > 0) setTimeout(answer, sleep)
      else answer()
    })
  }

  /** Readiness probe: GET path until it answers 2xx/3xx, then Ready after readyDelay. */
  private probe(run: Running, path: string): void {
    const attempt = () => {
      if (this.closed || !this.fresh(run)) return
      const req = request(
        {
          host: run.ip,
          port: run.port,
          path,
          method: 'GET',
          headers: { 'User-Agent': 'kube-probe/1.35' },
          timeout: 1000,
        },
        (res) => {
          res.resume()
          if (res.statusCode! >= 200 && res.statusCode! < 400) {
            run.timers.push(setTimeout(() => this.markReady(run), this.options.readyDelay))
          } else retry()
        },
      )
      req.on('error', retry)
      req.on('timeout', () => req.destroy())
      req.end()
    }
    const retry = () => {
      run.timers.push(setTimeout(attempt, this.options.probeInterval))
    }
    attempt()
  }

  private markReady(run: Running): void {
    const pod = this.fresh(run)
    if (!pod) return
    const at = now()
    for (const c of pod.status.conditions) {
      if (c.type === 'Ready' || c.type === 'ContainersReady') {
        c.status = 'True'
        c.lastTransitionTime = at
      }
    }
    for (const c of pod.status.containerStatuses ?? []) c.ready = true
    run.ready = true
    this.store.update('pods', pod)
  }

  private async stop(run: Running, pod: Obj): Promise<void> {
    run.ready = false
    run.timers.forEach(clearTimeout)
    const graceMs = (pod.metadata.deletionGracePeriodSeconds ?? 30) * 1000
    if (run.server) {
      const server = run.server
      server.closeIdleConnections()
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.closeAllConnections()
          resolve()
        }, graceMs)
        server.close(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
    const child = run.child
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
      await exited
      clearTimeout(timer)
    }
  }
}

function isActive(pod: Obj): boolean {
  return (
    !pod.metadata.deletionTimestamp && pod.status?.phase !== 'Failed' && pod.status?.phase !== 'Succeeded'
  )
}

export function isReady(pod: Obj): boolean {
  return (
    pod.status?.conditions?.some(
      (c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True',
    ) ?? false
  )
}

function readySince(pod: Obj): number {
  const c = pod.status?.conditions?.find((c: { type: string }) => c.type === 'Ready')
  return c?.lastTransitionTime ? Date.parse(c.lastTransitionTime) : 0
}

/** The ReplicaSet controller's order of removal (pkg/controller/controller_utils.go ActivePodsWithRanks), simplified. */
function deletionOrder(a: Obj, b: Obj): number {
  const assigned = (p: Obj) => (p.spec?.nodeName ? 1 : 0)
  const phase = (p: Obj) => ({ Pending: 0, Unknown: 1, Running: 2 })[p.status?.phase as string] ?? 0
  const cost = (p: Obj) => Number(p.metadata.annotations?.[DELETION_COST] ?? 0)
  return (
    assigned(a) - assigned(b) ||
    phase(a) - phase(b) ||
    Number(isReady(a)) - Number(isReady(b)) ||
    cost(a) - cost(b) ||
    (isReady(a) && isReady(b) ? readySince(b) - readySince(a) : 0) ||
    Date.parse(b.metadata.creationTimestamp!) - Date.parse(a.metadata.creationTimestamp!) ||
    b.metadata.name.localeCompare(a.metadata.name)
  )
}

function templateHash(template: unknown): string {
  return createHash('sha1')
    .update(JSON.stringify(template ?? {}))
    .digest('hex')
    .slice(0, 10)
}

function resolvePort(target: number | string, pod: Obj | undefined): number | undefined {
  if (typeof target === 'number') return target
  for (const c of pod?.spec?.containers ?? []) {
    for (const p of c.ports ?? []) if (p.name === target) return p.containerPort
  }
  return undefined
}

/** Signal numbers for a `process` container killed by one (exit code 128 + n, as a shell says). */
const SIGNALS: Partial<Record<NodeJS.Signals, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGABRT: 6,
  SIGKILL: 9,
  SIGSEGV: 11,
  SIGPIPE: 13,
  SIGTERM: 15,
}

/** "100ms", "1.6s", "10s": how the kubelet's back-off message reads. */
function seconds(ms: number): string {
  return ms < 1000 ? `${ms}ms` : `${Math.round(ms / 100) / 10}s`
}

/** The exit code the pod's annotation asks its container to crash with, if any. */
function crashCode(pod: Obj): number | undefined {
  const text = pod.metadata.annotations?.[EXIT_CODE_ANNOTATION]
  if (text === undefined) return undefined
  const code = Number(text)
  return Number.isInteger(code) && code >= 0 && code <= 255 ? code : 1
}

/** Init containers, once the pod runs: each one completed (exit code 0). */
function initStatuses(pod: Obj, at: string): Obj['status'][] | undefined {
  const init: Array<{ name: string; image?: string }> = pod.spec.initContainers ?? []
  if (init.length === 0) return undefined
  return init.map((c) => ({
    name: c.name,
    image: c.image ?? 'emulated',
    imageID: '',
    ready: true,
    started: false,
    restartCount: 0,
    state: {
      terminated: {
        exitCode: 0,
        reason: 'Completed',
        startedAt: at,
        finishedAt: at,
        containerID: `emulated://${c.name}`,
      },
    },
  }))
}

const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*'
/** A container image reference, as the kubelet parses it (distribution/reference, simplified). */
const IMAGE_REFERENCE = new RegExp(
  `^(?:[a-zA-Z0-9-]+(?:\\.[a-zA-Z0-9-]+)*(?::[0-9]+)?/)?${COMPONENT}(?:/${COMPONENT})*(?::[\\w][\\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$`,
)

interface ContainerSpec {
  name: string
  image?: string
  env?: Array<{
    name: string
    valueFrom?: {
      configMapKeyRef?: { name?: string; optional?: boolean }
      secretKeyRef?: { name?: string; optional?: boolean }
    }
  }>
  envFrom?: Array<{
    configMapRef?: { name?: string; optional?: boolean }
    secretRef?: { name?: string; optional?: boolean }
  }>
}

/** Why the kubelet cannot create this container (the header's conventions), if it can't. */
function containerProblem(c: ContainerSpec, init: boolean): Blocked | undefined {
  // No image at all: the real API server refuses such a pod; the emulator's tests may omit it.
  const image = c.image
  const at = { init, container: c.name }
  if (image !== undefined && !IMAGE_REFERENCE.test(image)) {
    return {
      ...at,
      reason: 'InvalidImageName',
      message: `Failed to apply default image tag "${image}": couldn't parse image name "${image}": invalid reference format`,
    }
  }
  const first = image?.split('/')[0] ?? ''
  const host = image?.includes('/') && /[.:]/.test(first) ? first.replace(/:\d+$/, '') : undefined
  if (host?.endsWith('.invalid')) {
    return {
      ...at,
      reason: 'ErrImagePull',
      message: `Failed to pull image "${image}": rpc error: code = Unknown desc = failed to pull and unpack image "${image}": failed to resolve reference "${image}": dial tcp: lookup ${host}: no such host`,
    }
  }
  if (image?.includes('does-not-exist')) {
    return {
      ...at,
      reason: 'ErrImagePull',
      message: `Failed to pull image "${image}": rpc error: code = NotFound desc = failed to pull and unpack image "${image}": failed to resolve reference "${image}": not found`,
    }
  }
  const refs = [
    ...(c.env ?? []).flatMap((e) => [
      ['configmap', e.valueFrom?.configMapKeyRef] as const,
      ['secret', e.valueFrom?.secretKeyRef] as const,
    ]),
    ...(c.envFrom ?? []).flatMap((e) => [
      ['configmap', e.configMapRef] as const,
      ['secret', e.secretRef] as const,
    ]),
  ]
  for (const [kind, ref] of refs) {
    if (ref && !ref.optional)
      return { ...at, reason: 'CreateContainerConfigError', message: `${kind} "${ref.name ?? ''}" not found` }
  }
  return undefined
}

/** The first container of the pod the kubelet cannot create: init containers first. */
function cannotCreate(pod: Obj): Blocked | undefined {
  for (const c of (pod.spec.initContainers ?? []) as ContainerSpec[]) {
    const problem = containerProblem(c, true)
    if (problem) return problem
  }
  for (const c of (pod.spec.containers ?? []) as ContainerSpec[]) {
    const problem = containerProblem(c, false)
    if (problem) return problem
  }
  return undefined
}
