/**
 * `tide simulate`: replays a request-rate trace through a policy against a modelled group and
 * reports cost and misses (docs/simulate.md). No daemon needed.
 *
 *   tide simulate --trace nasa-1995.csv --compare --boot 60s --plot nasa.svg
 *   tide simulate --trace rps.csv --config tide.yaml --group web --capacity 40 --json
 */
import { writeFile } from 'node:fs/promises'
import { InvalidArgumentError, Option } from 'commander'
import { formatDuration, parseDuration } from '../../core/duration.js'
import { BadRequestError } from '../../core/errors.js'
import type { Context } from '../context.js'
import { EXIT, UsageError } from '../io.js'
import type { RegisterCommand } from './index.js'

interface SimulateFlags {
  trace: string
  policy?: string
  config?: string
  group?: string
  compare?: boolean
  capacity?: number
  boot: number
  lag: number
  latency: number
  min: number
  max?: number
  from?: string
  to?: string
  json?: boolean
  plot?: string
}

function positive(what: string) {
  return (value: string): number => {
    const n = Number(value)
    if (value.trim() === '' || !Number.isFinite(n) || n <= 0)
      throw new InvalidArgumentError(`must be ${what} > 0.`)
    return n
  }
}

function whole(min: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value.trim()) || Number(value) < min)
      throw new InvalidArgumentError(`must be a whole number ≥ ${min}.`)
    return Number(value)
  }
}

function durationArg(value: string): number {
  const ms = parseDuration(value)
  if (ms === undefined) throw new InvalidArgumentError('must be a duration like "60s", "500ms" or "2m".')
  return ms
}

function figure(n: number, digits = 1): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

async function simulateCommand(ctx: Context, flags: SimulateFlags): Promise<number> {
  // Loaded here: the other commands should not pay for the simulator.
  const sim = await import('../../simulate/index.js')
  if (flags.group !== undefined && flags.config === undefined) {
    throw new UsageError('--group needs --config FILE (the config file the group is in)')
  }
  if (flags.policy !== undefined && flags.config !== undefined) {
    throw new UsageError(
      'give either --policy NAME (a built-in policy) or --config FILE --group NAME, not both',
    )
  }
  const whole = await sim.loadTrace(flags.trace)
  const trace = sim.sliceTrace(whole, flags.from, flags.to)
  const peak = sim.peakRate(trace)
  const capacity = flags.capacity ?? (peak > 0 ? peak / 20 : 1)
  const need = sim.peakNeed(trace, capacity)
  const max = flags.max ?? Math.max(2 * need, flags.min + 1)
  const model = { capacity, boot: flags.boot, lag: flags.lag, min: flags.min, max }

  const controllers: Array<() => ReturnType<typeof sim.baseline>> = []
  if (flags.config !== undefined) {
    const loaded = await ctx.io.loadConfigFile(flags.config, ctx.io.env as NodeJS.ProcessEnv)
    const names = Object.keys(loaded.config.groups)
    const name = flags.group ?? (names.length === 1 ? names[0]! : undefined)
    if (name === undefined) {
      throw new UsageError(
        `${flags.config} has ${names.length} groups; choose one with --group (${names.join(', ')})`,
      )
    }
    const group = loaded.config.groups[name]
    if (!group) {
      throw new BadRequestError(
        `--group ${name}: ${flags.config} has no such group (it has ${names.join(', ')})`,
        {
          group: name,
        },
      )
    }
    controllers.push(() => sim.configGroup(name, group, { latency: flags.latency }))
  }
  if (flags.compare) {
    for (const name of sim.BASELINES) controllers.push(() => sim.baseline(name, model))
  } else if (flags.config === undefined) {
    const name = flags.policy ?? 'tide'
    sim.baseline(name, model) // checks the name before any work
    controllers.push(() => sim.baseline(name, model))
  }

  const started = ctx.io.now()
  const runs = sim.run(trace, model, controllers)
  const elapsed = ctx.io.now() - started
  const report = { trace: trace.name, results: runs.map((r) => r.result) }

  if (flags.plot !== undefined) {
    const range = flags.from || flags.to ? ` (${flags.from ?? '0'} to ${flags.to ?? 'end'})` : ''
    const svg = sim.renderPlot(runs, {
      title: `${trace.name}${range}: ${figure(capacity, 3)} rps per instance, boot ${formatDuration(flags.boot)}, lag ${formatDuration(flags.lag)}, bounds ${flags.min}–${max}`,
      capacity,
    })
    try {
      await writeFile(flags.plot, svg)
    } catch (err) {
      throw new BadRequestError(`--plot ${flags.plot}: cannot write (${(err as Error).message})`)
    }
  }

  if (flags.json) {
    ctx.json(report)
    return EXIT.ok
  }
  const { c } = ctx
  ctx.out(
    `${c.bold(trace.name)}: ${trace.at.length.toLocaleString('en-US')} rows over ${formatDuration(trace.end)}, peak ${figure(peak, 3)} rps`,
  )
  ctx.out(
    c.dim(
      `model: ${figure(capacity, 3)} rps per instance (peak needs ${need}), boot ${formatDuration(flags.boot)}, metrics ${formatDuration(flags.lag)} late, bounds ${flags.min}–${max}`,
    ),
  )
  ctx.out('')
  const header = [
    'policy',
    'instance-hours',
    'under-capacity min',
    'over-capacity requests',
    'actions',
    'mean utilization',
  ]
  const rows = report.results.map((r) => [
    r.policy,
    figure(r.instanceHours),
    figure(r.underCapacityMinutes),
    figure(r.overCapacityRequests, 0),
    String(r.actions),
    `${figure(r.meanUtilization * 100)}%`,
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const pad = (cells: string[]) =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')
  ctx.out(c.bold(pad(header)))
  for (const row of rows) ctx.out(pad(row))
  ctx.out('')
  const extra = flags.plot ? `; plot written to ${flags.plot}` : ''
  ctx.out(c.dim(`simulated in ${formatDuration(elapsed)}${extra}`))
  return EXIT.ok
}

export const registerSimulate: RegisterCommand = (program, ctx, done) => {
  program
    .command('simulate')
    .description('replay a request-rate trace through a policy and report cost and misses')
    .requiredOption('--trace <file>', 'CSV of "t,rps" rows (seconds, requests per second)')
    .option('--policy <name>', 'a built-in policy: seed-threshold, hpa, kpa or tide (default tide)')
    .option('--config <file>', 'simulate a group of this config file instead')
    .option('--group <name>', 'the group of --config to simulate')
    .option('--compare', 'run every built-in policy (and the --config group) side by side')
    .addOption(
      new Option(
        '--capacity <rps>',
        'requests per second one ready instance serves (default: peak ÷ 20)',
      ).argParser(positive('a number of requests per second')),
    )
    .addOption(
      new Option('--boot <duration>', 'time from requesting an instance until it serves')
        .argParser(durationArg)
        .default(60_000, '60s'),
    )
    .addOption(
      new Option('--lag <duration>', 'how late metrics show the demand')
        .argParser(durationArg)
        .default(15_000, '15s'),
    )
    .addOption(
      new Option('--latency <duration>', 'time a request spends in an instance, for the concurrency metric')
        .argParser(durationArg)
        .default(100, '100ms'),
    )
    .addOption(new Option('--min <n>', 'fewest instances').argParser(whole(0)).default(1))
    .addOption(
      new Option('--max <n>', 'most instances (default: twice what the peak needs)').argParser(whole(1)),
    )
    .option('--from <duration>', 'start this far into the trace, e.g. 7d')
    .option('--to <duration>', 'stop this far into the trace, e.g. 9d')
    .option('--json', 'machine-readable output on stdout')
    .option('--plot <file.svg>', 'write an SVG of demand, ready capacity and desired instances per policy')
    .action(async (flags: SimulateFlags) => done(await simulateCommand(ctx, flags)))
}
