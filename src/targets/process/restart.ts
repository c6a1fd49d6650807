/**
 * Crash-loop back-off, pure. Tide replaces an instance that exits without being asked to
 * (a crash, a failed start, a kill from outside). Failures in a row double the wait before the
 * next replacement, up to a ceiling, as Kubernetes does for restarting containers
 * (CrashLoopBackOff: 10s doubling to 5m, reset after 10m of running well). The defaults are
 * shorter because a local process starts in milliseconds, not seconds.
 */

export interface RestartConfig {
  /** Wait before replacing after the first failure, in ms. */
  backoff: number
  /** The longest wait, in ms. */
  max_backoff: number
  /** An instance that was ready this long before failing ends a crash loop: the count restarts. */
  reset_after: number
}

/** The wait before the replacement for the `failures`-th failure in a row (1-based). */
export function backoffDelay(failures: number, config: RestartConfig): number {
  if (failures <= 0) return 0
  // 2^(failures-1) overflows to Infinity for large counts; Math.min still gives the ceiling.
  return Math.min(config.backoff * 2 ** (failures - 1), config.max_backoff)
}

/**
 * How many failures in a row there are once this one is counted. A new count starts when
 * - the failing instance had been ready for `reset_after`: the command works, this is a new
 *   problem (Kubernetes resets the back-off after a container runs 10 minutes);
 * - or the previous failure is older than `reset_after` plus the longest wait: the loop, if
 *   there was one, has ended (otherwise a crash loop from this morning would make this
 *   afternoon's first failed start wait `max_backoff`).
 */
export function countFailure(
  failuresBefore: number,
  at: { now: number; readyAt?: number; lastFailureAt?: number },
  config: RestartConfig,
): number {
  const healthyRun = at.readyAt !== undefined && at.now - at.readyAt >= config.reset_after
  const loopOver =
    at.lastFailureAt === undefined || at.now - at.lastFailureAt >= config.reset_after + config.max_backoff
  return healthyRun || loopOver ? 1 : failuresBefore + 1
}
