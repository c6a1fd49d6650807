/**
 * `exec`: runs an executable on each event (seed 002's custom actions, done as programs rather
 * than Python modules). The event arrives twice: as environment variables for shell scripts
 * (TIDE_EVENT, TIDE_GROUP, TIDE_FROM, TIDE_TO, TIDE_ADDED, TIDE_REMOVED, … — docs/actions.md
 * lists them) and as the
 * event's JSON on stdin for programs that want all of it.
 *
 * ```yaml
 * notify:
 *   - kind: exec
 *     command: ./hooks/on-scale.sh     # relative to the config file's directory
 *     args: [--cluster, web]
 *     env: { SLACK_CHANNEL: ops }
 *     on: [applied, failed]
 *     timeout: 30s
 * ```
 *
 * The program runs without a shell, in its own process group, so that on timeout (or when Tide
 * shuts down) the whole group is stopped: SIGTERM, then SIGKILL after a short grace. Its output
 * is logged line by line (bounded), and a non-zero exit is a failed delivery, logged by the
 * dispatcher; like every notifier it never fails or delays a scale.
 */
import { spawn } from 'node:child_process'
import { isAbsolute, resolve } from 'node:path'
import { z } from 'zod'
import { TideError } from '../core/errors.js'
import type { Notifier, ScaleEvent } from '../core/types.js'
import type { Logger } from '../engine/log.js'
import { eventSummary, notifierCommon } from './common.js'

/** Output kept per stream and per run; the rest is counted and dropped. */
export const MAX_OUTPUT_BYTES = 64 * 1024
/** Time between SIGTERM and SIGKILL when a run is stopped. */
export const KILL_GRACE_MS = 2000

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

export const execNotifierSchema = z
  .object({
    kind: z.literal('exec'),
    command: z
      .string()
      .min(1, 'must name an executable')
      .describe(
        "The executable to run (no shell). A relative path with a `/` resolves against the config file's directory; a bare name is looked up on PATH.",
      ),
    args: z.array(z.string()).default([]).describe('Arguments passed to the executable.'),
    env: z
      .record(z.string().regex(ENV_NAME, 'must be an environment variable name like MY_VAR'), z.string())
      .default({})
      .describe("Extra environment variables (seed 002's action settings land here on import)."),
    direction: z
      .enum(['up', 'down'])
      .optional()
      .describe(
        "Only events of scaling in this direction (seed 002's actions ran after a create or after a destroy). Default: both.",
      ),
    cwd: z
      .string()
      .optional()
      .describe("Working directory, relative to the config file's directory. Default: that directory."),
    ...notifierCommon,
  })
  .strict()
  .describe(
    'Run an executable on every event, with the event in TIDE_* environment variables and as JSON on stdin.',
  )

export type ExecNotifierConfig = z.output<typeof execNotifierSchema>

export interface ExecDeps {
  logger: Logger
  /** The config file's directory: relative `command` and `cwd` resolve against it. */
  dir: string
}

/** The environment variables an event sets (documented in docs/actions.md). */
export function eventEnv(event: ScaleEvent): Record<string, string> {
  const env: Record<string, string> = {
    TIDE_EVENT: event.kind,
    TIDE_GROUP: event.group,
    TIDE_FROM: String(event.from),
    TIDE_TO: String(event.to),
    TIDE_DIRECTION: event.direction,
    TIDE_REASON: event.reason,
    TIDE_TRIGGER: event.trigger,
    TIDE_DECISION: String(event.decision),
    TIDE_TARGET: event.target,
    TIDE_AT: new Date(event.at).toISOString(),
    TIDE_AT_MS: String(event.at),
    TIDE_SUMMARY: eventSummary(event),
  }
  if (event.message !== undefined) env.TIDE_MESSAGE = event.message
  if (event.durationMs !== undefined) env.TIDE_DURATION_MS = String(event.durationMs)
  // Seed 002's actions got the created and deleted droplets; Tide gives their ids (droplet ids
  // for the `digitalocean` target), comma-separated, on `applied` events (empty when none).
  if (event.added !== undefined) env.TIDE_ADDED = event.added.join(',')
  if (event.removed !== undefined) env.TIDE_REMOVED = event.removed.join(',')
  return env
}

/** Where `command` is: absolute, relative to `dir` when it has a slash, else a name for PATH. */
export function resolveCommand(command: string, dir: string): string {
  if (isAbsolute(command)) return command
  return command.includes('/') ? resolve(dir, command) : command
}

/** Collects one stream's output up to MAX_OUTPUT_BYTES. */
class Capture {
  private chunks: Buffer[] = []
  private size = 0
  dropped = 0
  add(chunk: Buffer): void {
    const room = MAX_OUTPUT_BYTES - this.size
    if (room <= 0) {
      this.dropped += chunk.length
      return
    }
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk
    this.chunks.push(kept)
    this.size += kept.length
    this.dropped += chunk.length - kept.length
  }
  lines(): string[] {
    const text = Buffer.concat(this.chunks).toString('utf8').replace(/\n$/, '')
    return text === '' ? [] : text.split('\n')
  }
}

export interface ExecResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string[]
  stderr: string[]
  /** True when the run was stopped (timeout or shutdown). */
  stopped: boolean
}

/**
 * Stops a whole process group: SIGTERM now, SIGKILL after the grace. The SIGKILL goes to the
 * group even when the leader has exited: a child that ignored SIGTERM may still be there.
 */
function killGroup(pid: number): void {
  const send = (signal: NodeJS.Signals) => {
    try {
      process.kill(-pid, signal)
    } catch {
      // The group is gone already.
    }
  }
  send('SIGTERM')
  setTimeout(() => send('SIGKILL'), KILL_GRACE_MS).unref()
}

/**
 * Runs the executable once for `event`. Resolves when it exits (or, after `signal` aborts, once
 * the stopped group's leader has exited). Throws only when it cannot be started.
 */
export function runExec(
  config: ExecNotifierConfig,
  deps: ExecDeps,
  event: ScaleEvent,
  signal: AbortSignal,
): Promise<ExecResult> {
  const file = resolveCommand(config.command, deps.dir)
  const cwd = config.cwd === undefined ? deps.dir : resolve(deps.dir, config.cwd)
  return new Promise((resolvePromise, reject) => {
    if (signal.aborted) {
      reject(new TideError('E_NOTIFY', `exec ${config.command}: not started, ${String(signal.reason)}`))
      return
    }
    const child = spawn(file, config.args, {
      cwd,
      env: { ...process.env, ...config.env, ...eventEnv(event) },
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true, // its own process group, so a timeout stops its children too
    })
    const out = new Capture()
    const err = new Capture()
    let exited = false
    let stopped = false
    const onAbort = () => {
      if (exited || child.pid === undefined) return
      stopped = true
      killGroup(child.pid)
    }
    child.stdout.on('data', (c: Buffer) => out.add(c))
    child.stderr.on('data', (c: Buffer) => err.add(c))
    // A program that does not read stdin closes it early: EPIPE is not a failure.
    child.stdin.on('error', () => undefined)
    child.stdin.end(`${JSON.stringify({ ...event, summary: eventSummary(event) })}\n`)
    child.once('error', (e) => {
      signal.removeEventListener('abort', onAbort)
      exited = true
      reject(
        new TideError('E_NOTIFY', `exec ${config.command}: cannot start ${file}: ${e.message}`, { cause: e }),
      )
    })
    child.once('close', (code, sig) => {
      exited = true
      signal.removeEventListener('abort', onAbort)
      const note = (c: Capture, name: string) =>
        c.dropped > 0 ? [`… ${c.dropped} more bytes of ${name} not kept`] : []
      resolvePromise({
        code,
        signal: sig,
        stdout: [...out.lines(), ...note(out, 'stdout')],
        stderr: [...err.lines(), ...note(err, 'stderr')],
        stopped,
      })
    })
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

export function createExecNotifier(config: ExecNotifierConfig, deps: ExecDeps): Notifier {
  return {
    kind: 'exec',
    async notify(event: ScaleEvent, signal: AbortSignal): Promise<void> {
      if (config.direction !== undefined && event.direction !== config.direction) return
      const started = Date.now()
      const result = await runExec(config, deps, event, signal)
      const fields = { action: config.command, group: event.group, event: event.kind }
      for (const line of result.stdout) deps.logger.info({ ...fields, stream: 'stdout' }, line)
      for (const line of result.stderr) deps.logger.warn({ ...fields, stream: 'stderr' }, line)
      const took = Date.now() - started
      if (result.stopped) {
        throw new TideError(
          'E_NOTIFY',
          `exec ${config.command} was stopped after ${took}ms (timeout ${config.timeout}ms or shutdown); its process group was killed`,
        )
      }
      if (result.code !== 0) {
        const how =
          result.code === null ? `was killed by ${result.signal}` : `exited with code ${result.code}`
        const last = result.stderr.at(-1) ?? result.stdout.at(-1)
        throw new TideError('E_NOTIFY', `exec ${config.command} ${how}${last ? `: ${last}` : ''}`)
      }
      deps.logger.debug({ ...fields, ms: took }, `exec ${config.command} finished in ${took}ms`)
    },
  }
}
