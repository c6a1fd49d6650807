/**
 * Rescheduling: after nodes join, Swarm does not move running tasks onto them by itself. A
 * forced update of each service labelled for it (`com.df.reschedule=true`, seed 003) makes Swarm
 * replace the tasks, and the scheduler spreads the new ones over every node there is now.
 *
 * Docker Scaler did this by writing an env var with the time (RESCHEDULE_DATE); a forced update
 * (TaskTemplate.ForceUpdate, what `docker service update --force` does) changes nothing the
 * containers can see. Its node waiter compared the ready-node count with `==` and could wait
 * forever; NodeWaiter waits for `>=`, checks at once, and a newer wait cancels the older one
 * (seeds.md §3.5, §3.9 item 5).
 */
import { errorMessage, TideError } from '../../core/errors.js'
import type { SwarmApi } from './client.js'
import { NotLabelledError, SwarmTimeoutError } from './errors.js'

/** `key=value` → its parts; throws naming `what` when the form is wrong. */
export function parseLabelFilter(filter: string, what = 'reschedule label'): { key: string; value: string } {
  const at = filter.indexOf('=')
  if (at <= 0 || at === filter.length - 1) {
    throw new TideError('E_CONFIG', `${what} must have the form key=value (got ${JSON.stringify(filter)})`, {
      status: 400,
    })
  }
  return { key: filter.slice(0, at), value: filter.slice(at + 1) }
}

export interface RescheduleAllResult {
  rescheduled: string[]
  failed: Array<{ service: string; error: string }>
  /** Seed 003's sentence: "a, b rescheduled", "No services to reschedule", "1 failed to reschedule (2 succeeded)". */
  message: string
}

export class Rescheduler {
  readonly filter: string
  private readonly key: string
  private readonly value: string

  constructor(
    private readonly api: SwarmApi,
    filter = 'com.df.reschedule=true',
  ) {
    ;({ key: this.key, value: this.value } = parseLabelFilter(filter))
    this.filter = filter
  }

  /** Force-updates one service, which must carry the label. Resolves to "Rescheduled service: <name>". */
  async one(name: string, signal: AbortSignal): Promise<string> {
    const service = await this.api.inspect(name, signal)
    const actual = service.Spec?.Labels?.[this.key]
    if (actual !== this.value) throw new NotLabelledError(name, this.filter, actual)
    await this.api.forceUpdate(service.ID, signal)
    return `Rescheduled service: ${name}`
  }

  /** Force-updates every labelled service, in parallel; one failure does not stop the others. */
  async all(signal: AbortSignal): Promise<RescheduleAllResult> {
    const services = await this.api.listServices(this.filter, signal)
    const names = services.map((s) => s.Spec?.Name ?? s.ID).sort()
    if (names.length === 0) return { rescheduled: [], failed: [], message: 'No services to reschedule' }
    const results = await Promise.allSettled(
      services.map((s) => this.api.forceUpdate(s.ID, signal).then(() => s.Spec?.Name ?? s.ID)),
    )
    const rescheduled: string[] = []
    const failed: RescheduleAllResult['failed'] = []
    results.forEach((r, i) => {
      const service = services[i]!.Spec?.Name ?? services[i]!.ID
      if (r.status === 'fulfilled') rescheduled.push(service)
      else failed.push({ service, error: errorMessage(r.reason) })
    })
    rescheduled.sort()
    const message =
      failed.length === 0
        ? `${rescheduled.join(', ')} rescheduled`
        : `${failed.map((f) => `${f.service}: ${f.error}`).join('; ')}: ${failed.length} failed to reschedule` +
          (rescheduled.length ? ` (${rescheduled.length} succeeded)` : '')
    return { rescheduled, failed, message }
  }
}

export interface NodeWaitOptions {
  role: 'manager' | 'worker'
  /** Wait until at least this many nodes of the role are ready. */
  atLeast: number
  /** Milliseconds between checks (the first check is at once). */
  interval: number
  /** Milliseconds before giving up with E_SWARM_TIMEOUT. */
  timeout: number
  /** Called after each check that did not see enough nodes. */
  onTick?: (ready: number, waitedMs: number) => void
}

export type NodeWaitResult = { outcome: 'ready'; ready: number } | { outcome: 'cancelled' }

/**
 * Waits for nodes, one wait at a time: `wait()` cancels the wait in progress (which resolves
 * `cancelled`), because a newer node scaling knows the newer target count.
 */
export class NodeWaiter {
  private current?: AbortController

  constructor(
    private readonly api: SwarmApi,
    private readonly now: () => number = Date.now,
  ) {}

  /** True while a wait is in progress. */
  get waiting(): boolean {
    return this.current !== undefined
  }

  async wait(options: NodeWaitOptions, signal?: AbortSignal): Promise<NodeWaitResult> {
    this.current?.abort()
    const mine = new AbortController()
    this.current = mine
    const abort = signal ? AbortSignal.any([signal, mine.signal]) : mine.signal
    const started = this.now()
    try {
      for (;;) {
        if (mine.signal.aborted) return { outcome: 'cancelled' }
        signal?.throwIfAborted()
        let ready: number
        try {
          ready = await this.api.readyNodes(options.role, abort)
        } catch (err) {
          if (mine.signal.aborted) return { outcome: 'cancelled' }
          throw err
        }
        if (ready >= options.atLeast) return { outcome: 'ready', ready }
        const waited = this.now() - started
        if (waited >= options.timeout) {
          throw new SwarmTimeoutError(
            `Timeout: waited ${(waited / 1000).toFixed(1)} seconds for ${options.atLeast} ${options.role} nodes to activate (${ready} ready)`,
          )
        }
        options.onTick?.(ready, waited)
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(options.interval, options.timeout - waited))
          abort.addEventListener(
            'abort',
            () => {
              clearTimeout(timer)
              resolve()
            },
            { once: true },
          )
        })
      }
    } finally {
      if (this.current === mine) this.current = undefined
    }
  }

  /** Cancels the wait in progress, if any. */
  cancel(): void {
    this.current?.abort()
  }
}
