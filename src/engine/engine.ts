/**
 * The engine: one GroupRunner per group, behind the Controller interface the API uses.
 */
import { NotFoundError } from '../core/errors.js'
import type {
  Controller,
  DecisionRecord,
  GroupHistory,
  GroupView,
  HistoryRequest,
  ReloadSummary,
  ScaleRequest,
} from './controller.js'
import type { GroupRunner } from './group.js'
import type { Store } from './store.js'
import type { Telemetry } from './telemetry.js'

export class Engine implements Controller {
  private readonly runners = new Map<string, GroupRunner>()
  private readonly telemetry: Telemetry
  private readonly reloader: () => Promise<ReloadSummary>
  private readonly recorded: { store: Store; keep: number }

  /**
   * `reload`: the daemon's config reload (the engine does not know where its config came from).
   * `history`: the store the groups record their metrics in, and how long it keeps them
   * (`store.history`, ms).
   */
  constructor(
    runners: GroupRunner[],
    telemetry: Telemetry,
    options: { reload: () => Promise<ReloadSummary>; history: { store: Store; keep: number } },
  ) {
    for (const runner of runners) this.runners.set(runner.name, runner)
    this.telemetry = telemetry
    this.reloader = options.reload
    this.recorded = options.history
  }

  private runner(name: string): GroupRunner {
    const runner = this.runners.get(name)
    if (!runner) throw new NotFoundError('group', name)
    return runner
  }

  async start(): Promise<void> {
    await Promise.all([...this.runners.values()].map((r) => r.start()))
  }

  listGroups(): GroupView[] {
    return [...this.runners.values()].map((r) => r.view())
  }

  getGroup(name: string): GroupView {
    return this.runner(name).view()
  }

  scale(name: string, request: ScaleRequest): Promise<DecisionRecord> {
    return this.runner(name).scale(request)
  }

  auto(name: string): Promise<DecisionRecord> {
    return this.runner(name).evaluate('manual')
  }

  decisions(name: string, options: { limit?: number } = {}): DecisionRecord[] {
    return this.runner(name).decisions(options.limit ?? 50)
  }

  history(name: string, request: HistoryRequest): GroupHistory {
    this.runner(name)
    const now = Date.now()
    const until = request.until ?? now
    // Older rows may still be there until the next prune; the answer covers what is promised.
    const since = Math.max(request.since, now - this.recorded.keep)
    const { store } = this.recorded
    const series = since <= until ? store.series(name, { since, until, points: request.points ?? 300 }) : {}
    return { group: name, since, until, series }
  }

  async prometheus(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.telemetry.registry.contentType, body: await this.telemetry.registry.metrics() }
  }

  reload(): Promise<ReloadSummary> {
    return this.reloader()
  }

  /** Stops every loop; operations in flight get `graceMs` to finish, then are aborted. */
  async stop(graceMs = 15_000): Promise<void> {
    const runners = [...this.runners.values()]
    const stopped = Promise.all(runners.map((r) => r.stop()))
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), graceMs)
    })
    if ((await Promise.race([stopped, late])) === 'late') {
      for (const r of runners) r.abortAll()
      await stopped
    }
    clearTimeout(timer)
  }
}
