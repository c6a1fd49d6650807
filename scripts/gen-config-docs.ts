/**
 * Writes the reference part of docs/config.md from the config's JSON Schema, so the docs
 * list exactly the keys the code accepts, with their defaults and descriptions.
 *   node --import tsx scripts/gen-config-docs.ts          # rewrite docs/config.md
 *   node --import tsx scripts/gen-config-docs.ts --check  # exit 1 if it is out of date
 * The text above the marker line in docs/config.md is written by hand and kept.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { configJsonSchema } from '../src/config/index.js'

export const MARKER = '<!-- generated reference below: scripts/gen-config-docs.ts -->'

interface Schema {
  type?: string | string[]
  description?: string
  default?: unknown
  properties?: Record<string, Schema>
  required?: string[]
  items?: Schema
  additionalProperties?: Schema | boolean
  anyOf?: Schema[]
  oneOf?: Schema[]
  enum?: unknown[]
  const?: unknown
  minimum?: number
  maximum?: number
  exclusiveMinimum?: number
  exclusiveMaximum?: number
  minItems?: number
  pattern?: string
  format?: string
}

function typeOf(s: Schema): string {
  if (s.format === 'duration') return 'duration'
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``
  if (s.enum) return s.enum.map((v) => `\`${JSON.stringify(v)}\``).join(' | ')
  const variants = s.anyOf ?? s.oneOf
  if (variants) return [...new Set(variants.map(typeOf))].join(' | ')
  if (s.type === 'array' && s.items) return `list of ${typeOf(s.items)}`
  if (Array.isArray(s.type)) return s.type.join(' | ')
  if (
    s.type === 'object' &&
    s.additionalProperties &&
    typeof s.additionalProperties === 'object' &&
    !s.properties
  )
    return 'map'
  return s.type ?? 'any'
}

function limits(s: Schema): string {
  const parts: string[] = []
  if (s.minimum !== undefined) parts.push(`≥ ${s.minimum}`)
  if (s.exclusiveMinimum !== undefined) parts.push(`> ${s.exclusiveMinimum}`)
  if (s.maximum !== undefined && s.maximum < Number.MAX_SAFE_INTEGER) parts.push(`≤ ${s.maximum}`)
  if (s.exclusiveMaximum !== undefined) parts.push(`< ${s.exclusiveMaximum}`)
  if (s.minItems !== undefined) parts.push(`at least ${s.minItems}`)
  return parts.join(', ')
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ')
}

/** Rows for an object's keys; nested objects and kinds get their own sections. */
function section(title: string, path: string, s: Schema, out: string[], level: number): void {
  const props = s.properties ?? {}
  const required = new Set(s.required ?? [])
  const nested: Array<[string, string, Schema]> = []
  out.push(`${'#'.repeat(level)} ${title}`, '')
  if (s.description) out.push(s.description, '')
  out.push('| key | type | default | description |', '|---|---|---|---|')
  for (const [key, raw] of Object.entries(props)) {
    const prop = raw
    const def =
      raw.default !== undefined
        ? `\`${JSON.stringify(raw.default)}\``
        : required.has(key)
          ? '**required**'
          : ''
    const extra = limits(prop)
    const desc = [raw.description ?? prop.description ?? '', extra ? `(${extra})` : '']
      .filter(Boolean)
      .join(' ')
    out.push(`| \`${key}\` | ${cell(typeOf(prop))} | ${cell(def)} | ${cell(desc)} |`)
    const child = `${path}.${key}`
    if (prop.properties) nested.push([`\`${child}\``, child, prop])
    const variants = prop.oneOf ?? prop.anyOf
    if (variants?.every((v) => v.properties?.kind)) {
      for (const v of variants)
        nested.push([`\`${child}\` kind \`${String(v.properties!.kind!.const)}\``, child, v])
    } else if (variants) {
      // A shorthand or an object (`health: /healthz` or `health: { path, interval }`): document the object.
      for (const v of variants) if (v.properties) nested.push([`\`${child}\` (object form)`, child, v])
    }
    if (prop.type === 'array' && prop.items) {
      const item = prop.items
      const itemVariants = item.oneOf ?? item.anyOf
      if (itemVariants?.every((v) => v.properties?.kind)) {
        for (const v of itemVariants) {
          nested.push([`\`${child}[]\` kind \`${String(v.properties!.kind!.const)}\``, `${child}[]`, v])
        }
      } else if (item.properties) nested.push([`\`${child}[]\``, `${child}[]`, item])
    }
    if (
      prop.additionalProperties &&
      typeof prop.additionalProperties === 'object' &&
      prop.additionalProperties.properties
    ) {
      nested.push([`\`${child}.<name>\``, `${child}.<name>`, prop.additionalProperties])
    }
  }
  out.push('')
  for (const [t, p, n] of nested) section(t, p, n, out, Math.min(level + 1, 4))
}

export function renderReference(): string {
  const schema = configJsonSchema() as Schema
  const out: string[] = [MARKER, '']
  section('Top level', '', schema, out, 2)
  return `${out.join('\n').trimEnd()}\n`
}

export function renderDoc(current: string): string {
  const at = current.indexOf(MARKER)
  const head = at >= 0 ? current.slice(0, at) : current
  return `${head}${renderReference()}`
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const path = new URL('../docs/config.md', import.meta.url)
  const current = readFileSync(path, 'utf8')
  const next = renderDoc(current)
  if (process.argv.includes('--check')) {
    if (next !== current) {
      console.error('docs/config.md is out of date: run node --import tsx scripts/gen-config-docs.ts')
      process.exit(1)
    }
  } else {
    writeFileSync(path, next)
    console.log('wrote docs/config.md')
  }
}
