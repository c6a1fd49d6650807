/**
 * Hands events to notifiers without ever making the engine wait: each notifier has its own
 * bounded queue, delivered in order, one at a time, each delivery bounded by the notifier's
 * timeout. A failed or timed-out delivery is logged and counted, then forgotten; a full
 * queue drops the oldest `progress` event first, then the oldest event, and says so.
 */
import { errorMessage } from '../core/errors.js'
import type { Notifier, ScaleEvent } from '../core/types.js'
import type { Logger } from '../engine/log.js'

const QUEUE_LIMIT = 100

export interface DispatchEntry {
  notifier: Notifier
  /** Event kinds this notifier hears; undefined means all. */
  on?: Array<ScaleEvent['kind']>
  /** Milliseconds one delivery may take. */
  timeout: number
}

export interface DispatchCounters {
  /** Called after each delivery with its result. */
  delivered?(kind: string, result: 'ok' | 'failed' | 'dropped'): void
}

class Lane {
  private readonly queue: ScaleEvent[] = []
  private running?: Promise<void>
  constructor(
    readonly entry: DispatchEntry,
    private readonly logger: Logger,
    private readonly counters: DispatchCounters,
    private readonly signal: AbortSignal,
  ) {}

  push(event: ScaleEvent): void {
    if (this.queue.length >= QUEUE_LIMIT) {
      const progress = this.queue.findIndex((e) => e.kind === 'progress')
      const [dropped] = this.queue.splice(progress >= 0 ? progress : 0, 1)
      this.counters.delivered?.(this.entry.notifier.kind, 'dropped')
      this.logger.warn(
        { notifier: this.entry.notifier.kind, event: dropped?.kind },
        `notifier ${this.entry.notifier.kind} is ${QUEUE_LIMIT} events behind; dropped the oldest`,
      )
    }
    this.queue.push(event)
    this.running ??= this.drain().finally(() => {
      this.running = undefined
    })
  }

  private async drain(): Promise<void> {
    for (let event = this.queue.shift(); event; event = this.queue.shift()) {
      if (this.signal.aborted) return
      const { notifier, timeout } = this.entry
      // A timer of our own rather than AbortSignal.timeout: that one does not keep the process
      // alive, so a one-shot command could exit with a delivery neither done nor timed out.
      const deadline = new AbortController()
      const timer = setTimeout(() => deadline.abort(new Error(`no answer within ${timeout}ms`)), timeout)
      try {
        await notifier.notify(event, AbortSignal.any([this.signal, deadline.signal]))
        this.counters.delivered?.(notifier.kind, 'ok')
      } catch (err) {
        this.counters.delivered?.(notifier.kind, 'failed')
        this.logger.warn(
          { notifier: notifier.kind, group: event.group, event: event.kind, err: errorMessage(err) },
          `notifier ${notifier.kind} failed: ${errorMessage(err)}`,
        )
      } finally {
        clearTimeout(timer)
      }
    }
  }

  /** Resolves when everything queued so far has been tried. */
  async idle(): Promise<void> {
    while (this.running) await this.running
  }
}

export class Dispatcher {
  private readonly lanes: Lane[]
  private readonly abort = new AbortController()

  constructor(entries: DispatchEntry[], logger: Logger, counters: DispatchCounters = {}) {
    this.lanes = entries.map((e) => new Lane(e, logger, counters, this.abort.signal))
  }

  get size(): number {
    return this.lanes.length
  }

  /** Never throws, never waits. */
  emit(event: ScaleEvent): void {
    for (const lane of this.lanes) {
      if (!lane.entry.on || lane.entry.on.includes(event.kind)) lane.push(event)
    }
  }

  /** Waits until every queued event has been tried (tests, shutdown). */
  async idle(): Promise<void> {
    await Promise.all(this.lanes.map((l) => l.idle()))
  }

  /** Gives queued deliveries up to `graceMs`, then abandons them and closes the notifiers. */
  async close(graceMs = 5000): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    await Promise.race([this.idle(), new Promise((r) => (timer = setTimeout(r, graceMs)))])
    clearTimeout(timer)
    this.abort.abort(new Error('Tide is shutting down'))
    await Promise.allSettled(this.lanes.map((l) => l.entry.notifier.close?.()))
  }
}
