/**
 * Tests that need a real component (dockerd, Prometheus, Alertmanager, moto_server) ask here.
 * Locally a missing component skips the suite with a visible message; under CI=true it fails
 * the run, because .ci/run installs everything and a skip there would hide a broken install.
 *
 * @example
 * const skip = requireCommand('prometheus', 'real Prometheus')
 * describe('prometheus source', { skip }, () => { … })
 */
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'

/** Where a command is on PATH (or the absolute path that exists), or undefined. */
export function findCommand(name: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${JSON.stringify(name)}`], { encoding: 'utf8' })
  const path = found.stdout.trim()
  return found.status === 0 && path ? path : undefined
}

/**
 * `false` when the component is there (run the suite); otherwise a skip message, printed at once
 * so it shows in the output. Under CI=true a missing component throws instead.
 */
export function requireComponent(ok: boolean, what: string, hint: string): string | false {
  if (ok) return false
  const message = `${what} is missing (${hint}); these tests are SKIPPED`
  if (process.env.CI === 'true')
    throw new Error(`CI=true: ${what} is missing (${hint}); .ci/run must install it`)
  process.stderr.write(`\n*** ${message} ***\n\n`)
  return message
}

/** `requireComponent` for a command on PATH. */
export function requireCommand(name: string, what: string, hint = `no "${name}" on PATH`): string | false {
  return requireComponent(findCommand(name) !== undefined, what, hint)
}

/** True when this process runs as root (dockerd needs it). */
export function isRoot(): boolean {
  return process.getuid?.() === 0
}

/** The browser the dashboard tests drive with playwright-core: Debian's `chromium` package. */
export const CHROMIUM_PATH = process.env.TIDE_CHROMIUM ?? '/usr/bin/chromium'

/** `requireComponent` for Chromium (test/e2e/dashboard.test.ts). */
export function requireChromium(): string | false {
  return requireComponent(
    existsSync(CHROMIUM_PATH),
    'Chromium',
    `no browser at ${CHROMIUM_PATH}; apt-get install chromium, or set TIDE_CHROMIUM`,
  )
}
