/**
 * Errors of the process target. Codes (HTTP status the API uses):
 * - E_PROCESS_START (502): new instances did not become ready (exited, or no 2xx from the
 *   health path within `start_timeout`); each was killed, and Tide keeps replacing it with
 *   back-off. The message has the last lines each one wrote to its log (not what earlier
 *   processes with the same id wrote there).
 * - E_PROCESS_CLOSED (503): the target was closed (Tide is shutting down); nothing was changed.
 */
import { TargetError, TideError } from '../../core/errors.js'

export interface StartFailure {
  id: string
  /** "exited with code 1 after 40ms before it was ready", "was not ready within 30s and was killed (last check: GET /healthz: answered 404)". */
  reason: string
  /** Where its output went. */
  logFile: string
  /** The last lines this process wrote there (none: "no output"), for the error message. */
  lastOutput: string[]
}

export class ProcessStartError extends TargetError {
  /** The instances that did not start, with why. */
  readonly failed: StartFailure[]
  /** The instances of the same request that did become ready (they stay). */
  readonly ready: string[]

  constructor(group: string, failed: StartFailure[], ready: string[], requested: number) {
    const parts = failed.map((f) => {
      const output = f.lastOutput.length
        ? `; last output:\n      ${f.lastOutput.join('\n      ')}`
        : '; no output'
      return `${f.id} ${f.reason} (log: ${f.logFile})${output}`
    })
    const head =
      requested === 1
        ? `group ${group}: `
        : `group ${group}: ${failed.length} of ${requested} new instances did not start:\n    `
    super(`${head}${parts.join('\n    ')}`, { code: 'E_PROCESS_START' })
    this.failed = failed
    this.ready = ready
  }
}

export class ProcessTargetClosedError extends TideError {
  constructor(group: string) {
    super('E_PROCESS_CLOSED', `the process target of group ${group} is closed (Tide is shutting down)`, {
      status: 503,
    })
  }
}
