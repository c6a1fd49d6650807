/**
 * Everything the CLI touches outside itself, gathered so tests can call `main()` in-process with
 * captured output, a fake daemon and instant sleeps.
 */
import type { configJsonSchema, loadConfigFile } from '../config/index.js'
import { TideError } from '../core/errors.js'
import type { startDaemon } from '../engine/daemon.js'

export interface Output {
  write(text: string): unknown
  isTTY?: boolean
  columns?: number
}

export interface CliIO {
  stdout: Output
  stderr: Output
  env: Record<string, string | undefined>
  /** Calls `listener` on Ctrl-C (SIGINT) and SIGTERM until the returned function is called. */
  onSignal(listener: (signal: string) => void): () => void
  /** Leaves at once (a second Ctrl-C while stopping). */
  exit(code: number): void
  /** Resolves after `ms`, or early when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>
  now(): number
  startDaemon: typeof startDaemon
  loadConfigFile: typeof loadConfigFile
  /** Async so the config code loads only for `tide schema`. */
  configJsonSchema: () => Promise<ReturnType<typeof configJsonSchema>>
}

export function defaultIO(): CliIO {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    onSignal(listener) {
      process.on('SIGINT', listener)
      process.on('SIGTERM', listener)
      return () => {
        process.off('SIGINT', listener)
        process.off('SIGTERM', listener)
      }
    },
    exit: (code) => process.exit(code),
    sleep: (ms, signal) =>
      new Promise((resolve) => {
        if (signal?.aborted) return resolve()
        const timer = setTimeout(done, ms)
        function done() {
          clearTimeout(timer)
          signal?.removeEventListener('abort', done)
          resolve()
        }
        signal?.addEventListener('abort', done, { once: true })
      }),
    now: () => Date.now(),
    // Loaded on first use: `tide status` should not pay for the engine, SQLite and every target.
    startDaemon: async (options) => (await import('../engine/daemon.js')).startDaemon(options),
    loadConfigFile: async (path, env) => (await import('../config/index.js')).loadConfigFile(path, env),
    configJsonSchema: async () => (await import('../config/index.js')).configJsonSchema(),
  }
}

/**
 * Colour only for a terminal, and never when NO_COLOR is set to anything non-empty
 * (https://no-color.org); FORCE_COLOR turns it on for tools that capture a pseudo-terminal.
 */
export function wantsColour(out: Output, env: CliIO['env']): boolean {
  if (env.NO_COLOR) return false
  if (env.FORCE_COLOR && env.FORCE_COLOR !== '0') return true
  return out.isTTY === true && env.TERM !== 'dumb'
}

/** A mistake in how the command was called (exit code 2). */
export class UsageError extends TideError {
  constructor(message: string) {
    super('E_USAGE', message, { status: 400 })
  }
}

/** Documented in docs/cli.md. */
export const EXIT = { ok: 0, failure: 1, usage: 2, unreachable: 3, interrupted: 130 } as const

export function exitCodeFor(err: TideError): number {
  if (err.code === 'E_UNREACHABLE') return EXIT.unreachable
  if (err.code === 'E_USAGE' || err.code === 'E_BAD_REQUEST' || err.code === 'E_NOT_FOUND') return EXIT.usage
  return EXIT.failure
}
