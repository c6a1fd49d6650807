/**
 * The `process` source: CPU and memory of each local instance, read from Linux's /proc
 * (proc(5): `/proc/<pid>/stat` fields 3, 4, 14, 15 and 22; `VmRSS` in `/proc/<pid>/status`).
 * Instances come with `pid` set by the `process` target.
 *
 * - `cpu`: cores in use, averaged since the previous collect: the growth of utime + stime (clock
 *   ticks) divided by the elapsed time times the ticks per second. The first reading of a process
 *   has nothing to compare with, so it is missing, never zero (zero would invite a scale-down).
 * - `memory`: resident set in MB (10^6 bytes).
 *
 * By default an instance counts its descendants too (`children: true`): `npm start`, a shell
 * wrapper, gunicorn or Node's cluster run the real work in child processes, and the parent
 * alone would look idle. Resident sets are summed, so pages shared between them (copy-on-write
 * after fork) count once per process: an overestimate, never an underestimate.
 */
import { execFile } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { errorMessage } from '../../core/errors.js'
import type { CollectContext, MetricReading, Metrics, Source } from '../../core/types.js'
import { emptyReading, miss, settle } from '../reading.js'

export const processSourceSchema = z
  .object({
    kind: z
      .literal('process')
      .describe('CPU (`cpu`, cores) and memory (`memory`, MB) of local processes from /proc.'),
    children: z
      .boolean()
      .default(true)
      .describe(
        "Count each instance's child processes too (wrappers such as `npm start` do no work themselves).",
      ),
  })
  .strict()
  .describe('Reads /proc for instances run by the process target (Linux).')

export type ProcessSourceConfig = z.output<typeof processSourceSchema>

export interface ProcessSourceDeps {
  logger?: { warn(obj: object, msg: string): void }
  /** Where the proc filesystem is mounted; tests point it at a fake tree. @default '/proc' */
  procRoot?: string
  /** Clock ticks per second. @default `getconf CLK_TCK`, read once; 100 if that fails */
  clockTicks?: number
}

/** What Tide reads from `/proc/<pid>/stat`. */
export interface ProcStat {
  pid: number
  /** One letter: R, S, D, Z (zombie), X (dead), ... */
  state: string
  ppid: number
  /** utime + stime, in clock ticks. */
  ticks: number
  /** When the process started, in clock ticks after boot: with the pid, it tells a reused pid apart. */
  start: number
}

/**
 * Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may itself hold
 * spaces and parentheses, so fields are counted from the last `)`.
 */
export function parseStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(')
  const close = text.lastIndexOf(')')
  if (open < 1 || close < open) return undefined
  const fields = text.slice(close + 2).split(' ')
  // After the name: state is field 3, ppid 4, utime 14, stime 15, starttime 22 (proc(5), 1-based).
  const pid = Number(text.slice(0, open).trim())
  const ppid = Number(fields[1])
  const ticks = Number(fields[11]) + Number(fields[12])
  const start = Number(fields[19])
  if (![pid, ppid, ticks, start].every(Number.isFinite) || !fields[0]) return undefined
  return { pid, state: fields[0], ppid, ticks, start }
}

/** `VmRSS` of `/proc/<pid>/status` in bytes; undefined for kernel threads and zombies, which have none. */
export function parseRss(status: string): number | undefined {
  const m = /^VmRSS:\s*(\d+)\s*kB\s*$/m.exec(status)
  return m ? Number(m[1]) * 1024 : undefined
}

let systemClockTicks: Promise<number> | undefined

/** `getconf CLK_TCK`, asked once per Tide process; 100 (Linux on x86-64 and arm64) if it cannot say. */
function clockTicksPerSecond(): Promise<number> {
  systemClockTicks ??= new Promise((resolve) => {
    execFile('getconf', ['CLK_TCK'], { timeout: 2000 }, (err, stdout) => {
      const n = Number(String(stdout).trim())
      resolve(!err && Number.isInteger(n) && n > 0 ? n : 100)
    })
  })
  return systemClockTicks
}

/** Ticks of each process of an instance at its last reading, by `pid:start`. */
interface CpuMemory {
  at: number
  rootKey: string
  ticks: Map<string, number>
}

const key = (stat: ProcStat) => `${stat.pid}:${stat.start}`

export function createProcessSource(config: ProcessSourceConfig, deps: ProcessSourceDeps = {}): Source {
  const procRoot = deps.procRoot ?? '/proc'
  const previous = new Map<string, CpuMemory>()

  async function readStat(pid: number): Promise<ProcStat | undefined> {
    try {
      return parseStat(await readFile(join(procRoot, String(pid), 'stat'), 'utf8'))
    } catch {
      return undefined // gone between listing and reading, or never there
    }
  }

  /** Every process, for finding descendants: /proc lists only processes (threads are under task/). */
  async function readAllStats(): Promise<Map<number, ProcStat>> {
    const names = (await readdir(procRoot)).filter((n) => /^\d+$/.test(n))
    const stats = await Promise.all(names.map((n) => readStat(Number(n))))
    const table = new Map<number, ProcStat>()
    for (const stat of stats) if (stat) table.set(stat.pid, stat)
    return table
  }

  async function readRss(pid: number): Promise<number | undefined> {
    try {
      return parseRss(await readFile(join(procRoot, String(pid), 'status'), 'utf8'))
    } catch {
      return undefined
    }
  }

  return {
    kind: 'process',
    async collect(ctx: CollectContext): Promise<Metrics> {
      const cpu = emptyReading(ctx.now)
      const memory = emptyReading(ctx.now)
      // Instances still starting are neither measured nor missing (their start-up CPU is not load).
      const instances = ctx.instances.filter((i) => i.state === 'ready')
      const ticksPerSecond = deps.clockTicks ?? (await clockTicksPerSecond())

      let table: Map<number, ProcStat> | undefined
      let children: Map<number, ProcStat[]> | undefined
      if (config.children && instances.some((i) => i.pid !== undefined)) {
        try {
          table = await readAllStats()
        } catch (err) {
          const cause = `cannot read ${procRoot} (the process source needs Linux): ${errorMessage(err)}`
          deps.logger?.warn({ group: ctx.group, cause }, 'process source cannot read /proc')
          for (const instance of instances) for (const r of [cpu, memory]) miss(r, instance, cause)
          return finish(cpu, memory)
        }
        children = new Map()
        for (const stat of table.values()) {
          const siblings = children.get(stat.ppid)
          if (siblings) siblings.push(stat)
          else children.set(stat.ppid, [stat])
        }
      }

      const measured = await Promise.all(
        instances.map(async (instance) => {
          if (instance.pid === undefined) return { instance, cause: 'no process id (not a local process)' }
          const root = table?.get(instance.pid) ?? (await readStat(instance.pid))
          if (!root || root.state === 'Z' || root.state === 'X') {
            return { instance, cause: `process ${instance.pid} is gone` }
          }
          const members = children ? descendantsOf(root, children) : [root]
          const rss = await Promise.all(members.map((m) => readRss(m.pid)))
          return { instance, root, members, rss }
        }),
      )

      for (const m of measured) {
        const { instance } = m
        if (!('root' in m) || !m.root) {
          previous.delete(instance.id)
          for (const r of [cpu, memory]) miss(r, instance, m.cause)
          continue
        }
        const { root, members, rss } = m
        // Memory: the root must report one; a child that exited meanwhile simply drops out.
        if (rss[0] === undefined) miss(memory, instance, `process ${root.pid} reports no resident memory`)
        else memory.perInstance[instance.id] = rss.reduce<number>((sum, bytes) => sum + (bytes ?? 0), 0) / 1e6

        const before = previous.get(instance.id)
        const now: CpuMemory = {
          at: ctx.now,
          rootKey: key(root),
          ticks: new Map(members.map((p) => [key(p), p.ticks])),
        }
        if (!before || before.rootKey !== now.rootKey) {
          miss(cpu, instance, `first reading of process ${root.pid}; CPU use needs two`)
        } else if (ctx.now <= before.at) {
          miss(cpu, instance, 'no time has passed since the previous reading')
          continue // keep the older reading to measure from
        } else {
          let used = 0
          for (const p of members) {
            const had = before.ticks.get(key(p))
            // A process new since the last reading did all its work since then.
            used += had === undefined ? p.ticks : Math.max(0, p.ticks - had)
          }
          cpu.perInstance[instance.id] = used / ticksPerSecond / ((ctx.now - before.at) / 1000)
        }
        previous.set(instance.id, now)
      }
      const present = new Set(ctx.instances.map((i) => i.id))
      for (const id of previous.keys()) if (!present.has(id)) previous.delete(id)
      return finish(cpu, memory)
    },
  }
}

/** The process and all its living descendants (zombies have exited; a cycle cannot loop). */
function descendantsOf(root: ProcStat, children: Map<number, ProcStat[]>): ProcStat[] {
  const out = [root]
  const seen = new Set([root.pid])
  for (let i = 0; i < out.length; i++) {
    for (const child of children.get(out[i]!.pid) ?? []) {
      if (seen.has(child.pid) || child.state === 'Z' || child.state === 'X') continue
      seen.add(child.pid)
      out.push(child)
    }
  }
  return out
}

function finish(cpu: MetricReading, memory: MetricReading): Metrics {
  return { cpu: settle(cpu), memory: settle(memory) }
}
