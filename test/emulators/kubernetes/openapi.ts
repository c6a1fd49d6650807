/**
 * A small OpenAPI 3.0 schema checker for the Kubernetes definitions in ../shared/apis/
 * (kubernetes-apps-v1.json, kubernetes-core-v1-subset.json). It knows the keywords those files
 * use — type, properties, required, items, additionalProperties, allOf, oneOf, enum, $ref and the
 * formats date-time, int32, int64, int-or-string — and is strict where the API is: a property the
 * schema does not declare is a problem (Kubernetes schemas list every field of an object, so an
 * unknown one is a typo in the emulator, which the real server would drop or reject).
 *
 * No npm package: ajv is only present as a dependency of eslint, and draft-07 ajv does not read
 * OpenAPI's `components` refs without the same amount of glue.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { requireComponent } from '../../support/requires.js'

type Schema = {
  $ref?: string
  type?: string
  format?: string
  properties?: Record<string, Schema>
  required?: string[]
  items?: Schema
  additionalProperties?: Schema | boolean
  allOf?: Schema[]
  oneOf?: Schema[]
  enum?: unknown[]
}

interface Spec {
  paths: Record<
    string,
    Record<string, { responses?: Record<string, { content?: Record<string, { schema: Schema }> }> }>
  >
  components: { schemas: Record<string, Schema> }
}

const SPEC_DIR = fileURLToPath(new URL('../../../../shared/apis/', import.meta.url))

/** The two Kubernetes definitions the emulator follows, loaded once. */
let loaded: Spec[] | undefined
function specs(): Spec[] {
  loaded ??= ['kubernetes-apps-v1.json', 'kubernetes-core-v1-subset.json'].map(
    (file) => JSON.parse(readFileSync(SPEC_DIR + file, 'utf8')) as Spec,
  )
  return loaded
}

/** True when the definitions are there (they live outside the repository). */
export function specsAvailable(): boolean {
  try {
    specs()
    return true
  } catch {
    return false
  }
}

/** `skip` for a suite that checks against the definitions: skipped locally without them, a failure under CI. */
export function requireKubernetesSpecs(): string | false {
  return requireComponent(
    specsAvailable(),
    'the Kubernetes API definitions',
    'no ../shared/apis/kubernetes-*.json',
  )
}

/** Every problem of `value` against `schema`, each as `path: message`. */
export function check(spec: Spec, schema: Schema, value: unknown, path = '$'): string[] {
  if (schema.$ref) {
    const name = schema.$ref.replace('#/components/schemas/', '')
    const target = spec.components.schemas[name]
    if (!target) return [`${path}: unknown $ref ${schema.$ref}`]
    return check(spec, target, value, path)
  }
  const problems: string[] = []
  for (const part of schema.allOf ?? []) problems.push(...check(spec, part, value, path))
  if (schema.oneOf) {
    const matching = schema.oneOf.filter((s) => check(spec, s, value, path).length === 0).length
    if (matching !== 1) problems.push(`${path}: matches ${matching} of the oneOf schemas, not 1`)
  }
  if (value === null || value === undefined) return problems
  if (schema.enum && !schema.enum.includes(value))
    problems.push(`${path}: ${JSON.stringify(value)} not in enum`)
  switch (schema.type) {
    case 'object': {
      if (typeof value !== 'object' || Array.isArray(value)) return [...problems, `${path}: not an object`]
      const record = value as Record<string, unknown>
      for (const key of schema.required ?? []) {
        if (record[key] === undefined) problems.push(`${path}.${key}: required`)
      }
      for (const [key, item] of Object.entries(record)) {
        const declared = schema.properties?.[key]
        if (declared) problems.push(...check(spec, declared, item, `${path}.${key}`))
        else if (typeof schema.additionalProperties === 'object')
          problems.push(...check(spec, schema.additionalProperties, item, `${path}.${key}`))
        else if (schema.properties) problems.push(`${path}.${key}: not a property of this object`)
      }
      break
    }
    case 'array':
      if (!Array.isArray(value)) return [...problems, `${path}: not an array`]
      if (schema.items)
        value.forEach((item, i) => problems.push(...check(spec, schema.items!, item, `${path}[${i}]`)))
      break
    case 'string':
      if (typeof value !== 'string') problems.push(`${path}: not a string (${JSON.stringify(value)})`)
      else if (
        schema.format === 'date-time' &&
        !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(value)
      )
        problems.push(`${path}: not an RFC 3339 time (${value})`)
      break
    case 'integer':
      if (!Number.isInteger(value)) problems.push(`${path}: not an integer (${JSON.stringify(value)})`)
      else if (schema.format === 'int32' && Math.abs(value as number) > 2 ** 31)
        problems.push(`${path}: beyond int32`)
      break
    case 'number':
      if (typeof value !== 'number') problems.push(`${path}: not a number`)
      break
    case 'boolean':
      if (typeof value !== 'boolean') problems.push(`${path}: not a boolean`)
      break
  }
  return problems
}

/** `/api/v1/namespaces/{namespace}/pods/{name}` matches `/api/v1/namespaces/default/pods/web-1`. */
function matches(template: string, path: string): boolean {
  const re = new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`)
  return re.test(path)
}

/**
 * Problems of a JSON response to `method path` with HTTP `status`, against the operation's
 * response schema; `undefined` when no definition covers the path (discovery roots,
 * discovery.k8s.io) or the status (errors carry a Status, checked against meta.v1.Status).
 * A watch stream is checked line by line by `checkWatchEvent`.
 */
export function checkResponse(
  method: string,
  path: string,
  status: number,
  body: unknown,
): string[] | undefined {
  for (const spec of specs()) {
    if (status >= 400) {
      if (!Object.keys(spec.paths).some((t) => matches(t, path))) continue
      return check(spec, { $ref: '#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Status' }, body)
    }
    for (const [template, item] of Object.entries(spec.paths)) {
      if (!matches(template, path)) continue
      const op = item[method.toLowerCase()]
      const content = op?.responses?.[String(status)]?.content
      const schema = content?.['application/json']?.schema
      if (!schema) return [`${method} ${template}: the definition has no ${status} response`]
      return check(spec, schema, body)
    }
  }
  return undefined
}

/** Problems of one watch event: the WatchEvent envelope, then its object against `schemaName`. */
export function checkWatchEvent(
  event: { type: string; object: unknown },
  schemaName: string | undefined,
): string[] {
  const spec = specs()[1]!
  const problems = check(
    spec,
    { $ref: '#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent' },
    event,
  )
  if (!['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR'].includes(event.type))
    problems.push(`$.type: ${event.type} is not a watch event type`)
  const objectSchema =
    event.type === 'ERROR' ? 'io.k8s.apimachinery.pkg.apis.meta.v1.Status' : (schemaName ?? undefined)
  if (objectSchema) {
    const owner = specs().find((s) => s.components.schemas[objectSchema])
    if (owner)
      problems.push(
        ...check(owner, { $ref: `#/components/schemas/${objectSchema}` }, event.object, '$.object'),
      )
  }
  return problems
}
