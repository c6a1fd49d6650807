/**
 * The embedded store: one SQLite file (better-sqlite3), default `.tide/tide.db`.
 *
 * What it keeps, and why:
 * - decisions with their reasons: "why did it (not) scale?" survives restarts;
 * - each group's governor state (last change, recommendation history): the cooldown and
 *   stabilization windows hold across a restart, so a crash loop of Tide itself cannot
 *   flap a group;
 * - operation intents, written before a scaling operation starts and closed after it, so
 *   a restart knows what was in flight (no orphaned or doubled instances);
 * - recent metric history for the dashboard and the simulator.
 *
 * WAL journal with synchronous=NORMAL: a committed transaction survives the process being
 * killed (kill -9); only an operating-system crash can lose the last few. Every write is one
 * transaction, so a kill never leaves a half-written row.
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { TideError } from '../core/errors.js'
import type { GovernorState } from '../core/types.js'
import type { DecisionRecord, Outcome, SeriesPoint, Trigger } from './controller.js'

export class StoreError extends TideError {
  constructor(message: string, cause?: unknown) {
    super('E_STORE', message, { status: 500, cause })
  }
}

export interface Intent {
  id: number
  group: string
  from: number
  to: number
  reason: string
  startedAt: number
}

export type IntentEnd = 'done' | 'failed' | 'abandoned'

const MIGRATIONS: string[] = [
  `CREATE TABLE decisions (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     group_name TEXT NOT NULL,
     at INTEGER NOT NULL,
     trigger TEXT NOT NULL,
     outcome TEXT NOT NULL,
     kind TEXT NOT NULL,
     from_n INTEGER NOT NULL,
     to_n INTEGER NOT NULL,
     reason TEXT NOT NULL,
     steps TEXT NOT NULL,
     recommendations TEXT NOT NULL,
     forced INTEGER NOT NULL DEFAULT 0,
     error TEXT,
     duration_ms INTEGER
   );
   CREATE INDEX decisions_group_at ON decisions (group_name, id DESC);
   CREATE TABLE group_state (
     group_name TEXT PRIMARY KEY,
     state TEXT NOT NULL,
     updated_at INTEGER NOT NULL
   );
   CREATE TABLE intents (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     group_name TEXT NOT NULL,
     from_n INTEGER NOT NULL,
     to_n INTEGER NOT NULL,
     reason TEXT NOT NULL,
     started_at INTEGER NOT NULL,
     status TEXT NOT NULL DEFAULT 'open',
     finished_at INTEGER,
     detail TEXT
   );
   CREATE INDEX intents_open ON intents (status, group_name);
   CREATE TABLE metric_history (
     group_name TEXT NOT NULL,
     metric TEXT NOT NULL,
     at INTEGER NOT NULL,
     value REAL NOT NULL
   );
   CREATE INDEX metric_history_group_at ON metric_history (group_name, metric, at);`,
  // The Alertmanager receiver's cooldowns: one alert group (groupKey + startsAt) acts once per
  // cooldown, also across a restart (Alertmanager re-sends the same group at repeat_interval).
  `CREATE TABLE receiver_cooldowns (
     key TEXT PRIMARY KEY,
     until INTEGER NOT NULL
   );`,
  // The dashboard's history (series): all metrics of one group over a time range. The index above
  // has `metric` between group and time, so that query would read the group's whole history.
  `CREATE INDEX IF NOT EXISTS metric_history_group_time ON metric_history (group_name, at);`,
  // pruneMetrics deletes by time alone, every minute: without this it reads the whole table, which
  // grows with store.history (a predictive group keeps 14 days).
  `CREATE INDEX IF NOT EXISTS metric_history_time ON metric_history (at);`,
]

/** One metric's recorded values, oldest first: `[at (epoch ms), value]`. */
export type Series = SeriesPoint[]

/**
 * Every series of one group over a time range, each thinned to at most @points rows. Row i of n
 * is kept when a multiple of (n-1) falls in ((i-1)(p-1), i(p-1)]: the rows ceil(k(n-1)/(p-1)) for
 * k = 0 … p-1, i.e. p rows evenly spread, first and last included. Reads the range through the
 * index on (group_name, at).
 */
/** Drops metric history older than `?` (the daemon runs it every minute). */
export const PRUNE_METRICS = 'DELETE FROM metric_history WHERE at < ?'

export const SERIES_QUERY = `SELECT metric, at, value FROM (
    SELECT metric, at, value,
           ROW_NUMBER() OVER (PARTITION BY metric ORDER BY at, rowid) - 1 AS i,
           COUNT(*) OVER (PARTITION BY metric) AS n
    FROM metric_history
    WHERE group_name = @group AND at >= @since AND at <= @until)
  WHERE n <= @points OR i = n - 1 OR (@points > 1 AND (i * (@points - 1)) % (n - 1) < @points - 1)
  ORDER BY metric, at`

interface DecisionRow {
  id: number
  group_name: string
  at: number
  trigger: string
  outcome: string
  kind: string
  from_n: number
  to_n: number
  reason: string
  steps: string
  recommendations: string
  forced: number
  error: string | null
  duration_ms: number | null
}

export class Store {
  private readonly db: Database.Database
  readonly path: string

  private constructor(db: Database.Database, path: string) {
    this.db = db
    this.path = path
  }

  /** Opens (creating when absent) the store at `path`; `:memory:` for tests. */
  static open(path: string): Store {
    let db: Database.Database
    try {
      if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
      db = new Database(path)
      db.pragma('journal_mode = WAL')
      db.pragma('synchronous = NORMAL')
      db.pragma('busy_timeout = 5000')
      const check = db.pragma('quick_check', { simple: true })
      if (check !== 'ok') throw new Error(`integrity check failed: ${String(check)}`)
    } catch (err) {
      throw new StoreError(
        `cannot open the store at ${path}: ${err instanceof Error ? err.message : String(err)} ` +
          '(move the file aside to start with an empty store)',
        err,
      )
    }
    const store = new Store(db, path)
    store.migrate()
    return store
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number
    if (version > MIGRATIONS.length) {
      throw new StoreError(
        `the store at ${this.path} was written by a newer Tide (schema ${version}, this one knows ${MIGRATIONS.length})`,
      )
    }
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!)
        this.db.pragma(`user_version = ${v + 1}`)
      })()
    }
  }

  // ─── decisions ──────────────────────────────────────────────────────────────

  /** Records a decision and returns it with its id. */
  addDecision(record: Omit<DecisionRecord, 'id'>): DecisionRecord {
    const info = this.db
      .prepare(
        `INSERT INTO decisions (group_name, at, trigger, outcome, kind, from_n, to_n, reason, steps, recommendations, forced, error, duration_ms)
         VALUES (@group, @at, @trigger, @outcome, @kind, @from, @to, @reason, @steps, @recommendations, @forced, @error, @durationMs)`,
      )
      .run({
        group: record.group,
        at: record.at,
        trigger: record.trigger,
        outcome: record.outcome,
        kind: record.kind,
        from: record.from,
        to: record.to,
        reason: record.reason,
        steps: JSON.stringify(record.steps),
        recommendations: JSON.stringify(record.recommendations),
        forced: record.forced ? 1 : 0,
        error: record.error ?? null,
        durationMs: record.durationMs ?? null,
      })
    return { ...record, id: Number(info.lastInsertRowid) }
  }

  /** Sets the outcome of a decision once its operation finished. */
  finishDecision(
    id: number,
    outcome: Outcome,
    fields: { error?: string; durationMs?: number; reason?: string },
  ): void {
    this.db
      .prepare(
        'UPDATE decisions SET outcome = ?, error = ?, duration_ms = ?, reason = COALESCE(?, reason) WHERE id = ?',
      )
      .run(outcome, fields.error ?? null, fields.durationMs ?? null, fields.reason ?? null, id)
  }

  /** Newest first. */
  decisions(group: string, limit = 50): DecisionRecord[] {
    const rows = this.db
      .prepare('SELECT * FROM decisions WHERE group_name = ? ORDER BY id DESC LIMIT ?')
      .all(group, limit) as DecisionRow[]
    return rows.map(toDecision)
  }

  /** Drops decisions beyond the newest `keep` per group. */
  pruneDecisions(group: string, keep: number): void {
    this.db
      .prepare(
        'DELETE FROM decisions WHERE group_name = ? AND id <= (SELECT id FROM decisions WHERE group_name = ? ORDER BY id DESC LIMIT 1 OFFSET ?)',
      )
      .run(group, group, keep)
  }

  // ─── governor state ─────────────────────────────────────────────────────────

  loadState(group: string): GovernorState | undefined {
    const row = this.db.prepare('SELECT state FROM group_state WHERE group_name = ?').get(group) as
      { state: string } | undefined
    if (!row) return undefined
    try {
      const state = JSON.parse(row.state) as GovernorState
      return Array.isArray(state.history) ? state : undefined
    } catch {
      return undefined
    }
  }

  saveState(group: string, state: GovernorState, now: number): void {
    this.db
      .prepare(
        `INSERT INTO group_state (group_name, state, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (group_name) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`,
      )
      .run(group, JSON.stringify(state), now)
  }

  // ─── intents ────────────────────────────────────────────────────────────────

  /** Records that an operation is about to start. Call before touching the target. */
  openIntent(group: string, from: number, to: number, reason: string, now: number): Intent {
    const info = this.db
      .prepare('INSERT INTO intents (group_name, from_n, to_n, reason, started_at) VALUES (?, ?, ?, ?, ?)')
      .run(group, from, to, reason, now)
    return { id: Number(info.lastInsertRowid), group, from, to, reason, startedAt: now }
  }

  closeIntent(id: number, status: IntentEnd, now: number, detail?: string): void {
    this.db
      .prepare('UPDATE intents SET status = ?, finished_at = ?, detail = ? WHERE id = ?')
      .run(status, now, detail ?? null, id)
  }

  /** Intents a previous run left open (it stopped mid-operation). */
  openIntents(group?: string): Intent[] {
    const rows = (
      group === undefined
        ? this.db.prepare("SELECT * FROM intents WHERE status = 'open' ORDER BY id").all()
        : this.db
            .prepare("SELECT * FROM intents WHERE status = 'open' AND group_name = ? ORDER BY id")
            .all(group)
    ) as Array<{
      id: number
      group_name: string
      from_n: number
      to_n: number
      reason: string
      started_at: number
    }>
    return rows.map((r) => ({
      id: r.id,
      group: r.group_name,
      from: r.from_n,
      to: r.to_n,
      reason: r.reason,
      startedAt: r.started_at,
    }))
  }

  // ─── metric history ─────────────────────────────────────────────────────────

  addMetrics(group: string, at: number, values: Record<string, number>): void {
    const insert = this.db.prepare(
      'INSERT INTO metric_history (group_name, metric, at, value) VALUES (?, ?, ?, ?)',
    )
    this.db.transaction(() => {
      for (const [metric, value] of Object.entries(values)) {
        if (Number.isFinite(value)) insert.run(group, metric, at, value)
      }
    })()
  }

  /** Recorded values of one metric from `since` to `until` (inclusive; default: all after `since`), oldest first. */
  metricHistory(
    group: string,
    metric: string,
    since: number,
    until = Number.MAX_SAFE_INTEGER,
  ): Array<{ at: number; value: number }> {
    return this.db
      .prepare(
        'SELECT at, value FROM metric_history WHERE group_name = ? AND metric = ? AND at >= ? AND at <= ? ORDER BY at',
      )
      .all(group, metric, since, until) as Array<{ at: number; value: number }>
  }

  /**
   * Every recorded series of `group` (`desired`, `ready` and each metric) from `since` to `until`
   * (inclusive), oldest first, in one query. A series with more than `points` values is thinned
   * evenly by position: it keeps exactly `points` of them, always the first and the last (with
   * `points` 1, only the last). A metric with no value in the range is absent.
   */
  series(group: string, range: { since: number; until: number; points: number }): Record<string, Series> {
    const points = Math.floor(range.points)
    if (!(points >= 1)) throw new StoreError(`series: points must be ≥ 1, got ${range.points}`)
    const rows = this.db
      .prepare(SERIES_QUERY)
      .raw()
      .all({ group, since: range.since, until: range.until, points }) as Array<[string, number, number]>
    const out = new Map<string, Series>()
    for (const [metric, at, value] of rows) {
      const series = out.get(metric)
      if (series) series.push([at, value])
      else out.set(metric, [[at, value]])
    }
    return Object.fromEntries(out) // own keys even for a metric named `__proto__`
  }

  pruneMetrics(before: number): void {
    this.db.prepare(PRUNE_METRICS).run(before)
  }

  // ─── receiver cooldowns ─────────────────────────────────────────────────────

  /** Until when (epoch ms) the receiver's action `key` is cooling down, or undefined when it is not. */
  cooldownUntil(key: string, now: number): number | undefined {
    const row = this.db
      .prepare('SELECT until FROM receiver_cooldowns WHERE key = ? AND until > ?')
      .get(key, now) as { until: number } | undefined
    return row?.until
  }

  /** Starts a cooldown for `key` (or clears it with `until` ≤ now), forgetting the ones that ended. */
  setCooldown(key: string, until: number, now: number): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM receiver_cooldowns WHERE until <= ?').run(now)
      if (until > now) {
        this.db
          .prepare(
            'INSERT INTO receiver_cooldowns (key, until) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET until = excluded.until',
          )
          .run(key, until)
      } else {
        this.db.prepare('DELETE FROM receiver_cooldowns WHERE key = ?').run(key)
      }
    })()
  }

  close(): void {
    if (this.db.open) this.db.close()
  }
}

function toDecision(row: DecisionRow): DecisionRecord {
  const record: DecisionRecord = {
    id: row.id,
    group: row.group_name,
    at: row.at,
    trigger: row.trigger as Trigger,
    outcome: row.outcome as Outcome,
    kind: row.kind as DecisionRecord['kind'],
    from: row.from_n,
    to: row.to_n,
    reason: row.reason,
    steps: JSON.parse(row.steps) as string[],
    recommendations: JSON.parse(row.recommendations) as DecisionRecord['recommendations'],
  }
  if (row.forced) record.forced = true
  if (row.error !== null) record.error = row.error
  if (row.duration_ms !== null) record.durationMs = row.duration_ms
  return record
}
