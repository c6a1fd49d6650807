/**
 * No orphaned instance, even when Tide is killed with SIGKILL (or by the OOM killer).
 *
 * Nothing runs in a process killed with SIGKILL, so child.ts's `exit` hook cannot stop the
 * instances then: they keep running, holding their ports, and the next Tide would start new
 * ones beside them. So the target keeps a state file, `<logDir>/instances.json`, listing each
 * live instance (id, pid = its process-group id, port, and the process's start time from
 * `/proc/<pid>/stat`), rewritten atomically (temp file, then rename) whenever an instance
 * starts or exits. `start()` reads it and stops every listed instance still running.
 *
 * Why stop rather than adopt: a leftover is not Tide's child, so Tide cannot wait for its exit
 * (no `exit` event, no exit code, no reaping) and would have to poll it; its health, and whether
 * it was draining or half-way through a stop, are unknown; its output goes to a log Tide no
 * longer writes the header of. Stopping it is simple and safe, and costs little: the engine
 * brings the group back to its size on its first tick, with instances Tide watches.
 *
 * Never kill a stranger: pids are reused. An entry is ours only if its pid is alive, has the
 * recorded start time (a reused pid has another), leads its own process group, and its
 * `/proc/<pid>/environ` holds `TIDE_GROUP=<group>` and `TIDE_INSTANCE=<id>`. Anything else is
 * left alone. Linux only: without `/proc` nothing is recorded and nothing is stopped.
 */
import { readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'

/** One live instance, as written to the state file. */
export interface StateEntry {
  id: string
  /** The instance's pid, which is also its process-group id (instances are group leaders). */
  pid: number
  port: number
  /** Field 22 of `/proc/<pid>/stat`: clock ticks after boot when the process started. */
  startTime: number
}

export const STATE_FILE = 'instances.json'

/** How often a leftover group is checked for while it stops. */
const POLL_MS = 50
/** A bound on waiting for SIGKILL to take effect (a process in uninterruptible sleep may linger). */
const KILL_WAIT_MS = 5000

// ─── /proc ───────────────────────────────────────────────────────────────────

export interface ProcStat {
  /** One letter: R, S, D, Z (zombie), T, ... */
  state: string
  pgrp: number
  startTime: number
}

/** Parses `/proc/<pid>/stat`. The name (field 2) may hold spaces and parentheses: fields are counted after its last `)`. */
export function parseStat(text: string): ProcStat | undefined {
  const close = text.lastIndexOf(')')
  if (close < 0) return undefined
  // After ")": field 3 (state) is index 0, field 5 (pgrp) index 2, field 22 (starttime) index 19.
  const fields = text
    .slice(close + 1)
    .trim()
    .split(/\s+/)
  const state = fields[0]
  const pgrp = Number(fields[2])
  const startTime = Number(fields[19])
  if (!state || !Number.isSafeInteger(pgrp) || !Number.isSafeInteger(startTime)) return undefined
  return { state, pgrp, startTime }
}

/** `/proc/<pid>/stat`, or undefined when there is no such process (or no /proc). */
export function readStat(pid: number): ProcStat | undefined {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return undefined
  }
}

/** The process's start time (clock ticks after boot), or undefined. */
export function processStartTime(pid: number): number | undefined {
  return readStat(pid)?.startTime
}

/** `/proc/<pid>/environ` as `NAME=value` strings; empty when unreadable. */
function readEnviron(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')
  } catch {
    return []
  }
}

/** Pids of the live (not zombie) processes in a process group, found through /proc. */
function groupMembers(pgid: number): number[] {
  let names: string[]
  try {
    names = readdirSync('/proc')
  } catch {
    return []
  }
  const members: number[] = []
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue
    const stat = readStat(Number(name))
    if (stat && stat.pgrp === pgid && stat.state !== 'Z') members.push(Number(name))
  }
  return members
}

/** True once no process of the group is left, zombies (dead, waiting for their parent) aside. */
function groupGone(pgid: number): boolean {
  try {
    process.kill(-pgid, 0)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return true
  }
  return groupMembers(pgid).length === 0
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal)
  } catch {
    // ESRCH: gone already.
  }
}

// ─── Matching ────────────────────────────────────────────────────────────────

function hasMarks(pid: number, group: string, id: string): boolean {
  const env = readEnviron(pid)
  return env.includes(`TIDE_GROUP=${group}`) && env.includes(`TIDE_INSTANCE=${id}`)
}

/**
 * Why `entry` is not (or no longer) a running instance of `group` left by a previous Tide, or
 * undefined when it is one.
 */
export function whyNotOurs(entry: StateEntry, group: string): string | undefined {
  const stat = readStat(entry.pid)
  if (!stat || stat.state === 'Z') return 'not running'
  if (stat.startTime !== entry.startTime) return 'pid reused by another process (different start time)'
  if (stat.pgrp !== entry.pid) return `not a process-group leader (group ${stat.pgrp})`
  if (!hasMarks(entry.pid, group, entry.id)) {
    return `its environment lacks TIDE_GROUP=${group} TIDE_INSTANCE=${entry.id}`
  }
  return undefined
}

/**
 * The group is still the leftover's: its leader is, or (the leader gone, its helpers not) a
 * member carries the instance's marks. A process-group id can only be reused once the group is
 * empty, by a new process that would not carry them.
 */
function stillOurs(entry: StateEntry, group: string): boolean {
  if (whyNotOurs(entry, group) === undefined) return true
  return groupMembers(entry.pid).some((pid) => hasMarks(pid, group, entry.id))
}

// ─── Stopping ────────────────────────────────────────────────────────────────

/** Waits until the group is gone, `ms` passed or `signal` aborted. True if gone. */
async function waitGone(pgid: number, ms: number, signal?: AbortSignal): Promise<boolean> {
  const deadline = performance.now() + ms
  for (;;) {
    if (groupGone(pgid)) return true
    const left = deadline - performance.now()
    if (left <= 0 || signal?.aborted) return false
    await sleep(Math.min(POLL_MS, left), undefined, signal ? { signal } : {}).catch(() => {})
  }
}

/**
 * Stops a leftover's whole process group: SIGTERM, then SIGKILL after `graceMs` unless it is
 * gone sooner (or at once when `signal` aborts). The caller has checked `whyNotOurs`; the group
 * is checked again before SIGKILL. Resolves with the signal that ended it.
 */
export async function stopLeftover(
  entry: StateEntry,
  group: string,
  graceMs: number,
  signal?: AbortSignal,
): Promise<'SIGTERM' | 'SIGKILL'> {
  signalGroup(entry.pid, 'SIGTERM')
  if (await waitGone(entry.pid, graceMs, signal)) return 'SIGTERM'
  if (!stillOurs(entry, group)) return 'SIGTERM'
  signalGroup(entry.pid, 'SIGKILL')
  await waitGone(entry.pid, KILL_WAIT_MS)
  return 'SIGKILL'
}

// ─── The state file ──────────────────────────────────────────────────────────

interface StateFile {
  group: string
  instances: StateEntry[]
}

function isEntry(value: unknown): value is StateEntry {
  if (typeof value !== 'object' || value === null) return false
  const e = value as Record<string, unknown>
  return (
    typeof e.id === 'string' &&
    Number.isSafeInteger(e.pid) &&
    (e.pid as number) > 1 &&
    Number.isSafeInteger(e.port) &&
    Number.isSafeInteger(e.startTime)
  )
}

/**
 * The entries of a state file: none when it does not exist. Malformed entries are skipped;
 * `problem` says why a file that exists could not be used (or entries were skipped).
 */
export function readState(file: string): { entries: StateEntry[]; problem?: string } {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { entries: [] }
    return { entries: [], problem: `cannot read ${file}: ${(err as Error).message}` }
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return { entries: [], problem: `${file} is not JSON` }
  }
  const list = (parsed as Partial<StateFile> | null)?.instances
  if (!Array.isArray(list)) return { entries: [], problem: `${file} has no "instances" list` }
  const entries = list.filter(isEntry)
  if (entries.length < list.length) {
    return { entries, problem: `${file}: ${list.length - entries.length} malformed entr(ies) skipped` }
  }
  return { entries }
}

/** Replaces the state file atomically: a reader sees the old list or the new one, never half. */
export function writeState(file: string, group: string, entries: StateEntry[]): void {
  const tmp = `${file}.${process.pid}.tmp`
  const body: StateFile = { group, instances: entries }
  writeFileSync(tmp, `${JSON.stringify(body, null, 2)}\n`)
  renameSync(tmp, file)
}

/** The highest n among ids `<group>-<n>`, or 0. */
export function highestNumber(entries: StateEntry[], group: string): number {
  let highest = 0
  const prefix = `${group}-`
  for (const { id } of entries) {
    if (!id.startsWith(prefix)) continue
    const rest = id.slice(prefix.length)
    if (/^\d+$/.test(rest)) highest = Math.max(highest, Number(rest))
  }
  return highest
}
