/**
 * Pure mapping from what the Kubernetes API says to Tide's instances, and the choice of which
 * pods go first when a group shrinks. No I/O: the tests feed JSON.
 *
 * A pod is `ready` only when Kubernetes says so (its Ready condition is True: every container
 * passed its readiness probe) and it is not being deleted; a pod with an IP but not Ready is
 * `starting`, so the router never sends a request to a pod the Service would not. A pod that
 * cannot start (CrashLoopBackOff, ImagePullBackOff, phase Failed…: failing.ts) is `failed`, with
 * Kubernetes' reason and message, restarts and last exit in its detail; it is `ready` again once
 * Kubernetes calls it Ready.
 */
import type { Instance, InstanceState } from '../../core/types.js'
import type { KubeObject } from './client.js'
import { podFailure, type PodFailure, restartNote } from './failing.js'

export const DELETION_COST = 'controller.kubernetes.io/pod-deletion-cost'

/* eslint-disable @typescript-eslint/no-explicit-any */
type Pod = any
type Slice = any
/* eslint-enable @typescript-eslint/no-explicit-any */

/**
 * The port Tide connects to: `port` from the config (a number, or a container port's name), else
 * the first port of the first container that declares one.
 */
export function podPort(pod: Pod, port: number | string | undefined): number | undefined {
  if (typeof port === 'number') return port
  const containers: Array<{ ports?: Array<{ name?: string; containerPort: number }> }> =
    pod?.spec?.containers ?? []
  for (const c of containers) {
    for (const p of c.ports ?? []) if (port === undefined || p.name === port) return p.containerPort
  }
  return undefined
}

function condition(
  pod: Pod,
  type: string,
): { status?: string; lastTransitionTime?: string; reason?: string; message?: string } | undefined {
  return (pod?.status?.conditions ?? []).find((c: { type: string }) => c.type === type)
}

function time(text: unknown): number {
  const ms = typeof text === 'string' ? Date.parse(text) : NaN
  return Number.isFinite(ms) ? ms : 0
}

/** Why a pod that can start is not ready yet, in one line ("Pending: not scheduled (Unschedulable…)", "Pending: ContainerCreating"). */
function waitingDetail(pod: Pod): string {
  const phase = pod?.status?.phase ?? 'Pending'
  for (const [list, prefix] of [
    [pod?.status?.initContainerStatuses, 'Init:'],
    [pod?.status?.containerStatuses, ''],
  ] as const) {
    for (const s of list ?? []) {
      const waiting = s.state?.waiting
      if (waiting?.reason)
        return `${phase}: ${prefix}${waiting.reason}${waiting.message ? ` (${waiting.message})` : ''}`
    }
  }
  const scheduled = condition(pod, 'PodScheduled')
  if (scheduled?.status === 'False')
    return `${phase}: not scheduled${scheduled.reason ? ` (${scheduled.reason}${scheduled.message ? `: ${scheduled.message}` : ''})` : ''}`
  if (!pod?.status?.podIP) return `${phase}: no pod IP yet`
  return `${phase}: readiness probe not passing yet`
}

export function podInstance(pod: Pod, port: number | string | undefined): Instance {
  const name: string = pod.metadata?.name ?? '?'
  const createdAt = time(pod.metadata?.creationTimestamp)
  const ip: string | undefined = pod.status?.podIP
  const resolved = podPort(pod, port)
  const address =
    ip && resolved !== undefined ? `${ip.includes(':') ? `[${ip}]` : ip}:${resolved}` : undefined
  const ready = condition(pod, 'Ready')
  let state: InstanceState
  let detail: string
  let failure: PodFailure | undefined
  if (pod.metadata?.deletionTimestamp) {
    state = 'stopping'
    detail = `terminating (deletion requested, grace ${pod.metadata.deletionGracePeriodSeconds ?? '?'}s)`
  } else if (pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded') {
    state = 'failed'
    detail =
      podFailure(pod)?.detail ?? `${pod.status.phase}${pod.status.reason ? `: ${pod.status.reason}` : ''}`
  } else if (ready?.status === 'True' && address) {
    state = 'ready'
    const restarts = restartNote(pod)
    detail = `ready on ${address}${restarts ? `; ${restarts}` : ''}`
  } else if (ready?.status === 'True') {
    state = 'starting'
    detail =
      resolved === undefined
        ? 'ready, but its containers declare no port: set target.port'
        : `ready, but port ${JSON.stringify(port)} is not one of its container ports`
  } else if ((failure = podFailure(pod))) {
    state = 'failed'
    detail = failure.detail
  } else {
    state = 'starting'
    detail = waitingDetail(pod)
  }
  const instance: Instance = { id: name, state, createdAt, detail }
  if (address) instance.address = address
  if (state === 'ready') instance.readyAt = time(ready?.lastTransitionTime) || undefined
  return instance
}

/**
 * Instances from EndpointSlices (discovery.k8s.io/v1): one per endpoint, named by its pod.
 * `ready` is the endpoint's `conditions.ready` (ready and not terminating, as kube-proxy uses it);
 * a `terminating` endpoint is `stopping`.
 */
export function sliceInstances(slices: Slice[], port: number | string | undefined): Instance[] {
  const byId = new Map<string, Instance>()
  for (const slice of slices) {
    const ports: Array<{ name?: string; port?: number }> = slice.ports ?? []
    const chosen =
      typeof port === 'number'
        ? port
        : (ports.find((p) => port === undefined || p.name === port)?.port ?? undefined)
    for (const ep of slice.endpoints ?? []) {
      const ip: string | undefined = ep.addresses?.[0]
      const id: string = ep.targetRef?.name ?? ip ?? '?'
      const c = ep.conditions ?? {}
      const address =
        ip && chosen !== undefined ? `${ip.includes(':') ? `[${ip}]` : ip}:${chosen}` : undefined
      // `ready` absent means unknown; Kubernetes says to treat it as ready.
      const ready = c.ready !== false && !c.terminating
      const state: InstanceState = c.terminating ? 'stopping' : ready && address ? 'ready' : 'starting'
      const detail =
        state === 'ready'
          ? `ready on ${address}`
          : state === 'stopping'
            ? 'terminating'
            : address
              ? 'endpoint not ready'
              : `no port ${JSON.stringify(port)} in the EndpointSlice`
      const instance: Instance = { id, state, createdAt: time(slice.metadata?.creationTimestamp), detail }
      if (address) instance.address = address
      byId.set(id, instance)
    }
  }
  return [...byId.values()]
}

/**
 * Which `count` pods of a Deployment to remove: the engine's preferred victims first, then pods
 * not ready (a pod that serves nothing is the cheapest to lose, and the ReplicaSet controller
 * removes those first anyway), then the most recently created. Pods already on their way out
 * are not candidates.
 */
export function chooseVictims(instances: Instance[], count: number, preferred: string[] = []): string[] {
  const candidates = instances.filter((i) => i.state !== 'stopping')
  const rank = (i: Instance) => {
    const p = preferred.indexOf(i.id)
    return p >= 0 ? p : preferred.length + (i.state === 'ready' ? 1 : 0)
  }
  return candidates
    .slice()
    .sort((a, b) => rank(a) - rank(b) || b.createdAt - a.createdAt || b.id.localeCompare(a.id))
    .slice(0, Math.max(0, count))
    .map((i) => i.id)
}

/**
 * A StatefulSet always removes its highest ordinals: scaling to `to` removes `<name>-<to>` and up.
 */
export function statefulSetVictims(name: string, instances: Instance[], to: number): string[] {
  return instances
    .filter((i) => {
      const m = /-(\d+)$/.exec(i.id)
      return i.id.startsWith(`${name}-`) && m !== null && Number(m[1]) >= to
    })
    .map((i) => i.id)
}

/** The instances in creation order, oldest first (GroupStatus' order). */
export function byCreation(instances: Instance[]): Instance[] {
  return instances.slice().sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id))
}

export type { KubeObject }
