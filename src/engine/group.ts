/**
 * One group's control loop.
 *
 *            ┌──────────── every `interval` ────────────┐
 *            ▼                                          │
 *   observe: target.status() + sources (in parallel) ───┤  (always: the dashboard sees fresh data)
 *            │                                          │
 *            ▼  no operation in flight?                 │
 *   decide:  policies → governor (largest wins, bounds, │
 *            stabilization, step, cooldown)             │
 *            │                                          │
 *            ▼  decision = scale?                       │
 *   act:     intent opened → cooldown starts →          │
 *            target.scale (drain via router) →          │
 *            intent closed, decision finished ──────────┘
 *
 * Single flight: at most one operation per group; the loop keeps observing while one runs.
 * The cooldown starts when an operation starts (as seed 000 marks the cluster before it
 * acts), so a failing operation cannot loop fast; a target that says NoChange gives the
 * cooldown back (Nomad's rule).
 */

import { aggregate } from '../core/aggregate.js'
import type { Clock } from '../core/clock.js'
import { errorMessage, NoChangeError, TideError } from '../core/errors.js'
import { cooldownLeft, govern, makeDecision, planManual, recordChange } from '../core/governor.js'
import type {
  Decision,
  GovernorConfig,
  GovernorState,
  GroupStatus,
  Metrics,
  NamedRecommendation,
  Policy,
  ScaleEvent,
  Source,
  Target,
} from '../core/types.js'
import type { Router } from '../router/index.js'
import type {
  DecisionRecord,
  GroupView,
  MetricView,
  OperationView,
  Outcome,
  ScaleRequest,
  Trigger,
} from './controller.js'
import type { Logger } from './log.js'
import type { Store } from './store.js'
import type { Telemetry } from './telemetry.js'

export interface GroupSettings {
  min: number
  max: number
  interval: number
  staleAfter: number
  shadow: boolean
  governor: GovernorConfig
  /** How long the router may take to drain one instance. */
  drainTimeout: number
  /** Decisions kept in the store for this group. */
  keepDecisions: number
}

export interface GroupParts {
  name: string
  settings: GroupSettings
  target: Target
  sources: Source[]
  policies: Array<{ name: string; decide: Policy }>
  router?: Router
  store: Store
  clock: Clock
  logger: Logger
  telemetry?: Telemetry
  /** Told about every operation (started, progress, applied, failed, unchanged) and shadow decision; never awaited. */
  events?: (event: ScaleEvent) => void
}

/** What a config reload swaps into a running group (GroupRunner.reconfigure). */
export interface GroupReconfig {
  settings: GroupSettings
  policies: GroupParts['policies']
  events?: GroupParts['events']
}

/** What failed, for the answer to held requests: `instance web-1 exited with code 1; …`. */
function failures(instances: GroupStatus['instances']): string {
  return instances.map((i) => `instance ${i.id} ${i.detail ?? 'failed'}`).join('; ')
}

/** Refused because the group is busy or cooling down; the API answers 409. */
export class ConflictError extends TideError {
  constructor(code: 'E_BUSY' | 'E_COOLDOWN', message: string) {
    super(code, message, { status: 409 })
  }
}

interface Operation extends OperationView {
  done: Promise<DecisionRecord>
}

/** How long a repeated "wanted to scale but was held" decision waits before it is stored again. */
const HELD_RECORD_INTERVAL = 30_000

export class GroupRunner {
  readonly name: string
  private readonly parts: GroupParts
  private state: GovernorState = { history: [] }
  private status: GroupStatus = { desired: 0, instances: [], ready: 0 }
  private metrics: Metrics = {}
  private lastDecision?: DecisionRecord
  private lastStoredHeldAt = 0
  private lastShadow?: { to: number; at: number }
  private operation?: Operation
  private timer?: NodeJS.Timeout
  /** The loop runs (start() without `loop: false`). */
  private looping = false
  /** A loop tick is evaluating; it schedules the next one itself when done. */
  private ticking = false
  /** When the last loop tick started; the next one is due `interval` after it. */
  private tickStarted?: number
  private stopped = false
  private evaluating?: Promise<DecisionRecord>
  private readonly abort = new AbortController()
  private unwatch?: () => void
  private message?: string
  /** A request asked for a wake while another operation ran; the wake happens when it ends. */
  private wakeAfterOperation = false
  /** The router holds requests for want of a ready instance (a demand episode is open). */
  private waiting = false
  /** Held requests were answered because no instance could start, and none has been ready since. */
  private cannotStart = false
  /** Instances the target last reported as `failed`, to see new failures. */
  private failedIds = new Set<string>()

  constructor(parts: GroupParts) {
    this.parts = parts
    this.name = parts.name
  }

  private get log(): Logger {
    return this.parts.logger
  }

  /**
   * Loads state, adopts what exists, finishes what a previous run left open, starts the loop
   * (tests pass `loop: false` and call evaluate() themselves).
   */
  async start(options: { loop?: boolean } = {}): Promise<void> {
    const { store, target, router, clock } = this.parts
    this.state = store.loadState(this.name) ?? { history: [] }
    await target.start?.(this.abort.signal)
    if (target.watch) this.unwatch = target.watch((status) => this.onStatus(status))
    try {
      this.onStatus(await target.status(this.abort.signal))
    } catch (err) {
      // One group's broken target (a plugin that throws) must not keep the others from starting:
      // the loop reads it again at every tick and the group's message says what is wrong.
      this.parts.telemetry?.evaluationErrors.inc({ group: this.name, stage: 'target' })
      this.message = `cannot read the target: ${errorMessage(err)}`
      this.log.warn({ group: this.name, err }, 'target status failed at start')
    }
    this.recover(clock.now())
    router?.onDemand(() => {
      this.waiting = true
      this.onDemand()
    })
    const telemetry = this.parts.telemetry
    if (telemetry) {
      router?.onWait?.((ms, served) =>
        telemetry.coldStartWait.observe(
          { group: this.name, result: served ? 'served' : 'failed' },
          ms / 1000,
        ),
      )
    }
    if (options.loop !== false) {
      this.looping = true
      this.schedule(0)
    }
  }

  /**
   * A previous run stopped in the middle of an operation. The target adopted what exists
   * (start above); the intent is closed and the loop brings the group where it should be.
   */
  private recover(now: number): void {
    const { store, settings } = this.parts
    let wanted = this.state.desired
    for (const intent of store.openIntents(this.name)) {
      store.closeIntent(
        intent.id,
        'abandoned',
        now,
        `found open at start-up; target reports ${this.status.desired}`,
      )
      wanted = intent.to
      const reason =
        `Tide stopped during "${intent.reason}" (${intent.from} → ${intent.to}, started ${new Date(intent.startedAt).toISOString()}); ` +
        `the target now reports ${this.status.desired} instance(s), ${this.status.ready} ready`
      this.log.warn({ group: this.name, intent: intent.id }, reason)
      this.record(makeDecision(this.status.desired, this.status.desired, reason), 'recovery', 'held', now)
    }
    // Instances that died with Tide (local processes) come back at once, without waiting for
    // the policies to see the load again; a target whose instances outlive Tide reports them
    // and needs nothing. Not a new decision, so the cooldown is left as it was.
    if (wanted === undefined || settings.shadow) return
    const to = Math.min(settings.max, Math.max(settings.min, wanted))
    if (to > this.status.desired) {
      const reason = `scale up ${this.status.desired} → ${to}: restoring the size the group had before Tide restarted`
      this.apply(makeDecision(this.status.desired, to, reason), 'recovery', now, false, false)
    }
  }

  private onStatus(status: GroupStatus): void {
    this.status = status
    this.message = status.message
    const { router } = this.parts
    if (router) {
      const backends = []
      for (const instance of status.instances) {
        if (instance.state === 'ready' && instance.address)
          backends.push({ id: instance.id, address: instance.address })
      }
      router.setBackends(backends)
      if (backends.length > 0) this.waiting = false
    }
    if (status.ready > 0) this.cannotStart = false
    this.startFailed(status)
  }

  /**
   * The requests the router holds were waiting for an instance that has just failed (it exited
   * or never passed its health check), and no other one is ready or starting: answer them now,
   * 503 with Retry-After, as a failed wake does, rather than let them wait out `queue.timeout`
   * for a replacement that may crash too. This covers failures the target reports outside an
   * operation (a process target replacing a crashed instance after its back-off). Instances
   * still starting may yet become ready, so they keep the requests waiting.
   */
  private startFailed(status: GroupStatus): void {
    const failed = status.instances.filter((i) => i.state === 'failed')
    const fresh = failed.filter((i) => !this.failedIds.has(i.id))
    this.failedIds = new Set(failed.map((i) => i.id))
    if (!this.waiting || fresh.length === 0 || status.ready > 0) return
    if (status.instances.some((i) => i.state === 'starting')) return
    this.answerHeld(failures(fresh))
  }

  /** Answers the requests held for this group 503 (E_ROUTER_WAKE_FAILED) and closes the episode. */
  private answerHeld(reason: string): void {
    const router = this.parts.router
    if (!router?.wakeFailed) return
    this.waiting = false
    this.cannotStart = true
    const answered = router.wakeFailed(reason)
    this.log.warn(
      { group: this.name, answered, reason },
      'no instance could be started: the requests held for one were answered 503 (E_ROUTER_WAKE_FAILED); the next request tries again',
    )
  }

  /**
   * A request reached the router while no instance was ready: wake the group now, not at the
   * next tick, and whatever the cooldown says (a held request is a user waiting). The router
   * signals once per episode, so a burst makes one wake. While another operation runs (a
   * scale-down to zero draining its last instance), the wake waits for it to end and then
   * happens if the group is still at zero: a request that arrived during the drain is held by
   * the router and served by the next instance, never dropped.
   */
  private onDemand(): void {
    if (this.stopped || this.parts.settings.shadow) return
    if (this.operation) {
      this.wakeAfterOperation = true
      return
    }
    if (this.status.desired > 0) {
      // Instances are on their way and the request waits for them, unless none can come: held
      // requests were already answered because no instance could start, none has been ready since,
      // and every one is still failed (a crash loop in its back-off, an image that cannot be
      // pulled). Nothing new fails to say so again (startFailed), so holding the request until
      // `queue.timeout` would only delay the same answer. A first crash of a serving instance still
      // holds requests for its replacement.
      const { instances } = this.status
      if (this.cannotStart && instances.length > 0 && instances.every((i) => i.state === 'failed'))
        this.answerHeld(failures(instances))
      return
    }
    const to = Math.max(1, this.parts.settings.min)
    const reason = `scale up 0 → ${to}: a request arrived while the group was at zero`
    this.apply(makeDecision(0, to, reason), 'auto', this.parts.clock.now())
  }

  /** The operation that held back a wake has ended: read the target afresh and wake if still at zero. */
  private async wakeDeferred(): Promise<void> {
    this.wakeAfterOperation = false
    try {
      this.onStatus(await this.parts.target.status(this.abort.signal))
    } catch (err) {
      this.log.warn({ group: this.name, err }, 'target status failed before a wake')
    }
    this.onDemand()
  }

  /**
   * A wake (0 → n) failed: the requests held for it get a 503 with Retry-After now rather than at
   * their deadline, and the router forgets the episode so the next request wakes again. Nothing
   * is cached (seed 004 handed one failure to every request for 60 s).
   */
  private wakeFailed(record: DecisionRecord): void {
    // Answered already when the target reported the failed instance (startFailed).
    if (record.outcome !== 'failed' || !this.waiting) return
    this.answerHeld(record.error ?? 'the target failed to start an instance')
  }

  private schedule(delay: number): void {
    if (this.stopped) return
    // One pending tick at most, whoever schedules (the loop itself, or a reload's new interval).
    if (this.timer) clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      const started = this.parts.clock.now()
      this.ticking = true
      this.tickStarted = started
      this.evaluate('auto')
        .catch((err) => this.log.error({ group: this.name, err }, 'evaluation failed'))
        .finally(() => {
          this.ticking = false
          const elapsed = this.parts.clock.now() - started
          // Read now, not when the tick started: a reload during the tick sets the next delay.
          this.schedule(Math.max(0, this.parts.settings.interval - elapsed))
        })
    }, delay)
    this.timer.unref?.()
  }

  /**
   * A config reload: swaps in new settings (bounds, loop and governor), policies and event
   * listener, between two evaluations, never during one: if one is running, this waits for it
   * and the new parts apply from the next. An operation in flight keeps what it started with
   * (its drain timeout, its notifiers). A new interval reschedules the pending tick to
   * `interval` after the last one started. Bounds narrowed below the current size are enforced
   * by the governor at the next evaluation, as bounds always are (a decision says "3 is above max 2").
   */
  async reconfigure(next: GroupReconfig): Promise<void> {
    // A new evaluation may start while this waits for one to end: wait for that one too.
    while (this.evaluating) await this.evaluating.catch(() => {})
    const before = this.parts.settings
    this.parts.settings = next.settings
    this.parts.policies = next.policies
    this.parts.events = next.events
    // The governor reads bounds and cooldowns from `settings.governor`; its remembered state
    // (stabilization history, last change) stays, so a reload never resets a cooldown.
    if (next.settings.interval !== before.interval && this.looping && !this.ticking && !this.stopped) {
      const since = this.tickStarted === undefined ? 0 : this.parts.clock.now() - this.tickStarted
      this.schedule(Math.max(0, next.settings.interval - since))
    }
    this.log.debug({ group: this.name, interval: next.settings.interval }, 'group reconfigured')
  }

  /** Observe, and when no operation is in flight, decide and act. One evaluation at a time. */
  evaluate(trigger: Trigger): Promise<DecisionRecord> {
    if (this.evaluating) return this.evaluating
    this.evaluating = this.runEvaluation(trigger).finally(() => {
      this.evaluating = undefined
    })
    return this.evaluating
  }

  private async runEvaluation(trigger: Trigger): Promise<DecisionRecord> {
    const { clock, telemetry } = this.parts
    const started = clock.now()
    await this.observe()
    const now = clock.now()
    if (this.operation) {
      const op = this.operation
      const reason = `hold at ${op.to}: an operation is in flight (${op.from} → ${op.to}, ${Math.round((now - op.startedAt) / 1000)}s so far)`
      return this.remember(makeDecision(this.status.desired, this.status.desired, reason), trigger, now)
    }
    const decision = this.decide(now)
    telemetry?.evaluationDuration.observe({ group: this.name }, (clock.now() - started) / 1000)
    if (decision.kind === 'scale' && decision.to !== decision.from) {
      if (this.parts.settings.shadow) return this.shadow(decision, trigger, now)
      return this.apply(decision, trigger, now).record
    }
    return this.remember(decision, trigger, now)
  }

  private async observe(): Promise<void> {
    const { target, sources, clock, telemetry } = this.parts
    const signal = AbortSignal.any([
      this.abort.signal,
      AbortSignal.timeout(Math.max(1000, this.parts.settings.interval * 5)),
    ])
    try {
      this.onStatus(await target.status(signal))
    } catch (err) {
      telemetry?.evaluationErrors.inc({ group: this.name, stage: 'target' })
      this.message = `cannot read the target: ${errorMessage(err)}`
      this.log.warn({ group: this.name, err }, 'target status failed')
    }
    const ctx = { group: this.name, now: clock.now(), instances: this.status.instances, signal }
    const results = await Promise.allSettled(sources.map((s) => s.collect(ctx)))
    const metrics: Metrics = {}
    results.forEach((result, i) => {
      if (result.status === 'fulfilled') Object.assign(metrics, result.value)
      else {
        telemetry?.evaluationErrors.inc({ group: this.name, stage: 'source' })
        this.log.warn({ group: this.name, source: sources[i]!.kind, err: result.reason }, 'source failed')
      }
    })
    this.metrics = metrics
    const values: Record<string, number> = { desired: this.status.desired, ready: this.status.ready }
    for (const [name, reading] of Object.entries(metrics)) {
      const value = groupValue(reading)
      if (value !== undefined) values[name] = value
    }
    this.parts.store.addMetrics(this.name, ctx.now, values)
  }

  private decide(now: number): Decision {
    const { settings, policies, telemetry } = this.parts
    const input = {
      now,
      group: this.name,
      current: this.status.desired,
      ready: this.status.ready,
      min: settings.min,
      max: settings.max,
      metrics: this.metrics,
      staleAfter: settings.staleAfter,
      // The group's recorded metrics (observe() stores each evaluation's, `desired` included),
      // for policies with windows (idle) and forecasts.
      history: (metric: string, since: number, until?: number) =>
        this.parts.store.metricHistory(this.name, metric, since, until),
    }
    const recommendations: NamedRecommendation[] = policies.map(({ name, decide }) => {
      try {
        return { ...decide(input), policy: name }
      } catch (err) {
        telemetry?.evaluationErrors.inc({ group: this.name, stage: 'policy' })
        return { kind: 'unknown', reason: `policy ${name} failed: ${errorMessage(err)}`, policy: name }
      }
    })
    const { decision, state } = govern({
      now,
      current: this.status.desired,
      config: settings.governor,
      recommendations,
      state: this.state,
    })
    this.state = state
    this.parts.store.saveState(this.name, this.state, now)
    return decision
  }

  /**
   * Starts an operation: returns its decision record (outcome `pending`) at once, and `done`,
   * which resolves with the finished record (never rejects).
   */
  private apply(
    decision: Decision,
    trigger: Trigger,
    now: number,
    forced = false,
    startsCooldown = true,
  ): { record: DecisionRecord; done: Promise<DecisionRecord> } {
    const { store, target, router, settings, clock, telemetry, events } = this.parts
    const direction = decision.to > decision.from ? 'up' : 'down'
    const previous = this.state
    // Intent first, so a restart knows this was in flight; then the cooldown starts.
    const intent = store.openIntent(this.name, decision.from, decision.to, decision.reason, now)
    if (startsCooldown) {
      this.state = recordChange(this.state, now, direction)
      store.saveState(this.name, this.state, now)
    }
    const record = this.record(decision, trigger, 'pending', now, forced)
    this.log.info({ group: this.name, trigger }, decision.reason)
    // The operation reports to the notifiers it started with, even if a reload swaps them meanwhile.
    const emit = (kind: ScaleEvent['kind'], extra?: Partial<ScaleEvent>) =>
      this.emit(record, kind, extra, events)
    emit('started')
    const drainTimeout = settings.drainTimeout
    /** Instances drained by this operation, to give back to the router if it fails. */
    const drained = new Set<string>()
    let succeeded = false
    const done = (async (): Promise<DecisionRecord> => {
      try {
        const result = await target.scale(
          decision.to,
          {
            reason: decision.reason,
            drain: router
              ? async (instance) => {
                  drained.add(instance.id)
                  await router.drain(instance.id, drainTimeout)
                }
              : undefined,
            undrain: router?.undrain
              ? (instance) => {
                  drained.delete(instance.id)
                  router.undrain!(instance.id)
                }
              : undefined,
            progress: (message) => {
              this.log.info({ group: this.name }, message)
              emit('progress', { message })
            },
          },
          this.abort.signal,
        )
        const durationMs = clock.now() - now
        this.state = { ...this.state, desired: decision.to }
        store.saveState(this.name, this.state, clock.now())
        store.closeIntent(intent.id, 'done', clock.now())
        store.finishDecision(record.id, 'applied', { durationMs })
        telemetry?.scaleDuration.observe(
          { group: this.name, direction, result: 'applied' },
          durationMs / 1000,
        )
        this.log.info({ group: this.name, durationMs }, `now at ${decision.to} (took ${durationMs}ms)`)
        emit('applied', { durationMs, added: result.added, removed: result.removed })
        succeeded = true
        return this.finish(record, 'applied', { durationMs })
      } catch (err) {
        const durationMs = clock.now() - now
        if (err instanceof NoChangeError) {
          // Nothing happened: no cooldown (Nomad's rule).
          this.state = { ...this.state, lastChange: previous.lastChange }
          store.saveState(this.name, this.state, clock.now())
          store.closeIntent(intent.id, 'done', clock.now(), err.message)
          store.finishDecision(record.id, 'held', {
            durationMs,
            reason: `${decision.reason} (no change: ${err.message})`,
          })
          emit('unchanged', { durationMs, message: err.message })
          return this.finish(record, 'held', { durationMs })
        }
        const error = errorMessage(err)
        store.closeIntent(intent.id, 'failed', clock.now(), error)
        store.finishDecision(record.id, 'failed', { error, durationMs })
        telemetry?.scaleDuration.observe({ group: this.name, direction, result: 'failed' }, durationMs / 1000)
        this.log.error(
          { group: this.name, err },
          `scaling ${decision.from} → ${decision.to} failed: ${error}`,
        )
        emit('failed', { durationMs, message: error })
        return this.finish(record, 'failed', { error, durationMs })
      } finally {
        // Refresh at once so the API shows the new size without waiting for the next tick.
        const refreshed = this.observe().catch(() => {})
        if (!succeeded && drained.size > 0) void refreshed.then(() => this.undrainSurvivors(drained))
      }
    })()
    // Cleared when it finishes, unless a newer operation has replaced it by then.
    const operation = {
      id: record.id,
      from: decision.from,
      to: decision.to,
      startedAt: now,
      reason: decision.reason,
      done,
    }
    this.operation = operation
    done.then((finished) => {
      if (this.operation === operation) this.operation = undefined
      if (decision.from === 0 && decision.to > 0) this.wakeFailed(finished)
      if (this.wakeAfterOperation && !this.operation && !this.stopped) void this.wakeDeferred()
    })
    return { record, done }
  }

  /**
   * A scale-down that failed (or changed nothing) after draining some instances: those the
   * target still reports ready go back into the router's rotation. Left drained, they would take
   * no request while counted as serving, and a group down to its last instance would hold every
   * request until `queue.timeout`.
   */
  private undrainSurvivors(drained: Set<string>): void {
    const router = this.parts.router
    if (!router?.undrain) return
    const back = this.status.instances
      .filter((i) => drained.has(i.id) && i.state === 'ready')
      .map((i) => i.id)
    for (const id of back) router.undrain(id)
    if (back.length > 0)
      this.log.info(
        { group: this.name, instances: back },
        `the operation did not remove ${back.join(', ')}: back in the router's rotation`,
      )
  }

  /** Tells the group's notifiers; a throwing listener never reaches the loop. */
  private emit(
    record: DecisionRecord,
    kind: ScaleEvent['kind'],
    extra: Partial<ScaleEvent> = {},
    events = this.parts.events,
  ): void {
    const { target, clock } = this.parts
    if (!events) return
    try {
      events({
        kind,
        group: this.name,
        decision: record.id,
        trigger: record.trigger,
        from: record.from,
        to: record.to,
        direction: record.to >= record.from ? 'up' : 'down',
        reason: record.reason,
        at: clock.now(),
        target: target.kind,
        ...extra,
      })
    } catch (err) {
      this.log.warn({ group: this.name, err }, 'event listener failed')
    }
  }

  private finish(
    record: DecisionRecord,
    outcome: DecisionRecord['outcome'],
    extra: Partial<DecisionRecord>,
  ): DecisionRecord {
    const finished: DecisionRecord = { ...record, ...extra, outcome }
    if (this.lastDecision?.id === record.id) this.lastDecision = finished
    this.parts.telemetry?.decisions.inc({
      group: this.name,
      outcome,
      direction: finished.to >= finished.from ? 'up' : 'down',
    })
    return finished
  }

  /** Stores a decision and makes it the group's last. */
  private record(
    decision: Decision,
    trigger: Trigger,
    outcome: DecisionRecord['outcome'],
    now: number,
    forced = false,
  ): DecisionRecord {
    const record = this.parts.store.addDecision({
      ...decision,
      group: this.name,
      at: now,
      trigger,
      outcome,
      forced: forced || undefined,
    })
    this.lastDecision = record
    if (outcome !== 'pending') {
      this.parts.telemetry?.decisions.inc({
        group: this.name,
        outcome,
        direction: decision.to >= decision.from ? 'up' : 'down',
      })
    }
    if (record.id % 100 === 0) this.parts.store.pruneDecisions(this.name, this.parts.settings.keepDecisions)
    return record
  }

  /**
   * A shadow group never starts a cooldown, so it would want the same change at every tick:
   * its decision is stored when what it would do changes, or every 30s while it stays the same.
   */
  private shadow(decision: Decision, trigger: Trigger, now: number): DecisionRecord {
    const last = this.lastShadow
    if (trigger !== 'auto' || !last || last.to !== decision.to || now - last.at >= HELD_RECORD_INTERVAL) {
      this.lastShadow = { to: decision.to, at: now }
      const record = this.record(decision, trigger, 'shadow', now)
      // Logged like an applied decision, so the log shows what shadow mode would have done.
      this.log.info(
        { group: this.name, trigger, shadow: true },
        `shadow (target untouched): would ${decision.reason}`,
      )
      this.emit(record, 'shadow')
      return record
    }
    return this.unstored(decision, trigger, 'shadow', now)
  }

  /**
   * A hold is kept in memory as the last decision; it is stored only when a policy wanted a
   * change that something held back (cooldown, stabilization, bounds), at most every 30s,
   * so "why didn't it scale?" has an answer without a row every tick.
   */
  private remember(decision: Decision, trigger: Trigger, now: number): DecisionRecord {
    const wanted = decision.recommendations.some((r) => r.kind === 'scale' && r.to !== decision.from)
    if (trigger !== 'auto' || (wanted && now - this.lastStoredHeldAt >= HELD_RECORD_INTERVAL)) {
      this.lastStoredHeldAt = now
      return this.record(decision, trigger, 'held', now)
    }
    return this.unstored(decision, trigger, 'held', now)
  }

  /** A decision kept only in memory as the group's last (id 0: not in the store). */
  private unstored(decision: Decision, trigger: Trigger, outcome: Outcome, now: number): DecisionRecord {
    const record: DecisionRecord = { ...decision, id: 0, group: this.name, at: now, trigger, outcome }
    this.lastDecision = record
    return record
  }

  /** Manual scaling: bounds always apply; the cooldown applies unless forced. */
  async scale(request: ScaleRequest): Promise<DecisionRecord> {
    const { clock, settings } = this.parts
    const now = clock.now()
    if (this.operation) {
      const op = this.operation
      throw new ConflictError(
        'E_BUSY',
        `group ${this.name} is already scaling ${op.from} → ${op.to} (started ${Math.round((now - op.startedAt) / 1000)}s ago); try again when it is done`,
      )
    }
    const current = this.status.desired
    const plan = planManual({
      now,
      current,
      to: request.to,
      by: request.by,
      force: request.force,
      note: request.reason,
      config: settings.governor,
      state: this.state,
    })
    if (!plan.ok) throw new ConflictError('E_COOLDOWN', `group ${this.name}: ${plan.reason}`)
    const { to, reason, steps } = plan
    const decision = makeDecision(current, to, reason, steps)
    if (to === current) return this.record(decision, 'manual', 'held', now)
    if (settings.shadow) return this.record(decision, 'manual', 'shadow', now)
    const { record, done } = this.apply(decision, 'manual', now, plan.forced)
    return request.wait ? done : record
  }

  /** When metric-driven changes in this direction may happen again. */
  private cooldownUntil(direction: 'up' | 'down'): number {
    const now = this.parts.clock.now()
    return now + cooldownLeft(this.parts.settings.governor, this.state, now, direction)
  }

  view(): GroupView {
    const { settings, target, router, clock } = this.parts
    const metrics: Record<string, MetricView> = {}
    for (const [name, reading] of Object.entries(this.metrics)) {
      const view: MetricView = { perInstance: reading.perInstance, missing: reading.missing, at: reading.at }
      const value = groupValue(reading)
      if (value !== undefined) view.value = value
      metrics[name] = view
    }
    const cooldownUntil = Math.max(this.cooldownUntil('up'), this.cooldownUntil('down'))
    const view: GroupView = {
      name: this.name,
      min: settings.min,
      max: settings.max,
      desired: this.status.desired,
      ready: this.status.ready,
      instances: this.status.instances,
      metrics,
      target: target.kind,
      shadow: settings.shadow,
    }
    if (this.lastDecision) view.lastDecision = this.lastDecision
    if (cooldownUntil > clock.now()) view.cooldownUntil = cooldownUntil
    if (this.operation) {
      const { done: _done, ...op } = this.operation
      view.operation = op
    }
    if (router) view.route = router.address
    if (this.message) view.message = this.message
    view.cooldown = settings.governor.cooldown
    const details = target.describe?.()
    if (details) view.details = details
    return view
  }

  decisions(limit: number): DecisionRecord[] {
    return this.parts.store.decisions(this.name, limit)
  }

  /** Resolves when the operation in flight (if any) has finished. */
  async settled(): Promise<void> {
    await this.operation?.done.catch(() => {})
  }

  /** Stops the loop and waits for an operation in flight (bounded by the caller). */
  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    this.unwatch?.()
    await this.evaluating?.catch(() => {})
    await this.operation?.done.catch(() => {})
  }

  /** Aborts whatever is in flight (shutdown after a grace period). */
  abortAll(): void {
    this.abort.abort(new Error('Tide is shutting down'))
  }
}

/**
 * The group-level number of a reading: its group value (a latency percentile) or its total
 * (a sum, such as concurrency) where the source has one, otherwise the mean of the instances.
 */
export function groupValue(reading: Metrics[string]): number | undefined {
  if (reading.group !== undefined) return reading.group
  if (reading.total !== undefined) return reading.total
  return aggregate(Object.values(reading.perInstance), 'mean')
}
