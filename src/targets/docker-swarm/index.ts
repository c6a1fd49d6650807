/**
 * The `docker-swarm` target: the replicas of one replicated Swarm service.
 *
 * ```yaml
 * target:
 *   kind: docker-swarm
 *   service: web                         # name or id
 *   host: unix:///var/run/docker.sock    # default: DOCKER_HOST, then /var/run/docker.sock
 *   ready_timeout: 2m
 * ```
 *
 * Each instance is one task Swarm wants running; it is `ready` when the task is running.
 * `scale` sets `Mode.Replicated.Replicas` with a version-checked update (retried when the
 * service changed meanwhile) and waits until that many tasks run. A global service is refused
 * with a clear error: it has no replica count (seed 003 did the same).
 */
import { z } from 'zod'
import { NoChangeError } from '../../core/errors.js'
import { duration } from '../../core/schema.js'
import type {
  GroupStatus,
  Instance,
  InstanceState,
  ScalePlan,
  ScaleResult,
  Target,
} from '../../core/types.js'
import { replicasOf, type SwarmLogger, SwarmApi, type SwarmTask } from './client.js'
import { SwarmTimeoutError } from './errors.js'

export { replicasOf, SwarmApi } from './client.js'
export type { SwarmConnection, SwarmNode, SwarmService } from './client.js'
export * from './errors.js'
export { NodeWaiter, parseLabelFilter, Rescheduler } from './reschedule.js'
export {
  type DrainHandle,
  findNode,
  type LeavingInstance,
  type NodeDrainOptions,
  quorumAfter,
  SwarmNodeDrainer,
} from './nodes.js'

export const dockerSwarmTargetSchema = z
  .object({
    kind: z.literal('docker-swarm'),
    service: z.string().min(1, 'must name a service').describe('The Swarm service: its name or id.'),
    host: z
      .string()
      .regex(/^(unix:\/\/\/|tcp:\/\/|\/)/, 'must be unix:///path, tcp://host:port or a socket path')
      .optional()
      .describe('The Docker Engine of a Swarm manager. Default: `DOCKER_HOST`, then `/var/run/docker.sock`.'),
    ready_timeout: duration('2m').describe(
      'How long a scale waits for the new number of tasks to be running before it fails (Swarm keeps trying).',
    ),
    poll: duration('500ms').describe('How often the tasks are checked while waiting.'),
    call_timeout: duration('30s').describe('How long one Docker Engine call may take.'),
  })
  .strict()
  .describe('The replicas of a replicated Docker Swarm service.')

export type DockerSwarmTargetConfig = z.output<typeof dockerSwarmTargetSchema>

const TASK_STATES: Record<string, InstanceState> = {
  running: 'ready',
  failed: 'failed',
  rejected: 'failed',
  orphaned: 'failed',
  shutdown: 'stopping',
  complete: 'stopping',
  remove: 'stopping',
}

function toInstance(task: SwarmTask): Instance {
  const status = (task.Status ?? {}) as { State?: string; Message?: string; Err?: string }
  const state = TASK_STATES[status.State ?? ''] ?? 'starting'
  return {
    id: task.ID,
    state,
    createdAt: Date.parse(task.CreatedAt ?? '') || 0,
    detail: [task.Slot === undefined ? undefined : `slot ${task.Slot}`, status.State, status.Err]
      .filter(Boolean)
      .join(', '),
  }
}

export class DockerSwarmTarget implements Target {
  readonly kind = 'docker-swarm'
  readonly api: SwarmApi

  constructor(
    private readonly config: DockerSwarmTargetConfig,
    logger?: SwarmLogger,
  ) {
    this.api = new SwarmApi({ host: config.host, callTimeout: config.call_timeout, logger })
  }

  async status(signal: AbortSignal): Promise<GroupStatus> {
    const service = await this.api.inspect(this.config.service, signal)
    const desired = replicasOf(service)
    const tasks = await this.api.tasks(service.ID, signal)
    const instances = tasks.map(toInstance).sort((a, b) => a.createdAt - b.createdAt)
    return { desired, instances, ready: instances.filter((i) => i.state === 'ready').length }
  }

  async scale(to: number, plan: ScalePlan, signal: AbortSignal): Promise<ScaleResult> {
    const name = this.config.service
    const before = await this.status(signal)
    const from = await this.api.setReplicas(name, to, signal)
    if (from === to && before.ready === to) throw new NoChangeError(`${name} already has ${to} replicas`)
    plan.progress?.(`${name}: replicas ${from} → ${to}, waiting for ${to} running tasks`)
    const end = Date.now() + this.config.ready_timeout
    let now = before
    for (;;) {
      now = await this.status(signal)
      if (now.ready === to && now.instances.length === to) break
      if (Date.now() >= end) {
        throw new SwarmTimeoutError(
          `${name}: ${now.ready} of ${to} tasks running after ${this.config.ready_timeout / 1000}s ` +
            `(${now.instances.map((i) => i.detail).join('; ') || 'no tasks'}); Swarm keeps trying`,
        )
      }
      await new Promise((r) => setTimeout(r, this.config.poll))
      signal.throwIfAborted()
    }
    const had = new Set(before.instances.map((i) => i.id))
    const has = new Set(now.instances.map((i) => i.id))
    return {
      from,
      to,
      added: now.instances.filter((i) => !had.has(i.id)).map((i) => i.id),
      removed: before.instances.filter((i) => !has.has(i.id)).map((i) => i.id),
    }
  }
}

export function createDockerSwarmTarget(config: DockerSwarmTargetConfig, logger?: SwarmLogger): Target {
  return new DockerSwarmTarget(config, logger)
}
