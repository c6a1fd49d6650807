/**
 * The emulator's object store: what etcd and the API server's watch cache are to Kubernetes.
 * One counter gives every write a `resourceVersion`; the last `historySize` changes are kept so a
 * watch can resume from a version, and a version older than that is "too old" (410 Expired), as
 * when etcd has compacted it away.
 */
import { EventEmitter } from 'node:events'
import { randomUUID } from 'node:crypto'

export interface Meta {
  name: string
  namespace?: string
  uid?: string
  resourceVersion?: string
  generation?: number
  creationTimestamp?: string
  deletionTimestamp?: string
  deletionGracePeriodSeconds?: number
  labels?: Record<string, string>
  annotations?: Record<string, string>
  ownerReferences?: Array<{
    apiVersion: string
    kind: string
    name: string
    uid: string
    controller?: boolean
  }>
  generateName?: string
}

/* eslint-disable @typescript-eslint/no-explicit-any -- objects of many kinds, read field by field */
export type Obj = {
  apiVersion: string
  kind: string
  metadata: Meta
  spec?: any
  status?: any
  [k: string]: any
}
/* eslint-enable @typescript-eslint/no-explicit-any */

export type Resource = 'pods' | 'services' | 'endpoints' | 'endpointslices' | 'deployments' | 'statefulsets'

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED'

export interface Change {
  rv: number
  resource: Resource
  type: EventType
  object: Obj
}

export class ConflictError extends Error {}
export class NotFoundError extends Error {}
export class AlreadyExistsError extends Error {}

export const now = (): string => new Date().toISOString().replace(/\.\d+Z$/, 'Z')

export class Store extends EventEmitter {
  private rv = 1
  private readonly objects = new Map<Resource, Map<string, Obj>>()
  private history: Change[] = []

  constructor(private readonly historySize = 2000) {
    super()
    this.setMaxListeners(0)
  }

  get resourceVersion(): string {
    return String(this.rv)
  }

  /** The oldest version a watch may resume from. */
  get oldestResumable(): number {
    return this.history[0]?.rv ?? this.rv
  }

  /** Forgets the change history (as an etcd compaction): older watches get 410 Expired. */
  compact(): void {
    this.history = []
  }

  private table(resource: Resource): Map<string, Obj> {
    let table = this.objects.get(resource)
    if (!table) this.objects.set(resource, (table = new Map()))
    return table
  }

  get(resource: Resource, namespace: string, name: string): Obj | undefined {
    const found = this.table(resource).get(`${namespace}/${name}`)
    return found && structuredClone(found)
  }

  list(
    resource: Resource,
    namespace?: string,
    selector?: (labels: Record<string, string>) => boolean,
  ): Obj[] {
    return [...this.table(resource).values()]
      .filter((o) => namespace === undefined || o.metadata.namespace === namespace)
      .filter((o) => !selector || selector(o.metadata.labels ?? {}))
      .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))
      .map((o) => structuredClone(o))
  }

  create(resource: Resource, object: Obj): Obj {
    const meta = object.metadata
    if (!meta.name && meta.generateName) meta.name = meta.generateName + randomSuffix()
    const key = `${meta.namespace}/${meta.name}`
    if (this.table(resource).has(key))
      throw new AlreadyExistsError(`${resource} "${meta.name}" already exists`)
    meta.uid = randomUUID()
    meta.creationTimestamp = now()
    if (object.spec !== undefined && resource !== 'pods') meta.generation = 1
    delete meta.generateName
    return this.write(resource, 'ADDED', object)
  }

  /**
   * Replaces an object. With `expect`, the stored resourceVersion must equal it (optimistic
   * concurrency: a stale writer gets a Conflict, as from the real API server).
   */
  update(resource: Resource, object: Obj, expect?: string): Obj {
    const key = `${object.metadata.namespace}/${object.metadata.name}`
    const current = this.table(resource).get(key)
    if (!current) throw new NotFoundError(`${resource} "${object.metadata.name}" not found`)
    if (expect !== undefined && expect !== '' && expect !== current.metadata.resourceVersion) {
      throw new ConflictError(
        `Operation cannot be fulfilled on ${resource} "${object.metadata.name}": the object has been modified; please apply your changes to the latest version and try again`,
      )
    }
    // Read-only metadata stays the server's.
    object.metadata = {
      ...object.metadata,
      uid: current.metadata.uid,
      creationTimestamp: current.metadata.creationTimestamp,
      deletionTimestamp: object.metadata.deletionTimestamp ?? current.metadata.deletionTimestamp,
    }
    if (current.metadata.generation !== undefined) {
      const specChanged = JSON.stringify(current.spec) !== JSON.stringify(object.spec)
      object.metadata.generation = current.metadata.generation + (specChanged ? 1 : 0)
    }
    if (
      JSON.stringify(current) ===
      JSON.stringify({
        ...object,
        metadata: { ...object.metadata, resourceVersion: current.metadata.resourceVersion },
      })
    )
      return structuredClone(current)
    return this.write(resource, 'MODIFIED', object)
  }

  delete(resource: Resource, namespace: string, name: string): Obj {
    const key = `${namespace}/${name}`
    const current = this.table(resource).get(key)
    if (!current) throw new NotFoundError(`${resource} "${name}" not found`)
    this.table(resource).delete(key)
    const rv = ++this.rv
    const object = structuredClone(current)
    object.metadata.resourceVersion = String(rv)
    this.record({ rv, resource, type: 'DELETED', object })
    return structuredClone(object)
  }

  private write(resource: Resource, type: EventType, object: Obj): Obj {
    const rv = ++this.rv
    object.metadata.resourceVersion = String(rv)
    const stored = structuredClone(object)
    this.table(resource).set(`${stored.metadata.namespace}/${stored.metadata.name}`, stored)
    this.record({ rv, resource, type, object: structuredClone(stored) })
    return structuredClone(stored)
  }

  private record(change: Change): void {
    this.history.push(change)
    if (this.history.length > this.historySize) this.history.splice(0, this.history.length - this.historySize)
    this.emit('change', change)
  }

  /** Changes after `rv` for one resource, or `undefined` when `rv` is older than the history. */
  since(resource: Resource, rv: number): Change[] | undefined {
    if (rv < this.rv && (this.history.length === 0 || rv < this.history[0]!.rv - 1)) return undefined
    return this.history.filter((c) => c.resource === resource && c.rv > rv)
  }
}

const ALPHANUM = 'bcdfghjklmnpqrstvwxz2456789'
export function randomSuffix(length = 5): string {
  let s = ''
  for (let i = 0; i < length; i++) s += ALPHANUM[Math.floor(Math.random() * ALPHANUM.length)]
  return s
}

/**
 * A label selector in the API's text form (`app=web,tier!=cache,env in (a,b),!legacy`), as a
 * predicate. Throws on text it cannot read, which the server answers 400.
 */
export function parseSelector(
  text: string | undefined,
): ((labels: Record<string, string>) => boolean) | undefined {
  if (!text) return undefined
  const tests: Array<(l: Record<string, string>) => boolean> = []
  for (const part of text.match(/([^,(]+(\([^)]*\))?)/g) ?? []) {
    const term = part.trim()
    if (!term) continue
    let m: RegExpExecArray | null
    if ((m = /^([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)$/.exec(term))) {
      const [, key, op, value] = m
      tests.push(op === '!=' ? (l) => l[key!] !== value : (l) => l[key!] === value)
    } else if ((m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term))) {
      const [, key, op, list] = m
      const values = list!.split(',').map((v) => v.trim())
      tests.push(
        op === 'in' ? (l) => values.includes(l[key!] ?? '\0') : (l) => !values.includes(l[key!] ?? '\0'),
      )
    } else if ((m = /^(!?)([\w./-]+)$/.exec(term))) {
      const [, not, key] = m
      tests.push(not ? (l) => !(key! in l) : (l) => key! in l)
    } else throw new Error(`unable to parse requirement: ${JSON.stringify(term)}`)
  }
  return (labels) => tests.every((t) => t(labels))
}

/** `matchLabels` (+ `matchExpressions` In/NotIn/Exists/DoesNotExist) as a predicate. */
export function selectorOf(selector: {
  matchLabels?: Record<string, string>
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>
}): (labels: Record<string, string>) => boolean {
  return (labels) =>
    Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v) &&
    (selector.matchExpressions ?? []).every((e) => {
      switch (e.operator) {
        case 'In':
          return e.values?.includes(labels[e.key] ?? '\0') ?? false
        case 'NotIn':
          return !(e.values?.includes(labels[e.key] ?? '\0') ?? false)
        case 'Exists':
          return e.key in labels
        default:
          return !(e.key in labels)
      }
    })
}

/** The text form of a LabelSelector, as the scale subresource's `status.selector` carries it. */
export function formatSelector(selector: {
  matchLabels?: Record<string, string>
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>
}): string {
  const parts = Object.entries(selector.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`)
  for (const e of selector.matchExpressions ?? []) {
    if (e.operator === 'In') parts.push(`${e.key} in (${(e.values ?? []).join(',')})`)
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${(e.values ?? []).join(',')})`)
    else if (e.operator === 'Exists') parts.push(e.key)
    else parts.push(`!${e.key}`)
  }
  return parts.join(',')
}
