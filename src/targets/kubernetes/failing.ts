/**
 * Pods that cannot start. Kubernetes keeps such a pod in phase Pending or Running and retries
 * for ever (with a back-off), so "not Ready yet" alone cannot tell a slow start from a broken
 * one; its container statuses can:
 *
 * - a container (or init container) waiting with a reason that only a change to the pod or its
 *   surroundings cures: CrashLoopBackOff, ImagePullBackOff, ErrImagePull, InvalidImageName,
 *   CreateContainerConfigError… (`FAILING_REASONS`);
 * - a container that has exited (`state.terminated`): in a Deployment's or StatefulSet's pod
 *   (restartPolicy Always) that is a crash, between the exit and the restart;
 * - a container that is running again but not ready after `RESTARTS_FAILING` restarts: a crash
 *   loop caught between two crashes.
 *
 * ContainerCreating and PodInitializing are how every pod starts: not failures. A pod whose
 * containers recover (running and ready) is no longer failing: the Ready condition decides.
 * No I/O: the tests feed JSON.
 */

/* eslint-disable @typescript-eslint/no-explicit-any */
type Pod = any
/* eslint-enable @typescript-eslint/no-explicit-any */

/** Waiting reasons of a container that will not start until something changes. */
export const FAILING_REASONS: ReadonlySet<string> = new Set([
  'CrashLoopBackOff',
  'ImagePullBackOff',
  'ErrImagePull',
  'ErrImageNeverPull',
  'InvalidImageName',
  'ImageInspectError',
  'RegistryUnavailable',
  'SignatureValidationFailed',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
  'PreCreateHookError',
  'PreStartHookError',
  'PostStartHookError',
])

/** A container running again after this many restarts, and not ready, is still crash-looping. */
export const RESTARTS_FAILING = 3

export interface PodFailure {
  /** The Kubernetes reason, as `kubectl get pods` shows it ("CrashLoopBackOff", "Init:ErrImagePull"). */
  reason: string
  /** One line for people: the reason, Kubernetes' message, the container, its restarts and last exit. */
  detail: string
}

interface ContainerStatus {
  name?: string
  ready?: boolean
  restartCount?: number
  state?: {
    waiting?: { reason?: string; message?: string }
    running?: { startedAt?: string }
    terminated?: { exitCode?: number; signal?: number; reason?: string; message?: string }
  }
  lastState?: { terminated?: { exitCode?: number; signal?: number; reason?: string; finishedAt?: string } }
}

/** "exit code 1 (Error)", "signal 9 (OOMKilled)". */
function exit(t: { exitCode?: number; signal?: number; reason?: string }): string {
  const how = t.signal ? `signal ${t.signal}` : `exit code ${t.exitCode ?? '?'}`
  return `${how}${t.reason ? ` (${t.reason})` : ''}`
}

/** "(container app, 5 restarts, last exit code 1 (Error) at 2025-01-01T10:00:00Z)". */
function about(s: ContainerStatus, init: boolean): string {
  const parts = [`${init ? 'init container' : 'container'} ${s.name ?? '?'}`]
  const restarts = s.restartCount ?? 0
  if (restarts > 0) parts.push(`${restarts} restart${restarts === 1 ? '' : 's'}`)
  const last = s.lastState?.terminated
  if (last) parts.push(`last ${exit(last)}${last.finishedAt ? ` at ${last.finishedAt}` : ''}`)
  return `(${parts.join(', ')})`
}

function containerFailure(s: ContainerStatus, init: boolean): PodFailure | undefined {
  const prefix = init ? 'Init:' : ''
  const waiting = s.state?.waiting
  if (waiting?.reason && FAILING_REASONS.has(waiting.reason)) {
    const reason = `${prefix}${waiting.reason}`
    const message = waiting.message ? `: ${waiting.message}` : ''
    return { reason, detail: `${reason}${message} ${about(s, init)}` }
  }
  const terminated = s.state?.terminated
  // A finished init container (exit code 0) is what init containers are for.
  if (terminated && !(init && terminated.exitCode === 0)) {
    const reason = `${prefix}${terminated.reason ?? 'Error'}`
    const message = terminated.message ? `: ${terminated.message}` : ''
    return { reason, detail: `${reason}: exited with ${exit(terminated)}${message} ${about(s, init)}` }
  }
  if (s.state?.running && !s.ready && (s.restartCount ?? 0) >= RESTARTS_FAILING) {
    const reason = `${prefix}CrashLoopBackOff`
    return { reason, detail: `${reason}: running again after a crash, not ready ${about(s, init)}` }
  }
  return undefined
}

/**
 * Why this pod cannot start, or undefined when it can (it is starting, ready, or terminating:
 * the caller checks deletion and phase first). Init containers first: they run before the others.
 */
export function podFailure(pod: Pod): PodFailure | undefined {
  const status = pod?.status ?? {}
  if (status.phase === 'Failed') {
    const reason = status.reason ?? 'Failed'
    return {
      reason,
      detail: `Failed${status.reason ? `: ${status.reason}` : ''}${status.message ? ` (${status.message})` : ''}`,
    }
  }
  for (const s of (status.initContainerStatuses ?? []) as ContainerStatus[]) {
    const failure = containerFailure(s, true)
    if (failure) return failure
  }
  for (const s of (status.containerStatuses ?? []) as ContainerStatus[]) {
    const failure = containerFailure(s, false)
    if (failure) return failure
  }
  return undefined
}

/** "ready on …; 4 restarts, last exit code 1 (Error)": what a ready pod's past says, when it has one. */
export function restartNote(pod: Pod): string {
  const notes: string[] = []
  for (const s of (pod?.status?.containerStatuses ?? []) as ContainerStatus[]) {
    const restarts = s.restartCount ?? 0
    if (restarts === 0) continue
    const last = s.lastState?.terminated
    notes.push(
      `container ${s.name ?? '?'}: ${restarts} restart${restarts === 1 ? '' : 's'}${last ? `, last ${exit(last)}` : ''}`,
    )
  }
  return notes.join('; ')
}
