/**
 * Reloading the config without a restart (SIGHUP, `POST /v1/reload`, `tide reload`): which
 * differences between the running config and the file can be applied live, and which need
 * `tide run` to start again. Pure: two validated configs in, a plan out; the daemon applies it.
 *
 * All or nothing, as Prometheus and nginx reload: when one difference needs a restart, the
 * reload is refused and nothing at all changes, so a file is never half applied.
 *
 *   live:     a group's bounds and loop/governor settings (min, max, interval, stale_after,
 *             shadow, cooldown, scale_up, scale_down), its policies and its notify list
 *   restart:  a group's target, route or effective sources; a group added or removed;
 *             api, store, log, receiver; any other key (one Tide does not know how to swap)
 */
import { isDeepStrictEqual } from 'node:util'
import { type Config, effectiveSources, formatPath, type GroupConfig } from '../config/index.js'
import { type ConfigProblem, TideError } from '../core/errors.js'
import { type SourceConfig, sourceSchema } from '../sources/index.js'
import type { ReloadSummary } from './controller.js'

/** Group keys a running group swaps in between two evaluations (GroupRunner.reconfigure). */
const LIVE_KEYS = new Set([
  'min',
  'max',
  'interval',
  'stale_after',
  'shadow',
  'cooldown',
  'scale_up',
  'scale_down',
  'policies',
  'notify',
])

const RESTART = 'changing it needs a restart (tide run)'

/** The file asks for something a reload cannot do; nothing was changed. The API answers 409. */
export class ReloadRefusedError extends TideError {
  readonly problems: ConfigProblem[]
  constructor(problems: ConfigProblem[], why = 'the config file changes things only a restart can apply') {
    const lines = problems.map((p) => `\n  ${p.path || '(root)'}: ${p.message}`)
    const list = lines.length > 0 ? `:${lines.join('')}` : ''
    super('E_RELOAD_REFUSED', `reload refused, nothing was changed: ${why}${list}`, {
      status: 409,
      details: problems,
    })
    this.problems = problems
  }
}

/** What changed in one group that keeps running. */
export interface GroupChange {
  /** Paths that differ, e.g. `groups.web.max`, `groups.web.policies[0].per_instance`. */
  paths: string[]
  policies: boolean
  notify: boolean
}

export interface ReloadPlan {
  /** Each difference that needs a restart; empty when the reload can go ahead. */
  refused: ConfigProblem[]
  /** Groups with live changes, by name. */
  groups: Map<string, GroupChange>
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/**
 * The paths where `a` and `b` differ, as config paths (`groups.web.policies[1].per_instance`).
 * Object keys compare by name, whatever their order; arrays by position.
 */
export function diffPaths(a: unknown, b: unknown, path: Array<string | number>): string[] {
  if (isDeepStrictEqual(a, b)) return []
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()
    return keys.flatMap((key) => diffPaths(a[key], b[key], [...path, key]))
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    const out: string[] = []
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      if (i >= a.length || i >= b.length) out.push(formatPath([...path, i]))
      else out.push(...diffPaths(a[i], b[i], [...path, i]))
    }
    return out
  }
  return [formatPath(path)]
}

/**
 * The sources a group uses, each with its defaults filled in: the implied defaults come bare
 * (`{kind: router}`), so a file that spells them out compares equal to one that does not.
 */
function normalSources(group: GroupConfig): SourceConfig[] {
  return effectiveSources(group).map((source) => {
    const parsed = sourceSchema.safeParse(source)
    return parsed.success ? parsed.data : source
  })
}

function planGroup(
  name: string,
  before: GroupConfig,
  after: GroupConfig,
  refused: ConfigProblem[],
): GroupChange {
  const at = ['groups', name]
  const change: GroupChange = { paths: [], policies: false, notify: false }
  const own: ConfigProblem[] = []
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()
  for (const key of keys) {
    if (key === 'sources') continue // compared below, as the sources the group really uses
    const b = (before as Record<string, unknown>)[key]
    const a = (after as Record<string, unknown>)[key]
    const paths = diffPaths(b, a, [...at, key])
    if (paths.length === 0) continue
    if (!LIVE_KEYS.has(key)) {
      for (const path of paths) own.push({ path, message: RESTART })
      continue
    }
    change.paths.push(...paths)
    if (key === 'policies') change.policies = true
    if (key === 'notify') change.notify = true
  }
  const sourcesBefore = normalSources(before)
  const sourcesAfter = normalSources(after)
  if (!isDeepStrictEqual(sourcesBefore, sourcesAfter)) {
    const written = diffPaths(before.sources, after.sources, [...at, 'sources'])
    for (const path of written) own.push({ path, message: RESTART })
    // Defaults that moved with the target or route are covered by those paths; anything else
    // (defaults that follow another key) is named here so the refusal never goes unexplained.
    if (written.length === 0 && own.length === 0) {
      const kinds = (list: typeof sourcesAfter) => list.map((s) => s.kind).join(', ') || 'none'
      own.push({
        path: formatPath([...at, 'sources']),
        message: `the group's sources would change (${kinds(sourcesBefore)} → ${kinds(sourcesAfter)}); that needs a restart (tide run)`,
      })
    }
  }
  refused.push(...own)
  return change
}

/** Compares the running config with the reloaded one. */
export function planReload(before: Config, after: Config): ReloadPlan {
  const refused: ConfigProblem[] = []
  const groups = new Map<string, GroupChange>()
  const top = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()
  for (const key of top) {
    if (key === 'groups') continue
    const b = (before as Record<string, unknown>)[key]
    const a = (after as Record<string, unknown>)[key]
    for (const path of diffPaths(b, a, [key])) refused.push({ path, message: RESTART })
  }
  const names = [...new Set([...Object.keys(before.groups), ...Object.keys(after.groups)])].sort()
  for (const name of names) {
    const b = before.groups[name]
    const a = after.groups[name]
    const path = formatPath(['groups', name])
    if (!b) refused.push({ path, message: 'adding a group needs a restart (tide run)' })
    else if (!a) refused.push({ path, message: 'removing a group needs a restart (tide run)' })
    else {
      const change = planGroup(name, b, a, refused)
      if (change.paths.length > 0) groups.set(name, change)
    }
  }
  return { refused, groups }
}

/** What the API and the CLI show for an applied plan. */
export function summarize(plan: ReloadPlan, file: string): ReloadSummary {
  const groups: Record<string, string[]> = {}
  for (const [name, change] of plan.groups) groups[name] = change.paths
  const prefix = (name: string) => `groups.${name}.`
  const message =
    plan.groups.size === 0
      ? 'no change'
      : [...plan.groups]
          .map(([name, change]) => {
            const fields = change.paths.map((p) =>
              p.startsWith(prefix(name)) ? p.slice(prefix(name).length) : p,
            )
            return `${name}: ${fields.join(', ')}`
          })
          .join('; ')
  return { changed: plan.groups.size > 0, file, groups, message }
}
