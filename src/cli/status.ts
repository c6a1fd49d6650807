/**
 * `tide status [group]`: a table of groups, or one group in detail. The detail view is also
 * what `--watch` redraws for each group, so the two never drift apart.
 */
import { formatDuration } from '../core/duration.js'
import type { DecisionRecord, GroupView } from '../engine/controller.js'
import type { ApiClient } from './client.js'
import {
  age,
  type Colors,
  change,
  clockTime,
  decisionLine,
  groupMetrics,
  instanceBar,
  metricNames,
  metricValue,
  outcomeColour,
  stateColour,
  stateCounts,
  table,
} from './format.js'

/** At most this many metric columns in the instance table; the rest are in the group line. */
const METRIC_COLUMNS = 4

export function groupPath(name: string, rest = ''): string {
  return `/v1/groups/${encodeURIComponent(name)}${rest}`
}

export function renderList(groups: GroupView[], now: number, c: Colors): string[] {
  if (groups.length === 0) return [c.dim('no groups')]
  const rows = groups.map((g) => {
    const d = g.lastDecision
    const last = d ? `${c.dim(age(now - d.at))} ${outcomeColour(d.outcome, c)(d.reason)}` : ''
    return [
      c.bold(g.name),
      g.target,
      String(g.desired),
      String(g.ready),
      String(g.min),
      String(g.max),
      instanceBar(g, c, 24),
      last,
    ]
  })
  return table(
    ['GROUP', 'TARGET', 'DESIRED', 'READY', 'MIN', 'MAX', 'INSTANCES', 'LAST DECISION'],
    rows,
    c,
    new Set([2, 3, 4, 5]),
  )
}

/** The group's headline: name, target, sizes, and what it is doing right now. */
function headline(g: GroupView, c: Colors): string {
  const sizes = [
    `desired ${c.bold(String(g.desired))}`,
    `ready ${c.bold(String(g.ready))}`,
    `min ${g.min}`,
    `max ${g.max}`,
  ].join(c.dim(' · '))
  const extras = [g.shadow ? c.magenta('shadow') : '', g.route ? `${c.dim('route')} ${g.route}` : '']
  return [c.bold(c.cyan(g.name)), c.dim(g.target), sizes, ...extras].filter(Boolean).join('  ')
}

function instanceTable(g: GroupView, now: number, c: Colors): string[] {
  if (g.instances.length === 0) return []
  const metrics = metricNames(g).slice(0, METRIC_COLUMNS)
  const rows = g.instances.map((i) => {
    const since = i.state === 'ready' && i.readyAt ? i.readyAt : i.createdAt
    return [
      i.protected ? `${i.id} ${c.dim('(base)')}` : i.id,
      stateColour(i.state, c)(i.state),
      age(now - since),
      i.address ?? '–',
      ...metrics.map((m) => metricValue(m, g.metrics[m]!.perInstance[i.id])),
      i.detail ? c.dim(i.detail) : '',
    ]
  })
  const right = new Set(metrics.map((_, k) => 4 + k))
  return table(
    ['INSTANCE', 'STATE', 'FOR', 'ADDRESS', ...metrics.map((m) => m.toUpperCase()), ''],
    rows,
    c,
    right,
  )
}

/** One group in detail: for `tide status NAME` and for each group in `--watch`. */
export function renderGroup(g: GroupView, decisions: DecisionRecord[], now: number, c: Colors): string[] {
  const lines = [headline(g, c)]
  const label = (name: string) => c.dim(name.padEnd(11))
  lines.push(`${label('instances')}${instanceBar(g, c)}  ${stateCounts(g, c)}`)
  const metrics = groupMetrics(g, c)
  if (metrics) lines.push(`${label('metrics')}${metrics}`)
  if (g.operation) {
    const op = g.operation
    lines.push(
      `${label('scaling')}${change(op, c)} ${c.dim(`for ${formatDuration(Math.max(0, now - op.startedAt))}:`)} ${op.reason}`,
    )
  }
  if (g.cooldownUntil !== undefined && g.cooldownUntil > now) {
    lines.push(`${label('cooldown')}${c.yellow(`${formatDuration(g.cooldownUntil - now)} left`)}`)
  }
  if (g.message) lines.push(`${label('note')}${c.yellow(g.message)}`)
  const instances = instanceTable(g, now, c)
  if (instances.length > 0) lines.push('', ...instances.map((l) => `  ${l}`))
  if (decisions.length > 0) {
    lines.push('', c.dim('  decisions'), ...decisions.map((d) => `  ${decisionLine(d, c)}`))
  } else if (g.lastDecision) {
    lines.push('', c.dim('  last decision'), `  ${decisionLine(g.lastDecision, c)}`)
  }
  return lines
}

export interface Snapshot {
  at: number
  groups: GroupView[]
  decisions: Map<string, DecisionRecord[]>
}

/** One consistent read of what `status` shows; `decisions` is how many per group (0: none). */
export async function fetchSnapshot(
  client: ApiClient,
  name: string | undefined,
  decisions: number,
  now: () => number,
  signal?: AbortSignal,
): Promise<Snapshot> {
  const groups = name
    ? [await client.get<GroupView>(groupPath(name), signal)]
    : (await client.get<{ groups: GroupView[] }>('/v1/groups', signal)).groups
  const lists = new Map<string, DecisionRecord[]>()
  if (decisions > 0) {
    const fetched = await Promise.all(
      groups.map((g) =>
        client.get<{ decisions: DecisionRecord[] }>(
          groupPath(g.name, `/decisions?limit=${decisions}`),
          signal,
        ),
      ),
    )
    groups.forEach((g, k) => {
      lists.set(g.name, fetched[k]!.decisions)
    })
  }
  return { at: now(), groups, decisions: lists }
}

/** A whole `--watch` frame: a title line, then each group. */
export function renderFrame(snapshot: Snapshot, title: string, c: Colors): string[] {
  const lines = [`${c.bold('tide status')}  ${c.dim(title)}  ${c.dim(clockTime(snapshot.at))}`, '']
  if (snapshot.groups.length === 0) lines.push(c.dim('no groups'))
  snapshot.groups.forEach((g, k) => {
    if (k > 0) lines.push('')
    lines.push(...renderGroup(g, snapshot.decisions.get(g.name) ?? [], snapshot.at, c))
  })
  return lines
}
