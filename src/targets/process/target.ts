/**
 * The `process` target: each instance is one local process, started by Tide, health-checked
 * over HTTP, replaced when it dies, drained and stopped when the group shrinks.
 *
 * An instance's life (states are core's InstanceState):
 *
 *            spawn                GET health 2xx
 *   (new) ─────────▶ starting ───────────────────▶ ready
 *                       │  exited / not ready           │ exited without being asked (crash,
 *                       │  within start_timeout         │ kill from outside), or, with
 *                       │                               │ health.live_interval on, failed
 *                       │                               │ live_failures checks in a row (then
 *                       ▼                               ▼ its group is killed with SIGKILL)
 *                    failed ◀───────────────────────────┘
 *                       │ after the back-off: removed, a new instance (next number) replaces it
 *
 *   scale down / close: ready ─▶ draining (plan.drain) ─▶ stopping (SIGTERM … SIGKILL) ─▶ removed
 *                       starting, failed ─▶ stopping ─▶ removed   (no traffic yet: no drain)
 *
 * `desired` counts the instances Tide wants: starting, ready, and failed ones waiting for their
 * replacement. Draining and stopping instances are on their way out and not counted.
 *
 * Every running instance is listed in `<logDir>/instances.json` (leftovers.ts). `start()` stops
 * the instances a previous Tide left running there (it was killed with SIGKILL, so its exit
 * hook never ran) rather than adopting them: a process that is not Tide's child cannot be
 * watched, and their health and drain state are unknown. The engine brings the group back to
 * its size on its first tick. Numbering continues above the highest id found, so each instance
 * still has a log of its own.
 */
import { appendFileSync, closeSync, fstatSync, mkdirSync, openSync, readSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Clock } from '../../core/clock.js'
import { formatDuration } from '../../core/duration.js'
import { BadRequestError, errorMessage, NoChangeError } from '../../core/errors.js'
import type {
  GroupStatus,
  Instance,
  InstanceState,
  ScalePlan,
  ScaleResult,
  Target,
} from '../../core/types.js'
import { interpolatedNames } from '../../config/interpolated.js'
import { type ChildHandle, describeExit, type ExitInfo, spawnChild } from './child.js'
import { type InheritEnv, inheritedEnv } from './env.js'
import { ProcessStartError, ProcessTargetClosedError, type StartFailure } from './errors.js'
import { probe } from './health.js'

/** How soon a start-up check is repeated while the port still refuses connections. */
const REFUSED_RETRY_MS = 5
import {
  highestNumber,
  processStartTime,
  readState,
  STATE_FILE,
  type StateEntry,
  stopLeftover,
  whyNotOurs,
  writeState,
} from './leftovers.js'
import { freePort, portTaken } from './ports.js'
import { backoffDelay, countFailure, type RestartConfig } from './restart.js'
import { chooseVictims, type RemoveOrder } from './victims.js'

/** The validated config this class needs (index.ts's ProcessTargetConfig, durations in ms). */
export interface ProcessSettings {
  command: string | string[]
  /** Absolute. */
  cwd: string
  env: Record<string, string>
  /** Which of Tide's own variables instances get (env.ts). */
  inherit_env: InheritEnv
  host: string
  health: {
    path: string
    interval: number
    timeout: number
    /** Time between checks of a ready instance; 0: none (an instance then stays ready until it exits). */
    live_interval: number
    /** Failed checks in a row after which a ready instance is killed and replaced. */
    live_failures: number
  }
  start_timeout: number
  stop_grace: number
  restart: RestartConfig
  remove_order: RemoveOrder
}

export interface ProcessLogger {
  info(o: object, m: string): void
  warn(o: object, m: string): void
  error(o: object, m: string): void
}

/** A start whose process died at once because another program took its port is retried this often. */
const PORT_ATTEMPTS = 3
/** Lines of an instance's log quoted in a start error. */
const TAIL_LINES = 5
/**
 * A check that the start deadline would cut shorter than this (or than `health.timeout`, if
 * that is shorter) is not made: its "no answer within 0.07ms" would hide what the checks
 * before it found.
 */
const MIN_PROBE_MS = 50

interface Slot {
  id: string
  state: InstanceState
  createdAt: number
  readyAt?: number
  port?: number
  pid?: number
  detail?: string
  child?: ChildHandle
  /** Size of the log file when the current process was spawned: a start error quotes what follows. */
  logOffset?: number
  /** The SIGKILL of a ready instance that failed its liveness checks, until its process is gone. */
  dying?: Promise<ExitInfo>
  /** Tide wants this instance gone: its exit is not a failure. */
  stopRequested: boolean
  /** Aborted when Tide stops the instance: ends its health checks and its start. */
  stopSignal: AbortController
  launching?: Promise<Settled>
  stopped?: Promise<void>
  restartTimer?: NodeJS.Timeout
  restartAt?: number
}

type Settled = { id: string; ok: true; ms: number } | { id: string; ok: false; failure: StartFailure }

type ReadyOutcome =
  | { kind: 'ready' }
  | { kind: 'stopped' }
  | { kind: 'exited'; info: ExitInfo }
  /** `check`: what the health checks found, for the error message. */
  | { kind: 'timeout'; check?: string }

const noLogger: ProcessLogger = { info() {}, warn() {}, error() {} }

export class ProcessTarget implements Target {
  readonly kind = 'process'
  private readonly slots: Slot[] = []
  private next = 1
  /** Failures (crashes, failed starts) in a row, for the back-off. */
  private failures = 0
  private lastFailure?: { at: number; text: string }
  /** True from the second failure in a row until an instance becomes ready. */
  private looping = false
  private readonly listeners = new Set<(status: GroupStatus) => void>()
  private closed = false
  private closing?: Promise<void>
  /** What `<logDir>/instances.json` lists: the running instances' processes, by pid. */
  private readonly recorded = new Map<number, StateEntry>()
  private starting?: Promise<void>
  private started = false
  /** A failure to write the state file is logged once, not at every change. */
  private stateFailing = false
  /** What `inherit_env` left out, as last logged: logged again only when it changes. */
  private withheldLogged?: string

  constructor(
    private readonly group: string,
    private readonly settings: ProcessSettings,
    private readonly logDir: string,
    private readonly clock: Clock,
    private readonly logger: ProcessLogger = noLogger,
  ) {}

  /**
   * Stops the instances a previous Tide left running (see the header), then clears the state
   * file. Never rejects; aborting cuts the leftovers' grace short (SIGKILL at once). Idempotent;
   * `scale` calls it too, for callers that do not.
   */
  start(signal?: AbortSignal): Promise<void> {
    this.starting ??= this.stopLeftovers(signal).finally(() => {
      this.started = true
    })
    return this.starting
  }

  async status(_signal?: AbortSignal): Promise<GroupStatus> {
    return this.snapshotStatus()
  }

  watch(listener: (status: GroupStatus) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  async scale(to: number, plan: ScalePlan, signal: AbortSignal): Promise<ScaleResult> {
    if (this.closed) throw new ProcessTargetClosedError(this.group)
    if (!Number.isInteger(to) || to < 0) {
      throw new BadRequestError(`cannot scale group ${this.group} to ${to}: must be a whole number ≥ 0`)
    }
    signal.throwIfAborted()
    if (!this.started) await this.start(signal)
    if (this.closed) throw new ProcessTargetClosedError(this.group)
    const wanted = this.wanted()
    const from = wanted.length
    if (to === from) {
      const ready = wanted.filter((s) => s.state === 'ready').length
      throw new NoChangeError(`group ${this.group} already has ${from} instance(s), ${ready} ready`)
    }
    return to > from ? this.scaleUp(from, to, plan, signal) : this.scaleDown(wanted, to, plan, signal)
  }

  /**
   * Stops every instance this target started (SIGTERM, SIGKILL after stop_grace; no drain) and
   * waits for them. Local processes die with Tide, so `close()` and `close({ stopInstances: true })`
   * do the same. A closed target refuses to scale and replaces nothing.
   */
  close(_options?: { stopInstances?: boolean }): Promise<void> {
    if (!this.closing) {
      this.closed = true
      this.closing = Promise.all([...this.slots].map((slot) => this.stopSlot(slot))).then(() => this.notify())
    }
    return this.closing
  }

  // ─── Scaling ───────────────────────────────────────────────────────────────

  private async scaleUp(
    from: number,
    to: number,
    plan: ScalePlan,
    signal: AbortSignal,
  ): Promise<ScaleResult> {
    const slots = Array.from({ length: to - from }, () => this.newSlot())
    const ids = slots.map((s) => s.id)
    this.logger.info(
      { group: this.group, from, to, instances: ids },
      `starting ${ids.join(', ')}: ${plan.reason}`,
    )
    this.notify()
    const all = Promise.all(
      slots.map(async (slot) => {
        const result = await slot.launching!
        if (result.ok)
          plan.progress?.(`${slot.id} ready after ${formatDuration(result.ms)} on ${this.address(slot)}`)
        else plan.progress?.(`${slot.id} ${result.failure.reason}`)
        return result
      }),
    )
    // Aborting stops the waiting only: the instances keep starting and `watch` reports them.
    const results = await untilAborted(all, signal)
    if (this.closed) throw new ProcessTargetClosedError(this.group)
    const failed = results.flatMap((r) => (r.ok ? [] : [r.failure]))
    if (failed.length > 0) {
      throw new ProcessStartError(
        this.group,
        failed,
        results.flatMap((r) => (r.ok ? [r.id] : [])),
        slots.length,
      )
    }
    return { from, to, added: ids, removed: [] }
  }

  private async scaleDown(
    wanted: Slot[],
    to: number,
    plan: ScalePlan,
    signal: AbortSignal,
  ): Promise<ScaleResult> {
    const from = wanted.length
    const ids = chooseVictims(
      wanted.map((s) => ({ id: s.id, state: s.state })),
      from - to,
      plan.victims,
      this.settings.remove_order,
    )
    this.logger.info(
      { group: this.group, from, to, instances: ids },
      `removing ${ids.join(', ')}: ${plan.reason}`,
    )
    const stops = ids.map(async (id) => {
      const slot = wanted.find((s) => s.id === id)!
      await this.stopSlot(slot, plan.drain)
      plan.progress?.(`${id} stopped`)
    })
    // An emptied group starts afresh: a crash loop before it is history, not news. (The count of
    // failures stays, so a broken command still waits its back-off.)
    if (to === 0) this.looping = false
    // Aborting stops the waiting only: the victims are already out of `desired` and keep stopping.
    await untilAborted(Promise.all(stops), signal)
    return { from, to, added: [], removed: ids }
  }

  // ─── Starting ──────────────────────────────────────────────────────────────

  private newSlot(): Slot {
    const slot: Slot = {
      id: `${this.group}-${this.next++}`,
      state: 'starting',
      createdAt: this.clock.now(),
      stopRequested: false,
      stopSignal: new AbortController(),
    }
    this.slots.push(slot)
    slot.launching = this.launch(slot)
    return slot
  }

  /** Starts the instance's process and waits until it is ready. Never rejects: failures are results. */
  private async launch(slot: Slot): Promise<Settled> {
    const started = performance.now()
    const deadline = started + this.settings.start_timeout
    const logFile = this.logFile(slot.id)
    const { host, health } = this.settings
    for (let attempt = 1; ; attempt++) {
      let port: number
      let child: ChildHandle
      try {
        mkdirSync(this.logDir, { recursive: true })
        port = await freePort(host, this.portsInUse())
        if (slot.stopRequested) return this.stoppedBeforeReady(slot)
        slot.port = port
        slot.logOffset = fileSize(logFile)
        child = await spawnChild({
          command: this.settings.command,
          cwd: this.settings.cwd,
          env: this.environment(slot.id, port),
          logFile,
          label: `starting ${slot.id} (group ${this.group}) on ${this.address(slot)}: ${this.commandText()}`,
        })
      } catch (err) {
        return this.startFailed(slot, `could not be started: ${errorMessage(err)}`)
      }
      slot.child = child
      slot.pid = child.pid
      this.record(slot.id, child, port)
      // stopSlot waits for this launch, then stops the child.
      if (slot.stopRequested) return this.stoppedBeforeReady(slot)
      slot.detail = `starting: waiting for GET ${health.path} to answer 2xx`
      this.logger.info(
        { group: this.group, instance: slot.id, pid: child.pid, address: this.address(slot), log: logFile },
        `${slot.id} started`,
      )
      this.notify()

      const outcome = await this.waitReady(slot, child, port, deadline)
      if (outcome.kind === 'stopped') return this.stoppedBeforeReady(slot)
      if (outcome.kind === 'ready') {
        const ms = performance.now() - started
        slot.state = 'ready'
        slot.readyAt = this.clock.now()
        slot.detail = `ready after ${formatDuration(ms)}`
        this.looping = false
        void child.exited.then((info) => this.onExit(slot, info))
        this.logger.info({ group: this.group, instance: slot.id, ms: Math.round(ms) }, `${slot.id} ready`)
        this.notify()
        if (health.live_interval > 0) void this.checkLiveness(slot, child, port)
        return { id: slot.id, ok: true, ms }
      }
      if (outcome.kind === 'timeout') {
        await child.kill()
        const checks = outcome.check
          ? `last check: GET ${health.path}: ${outcome.check}`
          : `no check of GET ${health.path} was made in time`
        return this.startFailed(
          slot,
          `was not ready within ${formatDuration(this.settings.start_timeout)} and was killed (${checks})`,
        )
      }
      // Exited before ready. If another program holds its port now, the port was taken between
      // Tide's check and the app's bind (ports.ts): that is not the app's fault, try another.
      if (attempt < PORT_ATTEMPTS && !slot.stopRequested && (await portTaken(host, port))) {
        this.logger.warn(
          { group: this.group, instance: slot.id, port },
          `${slot.id}: port ${port} was taken, retrying`,
        )
        continue
      }
      if (slot.stopRequested) return this.stoppedBeforeReady(slot)
      return this.startFailed(slot, `${describeExit(outcome.info)} before it was ready`)
    }
  }

  /**
   * Polls the health path every `interval` until 2xx, exit, stop or the deadline. What the
   * checks found (the status detail, and the timeout's message) is the last result, except that
   * a check cut short by the deadline that timed out keeps the result before it, and a check
   * without an answer after one with an HTTP status keeps that status: `answered 404, then no
   * answer within 1s` says more than the timeout alone.
   */
  private async waitReady(
    slot: Slot,
    child: ChildHandle,
    port: number,
    deadline: number,
  ): Promise<ReadyOutcome> {
    const { host, health } = this.settings
    const exited = new AbortController()
    let exitInfo: ExitInfo | undefined
    void child.exited.then((info) => {
      exitInfo = info
      exited.abort()
    })
    const signal = AbortSignal.any([slot.stopSignal.signal, exited.signal])
    /** What the checks found so far, and the last HTTP answer among them. */
    let check: string | undefined
    let answer: string | undefined
    for (;;) {
      if (slot.stopRequested) return { kind: 'stopped' }
      if (exitInfo) return { kind: 'exited', info: exitInfo }
      const timeout = Math.min(health.timeout, deadline - performance.now())
      if (timeout <= 0) return { kind: 'timeout', check }
      if (check !== undefined && timeout < Math.min(health.timeout, MIN_PROBE_MS)) {
        return { kind: 'timeout', check }
      }
      const result = await probe(host, port, health.path, timeout, signal)
      if (slot.stopRequested) return { kind: 'stopped' }
      if (result.ok) return { kind: 'ready' }
      if (exitInfo) return { kind: 'exited', info: exitInfo }
      const cutShort = timeout < health.timeout && result.timedOut
      if (result.status !== undefined) answer = result.reason
      if (!(cutShort && check !== undefined)) {
        check = result.status === undefined && answer ? `${answer}, then ${result.reason}` : result.reason
      }
      slot.detail = `starting: GET ${health.path}: ${check}`
      // Nothing listens yet: asking again costs a refused connect (tens of µs), so ask often and
      // release held requests within a few ms of the app listening (scale from zero).
      const every = result.refused ? Math.min(health.interval, REFUSED_RETRY_MS) : health.interval
      const wait = Math.min(every, deadline - performance.now())
      if (wait > 0) await sleep(wait, undefined, { signal }).catch(() => {})
    }
  }

  private stoppedBeforeReady(slot: Slot): Settled {
    const failure: StartFailure = {
      id: slot.id,
      reason: 'was stopped before it was ready',
      logFile: this.logFile(slot.id),
      lastOutput: [],
    }
    return { id: slot.id, ok: false, failure }
  }

  private startFailed(slot: Slot, reason: string): Settled {
    if (slot.stopRequested) return this.stoppedBeforeReady(slot)
    const logFile = this.logFile(slot.id)
    this.fail(slot, reason)
    // Only what this process wrote: the file also holds earlier runs' output (an id is used again
    // by the next run of Tide), which would pass for this one's.
    const lastOutput = tail(logFile, TAIL_LINES, slot.logOffset ?? 0)
    return { id: slot.id, ok: false, failure: { id: slot.id, reason, logFile, lastOutput } }
  }

  /**
   * Checks a ready instance's health path every `live_interval`. After `live_failures` failed
   * checks in a row its process group is killed (SIGKILL: an app that no longer answers its
   * health check may not honour SIGTERM either) and it fails like a crash. Ends when the
   * process exits or Tide stops the instance.
   */
  private async checkLiveness(slot: Slot, child: ChildHandle, port: number): Promise<void> {
    const { host, health } = this.settings
    const exited = new AbortController()
    void child.exited.then(() => exited.abort())
    const signal = AbortSignal.any([slot.stopSignal.signal, exited.signal])
    const readyDetail = slot.detail
    let failures = 0
    for (;;) {
      await sleep(health.live_interval, undefined, { signal }).catch(() => {})
      if (signal.aborted || slot.child !== child || slot.state !== 'ready') return
      const result = await probe(host, port, health.path, health.timeout, signal)
      if (signal.aborted || slot.child !== child || slot.state !== 'ready') return
      if (result.ok) {
        if (failures > 0) {
          failures = 0
          slot.detail = readyDetail
          this.notify()
        }
        continue
      }
      failures++
      const check = `GET ${health.path}: ${result.reason}`
      if (failures < health.live_failures) {
        slot.detail = `ready; health check failing (${failures} of ${health.live_failures} in a row): ${check}`
        this.notify()
        continue
      }
      const reason = `failed ${failures} health checks in a row (last: ${check}) and was killed`
      try {
        appendFileSync(
          this.logFile(slot.id),
          `# tide: ${slot.id} failed ${failures} health checks in a row (last: ${check}): SIGKILL to its process group\n`,
        )
      } catch {
        // The log is a convenience.
      }
      slot.dying = child.kill()
      this.fail(slot, reason)
      return
    }
  }

  // ─── Failures and replacement ──────────────────────────────────────────────

  /** The process of a ready instance exited. */
  private onExit(slot: Slot, info: ExitInfo): void {
    if (slot.stopRequested || this.closed) return // Tide stopped it: stopSlot takes it from here
    if (slot.state === 'failed') return // killed after failed health checks: failed already
    this.fail(slot, describeExit(info))
  }

  /** Marks an instance failed and schedules its replacement after the back-off. */
  private fail(slot: Slot, reason: string): void {
    const now = this.clock.now()
    const { restart } = this.settings
    this.failures = countFailure(
      this.failures,
      { now, readyAt: slot.readyAt, lastFailureAt: this.lastFailure?.at },
      restart,
    )
    if (this.failures >= 2) this.looping = true
    this.lastFailure = { at: now, text: `${slot.id} ${reason}` }
    const wait = backoffDelay(this.failures, restart)
    slot.state = 'failed'
    slot.child = undefined
    slot.restartAt = now + wait
    const loop = this.failures >= 2 ? ` (${this.failures} failures in a row)` : ''
    slot.detail = `${reason}; a new instance replaces it in ${formatDuration(wait)}${loop}`
    slot.restartTimer = setTimeout(() => this.replace(slot), wait)
    this.logger.warn(
      { group: this.group, instance: slot.id, pid: slot.pid, failures: this.failures, restartInMs: wait },
      `${slot.id} ${reason}; replacing it in ${formatDuration(wait)}`,
    )
    this.notify()
  }

  private replace(failed: Slot): void {
    failed.restartTimer = undefined
    if (failed.stopRequested || this.closed) return
    this.remove(failed)
    const fresh = this.newSlot()
    this.logger.info(
      { group: this.group, instance: fresh.id, replaces: failed.id },
      `${fresh.id} replaces ${failed.id}`,
    )
    this.notify()
  }

  // ─── Stopping ──────────────────────────────────────────────────────────────

  /**
   * Drains (ready instances only: the router never sent the others anything), then SIGTERM,
   * SIGKILL after stop_grace, then removes the instance. Idempotent.
   */
  private stopSlot(slot: Slot, drain?: (instance: Instance) => Promise<void>): Promise<void> {
    if (slot.stopped) return slot.stopped
    const wasReady = slot.state === 'ready'
    slot.stopRequested = true
    slot.stopSignal.abort()
    clearTimeout(slot.restartTimer)
    slot.stopped = (async () => {
      if (wasReady && drain) {
        slot.state = 'draining'
        slot.detail = 'draining: finishing the requests it has'
        this.notify()
        try {
          await drain(this.snapshot(slot))
        } catch (err) {
          // ScalePlan.drain never throws; if one does anyway, stopping must still happen.
          this.logger.error({ group: this.group, instance: slot.id, err }, `draining ${slot.id} failed`)
        }
      }
      // A starting instance may be between "port chosen" and "process spawned": let its launch
      // settle (it returns at once once stopSignal is aborted) so the child cannot escape.
      await slot.launching
      await slot.dying
      const child = slot.child
      if (child?.running) {
        slot.state = 'stopping'
        slot.detail = `stopping: SIGTERM sent, SIGKILL after ${formatDuration(this.settings.stop_grace)}`
        this.notify()
        const info = await child.stop(this.settings.stop_grace)
        this.logger.info(
          { group: this.group, instance: slot.id, pid: child.pid },
          `${slot.id} ${describeExit(info)}`,
        )
      }
      this.remove(slot)
      this.notify()
    })()
    return slot.stopped
  }

  private remove(slot: Slot): void {
    const i = this.slots.indexOf(slot)
    if (i >= 0) this.slots.splice(i, 1)
  }

  // ─── Leftovers and the state file ──────────────────────────────────────────

  private get stateFile(): string {
    return join(this.logDir, STATE_FILE)
  }

  private async stopLeftovers(signal?: AbortSignal): Promise<void> {
    const { entries, problem } = readState(this.stateFile)
    if (problem) this.logger.warn({ group: this.group, file: this.stateFile }, problem)
    if (entries.length === 0 && !problem) return
    this.next = Math.max(this.next, highestNumber(entries, this.group) + 1)
    await Promise.all(
      entries.map(async (entry) => {
        const why = whyNotOurs(entry, this.group)
        if (why) {
          if (why !== 'not running') {
            this.logger.info(
              { group: this.group, instance: entry.id, pid: entry.pid },
              `left pid ${entry.pid} alone: not ${entry.id} of a previous Tide (${why})`,
            )
          }
          return
        }
        const by = await stopLeftover(entry, this.group, this.settings.stop_grace, signal)
        this.logger.warn(
          { group: this.group, instance: entry.id, pid: entry.pid, port: entry.port, signal: by },
          `stopped ${entry.id} (pid ${entry.pid}) left running by a previous Tide`,
        )
      }),
    )
    this.saveState()
  }

  /** Lists a freshly spawned process in the state file, and takes it off when it exits. */
  private record(id: string, child: ChildHandle, port: number): void {
    const startTime = processStartTime(child.pid)
    if (startTime === undefined) return // no /proc (or gone already): nothing could be matched later
    this.recorded.set(child.pid, { id, pid: child.pid, port, startTime })
    this.saveState()
    void child.exited.then(() => {
      this.recorded.delete(child.pid)
      this.saveState()
    })
  }

  /** Rewrites the state file from `recorded`. Never throws: the file is a safeguard, not a need. */
  private saveState(): void {
    try {
      writeState(this.stateFile, this.group, [...this.recorded.values()])
      this.stateFailing = false
    } catch (err) {
      if (this.stateFailing) return
      this.stateFailing = true
      this.logger.warn(
        { group: this.group, file: this.stateFile, err },
        `cannot write ${this.stateFile}: ${errorMessage(err)}; instances left by a Tide killed with SIGKILL would not be stopped at the next start`,
      )
    }
  }

  // ─── Reporting ─────────────────────────────────────────────────────────────

  private wanted(): Slot[] {
    return this.slots.filter(
      (s) => !s.stopRequested && (s.state === 'starting' || s.state === 'ready' || s.state === 'failed'),
    )
  }

  private snapshot(slot: Slot): Instance {
    const instance: Instance = { id: slot.id, state: slot.state, createdAt: slot.createdAt }
    if (slot.port !== undefined) instance.address = this.address(slot)
    if (slot.readyAt !== undefined) instance.readyAt = slot.readyAt
    if (slot.pid !== undefined) instance.pid = slot.pid
    if (slot.detail !== undefined) instance.detail = slot.detail
    return instance
  }

  private snapshotStatus(): GroupStatus {
    const instances = this.slots.map((s) => this.snapshot(s))
    const status: GroupStatus = {
      desired: this.wanted().length,
      instances,
      ready: instances.filter((i) => i.state === 'ready').length,
    }
    const message = this.message()
    if (message) status.message = message
    return status
  }

  private message(): string | undefined {
    const wanted = this.wanted()
    const waiting = wanted.filter((s) => s.state === 'failed')
    const starting = wanted.filter((s) => s.state === 'starting')
    if (this.looping && this.lastFailure && (waiting.length > 0 || starting.length > 0)) {
      const nextAt = Math.min(...waiting.map((s) => s.restartAt ?? 0))
      const next = waiting.length
        ? `next start in ${formatDuration(Math.max(0, nextAt - this.clock.now()))}`
        : `${starting.map((s) => s.id).join(', ')} starting`
      return `crash loop: ${this.failures} failures in a row, last ${this.lastFailure.text}; ${next}`
    }
    if (waiting.length) return waiting.map((s) => `${s.id} ${s.detail}`).join('; ')
    return undefined
  }

  private notify(): void {
    if (this.listeners.size === 0) return
    const status = this.snapshotStatus()
    for (const listener of [...this.listeners]) {
      try {
        listener(status)
      } catch (err) {
        this.logger.error({ group: this.group, err }, 'a watch listener threw')
      }
    }
  }

  // ─── Helpers ───────────────────────────────────────────────────────────────

  private address(slot: Slot): string {
    const host = this.settings.host.includes(':') ? `[${this.settings.host}]` : this.settings.host
    return `${host}:${slot.port ?? 0}`
  }

  private portsInUse(): Set<number> {
    return new Set(this.slots.flatMap((s) => (s.port === undefined ? [] : [s.port])))
  }

  private logFile(id: string): string {
    return join(this.logDir, `${id}.log`)
  }

  private commandText(): string {
    const { command } = this.settings
    return typeof command === 'string' ? command : JSON.stringify(command)
  }

  /**
   * What `inherit_env` keeps of Tide's environment (read at each spawn), then HOST, then `env`
   * (which may override HOST and pass anything withheld), then Tide's own variables, which win
   * over everything: PORT must be the port it health-checks.
   */
  private environment(id: string, port: number): NodeJS.ProcessEnv {
    const { env: inherited, withheld } = inheritedEnv(
      process.env,
      this.settings.inherit_env,
      interpolatedNames(),
    )
    // Said once (and again when it changes) for `safe` only: the other modes leave out what the
    // user chose to leave out, and listing it all would be noise.
    const hidden = withheld.filter((name) => !(name in this.settings.env))
    const names = hidden.join(', ')
    if (this.settings.inherit_env === 'safe' && hidden.length > 0 && names !== this.withheldLogged) {
      this.withheldLogged = names
      this.logger.info(
        { group: this.group, inherit_env: this.settings.inherit_env, withheld: hidden },
        `instances of group ${this.group} do not get ${hidden.length} of Tide's environment variables (inherit_env: safe): ${names}; pass one with env: { NAME: \${NAME} }`,
      )
    }
    return {
      ...inherited,
      HOST: this.settings.host,
      ...this.settings.env,
      PORT: String(port),
      TIDE_INSTANCE: id,
      TIDE_GROUP: this.group,
    }
  }
}

/** Resolves like `promise`, or rejects with the signal's reason as soon as it is aborted. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (err) => {
        signal.removeEventListener('abort', onAbort)
        reject(err)
      },
    )
  })
}

/** The size of a file, 0 if it does not exist (yet). */
function fileSize(file: string): number {
  try {
    return statSync(file).size
  } catch {
    return 0
  }
}

/**
 * The last `lines` lines of an instance's output written after byte `from` (Tide's own
 * `# tide:` lines left out), at most 8 KiB read.
 */
export function tail(file: string, lines: number, from = 0): string[] {
  let text: string
  let partial = false
  try {
    const fd = openSync(file, 'r')
    try {
      const size = fstatSync(fd).size
      const begin = from > size ? 0 : from // a file truncated since: all of it is new
      const start = Math.max(begin, size - 8192)
      partial = start > begin
      const buffer = Buffer.alloc(Math.max(0, size - start))
      if (buffer.length > 0) readSync(fd, buffer, 0, buffer.length, start)
      text = buffer.toString('utf8')
    } finally {
      closeSync(fd)
    }
  } catch {
    return []
  }
  const all = text.split('\n')
  if (partial) all.shift() // the read began inside a line
  return all
    .filter((line) => line.trim() !== '' && !line.startsWith('# tide:'))
    .slice(-lines)
    .map((line) => (line.length > 200 ? `${line.slice(0, 197)}...` : line))
}
