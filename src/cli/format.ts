/**
 * Text for people: tables, numbers, times, the instance bar. Pure functions of their input and
 * `now`, so the same code draws `tide status` once and `tide status --watch` each interval.
 */
import type pc from 'picocolors'
import { formatDuration } from '../core/duration.js'
import type { InstanceState } from '../core/types.js'
import type { DecisionRecord, GroupView } from '../engine/controller.js'

/** picocolors' formatters; plain identity functions when colour is off. */
export type Colors = ReturnType<typeof pc.createColors>

// matching ANSI escape sequences is the point
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g

export function visibleLength(text: string): number {
  return [...text.replace(ANSI, '')].length
}

/** Cuts a line to `width` visible characters, keeping colour codes intact and resetting after. */
export function truncate(text: string, width: number): string {
  if (visibleLength(text) <= width) return text
  let out = ''
  let seen = 0
  let i = 0
  while (i < text.length && seen < width - 1) {
    if (text[i] === '\x1b') {
      ANSI.lastIndex = i
      const m = ANSI.exec(text)
      if (m && m.index === i) {
        out += m[0]
        i += m[0].length
        continue
      }
    }
    const ch = String.fromCodePoint(text.codePointAt(i)!)
    out += ch
    i += ch.length
    seen++
  }
  return `${out}…\x1b[0m`
}

function pad(text: string, width: number, right = false): string {
  const fill = ' '.repeat(Math.max(0, width - visibleLength(text)))
  return right ? fill + text : text + fill
}

/** Columns two spaces apart; `right` names the columns aligned right (numbers). */
export function table(
  header: string[],
  rows: string[][],
  c: Colors,
  right: Set<number> = new Set(),
): string[] {
  const widths = header.map((h, i) =>
    Math.max(visibleLength(h), ...rows.map((r) => visibleLength(r[i] ?? ''))),
  )
  const line = (cells: string[]) =>
    cells
      .map((cell, i) =>
        i === cells.length - 1 && !right.has(i) ? cell : pad(cell, widths[i]!, right.has(i)),
      )
      .join('  ')
      .trimEnd()
  return [c.dim(line(header)), ...rows.map(line)]
}

/** Numbers as people read them: 3, 0.42, 11.5, 1250. */
export function num(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '–'
  if (Number.isInteger(value)) return String(value)
  const abs = Math.abs(value)
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : 2
  return String(Number(value.toFixed(digits)))
}

/** How long something has been so: `850ms`, `12s`, `2m30s`, `5h`, and whole days past two. */
export function age(ms: number): string {
  if (ms < 1000) return 'now'
  if (ms >= 48 * 3_600_000) return `${Math.floor(ms / 86_400_000)}d`
  return formatDuration(Math.max(0, ms))
}

/** Local wall-clock time, `14:03:07`. */
export function clockTime(at: number): string {
  return new Date(at).toTimeString().slice(0, 8)
}

/** One symbol per state, so the bar reads without colour too. */
const STATE_SYMBOL: Record<InstanceState, string> = {
  ready: '█',
  starting: '▒',
  draining: '░',
  stopping: '×',
  failed: '!',
}

export function stateColour(state: InstanceState, c: Colors): (text: string) => string {
  switch (state) {
    case 'ready':
      return c.green
    case 'starting':
      return c.yellow
    case 'draining':
      return c.magenta
    case 'stopping':
      return c.dim
    default:
      return c.red
  }
}

/**
 * The group at a glance: one coloured block per instance in creation order, then a dot for
 * each free place up to `max`, so how far the group can still grow is visible too.
 */
export function instanceBar(group: GroupView, c: Colors, maxWidth = 60): string {
  const blocks = group.instances.slice(0, maxWidth).map((i) => stateColour(i.state, c)(STATE_SYMBOL[i.state]))
  const extra = group.instances.length > maxWidth ? c.dim(`+${group.instances.length - maxWidth}`) : ''
  const free = Math.max(0, Math.min(group.max, maxWidth) - group.instances.length)
  return blocks.join('') + extra + c.dim('·'.repeat(free))
}

/** "2 ready · 1 starting", in the order of an instance's life. */
export function stateCounts(group: GroupView, c: Colors): string {
  const order: InstanceState[] = ['ready', 'starting', 'draining', 'stopping', 'failed']
  const parts = order
    .map((state) => [state, group.instances.filter((i) => i.state === state).length] as const)
    .filter(([, n]) => n > 0)
    .map(([state, n]) => stateColour(state, c)(`${n} ${state}`))
  return parts.length > 0 ? parts.join(c.dim(' · ')) : c.dim('no instances')
}

export function outcomeColour(outcome: DecisionRecord['outcome'], c: Colors): (text: string) => string {
  switch (outcome) {
    case 'applied':
      return c.green
    case 'pending':
      return c.cyan
    case 'failed':
      return c.red
    case 'shadow':
      return c.magenta
    default:
      return c.dim
  }
}

/** `▲ 2 → 3`, `▼ 3 → 1`, or `= 2`. */
export function change(d: { from: number; to: number }, c: Colors): string {
  if (d.to > d.from) return c.green(`▲ ${d.from} → ${d.to}`)
  if (d.to < d.from) return c.yellow(`▼ ${d.from} → ${d.to}`)
  return c.dim(`= ${d.to}`)
}

/** One line for a decision: `14:03:07  ▲ 2 → 3  applied  scale up 2 → 3: …`. */
export function decisionLine(d: DecisionRecord, c: Colors): string {
  const error = d.error ? c.red(` — ${d.error}`) : ''
  return `${c.dim(clockTime(d.at))}  ${outcomeColour(d.outcome, c)(d.outcome.padEnd(7))}  ${d.reason}${error}`
}

/** Metrics people look at first; the rest follow by name. */
const FIRST = ['concurrency', 'request_rate']

export function metricNames(group: GroupView): string[] {
  const names = Object.keys(group.metrics)
  return [...FIRST.filter((n) => names.includes(n)), ...names.filter((n) => !FIRST.includes(n)).sort()]
}

export function metricValue(name: string, value: number | undefined): string {
  if (value === undefined) return '–'
  return name === 'request_rate' ? `${num(value)}/s` : num(value)
}

/** `concurrency 11.5 · request_rate 40/s`, from each metric's group value. */
export function groupMetrics(group: GroupView, c: Colors): string {
  const parts = metricNames(group).map(
    (name) => `${c.dim(name)} ${metricValue(name, group.metrics[name]!.value)}`,
  )
  return parts.join(c.dim(' · '))
}
