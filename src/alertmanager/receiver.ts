/**
 * The receiver: what Docker Scaler's routes and Tide's Alertmanager webhook do, without HTTP
 * (routes.ts translates). Every outcome is told to the notifiers as a ScaleEvent, as a group's
 * operations are: `started` then `applied`, `failed` or `unchanged`; `progress` while nodes join.
 *
 *   request ─► resolve service/scale/by (query > alert > label > default) ─► plan within bounds
 *      │                                                                          │
 *      └─ resolved alert: nothing   same alert group inside the cooldown: nothing  ▼
 *                                                        version-checked update of the service
 *   node scale-up ─► ASG desired capacity ─► wait (in the background) for ≥ N ready nodes
 *                                              ─► force-update every labelled service
 *   node scale-down ─► pick instances (newest) ─► drain their Swarm nodes ─► terminate (decrement)
 *                    (`nodes.drain.enabled: false`: lower the desired capacity, AWS picks)
 *
 * Events name the service (or `aws` for nodes, `reschedule`, `bad_request`) as the group, and
 * Docker Scaler's alert names as the trigger: `scale_service`, `scale_nodes`, `reschedule_service`.
 */
import { errorMessage, NotFoundError, TideError } from '../core/errors.js'
import type { ScaleEvent } from '../core/types.js'
import type { Logger } from '../engine/log.js'
import {
  type AsgApi,
  AsgTarget,
  type Ec2Api,
  type NodeScaleIn,
  scaleNodes,
} from '../targets/aws-asg/index.js'
import { replicasOf, type SwarmApi } from '../targets/docker-swarm/client.js'
import { SwarmNodeDrainer } from '../targets/docker-swarm/nodes.js'
import { NodeWaiter, Rescheduler } from '../targets/docker-swarm/reschedule.js'
import type { ReceiverConfig } from './config.js'
import type { ReceiverMetrics } from './metrics.js'
import { episodeStart, param, paramSource, type Webhook } from './payload.js'
import { type Direction, parseBy, parseDirection, plan, resolve, serviceMessage } from './step.js'

export type Trigger = 'scale_service' | 'scale_nodes' | 'reschedule_service'

export interface ReceiverDeps {
  logger: Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>
  swarm: SwarmApi
  /** Present when `nodes` is configured. */
  asg?: AsgApi
  /** EC2, to find a leaving instance's Swarm node by hostname or address; without it, by label only. */
  ec2?: Ec2Api
  /** Where events go (a Dispatcher's `emit`); never awaited. */
  events?: (event: ScaleEvent) => void
  /** Where alert-group cooldowns are kept; default in memory (a restart forgets them). */
  cooldowns?: CooldownStore
  metrics?: ReceiverMetrics
  now?: () => number
}

/**
 * Where alert-group cooldowns live. `tide run` keeps them in its store (a restart remembers them:
 * Alertmanager re-sends the same group at `repeat_interval`, and it must not scale twice);
 * `tide docker-scaler` in memory unless `TIDE_STORE` names a store file.
 */
export interface CooldownStore {
  /** Until when (epoch ms) `key` cools down, or undefined. */
  cooldownUntil(key: string, now: number): number | undefined
  /** Starts (or, with `until` ≤ now, ends) the cooldown of `key`. */
  setCooldown(key: string, until: number, now: number): void
}

/** Cooldowns in memory, forgotten on restart. */
export function memoryCooldowns(): CooldownStore {
  const until = new Map<string, number>()
  return {
    cooldownUntil(key, now) {
      const t = until.get(key)
      return t !== undefined && t > now ? t : undefined
    },
    setCooldown(key, t, now) {
      for (const [k, v] of until) if (v <= now) until.delete(k)
      if (t > now) until.set(key, t)
      else until.delete(key)
    },
  }
}

/** One answer: Docker Scaler's `{status, message}` plus the HTTP status. */
export interface Outcome {
  status: number
  ok: boolean
  message: string
  /** The error's stable code, when not ok. */
  code?: string
}

/** What to do, read from a request: the service (or node role), direction and explicit step. */
export interface Action {
  kind: 'service' | 'node'
  /** The service to scale; for nodes, the optional alerting service whose labels give bounds. */
  service?: string
  /** Node role, for `kind: node`. */
  role?: 'manager' | 'worker'
  direction: Direction
  by?: number
  byFrom?: 'query' | 'alert'
  /** Identifies the alert episode for the cooldown (groupKey + first startsAt), when from an alert. */
  episode?: string
}

/**
 * The seed's `request` annotation: "Scale service up: web", "Scale nodes up on: aws, by: 1,
 * type: worker". For nodes `by` is the step used (`step`, once resolved), else the one asked for.
 */
function describeAction(a: Action, step?: number): string {
  return a.kind === 'service'
    ? `Scale service ${a.direction}: ${a.service}`
    : `Scale nodes ${a.direction} on: aws, by: ${step ?? a.by ?? 0}, type: ${a.role}`
}

/** Seed 003's `request` of the node waiter's alerts (seeds.md §3.6). */
const WAITING = 'Waiting for nodes to scale'

export class Receiver {
  readonly rescheduler: Rescheduler
  readonly waiter: NodeWaiter
  private readonly cooldowns: CooldownStore
  /** Alert-group actions running now: a duplicate arriving meanwhile (an HA pair of Alertmanagers) waits for none and does nothing. */
  private readonly running = new Set<string>()
  private readonly abort = new AbortController()
  private readonly background = new Set<Promise<void>>()
  private readonly now: () => number

  constructor(
    readonly config: ReceiverConfig,
    private readonly deps: ReceiverDeps,
  ) {
    this.now = deps.now ?? Date.now
    this.cooldowns = deps.cooldowns ?? memoryCooldowns()
    this.rescheduler = new Rescheduler(deps.swarm, config.reschedule.label)
    this.waiter = new NodeWaiter(deps.swarm, this.now)
  }

  get nodesEnabled(): boolean {
    return this.config.nodes !== undefined && this.deps.asg !== undefined
  }

  // ─── Reading requests ─────────────────────────────────────────────────────

  /** `/v1/scale-service`: query parameters over the payload's labels. Throws the seed's 400s. */
  serviceAction(query: URLSearchParams, payload: Webhook): Action {
    const service = param(query, payload, 'service')
    if (!service) throw new TideError('E_BAD_REQUEST', 'No service name in request', { status: 400 })
    const direction = parseDirection(param(query, payload, 'scale'))
    return { kind: 'service', service, direction, ...this.by(query, payload), episode: episode(payload) }
  }

  /** `/v1/scale-nodes`: `scale`, `type` (worker|manager), `by`, optional `service`. */
  nodeAction(query: URLSearchParams, payload: Webhook): Action {
    const scale = param(query, payload, 'scale')
    if (!scale) throw new TideError('E_BAD_REQUEST', 'No scale direction', { status: 400 })
    const direction = parseDirection(scale)
    const role = param(query, payload, 'type') ?? ''
    if (role !== 'worker' && role !== 'manager') {
      throw new TideError(
        'E_BAD_REQUEST',
        `Incorrect node type: ${role}, type can only be worker or manager`,
        { status: 400 },
      )
    }
    return {
      kind: 'node',
      role,
      direction,
      service: param(query, payload, 'service'),
      ...this.by(query, payload),
      episode: episode(payload),
    }
  }

  /**
   * `/v1/alerts`: one action per distinct (kind, service or role, direction) among the firing
   * alerts. An alert's labels are the group's plus its own; query parameters override them.
   * `type` is `service` (the default), `node` (role from `role`, default worker), or the role itself.
   */
  alertActions(query: URLSearchParams, payload: Webhook): { actions: Action[]; skipped: string[] } {
    const firing = payload.alerts.filter((a) => a.status !== 'resolved')
    const sets =
      payload.alerts.length === 0
        ? [{ ...payload.commonLabels, ...payload.groupLabels }]
        : firing.map((a) => ({ ...payload.commonLabels, ...payload.groupLabels, ...a.labels }))
    const actions = new Map<string, Action>()
    const skipped: string[] = []
    for (const labels of sets) {
      const get = (k: string) => query.get(k) || labels[k] || undefined
      const name = labels.alertname ?? 'alert'
      const scale = get('scale')
      if (!scale) {
        skipped.push(`${name} has no scale label`)
        continue
      }
      const direction = parseDirection(scale)
      const type = get('type') ?? 'service'
      const byText = get('by')
      const by = parseBy(byText, query.get('by') ? 'query parameter by' : `label by of ${name}`)
      const byFrom = by === undefined ? undefined : query.get('by') ? ('query' as const) : ('alert' as const)
      let action: Action
      if (type === 'service') {
        const service = get('service')
        if (!service) {
          skipped.push(`${name} has no service label`)
          continue
        }
        action = { kind: 'service', service, direction, by, byFrom }
      } else if (type === 'node' || type === 'worker' || type === 'manager') {
        const role = type === 'node' ? (get('role') ?? 'worker') : type
        if (role !== 'worker' && role !== 'manager') {
          throw new TideError(
            'E_BAD_REQUEST',
            `Incorrect node type: ${role}, type can only be worker or manager`,
            {
              status: 400,
            },
          )
        }
        action = { kind: 'node', role, direction, by, byFrom, service: get('service') }
      } else {
        skipped.push(`${name} has type ${JSON.stringify(type)}, not service, node, worker or manager`)
        continue
      }
      action.episode = episode(payload)
      const key = `${action.kind}|${action.service ?? ''}|${action.role ?? ''}|${direction}`
      if (!actions.has(key)) actions.set(key, action)
    }
    return { actions: [...actions.values()], skipped }
  }

  private by(query: URLSearchParams, payload: Webhook): Pick<Action, 'by' | 'byFrom'> {
    const from = paramSource(query, payload, 'by')
    const by = parseBy(
      param(query, payload, 'by'),
      from === 'query' ? 'query parameter by' : 'groupLabels.by',
    )
    return by === undefined ? {} : { by, byFrom: from }
  }

  // ─── Doing ────────────────────────────────────────────────────────────────

  /** Runs an action unless its alert episode already acted within the cooldown. */
  async run(action: Action, signal: AbortSignal): Promise<Outcome> {
    const key = action.episode
      ? `${action.episode}|${action.kind}|${action.service ?? ''}|${action.role ?? ''}|${action.direction}`
      : undefined
    const now = this.now()
    const operation = action.kind === 'service' ? 'scale_service' : 'scale_nodes'
    const until = key ? this.cooldowns.cooldownUntil(key, now) : undefined
    if (key && (until !== undefined || this.running.has(key))) {
      const message =
        until !== undefined
          ? `${describeAction(action)}: this alert group already scaled it; ignored for another ${Math.ceil((until - now) / 1000)}s (cooldown)`
          : `${describeAction(action)}: this alert group is being acted on already; ignored`
      this.deps.logger.info({ action }, message)
      this.deps.metrics?.operation(operation, 'ignored')
      return { status: 200, ok: true, message }
    }
    if (key) this.running.add(key)
    try {
      const outcome =
        action.kind === 'service'
          ? await this.scaleService(action, signal)
          : await this.scaleNodes(action, signal)
      // Only a success starts the cooldown: Alertmanager retries a failure (5xx), and that retry must act.
      if (key && outcome.ok) {
        try {
          this.cooldowns.setCooldown(key, now + this.config.cooldown, this.now())
        } catch (err) {
          // The scale happened; a cooldown that could not be stored must not turn it into an error.
          this.deps.logger.warn(
            { err: errorMessage(err) },
            `could not record the alert group's cooldown: ${errorMessage(err)}`,
          )
        }
      }
      return outcome
    } finally {
      if (key) this.running.delete(key)
    }
  }

  /** Counts a request that never became an operation (a resolved notification, an unreadable request). */
  count(operation: Trigger, result: 'resolved' | 'bad_request'): void {
    this.deps.metrics?.operation(operation, result)
  }

  /** Scales a service (seeds.md §3.3). Failures become an Outcome with the error's status, and an event. */
  async scaleService(action: Action, signal: AbortSignal): Promise<Outcome> {
    const name = action.service!
    const request = describeAction(action)
    const started = this.now()
    const settings = this.config.services
    let from = 0
    let to = 0
    try {
      let atBound: 'min' | 'max' | undefined
      let bounds = { min: settings.min, max: settings.max }
      await this.deps.swarm.update(
        name,
        (service) => {
          from = replicasOf(service)
          const r = resolve({
            direction: action.direction,
            query: action.byFrom === 'query' ? action.by : undefined,
            alert: action.byFrom === 'alert' ? action.by : undefined,
            service: name,
            labels: service.Spec?.Labels ?? {},
            keys: settings.labels,
            defaults: settings,
          })
          bounds = r
          ;({ to, atBound } = plan(from, action.direction, r.by, r.min, r.max))
          if (to === from) return undefined
          return { ...service.Spec!, Mode: { Replicated: { Replicas: to } } }
        },
        signal,
      )
      const message = serviceMessage(name, from, to, bounds, atBound)
      const base = {
        group: name,
        trigger: 'scale_service' as const,
        from,
        to,
        direction: action.direction,
        reason: request,
      }
      if (atBound) {
        const notify = atBound === 'max' ? settings.notify_at_max : settings.notify_at_min
        if (notify) this.emit({ ...base, kind: 'unchanged', message, target: 'docker-swarm' })
        this.deps.metrics?.operation('scale_service', 'unchanged')
      } else {
        this.emit({ ...base, kind: 'started', message, target: 'docker-swarm' })
        this.emit({
          ...base,
          kind: 'applied',
          message,
          durationMs: this.now() - started,
          target: 'docker-swarm',
        })
        this.deps.metrics?.operation('scale_service', 'applied', this.now() - started)
      }
      this.deps.logger.info({ service: name, from, to }, message)
      return { status: 200, ok: true, message }
    } catch (err) {
      return this.failed(err, {
        group: name,
        trigger: 'scale_service',
        from,
        to,
        direction: action.direction,
        reason: request,
        target: 'docker-swarm',
        durationMs: this.now() - started,
      })
    }
  }

  /** Scales a node role's Auto Scaling group (seeds.md §3.4), then waits for the nodes in the background. */
  async scaleNodes(action: Action, signal: AbortSignal): Promise<Outcome> {
    const nodes = this.config.nodes
    const role = action.role!
    const settings = nodes?.[role]
    const started = this.now()
    const base = {
      group: 'aws',
      trigger: 'scale_nodes' as const,
      direction: action.direction,
      // Until the step is resolved (from a label, say), the one asked for or the default.
      reason: describeAction(
        action,
        action.by ?? (action.direction === 'up' ? settings?.up_by : settings?.down_by),
      ),
      target: 'aws-asg',
    }
    if (!nodes || !this.deps.asg)
      throw new NotFoundError('route', '/v1/scale-nodes (no node backend is configured)')
    if (!settings) {
      return this.failed(
        new TideError('E_BAD_REQUEST', `${role} nodes are not configured (receiver.nodes.${role}.asg)`, {
          status: 400,
        }),
        { ...base, from: 0, to: 0, durationMs: 0 },
      )
    }
    let from = 0
    let to = 0
    try {
      let labels: Record<string, string> = {}
      if (action.service) {
        try {
          labels = (await this.deps.swarm.inspect(action.service, signal)).Spec?.Labels ?? {}
        } catch (err) {
          throw new TideError('E_TARGET', `node scaling failed: ${errorMessage(err)}`, {
            status: err instanceof TideError ? err.status : 502,
            cause: err,
          })
        }
      }
      const r = resolve({
        direction: action.direction,
        query: action.byFrom === 'query' ? action.by : undefined,
        alert: action.byFrom === 'alert' ? action.by : undefined,
        service: action.service ?? `${role} nodes`,
        labels,
        keys: settings.labels,
        defaults: settings,
      })
      base.reason = describeAction(action, r.by)
      const scaleIn = this.nodeScaleIn(role, settings.asg, base.reason)
      const result = await scaleNodes(
        this.deps.asg,
        {
          asg: settings.asg,
          type: role,
          direction: action.direction,
          by: r.by,
          min: Math.min(r.min, r.max),
          max: r.max,
          setBounds: nodes.set_bounds,
        },
        signal,
        scaleIn,
      )
      ;({ from, to } = result)
      if (!result.changed) {
        const notify = action.direction === 'up' ? settings.notify_at_max : settings.notify_at_min
        if (notify) this.emit({ ...base, kind: 'unchanged', from, to, message: result.message })
        this.deps.metrics?.operation('scale_nodes', 'unchanged')
      } else {
        this.emit({ ...base, kind: 'started', from, to, message: result.message })
        this.emit({
          ...base,
          kind: 'applied',
          from,
          to,
          message: result.message,
          durationMs: this.now() - started,
        })
        this.deps.metrics?.operation('scale_nodes', 'applied', this.now() - started)
      }
      this.deps.logger.info({ role, from, to }, result.message)
      // As the original: wait when nodes were added, or restart a wait already running with the new count.
      if (to > from || this.waiter.waiting) this.waitAndReschedule(role, from, to)
      return { status: 200, ok: true, message: result.message }
    } catch (err) {
      return this.failed(err, { ...base, from, to, durationMs: this.now() - started })
    }
  }

  /**
   * Tide's scale-in of a node group: an `aws-asg` target with a Swarm node drainer picks the
   * instances (newest first), drains their nodes and terminates them with decrement. It runs on
   * the receiver's own signal, not the request's: a drain outlives a short HTTP timeout, and
   * stopping Tide makes the node active again. Undefined with `nodes.drain.enabled: false`.
   */
  private nodeScaleIn(role: 'manager' | 'worker', asg: string, reason: string): NodeScaleIn | undefined {
    const drain = this.config.nodes?.drain
    if (!drain?.enabled || !this.deps.asg) return undefined
    const logger = this.deps.logger
    const drainer = new SwarmNodeDrainer(this.deps.swarm, {
      label: drain.node_label,
      timeout: drain.timeout,
      poll: drain.poll,
      logger,
    })
    return async (to, bounds) => {
      const target = new AsgTarget('aws', this.deps.asg!, {
        name: asg,
        role,
        scaleIn: 'terminate',
        // Answer once the instances are terminating; AWS finishes on its own.
        readyTimeout: 0,
        pollInterval: 1000,
        address: 'none',
        ...(bounds ? { minSize: bounds.min, maxSize: bounds.max } : {}),
        ...(this.deps.ec2 ? { ec2: this.deps.ec2 } : {}),
        drainer,
        logger,
      })
      await target.scale(
        to,
        { reason, progress: (message) => logger.info({ role, asg }, message) },
        this.abort.signal,
      )
    }
  }

  /** `/v1/reschedule-services`. */
  async rescheduleAll(signal: AbortSignal): Promise<Outcome> {
    const base = this.rescheduleEvent('Rescheduling all labeled services')
    const started = this.now()
    try {
      const result = await this.rescheduler.all(signal)
      if (result.failed.length > 0) {
        return this.failed(new TideError('E_TARGET', result.message, { status: 502 }), base)
      }
      this.emit({ ...base, kind: 'applied', message: result.message })
      this.deps.metrics?.operation('reschedule_service', 'applied', this.now() - started)
      return { status: 200, ok: true, message: result.message }
    } catch (err) {
      return this.failed(err, base)
    }
  }

  /** `/v1/reschedule-service?service=`. */
  async rescheduleOne(service: string, signal: AbortSignal): Promise<Outcome> {
    const base = this.rescheduleEvent(`Rescheduling service: ${service}`)
    const started = this.now()
    try {
      const message = await this.rescheduler.one(service, signal)
      this.emit({ ...base, kind: 'applied', message })
      this.deps.metrics?.operation('reschedule_service', 'applied', this.now() - started)
      return { status: 200, ok: true, message }
    } catch (err) {
      return this.failed(err, base)
    }
  }

  /** A request that could not be read: the seed's `bad_request` alert, and the error's answer. */
  badRequest(err: unknown, trigger: Trigger = 'scale_service'): Outcome {
    return this.failed(
      err,
      {
        group: 'bad_request',
        trigger,
        from: 0,
        to: 0,
        direction: 'up',
        reason: 'Incorrect request',
        target: 'docker-swarm',
      },
      'bad_request',
    )
  }

  /** Stops a node wait in progress and waits for background work to settle. */
  async close(): Promise<void> {
    this.abort.abort(new Error('the receiver is closing'))
    this.waiter.cancel()
    await Promise.allSettled([...this.background])
  }

  /** Resolves when background waits (node joins, rescheduling) are done (tests). */
  async idle(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background])
  }

  // ─── Internals ────────────────────────────────────────────────────────────

  /**
   * Waits in the background for `to` ready nodes of `role`, then reschedules every labelled
   * service. Its events are seed 003's alerts (seeds.md §3.6), in order:
   *
   *   scale_nodes        reschedule  "Wait to reschedule"          pending  "Waiting for worker nodes to scale from 0 to 1 for rescheduling"
   *   reschedule_service reschedule  "Waiting for nodes to scale"  pending  "Waited 60 seconds for a total of 1 worker nodes to come online"  (each check)
   *   reschedule_service reschedule  <status>                      success  "1 worker nodes are up, web rescheduled" | "Rescheduling is canceled by another rescheduler"
   *   reschedule_service reschedule  "Waiting for nodes to scale"  error    the timeout or the failed rescheduling
   */
  private waitAndReschedule(role: 'manager' | 'worker', from: number, to: number): void {
    const { interval, timeout } = this.config.reschedule
    this.emit({
      ...this.rescheduleEvent('Wait to reschedule'),
      trigger: 'scale_nodes',
      from,
      to,
      kind: 'progress',
      message: `Waiting for ${role} nodes to scale from ${from} to ${to} for rescheduling`,
    })
    const base = { ...this.rescheduleEvent(WAITING), from, to }
    const started = this.now()
    const work = (async () => {
      try {
        const result = await this.waiter.wait(
          {
            role,
            atLeast: to,
            interval,
            timeout,
            onTick: (_ready, waited) =>
              this.emit({
                ...base,
                kind: 'progress',
                message: `Waited ${Math.round(waited / 1000)} seconds for a total of ${to} ${role} nodes to come online`,
              }),
          },
          this.abort.signal,
        )
        if (result.outcome === 'cancelled') {
          // Tide is stopping: nobody replaced this wait, so there is nothing to report.
          if (this.abort.signal.aborted) return
          const status = 'Rescheduling is canceled by another rescheduler'
          // A success alert, as the original: the newer wait carries on.
          this.emit({ ...base, kind: 'unchanged', reason: status, message: status })
          this.deps.metrics?.operation('reschedule_service', 'unchanged')
          return
        }
        const all = await this.rescheduler.all(this.abort.signal)
        const message = `${result.ready} ${role} nodes are up, ${all.message}`
        const durationMs = this.now() - started
        if (all.failed.length > 0) {
          this.emit({ ...base, kind: 'failed', message, durationMs })
        } else {
          this.emit({ ...base, kind: 'applied', reason: message, message, durationMs })
        }
        this.deps.metrics?.operation(
          'reschedule_service',
          all.failed.length > 0 ? 'failed' : 'applied',
          durationMs,
        )
        this.deps.logger.info({ role, ready: result.ready }, message)
      } catch (err) {
        if (this.abort.signal.aborted) return
        this.deps.logger.warn(
          { role, err: errorMessage(err) },
          `waiting for ${role} nodes failed: ${errorMessage(err)}`,
        )
        this.emit({ ...base, kind: 'failed', message: errorMessage(err), durationMs: this.now() - started })
        this.deps.metrics?.operation('reschedule_service', 'failed', this.now() - started)
      }
    })()
    this.background.add(work)
    void work.finally(() => this.background.delete(work))
  }

  private rescheduleEvent(reason: string) {
    return {
      group: 'reschedule',
      trigger: 'reschedule_service' as const,
      from: 0,
      to: 0,
      direction: 'up' as const,
      reason,
      target: 'docker-swarm',
    }
  }

  private failed(
    err: unknown,
    event: Omit<ScaleEvent, 'kind' | 'at' | 'decision'>,
    result: 'failed' | 'bad_request' = 'failed',
  ): Outcome {
    const message = errorMessage(err)
    const status = err instanceof TideError ? err.status : 500
    const code = err instanceof TideError ? err.code : 'E_INTERNAL'
    this.emit({ ...event, kind: 'failed', message })
    this.deps.metrics?.operation(event.trigger as Trigger, result, event.durationMs)
    if (status >= 500) this.deps.logger.error({ err }, `${event.reason}: ${message}`)
    else this.deps.logger.warn({ status }, `${event.reason}: ${message}`)
    return { status, ok: false, message, code }
  }

  private emit(event: Omit<ScaleEvent, 'at' | 'decision'>): void {
    try {
      this.deps.events?.({ ...event, decision: 0, at: this.now() })
    } catch (err) {
      this.deps.logger.warn({ err: errorMessage(err) }, 'an event listener threw')
    }
  }
}

/** groupKey + first startsAt of a firing payload, or undefined for a hand-written request. */
function episode(payload: Webhook): string | undefined {
  return payload.groupKey ? `${payload.groupKey}|${episodeStart(payload)}` : undefined
}
