/**
 * Property tests for the exposition parser: (a) whatever families we write in the format come
 * back unchanged; (b) whatever text arrives, the parser returns or throws its coded error, and
 * returns promptly (the test's timeout stands in for "never hangs").
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { TideError } from '../../core/errors.js'
import { type MetricFamily, type MetricType, parseExposition, type Sample } from './parse.js'

// ─── Writing the format ──────────────────────────────────────────────────────

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return 'NaN'
  if (value === Number.POSITIVE_INFINITY) return '+Inf'
  if (value === Number.NEGATIVE_INFINITY) return '-Inf'
  if (Object.is(value, -0)) return '-0'
  return String(value)
}

const escapeHelp = (text: string) => text.replaceAll('\\', '\\\\').replaceAll('\n', '\\n')
const escapeLabel = (text: string) =>
  text.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n')

interface Written {
  family: MetricFamily
  /** false: no TYPE line (the family comes back untyped). */
  typeLine: boolean
}

function serialize(
  written: Written[],
  style: { crlf: boolean; trailingComma: boolean; emptyBraces: boolean },
) {
  const out: string[] = []
  for (const { family, typeLine } of written) {
    if (family.help !== undefined) out.push(`# HELP ${family.name} ${escapeHelp(family.help)}`)
    if (typeLine) out.push(`# TYPE ${family.name} ${family.type}`)
    for (const s of family.samples) {
      const pairs = Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`)
      let labels = pairs.join(',')
      if (pairs.length > 0 && style.trailingComma) labels += ','
      const braces = pairs.length > 0 || style.emptyBraces ? `{${labels}}` : ''
      const timestamp = s.timestamp === undefined ? '' : ` ${s.timestamp}`
      out.push(`${s.name}${braces} ${formatNumber(s.value)}${timestamp}`)
    }
  }
  return out.join(style.crlf ? '\r\n' : '\n') + (style.crlf ? '\r\n' : '\n')
}

// ─── Generating families ─────────────────────────────────────────────────────

/** Builds a label object the way the parser does, so `__proto__` is an own property. */
function labelObject(entries: Array<[string, string]>): Record<string, string> {
  const labels: Record<string, string> = {}
  for (const [k, v] of entries)
    Object.defineProperty(labels, k, { value: v, enumerable: true, writable: true, configurable: true })
  return labels
}

const labelName = fc
  .stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,8}$/)
  .filter((n) => n !== '__name__' && n !== 'le' && n !== 'quantile')
const labelEntries = fc.uniqueArray(fc.tuple(labelName, fc.string({ unit: 'binary', maxLength: 12 })), {
  selector: ([k]) => k,
  maxLength: 3,
})
const value = fc.double()
const timestamp = fc.option(fc.integer({ min: -1e15, max: 1e15 }), { nil: undefined })
// HELP loses leading blanks (they separate it from the name) and a final \r (a CRLF ending).
const help = fc.option(
  fc.string({ unit: 'binary', maxLength: 20 }).filter((h) => !/^[ \t]/.test(h) && !h.endsWith('\r')),
  { nil: undefined },
)

function sample(name: string, entries: Array<[string, string]>, v: number, ts: number | undefined): Sample {
  const s: Sample = { name, labels: labelObject(entries), value: v }
  if (ts !== undefined) s.timestamp = ts
  return s
}

const plainSamples = (name: string) =>
  fc.array(
    fc.tuple(labelEntries, value, timestamp).map(([l, v, t]) => sample(name, l, v, t)),
    { minLength: 1, maxLength: 4 },
  )

const histogramSamples = (name: string) =>
  fc.array(
    fc
      .tuple(fc.constantFrom('_bucket', '_sum', '_count'), labelEntries, value, value, timestamp)
      .map(([suffix, l, le, v, t]) =>
        sample(name + suffix, suffix === '_bucket' ? [...l, ['le', formatNumber(le)]] : l, v, t),
      ),
    { minLength: 1, maxLength: 5 },
  )

const summarySamples = (name: string) =>
  fc.array(
    fc
      .tuple(fc.constantFrom('', '_sum', '_count'), labelEntries, value, value, timestamp)
      .map(([suffix, l, q, v, t]) =>
        sample(name + suffix, suffix === '' ? [...l, ['quantile', formatNumber(q)]] : l, v, t),
      ),
    { minLength: 1, maxLength: 5 },
  )

/** One family; `index` prefixes its name so no family's samples can be mistaken for another's. */
const family = (index: number) =>
  fc
    .tuple(
      fc.stringMatching(/^[a-zA-Z0-9_:]{0,6}$/),
      fc.constantFrom<MetricType | 'none'>('counter', 'gauge', 'histogram', 'summary', 'untyped', 'none'),
      help,
    )
    .chain(([suffix, type, h]) => {
      const name = `m${index}_${suffix}`
      const samples =
        type === 'histogram'
          ? histogramSamples(name)
          : type === 'summary'
            ? summarySamples(name)
            : plainSamples(name)
      return samples.map((list): Written => {
        const f: MetricFamily = { name, type: type === 'none' ? 'untyped' : type, samples: list }
        if (h !== undefined) f.help = h
        return { family: f, typeLine: type !== 'none' }
      })
    })

const exposition = fc
  .integer({ min: 0, max: 5 })
  .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => family(i))))
  .map((families) => families as Written[])

const style = fc.record({ crlf: fc.boolean(), trailingComma: fc.boolean(), emptyBraces: fc.boolean() })

// ─── Properties ──────────────────────────────────────────────────────────────

/** Returns the parse or checks that the failure is the coded parse error. */
function parseOrCodedError(text: string): MetricFamily[] | undefined {
  try {
    const families = parseExposition(text)
    for (const f of families) {
      assert.ok(f.samples.length > 0)
      for (const s of f.samples) assert.equal(typeof s.value, 'number')
    }
    return families
  } catch (err) {
    if (!(err instanceof TideError) || err.code !== 'E_SCRAPE_PARSE' || !/^line \d+: /.test(err.message))
      throw err
    return undefined
  }
}

describe('parseExposition properties', () => {
  test('round trip: written families parse back unchanged', { timeout: 60_000 }, () => {
    fc.assert(
      fc.property(exposition, style, (written, s) => {
        const text = serialize(written, s)
        assert.deepStrictEqual(
          parseExposition(text),
          written.map((w) => w.family),
        )
      }),
      { numRuns: 300 },
    )
  })

  test('arbitrary text: a result or the coded parse error', { timeout: 60_000 }, () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (text) => void parseOrCodedError(text)),
      {
        numRuns: 500,
      },
    )
  })

  test('arbitrary bytes decoded as UTF-8: a result or the coded parse error', { timeout: 60_000 }, () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        (bytes) => void parseOrCodedError(Buffer.from(bytes).toString('utf8')),
      ),
      { numRuns: 500 },
    )
  })

  const tokens = [
    '#',
    ' ',
    '\t',
    '\n',
    '\r\n',
    'HELP',
    'TYPE',
    'EOF',
    'x',
    'x_bucket',
    'x_sum',
    'x_count',
    'x_total',
    'counter',
    'gauge',
    'histogram',
    'summary',
    'untyped',
    '{',
    '}',
    '"',
    '\\',
    '=',
    ',',
    'le',
    'quantile',
    '1',
    '-2.5e3',
    'NaN',
    '+Inf',
    '__proto__',
    'constructor',
    '_',
    ':',
  ]
  test('token soup: a result or the coded parse error', { timeout: 60_000 }, () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...tokens), { maxLength: 80 }),
        (parts) => void parseOrCodedError(parts.join('')),
      ),
      { numRuns: 1000 },
    )
  })

  test(
    'a valid exposition with characters inserted or removed: a result or the coded error',
    {
      timeout: 60_000,
    },
    () => {
      const edit = fc.tuple(
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.option(fc.string({ unit: 'binary', maxLength: 3 })),
      )
      fc.assert(
        fc.property(
          exposition,
          style,
          fc.array(edit, { minLength: 1, maxLength: 4 }),
          (written, s, edits) => {
            let text = serialize(written, s)
            for (const [where, insert] of edits) {
              const at = Math.floor(where * text.length)
              text =
                insert === null
                  ? text.slice(0, at) + text.slice(at + 1)
                  : text.slice(0, at) + insert + text.slice(at)
            }
            parseOrCodedError(text)
          },
        ),
        { numRuns: 300 },
      )
    },
  )
})
