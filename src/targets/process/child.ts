/**
 * One operating-system process per instance, in its own process group, its output appended to
 * a log file.
 *
 * Why a process group: `sh -c "exec <command>"` makes the app's own pid the child's pid, but
 * apps started through wrappers (`npm start`, shell scripts) run the real server as a
 * grandchild. Signals go to the whole group (`kill(-pid)`), so stopping an instance stops all
 * of it and a crash leaves no orphan holding the port. A detached group also keeps a terminal's
 * Ctrl-C away from the instances: Tide drains and stops them itself, in order.
 *
 * Local processes die with Tide: every group still running when Tide's process exits is sent
 * SIGKILL from an `exit` handler. Nothing can run when Tide itself is SIGKILLed: its instances
 * then keep running, and the next Tide stops them at start-up (leftovers.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { appendFileSync, closeSync, openSync, statSync, writeSync } from 'node:fs'
import { formatDuration } from '../../core/duration.js'

export interface ExitInfo {
  /** Exit code, when the process exited by itself. */
  code: number | null
  /** The signal that ended it, when one did. */
  signal: NodeJS.Signals | null
  /** How long it ran, in ms. */
  ranMs: number
}

export interface SpawnOptions {
  /** A shell command line (run as `sh -c "exec <command>"`) or an argv run without a shell. */
  command: string | readonly string[]
  cwd: string
  env: NodeJS.ProcessEnv
  /** Appended to, never truncated: a restarted instance's earlier output stays readable. */
  logFile: string
  /** Written to the log before the process starts, after `# tide: `. */
  label: string
}

/** Process groups started by this module and not yet known to be gone. */
const liveGroups = new Set<number>()
let exitHookInstalled = false

function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.once('exit', () => {
    for (const pid of liveGroups) signalGroup(pid, 'SIGKILL')
  })
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal)
  } catch {
    // ESRCH: already gone. EPERM cannot happen for our own children.
  }
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0)
    return true
  } catch {
    return false
  }
}

function delay(ms: number): { promise: Promise<void>; cancel: () => void } {
  let timer: NodeJS.Timeout | undefined
  const promise = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms)
  })
  return { promise, cancel: () => clearTimeout(timer) }
}

/** "exited with code 1 after 35ms", "was killed by SIGKILL after 2.5s". */
export function describeExit(info: ExitInfo): string {
  const after = `after ${formatDuration(info.ranMs)}`
  if (info.signal) return `was killed by ${info.signal} ${after}`
  return `exited with code ${info.code ?? '?'} ${after}`
}

export class ChildHandle {
  readonly pid: number
  /** Resolves once the process has exited (never rejects). */
  readonly exited: Promise<ExitInfo>
  private exitInfo?: ExitInfo
  private stopping = false

  constructor(child: ChildProcess, logFile: string, started: number) {
    this.pid = child.pid!
    liveGroups.add(this.pid)
    child.on('error', () => {}) // spawn errors are handled in spawnChild; later ones are kill errors
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        const info: ExitInfo = { code, signal, ranMs: performance.now() - started }
        this.exitInfo = info
        try {
          appendFileSync(logFile, `# tide: pid ${this.pid} ${describeExit(info)}\n`)
        } catch {
          // The log is a convenience; a missing directory must not hide the exit.
        }
        if (!this.stopping) {
          // A crashed app's helpers (same group) would keep the port and confuse the replacement.
          signalGroup(this.pid, 'SIGKILL')
          liveGroups.delete(this.pid)
        }
        resolve(info)
      })
    })
  }

  get running(): boolean {
    return this.exitInfo === undefined
  }

  /**
   * SIGTERM to the group, SIGKILL after `graceMs` if the app has not exited. Processes of the
   * group that outlive the app get the rest of the grace period, then SIGKILL. Resolves with the
   * app's exit once the whole group is gone.
   */
  async stop(graceMs: number): Promise<ExitInfo> {
    this.stopping = true
    const deadline = performance.now() + graceMs
    signalGroup(this.pid, 'SIGTERM')
    const grace = delay(graceMs)
    const inTime = await Promise.race([this.exited.then(() => true), grace.promise.then(() => false)])
    grace.cancel()
    if (!inTime) signalGroup(this.pid, 'SIGKILL')
    const info = await this.exited
    while (groupAlive(this.pid) && performance.now() < deadline) await delay(25).promise
    signalGroup(this.pid, 'SIGKILL')
    liveGroups.delete(this.pid)
    return info
  }

  /** SIGKILL to the group now; resolves once the app has exited. */
  async kill(): Promise<ExitInfo> {
    this.stopping = true
    signalGroup(this.pid, 'SIGKILL')
    const info = await this.exited
    liveGroups.delete(this.pid)
    return info
  }
}

/**
 * Starts one process. Rejects (nothing left running) when it cannot be started at all: the
 * working directory is missing, the executable does not exist, the log file cannot be opened.
 */
export async function spawnChild(options: SpawnOptions): Promise<ChildHandle> {
  let isDir = false
  try {
    isDir = statSync(options.cwd).isDirectory()
  } catch {}
  if (!isDir) throw new Error(`working directory ${options.cwd} does not exist`)
  const [file, args] =
    typeof options.command === 'string'
      ? ['/bin/sh', ['-c', `exec ${options.command}`]]
      : [options.command[0]!, options.command.slice(1)]
  installExitHook()
  const fd = openSync(options.logFile, 'a')
  let child: ChildProcess
  try {
    writeSync(fd, `# tide: ${new Date().toISOString()} ${options.label}\n`)
    child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', fd, fd],
      detached: true,
    })
  } finally {
    // The child has its own copy of the descriptor.
    closeSync(fd)
  }
  const started = performance.now()
  if (child.pid === undefined) {
    const err = await new Promise<Error>((resolve) => child.once('error', resolve))
    const code = (err as NodeJS.ErrnoException).code
    throw new Error(
      code === 'ENOENT' ? `cannot run ${file}: not found` : `cannot run ${file}: ${err.message}`,
    )
  }
  return new ChildHandle(child, options.logFile, started)
}
