// @ts-check
/**
 * The page's history of each group and the SVG charts drawn from it. The page keeps the last few
 * minutes of what it polled (a ring buffer per group), seeded when a group first appears with
 * what Tide recorded before (`GET v1/groups/:name/history`), so the charts show the last minutes
 * at once. Without that route (an older Tide) they start empty. Gaps: the tab was hidden.
 */
import { num, s } from './dom.js'

/** How much history a chart shows at most. */
export const SPAN_MS = 5 * 60_000
/** A page opened a moment ago still shows at least this much time, growing to `SPAN_MS`. */
const MIN_SPAN_MS = 60_000
/** Points further apart than this are not joined (the tab was hidden, or Tide did not answer). */
const GAP_MS = 4_000

/**
 * @typedef {{ t: number, desired: number, ready: number, metrics: Record<string, number | undefined> }} Point
 * @typedef {Record<string, [number, number][]>} Series what the history route answers: `[at, value]`, oldest first
 */

/** The last `SPAN_MS` of points, oldest first. */
export class History {
  constructor() {
    /** @type {Point[]} */
    this.points = []
    /**
     * Points further apart than this are not joined: `GAP_MS`, or more when the recorded history
     * shows the group is evaluated less often than that (its points are one interval apart).
     */
    this.gap = GAP_MS
  }

  /** @param {Point} point */
  add(point) {
    this.points.push(point)
    this.trim(point.t)
  }

  /** @param {number} now */
  trim(now) {
    const cutoff = now - SPAN_MS - this.gap
    let drop = 0
    while (drop < this.points.length && this.points[drop].t < cutoff) drop++
    if (drop > 0) this.points.splice(0, drop)
  }

  /**
   * Puts recorded history before the polled points: one point per recorded `desired`, with the
   * `ready` and metric values recorded at that time (or at most one gap before). Recorded times
   * are Tide's clock; `shift` moves them to the page's (page time − Tide time).
   * @param {Series} series
   * @param {number} shift
   * @param {number} now
   */
  seed(series, shift, now) {
    const backbone = series.desired ?? []
    if (backbone.length === 0) return
    const spacing = backbone
      .slice(1)
      .map(([at], i) => at - backbone[i][0])
      .sort((a, b) => a - b)
    const median = spacing[Math.floor(spacing.length / 2)] ?? 0
    this.gap = Math.max(this.gap, Math.min(median * 2, 60_000))
    const firstPolled = this.points[0]?.t ?? Infinity
    const cursors = Object.entries(series).map(([name, values]) => ({ name, values, i: 0 }))
    /** @type {Point[]} */
    const seeded = []
    for (const [at] of backbone) {
      const t = at + shift
      if (t >= firstPolled) break
      /** @type {Record<string, number | undefined>} */
      const metrics = {}
      for (const c of cursors) {
        while (c.i + 1 < c.values.length && c.values[c.i + 1][0] <= at) c.i++
        const [when, value] = c.values[c.i] ?? [Infinity, 0]
        if (when <= at && at - when <= this.gap && Number.isFinite(value)) metrics[c.name] = value
      }
      const { desired, ready, ...rest } = metrics
      if (desired === undefined || ready === undefined) continue
      seeded.push({ t, desired, ready, metrics: rest })
    }
    this.points = [...seeded, ...this.points]
    this.trim(now)
  }

  /**
   * The time the charts show: the history there is, at least `MIN_SPAN_MS`, at most `SPAN_MS`.
   * @param {number} now
   * @returns {{ from: number, now: number }}
   */
  window(now) {
    const first = this.points[0]?.t ?? now
    return { from: Math.max(now - SPAN_MS, Math.min(first, now - MIN_SPAN_MS)), now }
  }
}

/**
 * `45 s`, `3 min`: how long ago the left edge of a chart is.
 * @param {number} ms
 */
function ago(ms) {
  return ms < 90_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`
}

/**
 * Runs of points with a value, split where the polls have a gap.
 * @param {Point[]} points
 * @param {(p: Point) => number | undefined} pick
 * @param {number} gap
 * @returns {{ t: number, v: number }[][]}
 */
function runs(points, pick, gap) {
  /** @type {{ t: number, v: number }[][]} */
  const out = []
  /** @type {{ t: number, v: number }[] | undefined} */
  let run
  let last = -Infinity
  for (const p of points) {
    const v = pick(p)
    if (v === undefined || !Number.isFinite(v)) {
      run = undefined
      continue
    }
    if (!run || p.t - last > gap) {
      run = []
      out.push(run)
    }
    run.push({ t: p.t, v })
    last = p.t
  }
  return out
}

/** @param {number} n */
const r = (n) => Math.round(n * 10) / 10

/**
 * Step-shaped path of runs: a value holds until the next poll.
 * @param {{ t: number, v: number }[][]} parts
 * @param {(t: number) => number} x
 * @param {(v: number) => number} y
 * @param {boolean} area close each run down to y(0)
 */
function stepPath(parts, x, y, area) {
  let d = ''
  for (const run of parts) {
    const first = run[0]
    if (!first) continue
    d += area ? `M${r(x(first.t))},${r(y(0))}V${r(y(first.v))}` : `M${r(x(first.t))},${r(y(first.v))}`
    for (const p of run.slice(1)) d += `H${r(x(p.t))}V${r(y(p.v))}`
    if (area) d += `V${r(y(0))}Z`
  }
  return d
}

/**
 * Straight-line path of runs (for metrics), or its area down to the bottom.
 * @param {{ t: number, v: number }[][]} parts
 * @param {(t: number) => number} x
 * @param {(v: number) => number} y
 * @param {number | undefined} floor draw the area down to this y (pixels); undefined for a line
 */
function linePath(parts, x, y, floor) {
  let d = ''
  for (const run of parts) {
    const first = run[0]
    if (!first) continue
    const pts = run.map((p) => `${r(x(p.t))},${r(y(p.v))}`)
    if (floor === undefined) d += `M${pts.join('L')}`
    else d += `M${r(x(first.t))},${r(floor)}L${pts.join('L')}L${r(x(run[run.length - 1].t))},${r(floor)}Z`
  }
  return d
}

/**
 * Grid values for an axis from 0 to `top`: whole numbers, at most about five lines.
 * @param {number} top
 */
function ticks(top) {
  const step = top <= 6 ? 1 : top <= 12 ? 2 : Math.ceil(top / 5 / 5) * 5
  const out = []
  for (let v = 0; v <= top + 1e-9; v += step) out.push(v)
  return out
}

/**
 * Draws desired (a dashed step line) and ready (a filled step area) instance counts over the
 * last `SPAN_MS`, up to the group's `max`.
 * @param {SVGSVGElement} svg
 * @param {Point[]} points
 * @param {{ max: number, min: number, from: number, now: number, width: number, gap?: number }} opts
 */
export function drawInstances(svg, points, { max, min, from, now, width, gap = GAP_MS }) {
  const height = 150
  const pad = { left: 26, right: 8, top: 8, bottom: 18 }
  const top = Math.max(1, max, ...points.map((p) => Math.max(p.desired, p.ready)))
  points = points.filter((p) => p.t >= from)
  const x = (/** @type {number} */ t) =>
    pad.left + ((t - from) / (now - from)) * (width - pad.left - pad.right)
  const y = (/** @type {number} */ v) => height - pad.bottom - (v / top) * (height - pad.top - pad.bottom)
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`)
  svg.setAttribute('width', String(width))
  svg.setAttribute('height', String(height))
  const parts = []
  for (const v of ticks(top)) {
    parts.push(s('line', { class: 'grid', x1: pad.left, x2: width - pad.right, y1: r(y(v)), y2: r(y(v)) }))
    const label = s('text', { class: 'axis', x: pad.left - 6, y: r(y(v)) + 4, 'text-anchor': 'end' })
    label.textContent = String(v)
    parts.push(label)
  }
  if (min > 0 && min < top) {
    parts.push(
      s('line', { class: 'bound', x1: pad.left, x2: width - pad.right, y1: r(y(min)), y2: r(y(min)) }),
    )
  }
  parts.push(s('line', { class: 'bound', x1: pad.left, x2: width - pad.right, y1: r(y(max)), y2: r(y(max)) }))
  for (const [t, text, anchor] of /** @type {const} */ ([
    [from, `${ago(now - from)} ago`, 'start'],
    [(from + now) / 2, ago((now - from) / 2), 'middle'],
    [now, 'now', 'end'],
  ])) {
    const label = s('text', { class: 'axis', x: r(x(t)), y: height - 4, 'text-anchor': anchor })
    label.textContent = text
    parts.push(label)
  }
  const ready = runs(points, (p) => p.ready, gap)
  const desired = runs(points, (p) => p.desired, gap)
  parts.push(s('path', { class: 'ready-area', d: stepPath(ready, x, y, true) }))
  parts.push(s('path', { class: 'ready-line', d: stepPath(ready, x, y, false) }))
  parts.push(s('path', { class: 'desired-line', d: stepPath(desired, x, y, false) }))
  svg.replaceChildren(...parts)
}

/**
 * A small line chart of one metric over the last `SPAN_MS`, scaled to its own range.
 * @param {SVGSVGElement} svg
 * @param {Point[]} points
 * @param {string} name
 * @param {{ from: number, now: number, width: number, gap?: number }} opts
 */
export function drawSpark(svg, points, name, { from, now, width, gap = GAP_MS }) {
  const height = 44
  const pad = 3
  const parts = runs(
    points.filter((p) => p.t >= from),
    (p) => p.metrics[name],
    gap,
  )
  const values = parts.flat().map((p) => p.v)
  const hi = Math.max(...values, 0)
  const lo = Math.min(...values, 0)
  const range = hi - lo || 1
  const x = (/** @type {number} */ t) => ((t - from) / (now - from)) * width
  const y = (/** @type {number} */ v) => height - pad - ((v - lo) / (range * 1.1)) * (height - 2 * pad)
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`)
  svg.setAttribute('width', String(width))
  svg.setAttribute('height', String(height))
  const peak = s('title')
  peak.textContent = values.length ? `highest in the last ${ago(now - from)}: ${num(hi)}` : 'no data yet'
  svg.replaceChildren(
    peak,
    s('path', { class: 'spark-area', d: linePath(parts, x, y, y(lo)) }),
    s('path', { class: 'spark-line', d: linePath(parts, x, y, undefined) }),
  )
}
