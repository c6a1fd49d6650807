/**
 * Tide's parser for the Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/), the format do-agent and
 * node_exporter serve. One pass over the text, character by character, no regular expressions,
 * so the time is linear in the input whatever it holds.
 *
 * Where the format leaves room, it follows the reference parser (Go's `expfmt.TextParser`):
 * blanks are allowed around label names, `=` and `,`; a trailing comma ends a label set; a
 * second HELP or TYPE line for a name, a TYPE line after that name's samples, a duplicate label
 * name, a histogram bucket without `le` and a summary quantile without `quantile` are errors.
 * It is more lenient in three places, because one sloppy line should not blind the autoscaler
 * to a whole instance: an unknown escape in a HELP text is kept as written (label values stay
 * strict: they are what metrics are selected by), and the OpenMetrics variations a newer
 * exporter may send are accepted: `# EOF` (a comment here), counters declared without their
 * `_total` suffix (`# TYPE x counter` then `x_total 3`), `_created` samples, the type
 * `unknown` (= untyped) and exemplars after a value (`# {trace_id="a"} 1`, ignored).
 */
import { TideError } from '../../core/errors.js'

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped'

export interface Sample {
  /** The name as written on the line (`http_requests_total`, `rpc_seconds_bucket`). */
  name: string
  labels: Record<string, string>
  value: number
  /** Milliseconds since the epoch, when the line has one. */
  timestamp?: number
}

export interface MetricFamily {
  name: string
  /** From the TYPE line; `untyped` when there is none. */
  type: MetricType
  help?: string
  /** In the order they appear; a histogram's `_bucket`, `_sum` and `_count` lines are all here. */
  samples: Sample[]
}

/** The code of every error this parser throws. */
export const SCRAPE_PARSE_ERROR = 'E_SCRAPE_PARSE'

const TYPES = new Map<string, MetricType>([
  ['counter', 'counter'],
  ['gauge', 'gauge'],
  ['histogram', 'histogram'],
  ['summary', 'summary'],
  ['untyped', 'untyped'],
  ['unknown', 'untyped'], // OpenMetrics' name for untyped
])

interface Family extends MetricFamily {
  /** Whether a TYPE line declared it (only declared families gather suffixed samples). */
  declared: boolean
}

/**
 * Parses an exposition into its metric families, in the order each family is first named.
 * Families that end up with no samples (a HELP or TYPE line alone) are left out.
 * @throws TideError `E_SCRAPE_PARSE` naming the line number and its text; never anything else.
 */
export function parseExposition(text: string): MetricFamily[] {
  const families = new Map<string, Family>()
  let start = text.charCodeAt(0) === 0xfeff ? 1 : 0 // a byte-order mark some tools write
  let lineNumber = 0
  const parser = new LineParser(families)
  while (start <= text.length) {
    let end = text.indexOf('\n', start)
    if (end === -1) end = text.length
    let line = text.slice(start, end)
    if (line.charCodeAt(line.length - 1) === 13) line = line.slice(0, -1) // \r\n line endings
    lineNumber++
    parser.parse(line, lineNumber)
    start = end + 1
  }
  const out: MetricFamily[] = []
  for (const family of families.values()) {
    if (family.samples.length === 0) continue
    const result: MetricFamily = { name: family.name, type: family.type, samples: family.samples }
    if (family.help !== undefined) result.help = family.help
    out.push(result)
  }
  return out
}

/** One line at a time; holds what an error message needs (the line and its number). */
class LineParser {
  line = ''
  lineNumber = 0
  constructor(readonly families: Map<string, Family>) {}

  parse(line: string, lineNumber: number): void {
    this.line = line
    this.lineNumber = lineNumber
    const i = skipBlanks(line, 0)
    if (i === line.length) return // blank line
    if (line.charCodeAt(i) === 35 /* # */) this.comment(i + 1)
    else this.sample(i)
  }

  fail(message: string): never {
    const { line, lineNumber } = this
    const shown = line.length > 120 ? `${line.slice(0, 117)}...` : line
    throw new TideError(SCRAPE_PARSE_ERROR, `line ${lineNumber}: ${message}: ${JSON.stringify(shown)}`, {
      status: 502,
      details: { line: lineNumber, text: line.slice(0, 200) },
    })
  }

  comment(from: number): void {
    const { line, families } = this
    let i = skipBlanks(line, from)
    const keywordEnd = tokenEnd(line, i)
    const keyword = line.slice(i, keywordEnd)
    if (keyword !== 'HELP' && keyword !== 'TYPE') return // any other comment, `# EOF` included
    i = skipBlanks(line, keywordEnd)
    const nameEnd = metricNameEnd(line, i)
    if (nameEnd === i || (nameEnd < line.length && !isBlank(line.charCodeAt(nameEnd)))) {
      this.fail(`invalid metric name in ${keyword} line`)
    }
    const name = line.slice(i, nameEnd)
    i = skipBlanks(line, nameEnd)
    let family = families.get(name)
    if (keyword === 'HELP') {
      if (family?.help !== undefined) this.fail(`second HELP line for ${name}`)
      if (!family) {
        family = newFamily(name)
        families.set(name, family)
      }
      family.help = unescapeHelp(line.slice(i))
      return
    }
    const typeEnd = tokenEnd(line, i)
    const typeText = line.slice(i, typeEnd)
    if (typeText === '') this.fail(`TYPE line for ${name} without a type`)
    const type = TYPES.get(typeText.toLowerCase())
    if (type === undefined) {
      this.fail(`unknown type ${clip(typeText)} (expected counter, gauge, histogram, summary or untyped)`)
    }
    if (skipBlanks(line, typeEnd) !== line.length) this.fail('unexpected text after the type')
    if (family?.declared) this.fail(`second TYPE line for ${name}`)
    if (family && family.samples.length > 0) this.fail(`TYPE line for ${name} after its samples`)
    if (!family) {
      family = newFamily(name)
      families.set(name, family)
    }
    family.type = type!
    family.declared = true
  }

  sample(from: number): void {
    const { line } = this
    const nameEnd = metricNameEnd(line, from)
    if (nameEnd === from) this.fail('expected a metric name')
    const name = line.slice(from, nameEnd)
    let i = skipBlanks(line, nameEnd)
    const labels: Record<string, string> = {}
    if (line.charCodeAt(i) === 123 /* { */) i = skipBlanks(line, this.labels(i + 1, labels))
    else if (i === nameEnd && i < line.length) this.fail('invalid character in metric name')
    const valueEnd = tokenEnd(line, i)
    if (valueEnd === i) this.fail('expected a value')
    const valueText = line.slice(i, valueEnd)
    const value = parseNumber(valueText)
    if (value === undefined) this.fail(`invalid value ${clip(valueText)}`)
    const sample: Sample = { name, labels, value: value! }
    i = skipBlanks(line, valueEnd)
    if (i < line.length && line.charCodeAt(i) !== 35 /* # */) {
      const timestampEnd = tokenEnd(line, i)
      const timestampText = line.slice(i, timestampEnd)
      const timestamp = parseTimestamp(timestampText)
      if (timestamp === undefined)
        this.fail(`invalid timestamp ${clip(timestampText)} (expected integer milliseconds)`)
      sample.timestamp = timestamp!
      i = skipBlanks(line, timestampEnd)
    }
    // Anything left must be an OpenMetrics exemplar (`# {trace_id="a"} 0.67`), which Tide ignores.
    if (i < line.length && line.charCodeAt(i) !== 35) this.fail('unexpected text after the timestamp')
    this.familyOf(sample).samples.push(sample)
  }

  /**
   * Which family a sample belongs to: the family declared with its exact name; else a declared
   * histogram, summary or counter whose name plus a suffix of its kind it is (`x_bucket` of
   * histogram `x`); else an untyped family of its own name.
   */
  familyOf(sample: Sample): Family {
    const { families } = this
    const { name, labels } = sample
    const exact = families.get(name)
    if (exact?.declared) {
      if (exact.type === 'histogram') {
        this.fail(`histogram ${name} has a sample without a _bucket, _sum or _count suffix`)
      }
      if (exact.type === 'summary') this.requireNumberLabel(labels, 'quantile', `summary ${name}`)
      return exact
    }
    const cut = name.lastIndexOf('_')
    if (cut > 0) {
      const base = families.get(name.slice(0, cut))
      if (base?.declared) {
        const suffix = name.slice(cut + 1)
        const type = base.type
        if (suffix === 'bucket' && type === 'histogram') {
          this.requireNumberLabel(labels, 'le', `histogram bucket ${name}`)
          return base
        }
        if ((suffix === 'sum' || suffix === 'count') && (type === 'histogram' || type === 'summary'))
          return base
        if (suffix === 'total' && type === 'counter') return base
        if (suffix === 'created' && (type === 'counter' || type === 'histogram' || type === 'summary'))
          return base
      }
    }
    if (exact) return exact
    const family = newFamily(name)
    families.set(name, family)
    return family
  }

  requireNumberLabel(labels: Record<string, string>, label: string, what: string): void {
    if (!Object.hasOwn(labels, label)) this.fail(`${what} without a "${label}" label`)
    if (parseNumber(labels[label]!) === undefined)
      this.fail(`${what} has a "${label}" label that is not a number`)
  }

  /** Reads `name="value", ...}` (the `{` already consumed); returns the index after the `}`. */
  labels(from: number, labels: Record<string, string>): number {
    const { line } = this
    let i = from
    for (;;) {
      i = skipBlanks(line, i)
      if (line.charCodeAt(i) === 125 /* } */) return i + 1
      const nameEnd = labelNameEnd(line, i)
      if (nameEnd === i)
        this.fail(i >= line.length ? 'unterminated label set' : 'expected a label name or "}"')
      const name = line.slice(i, nameEnd)
      if (name === '__name__') this.fail('label name __name__ is reserved')
      if (Object.hasOwn(labels, name)) this.fail(`duplicate label ${name}`)
      i = skipBlanks(line, nameEnd)
      if (line.charCodeAt(i) !== 61 /* = */) this.fail(`expected "=" after label ${name}`)
      i = skipBlanks(line, i + 1)
      if (line.charCodeAt(i) !== 34 /* " */) this.fail(`expected a quoted value for label ${name}`)
      i++
      // Label values escape only \\, \" and \n (spec); runs without escapes are copied in one slice.
      let value = ''
      let run = i
      for (;;) {
        if (i >= line.length) this.fail(`unterminated value of label ${name}`)
        const c = line.charCodeAt(i)
        if (c === 34) break
        if (c === 92 /* \ */) {
          const next = line.charCodeAt(i + 1)
          const decoded = next === 92 ? '\\' : next === 34 ? '"' : next === 110 ? '\n' : undefined
          if (decoded === undefined) {
            this.fail(
              i + 1 >= line.length
                ? `unterminated value of label ${name}`
                : `invalid escape "\\${line[i + 1]}" in the value of label ${name}`,
            )
          }
          value += line.slice(run, i) + decoded
          i += 2
          run = i
        } else i++
      }
      value += line.slice(run, i)
      // `__proto__` is a valid label name: define it so it does not set the object's prototype.
      if (name === '__proto__') {
        Object.defineProperty(labels, name, { value, enumerable: true, writable: true, configurable: true })
      } else labels[name] = value
      i = skipBlanks(line, i + 1)
      const c = line.charCodeAt(i)
      if (c === 44 /* , */) i++
      else if (c === 125) return i + 1
      else
        this.fail(
          i >= line.length
            ? 'unterminated label set'
            : `expected "," or "}" after the value of label ${name}`,
        )
    }
  }
}

/** HELP text escapes `\\` and `\n`; any other backslash is kept as written (see the file comment). */
function unescapeHelp(text: string): string {
  if (!text.includes('\\')) return text
  let out = ''
  let run = 0
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) !== 92) continue
    const next = text.charCodeAt(i + 1)
    if (next === 92 || next === 110) {
      out += text.slice(run, i) + (next === 92 ? '\\' : '\n')
      i++
      run = i + 1
    }
  }
  return out + text.slice(run)
}

/**
 * A sample value as Go's `strconv.ParseFloat` reads it in the exposition (its decimal forms):
 * `1`, `-1.5`, `.5`, `5.`, `1e3`, `2.5E-3`, `NaN`, `+Inf`, `-Inf` (case-insensitive, `Infinity` too).
 * Returns undefined when the text is not one. Exported for the `le` and `quantile` checks of callers.
 */
export function parseNumber(text: string): number | undefined {
  const n = text.length
  if (n === 0) return undefined
  // Fast path: JavaScript's Number() reads a superset of Go's decimal forms. What it reads and
  // Go's do not (surrounding whitespace, 0x/0o/0b prefixes, "Infinity", "") is ruled out by the
  // first character (digit, sign or dot), the last (digit or dot) and the second (no base letter);
  // anything else must be one of the special values.
  const first = text.charCodeAt(0)
  const last = text.charCodeAt(n - 1)
  const value = Number(text)
  if (!Number.isNaN(value)) {
    const second = text.charCodeAt(1) | 32
    const firstOk = isDigit(first) || first === 43 || first === 45 || first === 46
    const lastOk = isDigit(last) || last === 46
    if (firstOk && lastOk && second !== 120 && second !== 111 && second !== 98) return value
  }
  switch (text.toLowerCase()) {
    case 'nan':
      return Number.NaN
    case 'inf':
    case '+inf':
    case 'infinity':
    case '+infinity':
      return Number.POSITIVE_INFINITY
    case '-inf':
    case '-infinity':
      return Number.NEGATIVE_INFINITY
    default:
      return undefined
  }
}

/** An integer number of milliseconds, optionally signed, within the range a double holds exactly. */
function parseTimestamp(text: string): number | undefined {
  const first = text.charCodeAt(0)
  let i = first === 43 || first === 45 ? 1 : 0
  if (i === text.length) return undefined
  for (; i < text.length; i++) if (!isDigit(text.charCodeAt(i))) return undefined
  const value = Number(text)
  return Number.isSafeInteger(value) ? value : undefined
}

/** A token quoted for a message, cut short: the whole line follows the message anyway. */
function clip(token: string): string {
  return JSON.stringify(token.length > 40 ? `${token.slice(0, 37)}...` : token)
}

function newFamily(name: string): Family {
  return { name, type: 'untyped', samples: [], declared: false }
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57
}

function isBlank(c: number): boolean {
  return c === 32 || c === 9
}

function skipBlanks(line: string, from: number): number {
  let i = from
  while (i < line.length && isBlank(line.charCodeAt(i))) i++
  return i
}

/** The end of a run of non-blank characters. */
function tokenEnd(line: string, from: number): number {
  let i = from
  while (i < line.length && !isBlank(line.charCodeAt(i))) i++
  return i
}

/** `[a-zA-Z_:][a-zA-Z0-9_:]*` */
function metricNameEnd(line: string, from: number): number {
  let i = from
  while (i < line.length) {
    const c = line.charCodeAt(i)
    const letter = (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c === 58
    if (!letter && !(i > from && isDigit(c))) break
    i++
  }
  return i
}

/** `[a-zA-Z_][a-zA-Z0-9_]*` */
function labelNameEnd(line: string, from: number): number {
  let i = from
  while (i < line.length) {
    const c = line.charCodeAt(i)
    const letter = (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95
    if (!letter && !(i > from && isDigit(c))) break
    i++
  }
  return i
}
