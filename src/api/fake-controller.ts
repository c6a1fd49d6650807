/**
 * A Controller held in memory, for the API and CLI tests (and for trying the CLI without an
 * engine). Scaling changes `desired` at once and records a decision; tests change the rest by hand.
 */
import { NotFoundError, TideError } from '../core/errors.js'
import type { Instance } from '../core/types.js'
import type {
  Controller,
  DecisionRecord,
  GroupHistory,
  GroupView,
  HistoryRequest,
  ScaleRequest,
  SeriesPoint,
} from '../engine/controller.js'

export interface FakeCall {
  method: 'scale' | 'auto'
  group: string
  request?: ScaleRequest
}

export class FakeController implements Controller {
  readonly groups = new Map<string, GroupView>()
  /** Per group, newest first. */
  readonly log = new Map<string, DecisionRecord[]>()
  readonly calls: FakeCall[] = []
  /** What `auto()` decides next, per group; default: hold. */
  readonly nextAuto = new Map<string, Partial<DecisionRecord>>()
  /** Recorded series per group (`history()` answers from them); tests fill them by hand. */
  readonly series = new Map<string, Record<string, SeriesPoint[]>>()
  /** Thrown by the next scale/auto call, once. */
  failNext?: Error
  private nextId = 1

  constructor(
    groups: GroupView[] = [],
    private readonly now: () => number = Date.now,
  ) {
    for (const g of groups) this.groups.set(g.name, g)
  }

  listGroups(): GroupView[] {
    return [...this.groups.values()]
  }

  getGroup(name: string): GroupView {
    const group = this.groups.get(name)
    if (!group) throw new NotFoundError('group', name)
    return group
  }

  record(name: string, fields: Partial<DecisionRecord>): DecisionRecord {
    const group = this.getGroup(name)
    const d: DecisionRecord = {
      id: this.nextId++,
      group: name,
      at: this.now(),
      kind: 'hold',
      from: group.desired,
      to: group.desired,
      reason: `hold at ${group.desired}`,
      steps: [],
      recommendations: [],
      trigger: 'auto',
      outcome: 'held',
      ...fields,
    }
    this.log.set(name, [d, ...(this.log.get(name) ?? [])])
    group.lastDecision = d
    return d
  }

  private takeFailure(): void {
    const err = this.failNext
    if (err) {
      this.failNext = undefined
      throw err
    }
  }

  async scale(name: string, request: ScaleRequest): Promise<DecisionRecord> {
    this.calls.push({ method: 'scale', group: name, request })
    const group = this.getGroup(name)
    this.takeFailure()
    const wanted = request.to ?? group.desired + (request.by ?? 0)
    const to = Math.min(group.max, Math.max(group.min, wanted))
    if (to === group.desired) {
      return this.record(name, { trigger: 'manual', reason: `already at ${to}`, outcome: 'held' })
    }
    const from = group.desired
    group.desired = to
    return this.record(name, {
      kind: 'scale',
      from,
      to,
      trigger: 'manual',
      outcome: 'applied',
      forced: request.force,
      reason: `manual scale ${to > from ? 'up' : 'down'} ${from} → ${to}${request.reason ? `: ${request.reason}` : ''}`,
    })
  }

  async auto(name: string): Promise<DecisionRecord> {
    this.calls.push({ method: 'auto', group: name })
    this.getGroup(name)
    this.takeFailure()
    return this.record(name, { trigger: 'auto', ...this.nextAuto.get(name) })
  }

  decisions(name: string, options: { limit?: number } = {}): DecisionRecord[] {
    this.getGroup(name)
    return (this.log.get(name) ?? []).slice(0, options.limit ?? 50)
  }

  /** The points in the range; a longer series keeps its last `points` (the engine thins evenly). */
  history(name: string, request: HistoryRequest): GroupHistory {
    this.getGroup(name)
    const until = request.until ?? this.now()
    const series: Record<string, SeriesPoint[]> = {}
    for (const [metric, points] of Object.entries(this.series.get(name) ?? {})) {
      const kept = points.filter(([at]) => at >= request.since && at <= until).slice(-(request.points ?? 300))
      if (kept.length > 0) series[metric] = kept
    }
    return { group: name, since: request.since, until, series }
  }

  async prometheus(): Promise<{ contentType: string; body: string }> {
    return { contentType: 'text/plain; version=0.0.4; charset=utf-8', body: 'tide_up 1\n' }
  }
}

/** A group with sensible defaults; override what the test is about. */
export function fakeGroup(name: string, fields: Partial<GroupView> = {}): GroupView {
  return {
    name,
    min: 1,
    max: 5,
    desired: 1,
    ready: 1,
    instances: [],
    metrics: {},
    target: 'process',
    shadow: false,
    ...fields,
  }
}

export function fakeInstance(id: string, fields: Partial<Instance> = {}): Instance {
  return { id, state: 'ready', createdAt: 0, ...fields }
}

/** An error a target might throw, for failure tests. */
export function targetFailure(message: string): TideError {
  return new TideError('E_TARGET', message, { status: 502 })
}
