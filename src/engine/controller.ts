/**
 * What the HTTP API and the CLI see of the running engine. The API depends on this
 * interface only, so it can be tested with a fake controller.
 */
import type { Decision, Instance } from '../core/types.js'

/** A metric of a group as shown to people: the group value and each instance's. */
export interface MetricView {
  /** The group-level number: the source's group value or total where it has one, otherwise the mean. */
  value?: number
  perInstance: Record<string, number>
  missing: string[]
  at: number
}

/** A scaling operation in flight. */
export interface OperationView {
  id: number
  from: number
  to: number
  startedAt: number
  reason: string
}

export interface GroupView {
  name: string
  min: number
  max: number
  desired: number
  ready: number
  instances: Instance[]
  metrics: Record<string, MetricView>
  lastDecision?: DecisionRecord
  /** Epoch ms until which metric-driven scaling waits (absent when not cooling down). */
  cooldownUntil?: number
  operation?: OperationView
  target: string
  /** The router's listen address, when the group is routed. */
  route?: string
  /** Decisions are computed and logged but the target is never touched. */
  shadow: boolean
  /** Something a person should know (crash loop, source errors). */
  message?: string
  /** The cooldown after a change, ms (the governor's `cooldown`; seed 000's SCALING_INTERVAL). */
  cooldown?: number
  /** What the target knows of its resources (Target.describe()), absent when it says nothing. */
  details?: Record<string, unknown>
}

/** How a decision came about. */
export type Trigger = 'auto' | 'manual' | 'bounds' | 'recovery'

/**
 * What happened with a decision:
 * - `pending`: the operation is in flight
 * - `applied`: the target was scaled
 * - `held`: no change was needed or allowed
 * - `failed`: the target refused or broke; `error` says how
 * - `shadow`: a shadow group would have scaled
 */
export type Outcome = 'pending' | 'applied' | 'held' | 'failed' | 'shadow'

export interface DecisionRecord extends Decision {
  id: number
  group: string
  at: number
  trigger: Trigger
  outcome: Outcome
  /** Manual scaling that skipped the cooldown says so. */
  forced?: boolean
  error?: string
  /** How long the operation took, once done. */
  durationMs?: number
}

/** A manual scale request: exactly one of `to` or `by`. */
export interface ScaleRequest {
  to?: number
  by?: number
  /** Skip the cooldown (bounds still apply). */
  force?: boolean
  /** Resolve only when the new size is ready (or the operation failed). */
  wait?: boolean
  reason?: string
}

/** What a config reload applied (`POST /v1/reload`, `tide reload`, SIGHUP). */
export interface ReloadSummary {
  /** false: the file gives the config that is already running. */
  changed: boolean
  /** The config file that was read again. */
  file: string
  /** Per group with changes, the paths that changed (`groups.web.max`); groups without changes are absent. */
  groups: Record<string, string[]>
  /** One line for people: `no change`, or `web: max, policies[0].per_instance`. */
  message: string
}

/** `[at (epoch ms), value]`, oldest first. */
export type SeriesPoint = [at: number, value: number]

/** What `history()` reads: a time range (epoch ms) and how many points a series may have. */
export interface HistoryRequest {
  since: number
  /** Default: now. */
  until?: number
  /** At most this many points per series, thinned evenly, first and last kept. Default 300. */
  points?: number
}

/** A group's recorded series over a time range (`GET /v1/groups/:name/history`). */
export interface GroupHistory {
  group: string
  /** The range answered, epoch ms: `since` is moved up to the oldest time the store keeps. */
  since: number
  until: number
  /** `desired`, `ready` and each metric's group value, one point per evaluation. */
  series: Record<string, SeriesPoint[]>
}

export interface Controller {
  listGroups(): GroupView[]
  /** Throws NotFoundError for an unknown group. */
  getGroup(name: string): GroupView
  /** Manual scaling: bounds apply; the cooldown applies unless `force`. */
  scale(name: string, request: ScaleRequest): Promise<DecisionRecord>
  /** One evaluation now (observe → decide → act), as the loop would do it. */
  auto(name: string): Promise<DecisionRecord>
  /** Newest first. */
  decisions(name: string, options?: { limit?: number }): DecisionRecord[]
  /**
   * The group's recorded `desired`, `ready` and metric values over a time range (the store keeps
   * `store.history` of them). Throws NotFoundError for an unknown group.
   */
  history(name: string, request: HistoryRequest): GroupHistory
  /** Prometheus exposition of Tide's own metrics. */
  prometheus(): Promise<{ contentType: string; body: string }>
  /**
   * Reads the config file again and applies what can change live, all or nothing: ConfigError
   * (E_CONFIG) for a bad file, ReloadRefusedError (E_RELOAD_REFUSED) when something needs a
   * restart. Absent where there is no config file to read (the API then answers 404).
   */
  reload?(): Promise<ReloadSummary>
}
