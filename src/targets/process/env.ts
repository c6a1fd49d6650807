/**
 * Which of Tide's own environment variables an instance inherits (`inherit_env`).
 *
 *   "safe" (default)  everything except secrets: names the config reads with `${NAME}`, and
 *                     names on SECRET_PATTERNS (tokens, passwords, cloud credentials, Tide's own)
 *   true              everything, secrets included (what a shell would pass)
 *   false             only BASE_ENV: what a program needs to run (PATH, HOME, locale, …)
 *   [patterns]        exactly the names matching the list (`*` matches any run of characters)
 *
 * The target then adds HOST, the group's `env` (which always wins: the way to pass a secret on
 * purpose) and PORT, TIDE_INSTANCE, TIDE_GROUP.
 */

export type InheritEnv = boolean | 'safe' | readonly string[]

/** What `inherit_env: false` passes: enough to find programs, a home, a locale and a time zone. */
export const BASE_ENV: readonly string[] = [
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
  'LANG',
  'LANGUAGE',
  'LC_*',
  'TZ',
  'TMPDIR',
]

/**
 * What `inherit_env: safe` never passes, case-insensitively: names that say they hold a secret,
 * the credentials of the clouds and clusters Tide drives, and Tide's own settings.
 */
export const SECRET_PATTERNS: readonly string[] = [
  'TIDE_*',
  '*TOKEN',
  '*TOKEN_*',
  '*SECRET*',
  '*PASSWORD*',
  '*PASSWD*',
  '*PASSPHRASE*',
  '*API_KEY*',
  '*APIKEY*',
  '*ACCESS_KEY*',
  '*PRIVATE_KEY*',
  '*CREDENTIAL*',
  '*WEBHOOK*',
  'AWS_*',
  'DIGITALOCEAN_*',
  'KUBECONFIG',
  'SSH_AUTH_SOCK',
]

/** `LC_*` → /^LC_.*$/ */
function patternRegex(patterns: readonly string[], flags = ''): RegExp {
  if (patterns.length === 0) return /(?!)/
  const alternatives = patterns.map((p) =>
    p
      .split('*')
      .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*'),
  )
  return new RegExp(`^(?:${alternatives.join('|')})$`, flags)
}

const SECRET = patternRegex(SECRET_PATTERNS, 'i')
const BASE = patternRegex(BASE_ENV)

/** Whether `safe` withholds a name for its look alone (not counting the config's `${NAME}`s). */
export function looksSecret(name: string): boolean {
  return SECRET.test(name)
}

export interface Inherited {
  env: Record<string, string>
  /** Names of Tide's environment left out, sorted (never their values). */
  withheld: string[]
}

/**
 * The part of `from` (Tide's environment) an instance inherits.
 * @param interpolated names the config reads with `${NAME}`; `safe` leaves them out.
 */
export function inheritedEnv(
  from: NodeJS.ProcessEnv,
  mode: InheritEnv,
  interpolated: ReadonlySet<string>,
): Inherited {
  const keep: (name: string) => boolean =
    mode === true
      ? () => true
      : mode === 'safe'
        ? (name) => !interpolated.has(name) && !SECRET.test(name)
        : mode === false
          ? (name) => BASE.test(name)
          : matcher(mode)
  const env: Record<string, string> = {}
  const withheld: string[] = []
  for (const [name, value] of Object.entries(from)) {
    if (value === undefined) continue
    if (keep(name)) env[name] = value
    else withheld.push(name)
  }
  return { env, withheld: withheld.sort() }
}

function matcher(patterns: readonly string[]): (name: string) => boolean {
  const regex = patternRegex(patterns)
  return (name) => regex.test(name)
}
