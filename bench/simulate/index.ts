/**
 * Replays both shared traces through every built-in policy (issue 6's "done when"), writes the
 * SVGs next to this file and prints a Markdown table for bench/RESULTS.md.
 *
 *   node --import tsx bench/simulate/index.ts [../shared/traces]
 *
 * Model: capacity = peak ÷ 20 (the peak needs 20 instances), boot 60 s, metrics 15 s late,
 * bounds 1–40 for every policy. Also prints how the `tide` default fares against nearby
 * settings (sensitivity), so a reader can judge how much it depends on its exact numbers.
 */
import { writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tide } from '../../src/simulate/baselines.js'
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
} from '../../src/simulate/index.js'

const here = dirname(fileURLToPath(import.meta.url))
const traces = resolve(process.argv[2] ?? join(here, '../../../shared/traces'))
const FILES = ['nasa-1995.csv', 'alibaba-ms-6d9c26b9.csv']

const f1 = (n: number) => n.toFixed(1)
const row = (r: Result, ms?: number) =>
  `| ${r.policy} | ${f1(r.instanceHours)} | ${f1(r.underCapacityMinutes)} | ${Math.round(r.overCapacityRequests).toLocaleString('en-US')} | ${r.actions} | ${(r.meanUtilization * 100).toFixed(1)}% |${ms === undefined ? '' : ` ${(ms / 1000).toFixed(1)} s |`}`

for (const file of FILES) {
  const trace = await loadTrace(join(traces, file))
  const capacity = peakRate(trace) / 20
  const model: GroupModel = {
    capacity,
    boot: 60_000,
    lag: 15_000,
    min: 1,
    max: 2 * peakNeed(trace, capacity),
  }
  console.log(
    `\n### ${file}: capacity ${capacity.toFixed(4)} rps per instance, bounds ${model.min}–${model.max}\n`,
  )
  console.log(
    '| policy | instance-hours | under-capacity min | over-capacity requests | actions | mean utilization | time |',
  )
  console.log('|---|---:|---:|---:|---:|---:|---:|')
  const runs = []
  for (const name of BASELINES) {
    const started = performance.now()
    const [r] = run(trace, model, [() => baseline(name, model)])
    runs.push(r!)
    console.log(row(r!.result, performance.now() - started))
  }
  const by = Object.fromEntries(runs.map((r) => [r.result.policy, r.result]))
  const t = by.tide!
  const seed = by['seed-threshold']!
  const hpa = by.hpa!
  console.log(
    `\ntide/seed-threshold instance-hours: ${(t.instanceHours / seed.instanceHours).toFixed(3)} (≤ 0.6: ${t.instanceHours <= 0.6 * seed.instanceHours ? 'yes' : 'NO'}); ` +
      `tide vs hpa under-capacity minutes: ${f1(t.underCapacityMinutes)} vs ${f1(hpa.underCapacityMinutes)} (${t.underCapacityMinutes <= hpa.underCapacityMinutes ? 'yes' : 'NO'}); ` +
      `instance-hours: ${f1(t.instanceHours)} vs ${f1(hpa.instanceHours)} (${t.instanceHours <= hpa.instanceHours ? 'yes' : 'NO'})`,
  )
  const stem = file.replace(/\.csv$/, '')
  const title = `${file}: ${capacity.toFixed(3)} rps per instance, boot 60s, lag 15s, bounds ${model.min}–${model.max}`
  writeFileSync(join(here, `${stem}.svg`), renderPlot(runs, { title, capacity }))
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
      renderPlot(zoom, { title: `${file}, days 3–5 (replayed alone)`, capacity }),
    )
  }

  console.log('\nSensitivity of the tide default (utilization × scale-down stabilization; interval 10 s):\n')
  console.log(
    '| variant | instance-hours | under-capacity min | over-capacity requests | actions | mean utilization |',
  )
  console.log('|---|---:|---:|---:|---:|---:|')
  for (const kind of ['predictive', 'target'] as const) {
    for (const utilization of [0.7, 0.75, 0.8]) {
      for (const stabilization of [120_000, 300_000]) {
        const name = `${kind} ${utilization} / ${stabilization / 1000}s`
        const [r] = run(trace, model, [() => tide(model, { kind, utilization, stabilization }, name)])
        console.log(row(r!.result))
      }
    }
  }
}
