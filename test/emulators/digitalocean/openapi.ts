/**
 * Checks requests and responses against the official DigitalOcean API definition
 * (../shared/apis/digitalocean-openapi.yaml, OpenAPI 3.0): the operation exists, required
 * parameters are there and have the declared type and enum, and bodies match the declared
 * schemas. A small validator for the OpenAPI 3.0 schema subset the file uses ($ref, type,
 * nullable, enum, required, properties, additionalProperties, items, allOf, oneOf, anyOf,
 * pattern, maxLength, minimum, maximum, minItems, format date-time).
 */
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'

type Schema = Record<string, unknown>

interface Operation {
  parameters?: Schema[]
  requestBody?: Schema
  responses: Record<string, Schema>
}

/** Where the definition is: the project's shared folder, beside the working tree. */
export function specPath(): string {
  const here = dirname(fileURLToPath(import.meta.url))
  const candidates = [
    process.env.TIDE_DO_OPENAPI,
    join(here, '../../../../shared/apis/digitalocean-openapi.yaml'),
    join(process.cwd(), '../shared/apis/digitalocean-openapi.yaml'),
  ]
  for (const c of candidates) {
    if (!c) continue
    try {
      readFileSync(c, { flag: 'r' })
      return c
    } catch {}
  }
  throw new Error('digitalocean-openapi.yaml not found (set TIDE_DO_OPENAPI)')
}

let cached: OpenApi | undefined

/** The parsed definition, loaded once per process. */
export function loadSpec(): OpenApi {
  cached ??= new OpenApi(parse(readFileSync(specPath(), 'utf8')) as Schema)
  return cached
}

export class OpenApi {
  private readonly routes: Array<{ template: string; regex: RegExp; item: Record<string, Operation> }>

  constructor(private readonly spec: Schema) {
    const paths = spec.paths as Record<string, Record<string, Operation>>
    this.routes = Object.entries(paths).map(([template, item]) => ({
      template,
      regex: new RegExp(`^${template.replace(/\{[^}]+\}/g, '([^/]+)')}$`),
      item,
    }))
  }

  /** The spec's path template and operation for a request path, or undefined. */
  find(
    method: string,
    path: string,
  ): { template: string; op: Operation; params: Record<string, string> } | undefined {
    for (const route of this.routes) {
      const m = route.regex.exec(path)
      if (!m) continue
      const op = route.item[method.toLowerCase()]
      if (!op) return undefined
      const names = [...route.template.matchAll(/\{([^}]+)\}/g)].map((x) => x[1]!)
      const params: Record<string, string> = {}
      names.forEach((n, i) => (params[n] = decodeURIComponent(m[i + 1]!)))
      return { template: route.template, op, params }
    }
    return undefined
  }

  /** Problems with a request (empty when it follows the definition). */
  checkRequest(method: string, path: string, query: URLSearchParams, body: unknown): string[] {
    const found = this.find(method, path)
    if (!found) return [`${method} ${path}: no such operation in the definition`]
    const where = `${method} ${found.template}`
    const problems: string[] = []
    for (const raw of found.op.parameters ?? []) {
      const p = this.deref(raw)
      const name = p.name as string
      const value =
        p.in === 'query' ? (query.get(name) ?? undefined) : p.in === 'path' ? found.params[name] : undefined
      if (p.in !== 'query' && p.in !== 'path') continue
      if (value === undefined) {
        if (p.required) problems.push(`${where}: required ${p.in} parameter ${name} is missing`)
        continue
      }
      problems.push(...this.checkParam(this.deref(p.schema as Schema), value, `${where} ${p.in} ${name}`))
    }
    const rb = found.op.requestBody ? this.deref(found.op.requestBody) : undefined
    if (rb) {
      const schema = (rb.content as Record<string, Schema> | undefined)?.['application/json']?.schema as
        Schema | undefined
      if (body === undefined) {
        if (rb.required) problems.push(`${where}: request body is required`)
      } else if (schema) problems.push(...this.validate(schema, body, `${where} body`, 'request'))
    }
    return problems
  }

  /** Problems with a response (empty when it follows the definition). */
  checkResponse(
    method: string,
    path: string,
    status: number,
    headers: Record<string, string | undefined>,
    body: unknown,
  ): string[] {
    const found = this.find(method, path)
    if (!found) return [`${method} ${path}: no such operation in the definition`]
    const where = `${method} ${found.template} → ${status}`
    const raw = found.op.responses[String(status)] ?? found.op.responses.default
    if (!raw) return [`${where}: status not declared`]
    const response = this.deref(raw)
    const problems: string[] = []
    for (const [name, h] of Object.entries((response.headers as Record<string, Schema> | undefined) ?? {})) {
      const header = this.deref(h)
      const value = headers[name.toLowerCase()]
      if (value === undefined) {
        if (name.startsWith('ratelimit-')) problems.push(`${where}: header ${name} is missing`)
        continue
      }
      problems.push(...this.checkParam(this.deref(header.schema as Schema), value, `${where} header ${name}`))
    }
    const schema = (response.content as Record<string, Schema> | undefined)?.['application/json']?.schema as
      Schema | undefined
    if (schema) {
      if (body === undefined) problems.push(`${where}: a JSON body is declared but none was sent`)
      else problems.push(...this.validate(schema, body, `${where} body`, 'response'))
    } else if (body !== undefined && status !== 204) {
      problems.push(`${where}: no body is declared but one was sent`)
    }
    return problems
  }

  /** Problems with a value against a schema, each with its JSON path. */
  validate(
    schema: Schema,
    value: unknown,
    at: string,
    direction: 'request' | 'response' = 'response',
  ): string[] {
    const s = this.deref(schema)
    if (value === null) {
      if (s.nullable === true || (s.type === undefined && !s.allOf && !s.oneOf && !s.anyOf)) return []
      // An allOf of nullable parts (droplet.next_backup_window) is nullable too.
      if (Array.isArray(s.allOf) && (s.allOf as Schema[]).some((p) => this.deref(p).nullable === true))
        return []
      return [`${at}: is null, which the schema does not allow`]
    }
    const problems: string[] = []
    if (s.type !== undefined && !typeMatches(s.type as string, value)) {
      return [`${at}: expected ${s.type as string}, got ${describe(value)}`]
    }
    if (Array.isArray(s.enum) && !s.enum.includes(value)) {
      problems.push(`${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(s.enum)}`)
    }
    if (typeof value === 'string') {
      if (typeof s.pattern === 'string' && !new RegExp(s.pattern).test(value)) {
        problems.push(`${at}: ${JSON.stringify(value)} does not match ${s.pattern}`)
      }
      if (typeof s.maxLength === 'number' && value.length > s.maxLength)
        problems.push(`${at}: longer than ${s.maxLength}`)
      if (s.format === 'date-time' && Number.isNaN(Date.parse(value))) problems.push(`${at}: not a date-time`)
    }
    if (typeof value === 'number') {
      if (typeof s.minimum === 'number' && value < s.minimum)
        problems.push(`${at}: ${value} < minimum ${s.minimum}`)
      if (typeof s.maximum === 'number' && value > s.maximum)
        problems.push(`${at}: ${value} > maximum ${s.maximum}`)
    }
    if (Array.isArray(value)) {
      if (typeof s.minItems === 'number' && value.length < s.minItems)
        problems.push(`${at}: fewer than ${s.minItems} items`)
      if (s.items)
        value.forEach((v, i) =>
          problems.push(...this.validate(s.items as Schema, v, `${at}[${i}]`, direction)),
        )
    }
    if (isObject(value)) {
      const props = (s.properties as Record<string, Schema> | undefined) ?? {}
      for (const key of (s.required as string[] | undefined) ?? []) {
        const prop = props[key] ? this.deref(props[key]) : undefined
        // readOnly properties are not sent in requests (OpenAPI 3.0 §4.7.25).
        if (direction === 'request' && prop?.readOnly === true) continue
        if (!(key in value)) problems.push(`${at}: required property ${key} is missing`)
      }
      for (const [key, v] of Object.entries(value)) {
        if (props[key]) problems.push(...this.validate(props[key], v, `${at}.${key}`, direction))
        else if (isObject(s.additionalProperties)) {
          problems.push(...this.validate(s.additionalProperties as Schema, v, `${at}.${key}`, direction))
        } else if (s.additionalProperties === false) problems.push(`${at}: unexpected property ${key}`)
      }
    }
    for (const part of (s.allOf as Schema[] | undefined) ?? [])
      problems.push(...this.validate(part, value, at, direction))
    if (Array.isArray(s.oneOf)) {
      const results = (s.oneOf as Schema[]).map((part) => this.validate(part, value, at, direction))
      const ok = results.filter((r) => r.length === 0).length
      if (ok !== 1) {
        problems.push(
          ok === 0
            ? `${at}: matches none of oneOf (${results.map((r) => r[0]).join(' | ')})`
            : `${at}: matches ${ok} alternatives of oneOf, expected exactly one`,
        )
      }
    }
    if (Array.isArray(s.anyOf)) {
      const results = (s.anyOf as Schema[]).map((part) => this.validate(part, value, at, direction))
      if (!results.some((r) => r.length === 0))
        problems.push(`${at}: matches none of anyOf (${results.map((r) => r[0]).join(' | ')})`)
    }
    return problems
  }

  /** A query, path or header value (a string) against a parameter schema. */
  private checkParam(schema: Schema, value: string, at: string): string[] {
    let parsed: unknown = value
    if (schema.type === 'integer' || schema.type === 'number') {
      parsed = Number(value)
      if (value.trim() === '' || !Number.isFinite(parsed))
        return [`${at}: ${JSON.stringify(value)} is not a number`]
    } else if (schema.type === 'boolean') {
      if (value !== 'true' && value !== 'false')
        return [`${at}: ${JSON.stringify(value)} is not true or false`]
      parsed = value === 'true'
    }
    // A path parameter typed string with "minimum" (lb_id) only constrains numbers: skip that.
    const { minimum: _m, ...rest } = schema
    return this.validate(schema.type === 'string' ? rest : schema, parsed, at)
  }

  private deref(schema: Schema): Schema {
    let s = schema
    for (let n = 0; n < 20 && typeof s.$ref === 'string'; n++) {
      const parts = (s.$ref as string).replace(/^#\//, '').split('/')
      let target: unknown = this.spec
      for (const p of parts) target = (target as Schema)[p.replace(/~1/g, '/').replace(/~0/g, '~')]
      if (!isObject(target)) throw new Error(`unresolved $ref ${s.$ref as string}`)
      s = target
    }
    return s
  }
}

function typeMatches(type: string, value: unknown): boolean {
  switch (type) {
    case 'object':
      return isObject(value)
    case 'array':
      return Array.isArray(value)
    case 'string':
      return typeof value === 'string'
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value)
    case 'number':
      return typeof value === 'number'
    case 'boolean':
      return typeof value === 'boolean'
  }
  return true
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'array'
  return `${typeof value} ${JSON.stringify(value)?.slice(0, 40)}`
}
