/**
 * A thin wrapper around dockerode for the Swarm calls Tide makes: each with a time limit,
 * cancellation, a debug log line, and errors that name the call and the service.
 *
 * Updates are version-checked (`POST /services/{id}/update?version=N`, docker-engine-swagger.yaml):
 * a concurrent change makes the engine refuse with "update out of sequence", and Tide reads the
 * service again and recomputes, instead of overwriting the other change (Docker Scaler had no such
 * guard, seeds.md §3.9 item 2).
 */
import Docker from 'dockerode'
import { callWithDeadline } from '../../core/deadline.js'
import {
  dockerCallError,
  GlobalServiceError,
  ServiceModeError,
  ServiceNotFoundError,
  VersionConflictError,
} from './errors.js'

export type SwarmService = Docker.Service
/** A task as GET /tasks lists it (the fields Tide reads; docker-engine-swagger.yaml `Task`). */
export interface SwarmTask {
  ID: string
  CreatedAt?: string
  Slot?: number
  NodeID?: string
  DesiredState?: string
  Status?: { State?: string; Message?: string; Err?: string }
}

/** A node as GET /nodes lists it (the fields Tide reads; docker-engine-swagger.yaml `Node`). */
export interface SwarmNode {
  ID: string
  Version?: { Index?: number }
  Spec?: {
    Name?: string
    Labels?: Record<string, string>
    Role?: 'worker' | 'manager'
    Availability?: 'active' | 'pause' | 'drain'
  }
  Description?: { Hostname?: string; Engine?: { Labels?: Record<string, string> } }
  /** `State`: unknown, down, ready, disconnected; `Addr`: the IP the node talks to the swarm from. */
  Status?: { State?: string; Addr?: string }
  /** Managers only: `Reachability` is unknown, unreachable or reachable. */
  ManagerStatus?: { Leader?: boolean; Reachability?: string; Addr?: string }
}

/** A task with the fields node draining reads. */
export interface SwarmNodeTask extends SwarmTask {
  ServiceID?: string
}

export interface SwarmLogger {
  debug(obj: object, msg: string): void
}

export interface SwarmConnection {
  /**
   * The engine: `unix:///var/run/docker.sock`, `tcp://host:2375` or a socket path.
   * Default: DOCKER_HOST, then /var/run/docker.sock (dockerode's own default).
   */
  host?: string
  /** Milliseconds one engine call may take. @default 30000 */
  callTimeout?: number
  logger?: SwarmLogger
}

/** How many times an update is retried after a version conflict. */
const CONFLICT_RETRIES = 5

function dockerOptions(host: string | undefined): Docker.DockerOptions | undefined {
  if (!host) return undefined
  if (host.startsWith('unix://')) return { socketPath: host.slice('unix://'.length) }
  if (host.startsWith('/')) return { socketPath: host }
  const url = new URL(host.replace(/^tcp:/, 'http:'))
  return { host: url.hostname, port: Number(url.port || 2375), protocol: 'http' }
}

function isConflict(err: unknown): boolean {
  const e = err as { statusCode?: number; json?: { message?: string }; message?: string }
  return e?.statusCode === 409 || /out of sequence/i.test(e?.json?.message ?? e?.message ?? '')
}

/** The service's replica count, or the reason it has none. */
export function replicasOf(service: SwarmService): number {
  const name = service.Spec?.Name ?? service.ID
  const mode = service.Spec?.Mode ?? {}
  if (mode.Global) throw new GlobalServiceError(name)
  if (mode.ReplicatedJob) throw new ServiceModeError(name, 'replicated job')
  if (mode.GlobalJob) throw new ServiceModeError(name, 'global job')
  if (!mode.Replicated) throw new ServiceModeError(name, 'unrecognized')
  return mode.Replicated.Replicas ?? 0
}

export class SwarmApi {
  readonly docker: Docker
  private readonly callTimeout: number
  private readonly logger: SwarmLogger | undefined

  constructor(connection: SwarmConnection = {}) {
    this.docker = new Docker(dockerOptions(connection.host))
    this.callTimeout = connection.callTimeout ?? 30_000
    this.logger = connection.logger
  }

  /** GET /services/{name}: by name or id. */
  async inspect(name: string, signal: AbortSignal): Promise<SwarmService> {
    return this.call('inspect service', name, signal, (abortSignal) =>
      this.docker.getService(name).inspect({ abortSignal }),
    )
  }

  /**
   * Reads the service, asks `change` for the new spec, and updates with the version read;
   * on a version conflict reads again and asks again. `change` returning undefined means no
   * update is needed. Resolves to the service as read and the spec written (if any).
   */
  async update(
    name: string,
    change: (service: SwarmService) => Docker.ServiceSpec | undefined,
    signal: AbortSignal,
  ): Promise<{ before: SwarmService; spec?: Docker.ServiceSpec }> {
    let lastError: unknown
    for (let attempt = 1; attempt <= CONFLICT_RETRIES; attempt++) {
      const before = await this.inspect(name, signal)
      const spec = change(before)
      if (!spec) return { before }
      try {
        await this.call('update service', name, signal, (abortSignal) =>
          this.docker.getService(before.ID).update({
            // docker-modem sends `_query` as the query string and `_body` as the JSON body.
            _query: { version: before.Version?.Index ?? 0, registryAuthFrom: 'spec' },
            _body: spec,
            abortSignal,
          } as unknown as Docker.ServiceSpec),
        )
        return { before, spec }
      } catch (err) {
        const cause = (err as { cause?: unknown }).cause
        if (!isConflict(cause)) throw err
        lastError = cause
        this.logger?.debug({ service: name, attempt }, `service ${name} changed meanwhile; reading it again`)
      }
    }
    throw new VersionConflictError(name, CONFLICT_RETRIES, lastError)
  }

  /** Sets the replica count; resolves to the count before. Throws for global services. */
  async setReplicas(name: string, to: number, signal: AbortSignal): Promise<number> {
    let from = 0
    await this.update(
      name,
      (service) => {
        from = replicasOf(service)
        if (from === to) return undefined
        const spec = service.Spec!
        return { ...spec, Mode: { Replicated: { Replicas: to } } }
      },
      signal,
    )
    return from
  }

  /**
   * A forced update (`docker service update --force`): bumps TaskTemplate.ForceUpdate, so Swarm
   * replaces every task and spreads them over the nodes there are now.
   */
  async forceUpdate(name: string, signal: AbortSignal): Promise<void> {
    await this.update(
      name,
      (service) => {
        const spec = service.Spec!
        const template = spec.TaskTemplate ?? {}
        return { ...spec, TaskTemplate: { ...template, ForceUpdate: (template.ForceUpdate ?? 0) + 1 } }
      },
      signal,
    )
  }

  /** Services carrying a label (`key` or `key=value`), as the engine filters them. */
  async listServices(label: string, signal: AbortSignal): Promise<SwarmService[]> {
    return this.call('list services', `with label ${label}`, signal, (abortSignal) =>
      this.docker.listServices({ filters: { label: [label] }, abortSignal }),
    )
  }

  /** Tasks of a service that Swarm wants running (older, shut-down tasks excluded). */
  async tasks(serviceId: string, signal: AbortSignal): Promise<SwarmTask[]> {
    return this.call(
      'list tasks',
      `of service ${serviceId}`,
      signal,
      (abortSignal) =>
        this.docker.listTasks({
          filters: { service: [serviceId], 'desired-state': ['running'] },
          abortSignal,
        }) as Promise<SwarmTask[]>,
    )
  }

  /** Nodes of a role whose status is `ready` (and not drained or paused). */
  async readyNodes(role: 'manager' | 'worker', signal: AbortSignal): Promise<number> {
    const nodes = (await this.call('list nodes', `with role ${role}`, signal, (abortSignal) =>
      this.docker.listNodes({ filters: JSON.stringify({ role: [role] }), abortSignal }),
    )) as Array<{ Status?: { State?: string }; Spec?: { Availability?: string } }>
    return nodes.filter((n) => n.Status?.State === 'ready' && (n.Spec?.Availability ?? 'active') === 'active')
      .length
  }

  // ─── Nodes ────────────────────────────────────────────────────────────────

  /** GET /nodes: every node of the swarm. */
  async nodes(signal: AbortSignal): Promise<SwarmNode[]> {
    return this.call(
      'list nodes',
      'of the swarm',
      signal,
      (abortSignal) => this.docker.listNodes({ abortSignal }) as Promise<SwarmNode[]>,
    )
  }

  /** GET /nodes/{id}. */
  async node(id: string, signal: AbortSignal): Promise<SwarmNode> {
    return this.call(
      'inspect node',
      id,
      signal,
      (abortSignal) => this.docker.getNode(id).inspect({ abortSignal }) as Promise<SwarmNode>,
    )
  }

  /**
   * Reads the node, asks `change` for the new spec and updates it with the version read (required
   * by POST /nodes/{id}/update); on a version conflict reads again. `change` returning undefined
   * means nothing to do. Resolves to the node as read.
   */
  async updateNode(
    id: string,
    change: (node: SwarmNode) => SwarmNode['Spec'] | undefined,
    signal: AbortSignal,
  ): Promise<SwarmNode> {
    let lastError: unknown
    for (let attempt = 1; attempt <= CONFLICT_RETRIES; attempt++) {
      const before = await this.node(id, signal)
      const spec = change(before)
      if (!spec) return before
      try {
        await this.call('update node', id, signal, (abortSignal) =>
          this.docker.getNode(id).update({
            _query: { version: before.Version?.Index ?? 0 },
            _body: spec,
            abortSignal,
          }),
        )
        return before
      } catch (err) {
        const cause = (err as { cause?: unknown }).cause
        if (!isConflict(cause)) throw err
        lastError = cause
        this.logger?.debug({ node: id, attempt }, `node ${id} changed meanwhile; reading it again`)
      }
    }
    throw dockerCallError('update node', id, lastError)
  }

  /** DELETE /nodes/{id}?force=true: forgets a node (one that is gone or going). */
  async removeNode(id: string, signal: AbortSignal): Promise<void> {
    await this.call('remove node', id, signal, (abortSignal) =>
      this.docker.getNode(id).remove({ force: true, abortSignal }),
    )
  }

  /** Every task the swarm has placed on a node, whatever its state. */
  async tasksOnNode(nodeId: string, signal: AbortSignal): Promise<SwarmNodeTask[]> {
    return this.call(
      'list tasks',
      `on node ${nodeId}`,
      signal,
      (abortSignal) =>
        this.docker.listTasks({ filters: { node: [nodeId] }, abortSignal }) as Promise<SwarmNodeTask[]>,
    )
  }

  /** The id of the node whose engine Tide talks to (GET /info). */
  async selfNodeId(signal: AbortSignal): Promise<string | undefined> {
    const info = (await this.call('info', 'of the engine', signal, (abortSignal) =>
      // dockerode's info() takes options (abortSignal) although its types do not say so.
      (this.docker.info as unknown as (o: object) => Promise<unknown>).call(this.docker, { abortSignal }),
    )) as { Swarm?: { NodeID?: string } }
    return info.Swarm?.NodeID || undefined
  }

  private call<T>(
    call: string,
    what: string,
    signal: AbortSignal,
    run: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    return callWithDeadline(run, {
      signal,
      timeout: this.callTimeout,
      log: (fields) =>
        this.logger?.debug(
          { call, what, ...fields },
          `Docker ${call} ${what}${fields.err === undefined ? '' : ' failed'}`,
        ),
      fail: (cause, thrown) =>
        (thrown as { statusCode?: number }).statusCode === 404 && call.endsWith('service')
          ? new ServiceNotFoundError(what)
          : dockerCallError(call, what, cause),
    })
  }
}
