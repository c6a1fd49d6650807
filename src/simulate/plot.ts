/**
 * `--plot FILE.svg`: one panel per policy, stacked, sharing the time axis and the rate scale.
 * Each panel shows the demand (grey: the busiest minute of each pixel column, darker: its mean),
 * the ready capacity (blue line, mean) and the desired instances (orange, the highest of the
 * column; right-hand axis in instances, drawn at instances × capacity so it lines up with the
 * rate), with the policy's figures in its title. Plain SVG text, no scripts or external fonts.
 */
import { formatDuration } from '../core/duration.js'
import type { Result, Timeline } from './model.js'

export interface PlotRun {
  result: Result
  timeline: Timeline
}

export interface PlotOptions {
  title: string
  capacity: number
  /** Pixel width of the whole image. @default 1200 */
  width?: number
}

const PANEL_HEIGHT = 190
const TOP = 56
const LEFT = 64
const RIGHT = 56
const GAP = 34

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

function fmt(n: number): string {
  if (n >= 100) return String(Math.round(n))
  if (n >= 10) return n.toFixed(1).replace(/\.0$/, '')
  return String(Number(n.toPrecision(2)))
}

/** A "nice" step for about `count` ticks up to `max`. */
function niceStep(max: number, count: number): number {
  const raw = max / count
  const power = 10 ** Math.floor(Math.log10(raw))
  for (const m of [1, 2, 2.5, 5, 10]) if (m * power >= raw) return m * power
  return 10 * power
}

interface Columns {
  demandMax: number[]
  demandMean: number[]
  capacity: number[]
  desired: number[]
}

function columns(timeline: Timeline, end: number, count: number): Columns {
  const max = new Array<number>(count).fill(0)
  const sum = new Array<number>(count).fill(0)
  const cap = new Array<number>(count).fill(0)
  const desired = new Array<number>(count).fill(0)
  const rows = new Array<number>(count).fill(0)
  for (let i = 0; i < timeline.at.length; i++) {
    const c = Math.min(count - 1, Math.floor((timeline.at[i]! / end) * count))
    const d = timeline.demand[i]!
    if (d > max[c]!) max[c] = d
    sum[c] = sum[c]! + d
    cap[c] = cap[c]! + timeline.capacity[i]!
    if (timeline.desired[i]! > desired[c]!) desired[c] = timeline.desired[i]!
    rows[c] = rows[c]! + 1
  }
  const out: Columns = { demandMax: [], demandMean: [], capacity: [], desired: [] }
  for (let c = 0; c < count; c++) {
    const k = rows[c]!
    if (k === 0 && c > 0) {
      // More columns than rows: repeat the previous column.
      out.demandMax.push(out.demandMax[c - 1]!)
      out.demandMean.push(out.demandMean[c - 1]!)
      out.capacity.push(out.capacity[c - 1]!)
      out.desired.push(out.desired[c - 1]!)
      continue
    }
    out.demandMax.push(max[c]!)
    out.demandMean.push(k > 0 ? sum[c]! / k : 0)
    out.capacity.push(k > 0 ? cap[c]! / k : 0)
    out.desired.push(desired[c]!)
  }
  return out
}

/** The SVG document. */
export function renderPlot(runs: PlotRun[], options: PlotOptions): string {
  const width = options.width ?? 1200
  const plotWidth = width - LEFT - RIGHT
  const height = TOP + runs.length * (PANEL_HEIGHT + GAP) + 20
  const first = runs[0]?.timeline
  const end = first
    ? first.at[first.at.length - 1]! + (first.at.length > 1 ? first.at[1]! - first.at[0]! : 60_000)
    : 1
  const count = Math.max(1, Math.min(plotWidth, first?.at.length ?? 1))
  const cols = runs.map((r) => columns(r.timeline, end, count))
  let top = 0
  for (const c of cols) {
    for (let i = 0; i < count; i++) {
      top = Math.max(top, c.demandMax[i]!, c.capacity[i]!, c.desired[i]! * options.capacity)
    }
  }
  top = top > 0 ? top * 1.05 : 1
  const x = (i: number) => LEFT + ((i + 0.5) * plotWidth) / count
  const out: string[] = []
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${LEFT}" y="22" font-size="16" font-weight="bold">${esc(options.title)}</text>`,
    // Legend.
    `<rect x="${LEFT}" y="34" width="14" height="10" fill="#d4d4d4"/><text x="${LEFT + 18}" y="43">demand (busiest minute)</text>`,
    `<rect x="${LEFT + 180}" y="34" width="14" height="10" fill="#8c8c8c"/><text x="${LEFT + 198}" y="43">demand (mean)</text>`,
    `<line x1="${LEFT + 300}" y1="39" x2="${LEFT + 316}" y2="39" stroke="#1f6fd1" stroke-width="2"/><text x="${LEFT + 320}" y="43">ready capacity</text>`,
    `<line x1="${LEFT + 420}" y1="39" x2="${LEFT + 436}" y2="39" stroke="#f08c00" stroke-width="1.5"/><text x="${LEFT + 440}" y="43">desired instances × capacity (right axis: instances)</text>`,
  )
  const step = niceStep(top, 4)
  const instanceStep = Math.max(1, Math.round(niceStep(top / options.capacity, 4)))
  const timeStep = niceTimeStep(end)
  runs.forEach((run, p) => {
    const y0 = TOP + p * (PANEL_HEIGHT + GAP) + 18
    const y = (v: number) => y0 + PANEL_HEIGHT - (Math.min(v, top) / top) * PANEL_HEIGHT
    const c = cols[p]!
    const r = run.result
    const figures = `${fmt(r.instanceHours)} instance-hours · ${fmt(r.underCapacityMinutes)} min under capacity · ${Math.round(r.overCapacityRequests)} requests over · ${r.actions} actions · ${Math.round(r.meanUtilization * 100)}% utilization`
    out.push(
      `<text x="${LEFT}" y="${y0 - 6}" font-weight="bold">${esc(r.policy)}</text>`,
      `<text x="${LEFT + 8 + r.policy.length * 8}" y="${y0 - 6}" fill="#444">${esc(figures)}</text>`,
      `<rect x="${LEFT}" y="${y0}" width="${plotWidth}" height="${PANEL_HEIGHT}" fill="none" stroke="#bbb"/>`,
    )
    for (let v = 0; v <= top; v += step) {
      out.push(
        `<line x1="${LEFT}" y1="${y(v).toFixed(1)}" x2="${LEFT + plotWidth}" y2="${y(v).toFixed(1)}" stroke="#eee"/>`,
        `<text x="${LEFT - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" fill="#555">${fmt(v)}</text>`,
      )
    }
    for (let n = 0; n * options.capacity <= top; n += instanceStep) {
      out.push(
        `<text x="${LEFT + plotWidth + 6}" y="${(y(n * options.capacity) + 4).toFixed(1)}" fill="#b86b00">${n}</text>`,
      )
    }
    out.push(
      `<text x="14" y="${y0 + PANEL_HEIGHT / 2}" transform="rotate(-90 14 ${y0 + PANEL_HEIGHT / 2})" text-anchor="middle" fill="#555">requests/s</text>`,
    )
    out.push(area(c.demandMax, x, y, y0 + PANEL_HEIGHT, '#d4d4d4'))
    out.push(area(c.demandMean, x, y, y0 + PANEL_HEIGHT, '#8c8c8c'))
    out.push(line(c.capacity, x, y, '#1f6fd1', 2))
    out.push(
      line(
        c.desired.map((d) => d * options.capacity),
        x,
        y,
        '#f08c00',
        1.5,
      ),
    )
    for (let t = 0; t <= end; t += timeStep) {
      const px = LEFT + (t / end) * plotWidth
      out.push(
        `<line x1="${px.toFixed(1)}" y1="${y0 + PANEL_HEIGHT}" x2="${px.toFixed(1)}" y2="${y0 + PANEL_HEIGHT + 4}" stroke="#888"/>`,
        `<text x="${px.toFixed(1)}" y="${y0 + PANEL_HEIGHT + 16}" text-anchor="middle" fill="#555">${t === 0 ? '0' : formatDuration(t)}</text>`,
      )
    }
  })
  out.push('</svg>')
  return `${out.join('\n')}\n`
}

function niceTimeStep(end: number): number {
  const steps = [
    60_000, 300_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 21_600_000, 43_200_000, 86_400_000,
    172_800_000, 604_800_000,
  ]
  for (const s of steps) if (end / s <= 12) return s
  return 604_800_000 * Math.ceil(end / 604_800_000 / 12)
}

function points(values: number[], x: (i: number) => number, y: (v: number) => number): string {
  return values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ')
}

function area(
  values: number[],
  x: (i: number) => number,
  y: (v: number) => number,
  base: number,
  fill: string,
): string {
  const last = values.length - 1
  return `<polygon fill="${fill}" stroke="none" points="${x(0).toFixed(1)},${base} ${points(values, x, y)} ${x(last).toFixed(1)},${base}"/>`
}

function line(
  values: number[],
  x: (i: number) => number,
  y: (v: number) => number,
  stroke: string,
  w: number,
): string {
  return `<polyline fill="none" stroke="${stroke}" stroke-width="${w}" stroke-linejoin="round" points="${points(values, x, y)}"/>`
}
