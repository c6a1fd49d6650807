/**
 * Errors of the `docker-swarm` target and of the Swarm side of the Alertmanager receiver.
 * Codes (HTTP status the API uses):
 * - E_SWARM_SERVICE_NOT_FOUND (404): no service by that name or id.
 * - E_SWARM_GLOBAL_SERVICE (409): a global service runs one task per node; it has no replica count.
 * - E_SWARM_SERVICE_MODE (409): a replicated or global job, or a service without a replica count.
 * - E_SWARM_CONFLICT (409): the service kept changing under Tide (version conflicts) past the retries.
 * - E_SWARM_LABEL (422): a service label Tide reads (min, max, step) is not a whole number.
 * - E_SWARM_NOT_LABELLED (409): rescheduling a service that lacks the reschedule label.
 * - E_SWARM_TIMEOUT (504): replicas or nodes did not become ready in time.
 * - E_SWARM_NODE_MATCH (409): no Swarm node (or more than one) matches an instance about to be
 *   removed; nothing was drained or terminated.
 * - E_SWARM_DRAIN_TIMEOUT (504): a drained node's tasks did not move within the drain timeout;
 *   the node was made active again and its instance kept.
 * - E_SWARM_QUORUM (409): removing a manager would lose the Raft quorum, or is the manager Tide
 *   talks to; nothing was changed.
 * Any other Docker Engine failure is an E_TARGET naming the call and the engine's own message.
 */
import { TargetError, TideError } from '../../core/errors.js'

export class ServiceNotFoundError extends TideError {
  constructor(name: string) {
    super(
      'E_SWARM_SERVICE_NOT_FOUND',
      `Swarm service '${name}' does not exist (docker service ls lists the names)`,
      {
        status: 404,
      },
    )
  }
}

export class GlobalServiceError extends TideError {
  constructor(name: string) {
    super(
      'E_SWARM_GLOBAL_SERVICE',
      `${name} is a global service (can not be scaled): it runs one task on every node and has no replica count`,
      { status: 409 },
    )
  }
}

export class ServiceModeError extends TideError {
  constructor(name: string, mode: string) {
    super('E_SWARM_SERVICE_MODE', `${name} is a ${mode} service and has no replica count to scale`, {
      status: 409,
    })
  }
}

export class VersionConflictError extends TideError {
  constructor(name: string, attempts: number, cause: unknown) {
    super(
      'E_SWARM_CONFLICT',
      `service ${name} changed ${attempts} times while Tide was updating it (version conflict); try again`,
      { status: 409, cause },
    )
  }
}

export class ServiceLabelError extends TideError {
  constructor(service: string, label: string, value: string) {
    super(
      'E_SWARM_LABEL',
      `service ${service}: label ${label} must be a whole number ≥ 0 (got ${JSON.stringify(value)})`,
      { status: 422 },
    )
  }
}

export class NotLabelledError extends TideError {
  constructor(service: string, filter: string, actual: string | undefined) {
    const key = filter.split('=')[0]!
    super(
      'E_SWARM_NOT_LABELLED',
      `${service} is not labeled with ${filter} (${actual === undefined ? 'no label' : `${key}=${actual}`})`,
      { status: 409 },
    )
  }
}

export class SwarmTimeoutError extends TideError {
  constructor(message: string) {
    super('E_SWARM_TIMEOUT', message, { status: 504 })
  }
}

export class NodeMatchError extends TideError {
  constructor(message: string) {
    super('E_SWARM_NODE_MATCH', message, { status: 409 })
  }
}

export class DrainTimeoutError extends TideError {
  constructor(message: string) {
    super('E_SWARM_DRAIN_TIMEOUT', message, { status: 504 })
  }
}

export class QuorumError extends TideError {
  constructor(message: string) {
    super('E_SWARM_QUORUM', message, { status: 409 })
  }
}

/** A Docker Engine call that failed, with the call, the object and the engine's message. */
export function dockerCallError(call: string, what: string, err: unknown): TargetError {
  const e = err as { statusCode?: number; json?: { message?: string }; message?: string }
  const message = e?.json?.message ?? e?.message ?? String(err)
  return new TargetError(
    `Docker ${call} ${what} failed${e?.statusCode ? ` (HTTP ${e.statusCode})` : ''}: ${message.trim()}`,
    { cause: err },
  )
}
