/**
 * Errors of the kubernetes target. Codes (HTTP status the API uses):
 * - E_K8S_CREDENTIALS (502): no usable credentials (no kubeconfig, not in a pod, unknown
 *   context), or the API server refused them (401).
 * - E_K8S_NOT_FOUND (404): the workload named in `target.workload` does not exist in the namespace.
 * - E_K8S_FORBIDDEN (403): RBAC refused a call; the message names the verb and resource to grant.
 * - E_K8S_CONFLICT (409): the replicas kept changing under Tide (another writer: an HPA, kubectl,
 *   a GitOps tool) through every retry of a conflicting update.
 * - E_K8S_NOT_READY (502): new pods were not ready within `ready_timeout`; the message has each
 *   pod's state (Pending: Unschedulable, readiness probe failing…).
 * - E_K8S_POD_FAILED (502): the new pods cannot start (CrashLoopBackOff, ImagePullBackOff,
 *   ErrImagePull, CreateContainerConfigError…, or phase Failed) and none is still starting;
 *   the message has each pod's reason. Kubernetes keeps retrying them; the replicas stay as set.
 * - E_K8S_API (502): any other failure of the API (5xx after retries, 422, timeouts).
 */
import { TargetError, TideError } from '../../core/errors.js'

export type KubernetesErrorCode =
  | 'E_K8S_CREDENTIALS'
  | 'E_K8S_NOT_FOUND'
  | 'E_K8S_FORBIDDEN'
  | 'E_K8S_CONFLICT'
  | 'E_K8S_NOT_READY'
  | 'E_K8S_POD_FAILED'
  | 'E_K8S_API'

const STATUS: Record<KubernetesErrorCode, number> = {
  E_K8S_CREDENTIALS: 502,
  E_K8S_NOT_FOUND: 404,
  E_K8S_FORBIDDEN: 403,
  E_K8S_CONFLICT: 409,
  E_K8S_NOT_READY: 502,
  E_K8S_POD_FAILED: 502,
  E_K8S_API: 502,
}

export class KubernetesError extends TideError {
  /** The HTTP status the Kubernetes API answered, when it answered. */
  readonly apiStatus?: number

  constructor(
    code: KubernetesErrorCode,
    message: string,
    options: { cause?: unknown; apiStatus?: number } = {},
  ) {
    super(code, message, { status: STATUS[code], cause: options.cause })
    this.apiStatus = options.apiStatus
  }
}

/** The target was closed (Tide is stopping); nothing was changed. */
export class KubernetesClosedError extends TargetError {
  constructor(group: string) {
    super(`the kubernetes target of group ${group} is closed (Tide is shutting down)`)
  }
}
