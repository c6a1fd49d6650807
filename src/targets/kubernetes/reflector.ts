/**
 * Keeps a local copy of a set of objects (a workload's pods, or a Service's EndpointSlices) with
 * list + watch, as client-go's Reflector does:
 *
 *   list (resourceVersion R) ──▶ watch from R ──▶ events move R forward
 *        ▲                            │ stream ends or fails: watch again from R (back-off)
 *        └──── 410 Gone / Expired ────┘ (R was compacted away: list afresh)
 *
 * client-node's ListWatch stops for good at the first error and needs a restart from outside;
 * this loop never stops until `stop()`, and says what is wrong in `problem` meanwhile.
 */
import { errorMessage } from '../../core/errors.js'
import type { KubeObject, WatchEvent } from './client.js'
import { KubernetesError } from './errors.js'

export interface ReflectorSource {
  list(signal: AbortSignal): Promise<{ items: KubeObject[]; resourceVersion: string }>
  watch(
    resourceVersion: string,
    onEvent: (event: WatchEvent) => void,
    done: (err: unknown) => void,
  ): Promise<() => void>
}

export interface ReflectorLogger {
  warn(o: object, m: string): void
}

const MAX_BACKOFF = 10_000
/** Between a watch that ended cleanly (server-side timeout) and the next: never a tight loop. */
const MIN_DELAY = 50

export class Reflector {
  private readonly objects = new Map<string, KubeObject>()
  private resourceVersion = ''
  private stopped = false
  private stopWatch?: () => void
  private readonly abort = new AbortController()
  private failures = 0
  private timer?: NodeJS.Timeout
  /** What is wrong with the watch right now, for the group's status message. */
  problem?: string

  constructor(
    private readonly what: string,
    private readonly source: ReflectorSource,
    private readonly onChange: () => void,
    private readonly logger?: ReflectorLogger,
  ) {}

  /** Lists once (rejects if that fails: a bad config should fail start-up), then keeps watching. */
  async start(): Promise<void> {
    await this.relist()
    void this.watch()
  }

  items(): KubeObject[] {
    return [...this.objects.values()]
  }

  stop(): void {
    this.stopped = true
    this.abort.abort()
    clearTimeout(this.timer)
    this.stopWatch?.()
  }

  private async relist(): Promise<void> {
    const { items, resourceVersion } = await this.source.list(this.abort.signal)
    this.objects.clear()
    for (const item of items) this.objects.set(item.metadata?.name ?? '', item)
    this.resourceVersion = resourceVersion
    this.onChange()
  }

  private async watch(): Promise<void> {
    if (this.stopped) return
    let expired = false
    let ended = false
    const done = (err: unknown) => {
      if (ended) return
      ended = true
      if (this.stopped) return
      const gone = expired || (err instanceof KubernetesError && err.apiStatus === 410)
      if (err && !gone) this.failed(err)
      this.retry(gone)
    }
    try {
      const stop = await this.source.watch(
        this.resourceVersion,
        (event) => {
          if (event.type === 'ERROR') {
            // The server's way to say "too old resource version" on a watch: a Status with code 410.
            const status = event.object as { code?: number; message?: string }
            if (status.code === 410) expired = true
            else this.failed(new Error(status.message ?? 'watch error'))
            return
          }
          this.apply(event)
        },
        done,
      )
      if (this.stopped || ended) stop()
      else this.stopWatch = stop
    } catch (err) {
      done(err)
    }
  }

  private apply(event: WatchEvent): void {
    const rv = event.object.metadata?.resourceVersion
    if (rv) this.resourceVersion = rv
    if (event.type === 'BOOKMARK') return
    this.failures = 0
    this.problem = undefined
    const name = event.object.metadata?.name ?? ''
    if (event.type === 'DELETED') this.objects.delete(name)
    else this.objects.set(name, event.object)
    this.onChange()
  }

  private failed(err: unknown): void {
    this.failures++
    this.problem = `watch of ${this.what} failing (${this.failures} in a row): ${errorMessage(err)}`
    this.logger?.warn({ err }, this.problem)
  }

  /** Watch again from where it was, or list afresh when that version is gone; back-off after failures. */
  private retry(relist: boolean): void {
    if (this.stopped) return
    const delay = this.failures === 0 ? MIN_DELAY : Math.min(MAX_BACKOFF, 250 * 2 ** (this.failures - 1))
    this.timer = setTimeout(() => {
      const next = relist ? this.relist().then(() => this.watch()) : this.watch()
      next.catch((err: unknown) => {
        this.failed(err)
        this.retry(true)
      })
    }, delay)
    this.timer.unref?.()
  }
}
