/**
 * Replays both shared traces through every built-in policy (issue 6's "done when"), writes the
 * SVGs next to this file and prints Markdown tables for bench/RESULTS.md.
 *
 *   node --import tsx bench/simulate/index.ts [../shared/traces]
 *
 * Model: capacity = peak ÷ 20 (the peak needs 20 instances), boot 60 s, metrics 15 s late,
 * bounds 1–40 for every policy. Times are CPU time of this process (process.cpuUsage, less
 * disturbed by other jobs than wall time), and `tide`'s is also given as a multiple of `hpa`'s
 * measured in the same run. Then how the `tide` default fares against variants of it
 * (sensitivity), on both traces, so a reader can judge how much it depends on its numbers.
 */
import { writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type TideKnobs, tide } from '../../src/simulate/baselines.js'
import {
  BASELINES,
  baseline,
  type GroupModel,
  loadTrace,
  peakNeed,
  peakRate,
  renderPlot,
  type Result,
  run,
  sliceTrace,
  type Trace,
} from '../../src/simulate/index.js'

const here = dirname(fileURLToPath(import.meta.url))
const traces = resolve(process.argv[2] ?? join(here, '../../../shared/traces'))
const FILES = ['nasa-1995.csv', 'alibaba-ms-6d9c26b9.csv']

const f1 = (n: number) => n.toFixed(1)
const cpu = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}
const row = (r: Result, ms?: number) =>
  `| ${r.policy} | ${f1(r.instanceHours)} | ${f1(r.underCapacityMinutes)} | ${Math.round(r.overCapacityRequests).toLocaleString('en-US')} | ${r.actions} | ${(r.meanUtilization * 100).toFixed(1)}% |${ms === undefined ? '' : ` ${(ms / 1000).toFixed(2)} s |`}`

function modelFor(trace: Trace): GroupModel {
  const capacity = peakRate(trace) / 20
  return { capacity, boot: 60_000, lag: 15_000, min: 1, max: 2 * peakNeed(trace, capacity) }
}

/** Whether `t` meets issue 6's three targets against the seed and hpa results. */
function meets(t: Result, seed: Result, hpa: Result) {
  return {
    ratio: t.instanceHours / seed.instanceHours,
    cheap: t.instanceHours <= 0.6 * seed.instanceHours,
    misses: t.underCapacityMinutes <= hpa.underCapacityMinutes,
    hours: t.instanceHours <= hpa.instanceHours,
  }
}

const loaded: Array<{ file: string; trace: Trace; model: GroupModel; seed: Result; hpa: Result }> = []
for (const file of FILES) {
  const trace = await loadTrace(join(traces, file))
  const model = modelFor(trace)
  console.log(
    `\n### ${file}: capacity ${model.capacity.toFixed(4)} rps per instance, bounds ${model.min}–${model.max}\n`,
  )
  console.log(
    '| policy | instance-hours | under-capacity min | over-capacity requests | actions | mean utilization | CPU time |',
  )
  console.log('|---|---:|---:|---:|---:|---:|---:|')
  const runs = []
  const times: Record<string, number> = {}
  for (const name of BASELINES) {
    const started = cpu()
    const [r] = run(trace, model, [() => baseline(name, model)])
    times[name] = cpu() - started
    runs.push(r!)
    console.log(row(r!.result, times[name]))
  }
  const by = Object.fromEntries(runs.map((r) => [r.result.policy, r.result]))
  const t = by.tide!
  const seed = by['seed-threshold']!
  const hpa = by.hpa!
  loaded.push({ file, trace, model, seed, hpa })
  const m = meets(t, seed, hpa)
  console.log(
    `\ntide/seed-threshold instance-hours: ${m.ratio.toFixed(3)} (≤ 0.6: ${m.cheap ? 'yes' : 'NO'}); ` +
      `tide vs hpa under-capacity minutes: ${f1(t.underCapacityMinutes)} vs ${f1(hpa.underCapacityMinutes)} (${m.misses ? 'yes' : 'NO'}); ` +
      `instance-hours: ${f1(t.instanceHours)} vs ${f1(hpa.instanceHours)} (${m.hours ? 'yes' : 'NO'})`,
  )
  console.log(
    `speed: tide ${(times.tide! / 1000).toFixed(2)} s CPU = ${(times.tide! / times.hpa!).toFixed(1)}× hpa's ${(times.hpa! / 1000).toFixed(2)} s`,
  )
  const stem = file.replace(/\.csv$/, '')
  const title = `${file}: ${model.capacity.toFixed(3)} rps per instance, boot 60s, lag 15s, bounds ${model.min}–${model.max}`
  writeFileSync(join(here, `${stem}.svg`), renderPlot(runs, { title, capacity: model.capacity }))
  if (file.startsWith('nasa')) {
    // Two ordinary weekdays, readable at the minute scale.
    const window = sliceTrace(trace, '3d', '5d')
    const zoom = run(
      window,
      model,
      BASELINES.map((name) => () => baseline(name, model)),
    )
    writeFileSync(
      join(here, `${stem}-days-3-5.svg`),
      renderPlot(zoom, { title: `${file}, days 3–5 (replayed alone)`, capacity: model.capacity }),
    )
  }
}

const M = 60_000
const VARIANTS: Array<[string, TideKnobs]> = [
  ['**default**: predictive 0.75, burst 1σ/2h, hold 5m ≤ +50 %', {}],
  ['hold 4m', { hold: 4 * M }],
  ['hold 6m', { hold: 6 * M }],
  ['hold 10m', { hold: 10 * M }],
  ['hold ≤ +34 %', { above: 0.34 }],
  ['hold ≤ +100 %', { above: 1 }],
  ['hold off, group stabilization 300s', { hold: 0, stabilization: 300_000 }],
  ['burst 0.75σ', { deviations: 0.75 }],
  ['burst 1.25σ', { deviations: 1.25 }],
  ['burst off', { deviations: 0 }],
  ['burst window 1h', { burstWindow: 60 * M }],
  ['burst window 4h', { burstWindow: 240 * M }],
  ['utilization 0.7', { utilization: 0.7 }],
  ['utilization 0.8', { utilization: 0.8 }],
  ['interval 15s', { interval: 15_000 }],
  [
    'previous default: predictive 0.75, no burst, no hold, stabilization 300s',
    { deviations: 0, hold: 0, stabilization: 300_000 },
  ],
  ['target 0.75, stabilization 300s', { kind: 'target', stabilization: 300_000 }],
  ['target 0.7, stabilization 300s', { kind: 'target', utilization: 0.7, stabilization: 300_000 }],
]

console.log(
  '\n### Sensitivity of the `tide` default (each row changes one thing, interval 10 s unless said)\n',
)
console.log(
  '| variant | NASA instance-hours | NASA under-capacity min | Alibaba instance-hours | Alibaba under-capacity min | meets all on both |',
)
console.log('|---|---:|---:|---:|---:|:---:|')
for (const [name, knobs] of VARIANTS) {
  const cells: string[] = []
  let all = true
  for (const { trace, model, seed, hpa } of loaded) {
    const [r] = run(trace, model, [() => tide(model, knobs, name)])
    const m = meets(r!.result, seed, hpa)
    all &&= m.cheap && m.misses && m.hours
    const mark = (ok: boolean) => (ok ? '' : ' ✗')
    cells.push(
      `${f1(r!.result.instanceHours)}${mark(m.cheap && m.hours)}`,
      `${f1(r!.result.underCapacityMinutes)}${mark(m.misses)}`,
    )
  }
  console.log(`| ${name} | ${cells.join(' | ')} | ${all ? 'yes' : 'no'} |`)
}
