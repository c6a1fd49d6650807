/**
 * One remote call under the caller's signal and a deadline of its own, as the AWS and Docker
 * clients make them: a debug line per call with how long it took, and on failure the error the
 * client chooses, told whether the deadline (not the caller) cut the call short.
 */

export interface DeadlineOptions {
  /** The caller's signal: aborting it cancels the call. */
  signal: AbortSignal
  /** The call's own deadline, ms. */
  timeout: number
  /** Called once when the call ends: its duration, and what was thrown (as text) when it failed. */
  log?: (fields: { ms: number; err?: string }) => void
  /**
   * The error to throw. `cause` is `no answer within <timeout>ms` when the deadline cut the call
   * short while the caller's signal had not aborted, else what was thrown (`thrown`, always).
   */
  fail: (cause: unknown, thrown: unknown) => Error
}

export async function callWithDeadline<T>(
  run: (signal: AbortSignal) => Promise<T>,
  options: DeadlineOptions,
): Promise<T> {
  const started = Date.now()
  const deadline = AbortSignal.timeout(options.timeout)
  try {
    const out = await run(AbortSignal.any([options.signal, deadline]))
    options.log?.({ ms: Date.now() - started })
    return out
  } catch (err) {
    options.log?.({ ms: Date.now() - started, err: String(err) })
    const timedOut = deadline.aborted && !options.signal.aborted
    throw options.fail(timedOut ? new Error(`no answer within ${options.timeout}ms`) : err, err)
  }
}
