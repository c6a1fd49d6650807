/**
 * The INI dialect of Python's `configparser` as do-scaler uses it (reference/seeds.md §2.3):
 * `ConfigParser(interpolation=ExtendedInterpolation())` with its defaults.
 *
 * - `[section]` headers; `key = value` or `key: value`; keys are lower-cased (optionxform).
 * - Full-line comments start with `#` or `;`. Python keeps an inline comment in the value
 *   (and do-scaler then crashed on `int("120 ; seconds")`); hand-written files and the annotated
 *   examples have them, so this reader ends a value at a `;` or `#` that follows whitespace
 *   (docs/migrate/do-scaler.md says so).
 * - An indented line continues the previous value (joined with a newline).
 * - `[DEFAULT]` values show through in every section.
 * - `${key}` (same section or DEFAULT), `${section:key}`, and `$$` for a literal `$`,
 *   resolved recursively (depth limit 10, as Python's MAX_INTERPOLATION_DEPTH).
 */

export interface IniProblem {
  line?: number
  message: string
}

export class IniError extends Error {
  constructor(
    readonly file: string,
    readonly problems: IniProblem[],
  ) {
    super(
      `${file}: ${problems.map((p) => (p.line === undefined ? p.message : `line ${p.line}: ${p.message}`)).join('; ')}`,
    )
    this.name = 'IniError'
  }
}

/** Raw sections: values before interpolation, with the line each key was set on. */
export interface RawIni {
  sections: Map<string, Map<string, { value: string; line: number }>>
  defaults: Map<string, { value: string; line: number }>
}

const SECTION = /^\[([^\]]+)\]\s*$/
const OPTION = /^([^=:\s][^=:]*?)\s*[=:]\s*(.*)$/

function stripInline(value: string): string {
  const m = /\s[;#]/.exec(value)
  return (m ? value.slice(0, m.index) : value).trimEnd()
}

export function parseIni(text: string, file: string): RawIni {
  const sections = new Map<string, Map<string, { value: string; line: number }>>()
  const defaults = new Map<string, { value: string; line: number }>()
  const problems: IniProblem[] = []
  let current: Map<string, { value: string; line: number }> | undefined
  let last: { value: string; line: number } | undefined
  const lines = text.split(/\r?\n/)
  lines.forEach((raw, index) => {
    const line = index + 1
    const trimmed = raw.trim()
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) {
      // configparser keeps blank lines inside a multi-line value; they never matter here.
      return
    }
    if (/^\s/.test(raw) && last !== undefined) {
      last.value = `${last.value}\n${stripInline(trimmed)}`
      return
    }
    const section = SECTION.exec(trimmed)
    if (section) {
      const name = section[1]!.trim()
      if (name === 'DEFAULT') current = defaults
      else {
        if (sections.has(name)) problems.push({ line, message: `section [${name}] appears twice` })
        current = new Map()
        sections.set(name, current)
      }
      last = undefined
      return
    }
    const option = OPTION.exec(trimmed)
    if (!option) {
      problems.push({ line, message: `not a section header or "key = value": ${JSON.stringify(trimmed)}` })
      return
    }
    if (current === undefined) {
      problems.push({ line, message: `"${option[1]}" comes before any [section] header` })
      return
    }
    const key = option[1]!.trim().toLowerCase()
    if (current.has(key)) problems.push({ line, message: `key "${key}" appears twice in its section` })
    last = { value: stripInline(option[2]!), line }
    current.set(key, last)
  })
  if (problems.length > 0) throw new IniError(file, problems)
  return { sections, defaults }
}

/** The parsed file with interpolation resolved: `get(section, key)`. */
export class Ini {
  private constructor(
    readonly file: string,
    private readonly raw: RawIni,
  ) {}

  static parse(text: string, file: string): Ini {
    return new Ini(file, parseIni(text, file))
  }

  sectionNames(): string[] {
    return [...this.raw.sections.keys()]
  }

  hasSection(name: string): boolean {
    return this.raw.sections.has(name)
  }

  /** Keys set in the section itself (not DEFAULT). */
  ownKeys(section: string): string[] {
    return [...(this.raw.sections.get(section)?.keys() ?? [])]
  }

  line(section: string, key: string): number | undefined {
    return (this.raw.sections.get(section)?.get(key) ?? this.raw.defaults.get(key))?.line
  }

  /** The value with `${…}` resolved; undefined when neither the section nor DEFAULT has the key. */
  get(section: string, key: string): string | undefined {
    return this.resolve(section, key.toLowerCase(), 0)
  }

  private lookup(section: string, key: string): { value: string; line: number } | undefined {
    return this.raw.sections.get(section)?.get(key) ?? this.raw.defaults.get(key)
  }

  private resolve(section: string, key: string, depth: number): string | undefined {
    const entry = this.lookup(section, key)
    if (entry === undefined) return undefined
    if (depth > 10) {
      throw new IniError(this.file, [
        { line: entry.line, message: `interpolation of [${section}] ${key} is deeper than 10 (a loop?)` },
      ])
    }
    let out = ''
    const text = entry.value
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!
      if (c !== '$') {
        out += c
        continue
      }
      const next = text[i + 1]
      if (next === '$') {
        out += '$'
        i++
        continue
      }
      const close = next === '{' ? text.indexOf('}', i + 2) : -1
      if (close < 0) {
        throw new IniError(this.file, [
          {
            line: entry.line,
            message: `[${section}] ${key}: "$" must be followed by "{section:key}", "{key}" or "$" (Python's ExtendedInterpolation)`,
          },
        ])
      }
      const ref = text.slice(i + 2, close)
      const parts = ref.split(':')
      if (parts.length > 2 || parts.some((p) => p === '')) {
        throw new IniError(this.file, [
          { line: entry.line, message: `[${section}] ${key}: bad reference \${${ref}}` },
        ])
      }
      const [refSection, refKey] = parts.length === 2 ? [parts[0]!, parts[1]!] : [section, parts[0]!]
      const value = this.resolve(refSection, refKey.toLowerCase(), depth + 1)
      if (value === undefined) {
        throw new IniError(this.file, [
          {
            line: entry.line,
            message: `[${section}] ${key}: \${${ref}} refers to ${parts.length === 2 ? `[${refSection}] ` : ''}${refKey}, which is not set`,
          },
        ])
      }
      out += value
      i = close
    }
    return out
  }
}
