/**
 * Droplet names with a counter, shared by both ways the target makes droplets: a clone's
 * `<clone_prefix>NNN`, and a template's `name` pattern with one placeholder where the number
 * goes — `{}` (the number as it is, `web-{}` → `web-7`, as do-scaler's `name.format(n)`) or
 * `{:0Nd}` (zero-padded to N digits, `web-{:03d}` → `web-007`), Python's str.format spellings.
 */

/** The API's pattern for a droplet name (components.schemas.droplet_single_create, name). */
export const DROPLET_NAME = /^[a-zA-Z0-9]?[a-z0-9A-Z.-]*[a-z0-9A-Z]$/
export const DROPLET_NAME_MAX = 255

export interface NamePattern {
  prefix: string
  suffix: string
  /** Zero-padded to this many digits (1: not padded). */
  width: number
}

const PLACEHOLDER = /\{(?::0(\d{1,2})d)?\}/g

/**
 * Reads a name pattern; a string (the problem, for a config error) when it is not one.
 * @example parseNamePattern('web-{}')  // { prefix: 'web-', suffix: '', width: 1 }
 */
export function parseNamePattern(pattern: string): NamePattern | string {
  const found = [...pattern.matchAll(PLACEHOLDER)]
  if (found.length === 0) {
    return 'needs a `{}` where the droplet’s number goes (e.g. "web-{}"), so every name is different'
  }
  if (found.length > 1) return 'may have only one `{}`'
  const m = found[0]!
  const prefix = pattern.slice(0, m.index)
  const suffix = pattern.slice(m.index + m[0].length)
  if (/[{}]/.test(prefix + suffix)) return 'the counter is written `{}` or `{:03d}`; no other braces'
  const width = m[1] === undefined ? 1 : Math.max(1, Number(m[1]))
  const p = { prefix, suffix, width }
  const sample = formatName(p, 1)
  if (!DROPLET_NAME.test(sample)) {
    return `gives names like ${JSON.stringify(sample)}, which the API refuses: letters, digits, . and - only, starting and ending with a letter or digit`
  }
  if (formatName(p, 999_999).length > DROPLET_NAME_MAX) {
    return `is too long: names must stay within ${DROPLET_NAME_MAX} characters`
  }
  return p
}

export function formatName(p: NamePattern, n: number): string {
  return `${p.prefix}${String(n).padStart(p.width, '0')}${p.suffix}`
}

/** Matches the names the pattern makes; group 1 is the number. */
export function nameRegExp(p: NamePattern): RegExp {
  return new RegExp(`^${escapeRegExp(p.prefix)}(\\d{${p.width},})${escapeRegExp(p.suffix)}$`)
}

/** How people read a pattern in messages: `web-NNN`, `web-N`. */
export function showPattern(p: NamePattern): string {
  return `${p.prefix}${'N'.repeat(Math.max(p.width, 1))}${p.suffix}`
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
