/**
 * Tide's vocabulary. No I/O here: targets, sources and policies import this file,
 * never the engine (arrows point inward, as in Nomad Autoscaler's sdk package).
 */

// ─── Instances and groups ────────────────────────────────────────────────────

/**
 * Where an instance is in its life.
 * - `starting`: requested, not yet passing its health check
 * - `ready`: serving; the router may send it requests
 * - `draining`: taken out of rotation, finishing what it has, about to stop
 * - `stopping`: being stopped (SIGTERM sent, API delete issued)
 * - `failed`: exited or broke; a target that replaces instances will replace it
 */
export type InstanceState = 'starting' | 'ready' | 'draining' | 'stopping' | 'failed'

export interface Instance {
  /** Stable identity within the group (process: `web-3`; droplet: its id). */
  id: string
  state: InstanceState
  /** `host:port` where it serves traffic, once known. */
  address?: string
  /** Milliseconds since the epoch when it was requested. */
  createdAt: number
  /** When it last became ready. */
  readyAt?: number
  /** Operating-system process id, for targets that run processes. */
  pid?: number
  /** One line for people: why it is in this state ("exited with code 1, restarting in 4s"). */
  detail?: string
  /** The base instance of a droplet cluster, never removed. */
  protected?: boolean
}

/** What a target reports about its group. */
export interface GroupStatus {
  /** How many instances the target is working towards. */
  desired: number
  /** Every instance it knows of, in creation order (oldest first). */
  instances: Instance[]
  /** Instances in state `ready`. */
  ready: number
  /** Something a person should know ("crash loop: backing off 8s"). */
  message?: string
}

/** How the engine asks a target to change its size. */
export interface ScalePlan {
  /** The human sentence of the decision that caused this, for logs and audit trails. */
  reason: string
  /** Which instance ids to remove first when scaling down; the target may add its own choices. */
  victims?: string[]
  /**
   * Called for each instance before it is removed, and awaited, so the router can stop
   * sending it new requests and let the ones in flight finish. Never throws.
   */
  drain?: (instance: Instance) => Promise<void>
  /**
   * Gives a drained instance back to the router: the target kept it after all (Kubernetes
   * removed another pod). Without it the instance stays out of rotation. Never throws.
   */
  undrain?: (instance: Instance) => void
  /** Progress for people ("web-3 ready after 420ms"). */
  progress?: (message: string) => void
}

export interface ScaleResult {
  from: number
  to: number
  added: string[]
  removed: string[]
}

/**
 * Where instances live. `status()` reports, `scale()` changes the number of instances.
 * Precondition for `scale`: the engine never runs two `scale` calls on one target at once.
 * A target that had nothing to do throws NoChangeError so no cooldown starts.
 */
export interface Target {
  readonly kind: string
  /** Called once before any other method; adopts instances that already exist. */
  start?(signal: AbortSignal): Promise<void>
  status(signal: AbortSignal): Promise<GroupStatus>
  scale(to: number, plan: ScalePlan, signal: AbortSignal): Promise<ScaleResult>
  /** Subscribes to instance changes (ready, crashed); returns an unsubscribe function. */
  watch?(listener: (status: GroupStatus) => void): () => void
  /** Releases resources. `stopInstances` true stops what the target started (local processes). */
  close?(options?: { stopInstances?: boolean }): Promise<void>
  /**
   * What the target last learned about where its instances live, for people and for seed 000's
   * `/scale?op=info` (a droplet cluster's base, snapshot, load balancer, region and size). No
   * I/O: it returns what `start()` and `status()` last read. Keys are the target's own; the
   * engine shows them as the group's `details`.
   */
  describe?(): Record<string, unknown>
}

// ─── Metrics ─────────────────────────────────────────────────────────────────

/**
 * One metric as read for one group at one time.
 * `perInstance` has a value for every instance that reported; `missing` names those that
 * were expected and did not. `total` is the group's SUM where the source has one: the same
 * quantity as the per-instance values, added up, possibly with more that no instance carries
 * (the router's concurrency includes requests queued while no instance is ready).
 * `group` is a group-level value that is not a sum of instances (a latency percentile, a queue
 * length from an external system); a reading with `group` has no per-instance values.
 */
export interface MetricReading {
  at: number
  perInstance: Record<string, number>
  missing: string[]
  /** The group's sum (see above); policies divide it among instances. */
  total?: number
  /** A group-level value that is not a sum of instances; never divided among instances. */
  group?: number
  /** Why data is missing, for the decision sentence ("web-2: connection refused"). */
  errors?: string[]
}

/** All metrics read for a group in one evaluation, by metric name. */
export type Metrics = Record<string, MetricReading>

/** What a source gets each evaluation. */
export interface CollectContext {
  group: string
  now: number
  /** Instances the target reported in this evaluation. */
  instances: Instance[]
  signal: AbortSignal
}

/**
 * Where numbers come from. `collect` never throws for missing data: an unreachable instance
 * appears in `missing` with a line in `errors`. It throws only for a broken configuration.
 */
export interface Source {
  readonly kind: string
  collect(ctx: CollectContext): Promise<Metrics>
  close?(): Promise<void>
}

/** How per-instance values combine into one number for the group. */
export type Aggregate = 'mean' | 'median' | 'min' | 'max' | 'sum'

// ─── Policies and decisions ──────────────────────────────────────────────────

/** Everything a policy sees. Pure data: same input, same answer. */
export interface PolicyInput {
  now: number
  group: string
  /** Instances counted towards the group's size (the target's `desired`). */
  current: number
  ready: number
  min: number
  max: number
  metrics: Metrics
  /** Age in ms beyond which a reading is stale and counts as missing. */
  staleAfter: number
  /**
   * The group's own recorded history of a metric's group-level value (its total, group value or
   * mean, as the store keeps it), oldest first, from `since` to `until` (default: now), both in
   * epoch ms. Absent where no history is kept; how far back it reaches depends on `store.history`.
   * Policies that forecast (`predictive`) read it; it must not be written to.
   */
  history?: (metric: string, since: number, until?: number) => Array<{ at: number; value: number }>
  /**
   * false: the caller reads no sentence, so the policy may leave its answer's `reason` empty
   * (`tide simulate` makes half a million decisions and reads none). The answer's kind and size
   * are the same either way; the daemon never sets it. @default true
   */
  explain?: boolean
}

/**
 * A policy's answer.
 * - `scale`: the policy wants `to` instances (it may equal `current`).
 * - `hold`: the policy wants no change (with `abstain`: it has no opinion, see below).
 * - `unknown`: not enough data to say; never a reason to scale down.
 */
export type Recommendation =
  | { kind: 'scale'; to: number; reason: string }
  | {
      kind: 'hold'
      reason: string
      /**
       * No opinion: the policy has no rule for the change others may want (a threshold policy
       * with only an `up` rule, or only a `down` rule, that does not hold). It neither votes to
       * stay nor blocks a scale-down, so single-direction rules fire independently, as
       * do-scaler's policies did.
       */
      abstain?: boolean
    }
  | { kind: 'unknown'; reason: string }

/** A recommendation with the policy that made it. */
export type NamedRecommendation = Recommendation & { policy: string }

/** A pure policy function, built from its validated config. */
export type Policy = (input: PolicyInput) => Recommendation

/** What the governor decided, with a sentence a user can act on. */
export interface Decision {
  kind: 'scale' | 'hold'
  from: number
  to: number
  /** "scale up 2 → 3: concurrency 11.5 per instance > target 8 (3 of 3 reporting)". */
  reason: string
  /** Each step of the pipeline, for `tide status` and the decisions API. */
  steps: string[]
  recommendations: NamedRecommendation[]
}

/** Settings the governor applies after policies (validated config, durations in ms). */
export interface GovernorConfig {
  min: number
  max: number
  /** No metric-driven change within this long after the last change. */
  cooldown: number
  /** Per-direction cooldowns; each defaults to `cooldown`. */
  cooldownUp?: number
  cooldownDown?: number
  /** Use the highest recommendation in this window before scaling down (HPA: 300s). */
  stabilizationDown: number
  /** Use the lowest recommendation in this window before scaling up (HPA: 0). */
  stabilizationUp: number
  /** At most this many instances added / removed per decision; undefined means no limit. */
  maxStepUp?: number
  maxStepDown?: number
}

/** What the governor remembers between evaluations (kept by the engine, persisted in the store). */
export interface GovernorState {
  /** Recent recommended sizes, oldest first, for stabilization windows. */
  history: Array<{ at: number; to: number }>
  /** When the group last changed size, and which way. */
  lastChange?: { at: number; direction: 'up' | 'down' }
  /**
   * The size the engine last applied successfully. After a restart, a target that lost
   * instances with Tide (local processes) is brought back to it.
   */
  desired?: number
}

// ─── Events ──────────────────────────────────────────────────────────────────

/**
 * What happened to a group, for notifiers and actions (Slack, webhooks, Alertmanager, seed 002's
 * custom actions). Every operation emits `started` then exactly one of `applied`, `failed` or
 * `unchanged`; long operations emit `progress` in between; a shadow group emits `shadow`.
 */
export interface ScaleEvent {
  kind: 'started' | 'progress' | 'applied' | 'failed' | 'unchanged' | 'shadow'
  group: string
  /** The decision's id in the store (0 when not stored). */
  decision: number
  trigger: string
  from: number
  to: number
  direction: 'up' | 'down'
  /** The decision's sentence. */
  reason: string
  /** Epoch ms when this event happened. */
  at: number
  /** `progress`: the progress line; `failed`: the error; `unchanged`: why nothing changed. */
  message?: string
  /** `applied` and `failed`: how long the operation took. */
  durationMs?: number
  /** `applied`: the ids of the instances the operation added and removed. */
  added?: string[]
  removed?: string[]
  /** The target kind ("process", "digitalocean", "docker-swarm", …). */
  target: string
}

/**
 * Something told about events. `notify` may be slow or fail: the engine never waits for it
 * and never lets it fail a scale (the dispatcher logs and counts failures).
 */
export interface Notifier {
  readonly kind: string
  notify(event: ScaleEvent, signal: AbortSignal): Promise<void>
  close?(): Promise<void>
}
