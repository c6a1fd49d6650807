/**
 * The `kubernetes` target: a Deployment or StatefulSet whose size Tide sets through the scale
 * subresource, and whose pods are the group's instances.
 *
 *   start:  credentials → namespace → GET <workload>/scale (desired, label selector)
 *           → list + watch pods (or the Service's EndpointSlices): instances, readiness
 *   status: GET scale (desired) + the watched instances
 *   scale up:   PUT scale (with its resourceVersion; 409 → read again, retry)
 *               → wait until `to` pods are Ready (watch), at most `ready_timeout`; pods that
 *               cannot start (CrashLoopBackOff, ImagePullBackOff…) with none left starting
 *               fail it at once (E_K8S_POD_FAILED), so a wake from zero answers its held
 *               requests now rather than at `ready_timeout`
 *   scale down: choose victims (StatefulSet: the highest ordinals; Deployment: the engine's
 *               choice, else not-ready, else newest) → mark them with a low
 *               controller.kubernetes.io/pod-deletion-cost so the ReplicaSet removes those
 *               → drain them in Tide's router (no new requests; wait for those in flight)
 *               → PUT scale → wait until the pods are terminating
 *
 * Kubernetes decides which pod dies (the annotation is a strong hint, not a promise). A pod it
 * removes that Tide did not drain leaves the router the moment it is terminating (it is no
 * longer `ready`), and its requests in flight finish under the pod's own SIGTERM handling and
 * terminationGracePeriodSeconds; a drained victim that Kubernetes kept is given back to the
 * router. Pods outlive Tide: `close()` stops watching and leaves the workload as it is.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { V1Scale } from '@kubernetes/client-node'
import { formatDuration } from '../../core/duration.js'
import { BadRequestError, errorMessage, NoChangeError } from '../../core/errors.js'
import type { GroupStatus, Instance, ScalePlan, ScaleResult, Target } from '../../core/types.js'
import { describeWorkload, KubeClient, type Workload } from './client.js'
import { type Environment, loadCredentials, realEnvironment, resolveNamespace } from './credentials.js'
import { KubernetesClosedError, KubernetesError } from './errors.js'
import {
  byCreation,
  chooseVictims,
  DELETION_COST,
  podInstance,
  sliceInstances,
  statefulSetVictims,
} from './instances.js'
import { Reflector } from './reflector.js'

/** The validated config this class needs (index.ts's KubernetesTargetConfig, durations in ms). */
export interface KubernetesSettings {
  workload: { kind: 'deployment' | 'statefulset'; name: string }
  namespace?: string
  kubeconfig?: string
  context?: string
  port?: number | string
  readiness: 'pods' | 'endpointslices'
  service?: string
  ready_timeout: number
  request_timeout: number
  deletion_cost: boolean
}

export interface KubernetesLogger {
  info(o: object, m: string): void
  warn(o: object, m: string): void
  error(o: object, m: string): void
}

/** A conflicting update is read again and retried this many times before E_K8S_CONFLICT. */
const CONFLICT_ATTEMPTS = 5
/** The cost given to chosen victims; pods without the annotation count as 0. */
const VICTIM_COST = '-1000'

const noLogger: KubernetesLogger = { info() {}, warn() {}, error() {} }

export class KubernetesTarget implements Target {
  readonly kind = 'kubernetes'
  private client?: KubeClient
  private reflector?: Reflector
  private workload?: Workload
  private desired = 0
  private starting?: Promise<void>
  private closed = false
  private readonly listeners = new Set<(status: GroupStatus) => void>()
  /** Waiters inside scale(), told at every change. */
  private readonly changes = new Set<() => void>()
  private steeringWarned = false

  constructor(
    private readonly group: string,
    private readonly settings: KubernetesSettings,
    private readonly logger: KubernetesLogger = noLogger,
    private readonly environment: Environment = realEnvironment(),
  ) {}

  /** Connects and starts watching; rejects with a coded error (no credentials, no workload, RBAC). Retried by later calls after a failure. */
  start(signal?: AbortSignal): Promise<void> {
    this.starting ??= this.connect(signal ?? new AbortController().signal).catch((err: unknown) => {
      this.starting = undefined
      throw err
    })
    return this.starting
  }

  private async connect(signal: AbortSignal): Promise<void> {
    const { settings, environment } = this
    const { namespace, from } = resolveNamespace(settings.namespace, environment)
    const { config, source } = loadCredentials(settings, environment)
    const workload: Workload = { ...settings.workload, namespace }
    const client = new KubeClient(config, workload, settings.request_timeout)
    const scale = await client.readScale(signal)
    const selector = scale.status?.selector
    if (!selector) {
      throw new KubernetesError(
        'E_K8S_API',
        `${describeWorkload(workload)} reports no label selector in its scale subresource; Tide cannot find its pods`,
      )
    }
    this.desired = scale.spec?.replicas ?? 0
    const endpointSlices = settings.readiness === 'endpointslices'
    const resource = endpointSlices ? 'endpointslices' : 'pods'
    const labels = endpointSlices ? `kubernetes.io/service-name=${settings.service}` : selector
    const reflector = new Reflector(
      endpointSlices ? `EndpointSlices of service ${settings.service}` : `pods (${selector})`,
      {
        list: (s) => client.list(resource, labels, s),
        watch: (rv, onEvent, done) => client.watch(resource, labels, rv, onEvent, done),
      },
      () => this.notify(),
      { warn: (o, m) => this.logger.warn({ group: this.group, ...o }, m) },
    )
    await reflector.start()
    if (this.closed) {
      reflector.stop()
      throw new KubernetesClosedError(this.group)
    }
    this.client = client
    this.workload = workload
    this.reflector = reflector
    this.logger.info(
      { group: this.group, server: client.server, credentials: source, namespace, namespaceFrom: from },
      `watching ${describeWorkload(workload)} (${this.desired} replicas) through ${resource}`,
    )
    this.notify()
  }

  async status(signal: AbortSignal): Promise<GroupStatus> {
    await this.start(signal)
    const scale = await this.client!.readScale(signal)
    this.desired = scale.spec?.replicas ?? 0
    return this.snapshot()
  }

  watch(listener: (status: GroupStatus) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  async close(_options?: { stopInstances?: boolean }): Promise<void> {
    this.closed = true
    this.reflector?.stop()
    for (const wake of this.changes) wake()
  }

  // ─── Instances ─────────────────────────────────────────────────────────────

  private instances(): Instance[] {
    const items = this.reflector?.items() ?? []
    const { port, readiness } = this.settings
    const all =
      readiness === 'endpointslices'
        ? sliceInstances(items, port)
        : items.map((pod) => podInstance(pod, port))
    return byCreation(all)
  }

  private snapshot(): GroupStatus {
    const instances = this.instances()
    const status: GroupStatus = {
      desired: this.desired,
      instances,
      ready: instances.filter((i) => i.state === 'ready').length,
    }
    const problem = this.reflector?.problem
    const failed = instances.filter((i) => i.state === 'failed')
    if (problem) status.message = problem
    else if (failed.length > 0)
      status.message = `${failed.length} of ${instances.length} pods cannot start (${failed[0]!.id}: ${failed[0]!.detail ?? 'failed'})`
    return status
  }

  private notify(): void {
    for (const wake of [...this.changes]) wake()
    if (this.listeners.size === 0) return
    const status = this.snapshot()
    for (const listener of this.listeners) {
      try {
        listener(status)
      } catch (err) {
        this.logger.warn({ group: this.group, err }, 'status listener failed')
      }
    }
  }

  // ─── Scaling ───────────────────────────────────────────────────────────────

  async scale(to: number, plan: ScalePlan, signal: AbortSignal): Promise<ScaleResult> {
    if (this.closed) throw new KubernetesClosedError(this.group)
    if (!Number.isInteger(to) || to < 0) {
      throw new BadRequestError(`cannot scale group ${this.group} to ${to}: must be a whole number ≥ 0`)
    }
    await this.start(signal)
    const client = this.client!
    const workload = this.workload!
    const before = this.instances()
    const scale = await client.readScale(signal)
    const from = scale.spec?.replicas ?? 0
    this.desired = from
    if (from === to) {
      const ready = before.filter((i) => i.state === 'ready').length
      throw new NoChangeError(`${describeWorkload(workload)} already has ${from} replica(s), ${ready} ready`)
    }
    const victims = to < from ? await this.prepareScaleDown(to, before, plan, signal) : []
    await this.writeReplicas(scale, to, signal)
    this.desired = to
    this.notify()
    plan.progress?.(`${describeWorkload(workload)}: replicas ${from} → ${to}`)
    if (to > from) {
      const added = await this.waitReady(to, before, plan, signal)
      return { from, to, added, removed: [] }
    }
    const removed = await this.waitRemoved(to, before, signal)
    this.giveBack(
      victims.filter((v) => !removed.includes(v)),
      plan,
    )
    return { from, to, added: [], removed }
  }

  /**
   * Picks the pods to go, steers the ReplicaSet towards them, and drains them in the router
   * before Kubernetes is told: their requests in flight finish before any SIGTERM is sent.
   */
  private async prepareScaleDown(
    to: number,
    before: Instance[],
    plan: ScalePlan,
    signal: AbortSignal,
  ): Promise<string[]> {
    const { workload, settings } = this
    const live = before.filter((i) => i.state !== 'stopping')
    const victims =
      workload!.kind === 'statefulset'
        ? statefulSetVictims(workload!.name, live, to)
        : chooseVictims(live, live.length - to, plan.victims)
    if (victims.length === 0) return []
    if (workload!.kind === 'deployment' && settings.deletion_cost) {
      await Promise.all(victims.map((id) => this.steer(id, signal)))
    }
    plan.progress?.(`draining ${victims.join(', ')} before scaling down`)
    const draining = live.filter((i) => victims.includes(i.id) && i.state === 'ready')
    await Promise.all(draining.map((i) => plan.drain?.(i)))
    return victims
  }

  /** Marks a victim for the ReplicaSet controller; a failure only loses the steering, never the scale. */
  private async steer(pod: string, signal: AbortSignal): Promise<void> {
    try {
      await this.client!.annotatePod(pod, { [DELETION_COST]: VICTIM_COST }, signal)
    } catch (err) {
      signal.throwIfAborted()
      const text = `cannot mark ${pod} with ${DELETION_COST}: ${errorMessage(err)}; Kubernetes will choose which pod to remove`
      if (!this.steeringWarned) this.logger.warn({ group: this.group, pod }, text)
      this.steeringWarned = true
    }
  }

  /** PUT the new replicas with the resourceVersion read; a conflict (someone else wrote) reads again and retries. */
  private async writeReplicas(scale: V1Scale, to: number, signal: AbortSignal): Promise<void> {
    const client = this.client!
    const { name, namespace } = this.workload!
    let current = scale
    for (let attempt = 1; ; attempt++) {
      try {
        await client.replaceScale(
          {
            apiVersion: 'autoscaling/v1',
            kind: 'Scale',
            metadata: { name, namespace, resourceVersion: current.metadata?.resourceVersion },
            spec: { replicas: to },
          },
          signal,
        )
        return
      } catch (err) {
        if (!(err instanceof KubernetesError) || err.code !== 'E_K8S_CONFLICT') throw err
        if (attempt >= CONFLICT_ATTEMPTS) {
          throw new KubernetesError(
            'E_K8S_CONFLICT',
            `${describeWorkload(this.workload!)}: its scale changed under Tide ${attempt} times in a row while setting replicas to ${to} (is another writer — an HPA, kubectl, a GitOps tool — scaling it too?): ${err.message}`,
            { cause: err, apiStatus: 409 },
          )
        }
        this.logger.info({ group: this.group, attempt }, `conflict setting replicas to ${to}; reading again`)
        await sleep(50 * attempt, undefined, { signal })
        current = await client.readScale(signal)
        if (current.spec?.replicas === to) return
      }
    }
  }

  /** Waits until at least `to` pods are Ready, reporting each new one; E_K8S_NOT_READY after ready_timeout. */
  private waitReady(to: number, before: Instance[], plan: ScalePlan, signal: AbortSignal): Promise<string[]> {
    const known = new Set(before.filter((i) => i.state === 'ready').map((i) => i.id))
    const started = performance.now()
    const added: string[] = []
    return this.until(signal, (finish, fail) => {
      const instances = this.instances()
      for (const i of instances) {
        if (i.state === 'ready' && !known.has(i.id)) {
          known.add(i.id)
          added.push(i.id)
          plan.progress?.(
            `${i.id} ready after ${formatDuration(performance.now() - started)} on ${i.address}`,
          )
        }
      }
      const ready = instances.filter((i) => i.state === 'ready').length
      if (ready >= to) return finish(added)
      const cannot = this.cannotStart(instances, to)
      if (cannot) {
        return fail(
          new KubernetesError(
            'E_K8S_POD_FAILED',
            `${describeWorkload(this.workload!)}: ${ready} of ${to} pods ready and the others cannot start: ${cannot.map((i) => `${i.id}: ${i.detail ?? 'failed'}`).join('; ')}. Kubernetes keeps retrying them (replicas stay at ${to})`,
          ),
        )
      }
      if (performance.now() - started >= this.settings.ready_timeout) {
        const waiting = instances
          .filter((i) => i.state !== 'ready')
          .map((i) => `${i.id}: ${i.detail ?? i.state}`)
        return fail(
          new KubernetesError(
            'E_K8S_NOT_READY',
            `${describeWorkload(this.workload!)}: ${instances.filter((i) => i.state === 'ready').length} of ${to} pods ready after ${formatDuration(this.settings.ready_timeout)}` +
              (waiting.length
                ? `; not ready: ${waiting.join('; ')}`
                : '; no pods were created (check the workload and its events: kubectl describe)'),
          ),
        )
      }
    })
  }

  /**
   * The failed pods, when they are why a scale-up to `to` cannot finish: some pod has failed
   * (failing.ts), none is still starting, and no more pods are to come — a Deployment's
   * ReplicaSet creates all of its pods at once; a StatefulSet creates the next ordinal only once
   * the one before is Ready, so its failed pod holds the rest back. Undefined while there is hope.
   */
  private cannotStart(instances: Instance[], to: number): Instance[] | undefined {
    const live = instances.filter((i) => i.state !== 'stopping')
    const failed = live.filter((i) => i.state === 'failed')
    if (failed.length === 0 || live.some((i) => i.state === 'starting')) return undefined
    if (live.length < to && this.workload!.kind !== 'statefulset') return undefined
    return failed
  }

  /** Waits until no more than `to` pods are live (not terminating), at most ready_timeout; returns those that went. */
  private async waitRemoved(to: number, before: Instance[], signal: AbortSignal): Promise<string[]> {
    const started = performance.now()
    const gone = () => {
      const now = new Map(this.instances().map((i) => [i.id, i]))
      return before
        .filter((i) => i.state !== 'stopping' && (now.get(i.id)?.state ?? 'stopping') === 'stopping')
        .map((i) => i.id)
    }
    return this.until(signal, (finish) => {
      const live = this.instances().filter((i) => i.state !== 'stopping').length
      if (live <= to) return finish(gone())
      if (performance.now() - started >= this.settings.ready_timeout) {
        this.logger.warn(
          { group: this.group },
          `${live} pods still live ${formatDuration(this.settings.ready_timeout)} after scaling to ${to}`,
        )
        return finish(gone())
      }
    })
  }

  /** Runs `check` now, at every change and every 250ms until it finishes or fails; aborting rejects. */
  private until<T>(
    signal: AbortSignal,
    check: (finish: (v: T) => void, fail: (e: unknown) => void) => void,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let settled = false
      const end = () => {
        settled = true
        this.changes.delete(wake)
        clearInterval(timer)
        signal.removeEventListener('abort', onAbort)
      }
      const finish = (v: T) => {
        if (settled) return
        end()
        resolve(v)
      }
      const fail = (e: unknown) => {
        if (settled) return
        end()
        reject(e)
      }
      const wake = () => {
        if (this.closed) return fail(new KubernetesClosedError(this.group))
        if (!settled) check(finish, fail)
      }
      const onAbort = () => fail(signal.reason)
      const timer = setInterval(wake, 250)
      this.changes.add(wake)
      signal.addEventListener('abort', onAbort)
      wake()
    })
  }

  /**
   * Victims Tide drained but Kubernetes kept (the deletion cost is a hint, not a promise): the
   * router still holds them as draining; `plan.undrain` puts them back into rotation.
   */
  private giveBack(survivors: string[], plan: ScalePlan): void {
    const back = this.instances().filter((i) => i.state === 'ready' && survivors.includes(i.id))
    if (back.length === 0) return
    this.logger.info(
      { group: this.group, pods: back.map((i) => i.id) },
      `Kubernetes kept ${back.map((i) => i.id).join(', ')}; back in rotation`,
    )
    for (const instance of back) plan.undrain?.(instance)
  }
}
