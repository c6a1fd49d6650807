/**
 * Seed 000's interface, `GET|POST /scale?op=info|status|up|down|auto&group=NAME`, with its exact
 * JSON shapes (reference/seeds.md §1.2), pretty-printed with a one-space indent as it does, so
 * scripts written against the DigitalOcean Function keep working.
 *
 * Differences from the seed, each a fix listed in seeds.md §1.12:
 * - errors have real HTTP status codes (item 9); the body keeps `{"error": msg}` and adds `code`;
 * - `up`, `down` and `auto` need the bearer token when one is configured (item 8);
 * - `status` emits the `recommendation` the seed computed but never printed (item 1), plus Tide's
 *   own sentence as `reason`;
 * - cluster averages divide by the instances that reported, not by all of them (item 11).
 */
import { TideError } from '../core/errors.js'
import type { Instance } from '../core/types.js'
import type { Controller, DecisionRecord, GroupView } from '../engine/controller.js'
import type { Reply } from './http.js'
import type { RequestContext, Route } from './routes.js'

/** Seed 000's `Metrics`; `ID` is the instance id (the seed put the droplet name there). */
export interface SeedMetrics {
  ID: string
  valid: boolean
  load: number
  freeMemory: number
  outboundBandwidth: number
}

export interface StatusResponse {
  dropletMetrics: SeedMetrics[]
  clusterMetrics: SeedMetrics
  scaleUp: boolean
  scaleDown: boolean
  /** The seed's own strings (RECOMMENDATION) where one applies. */
  recommendation: string
  /** Tide's sentence behind it: which policy, which numbers. An addition to the seed's shape. */
  reason: string
}

export interface ScaleResponse {
  success: boolean
  msg: string
}

export interface AutoResponse {
  status: StatusResponse
  scaleUp: ScaleResponse
  scaleDown: ScaleResponse
}

/** Seed 000's `ClusterConfig` (§1.2), `LoadBalancerName` with its capital L. */
export interface ClusterConfig {
  tag: string
  baseDropletName: string
  snapshotName: string
  cloneNamePrefix: string
  LoadBalancerName: string
  maxDropletsInCluster: number
  scalingInterval: number
  scaleUpWhen: SeedMetrics
  scaleDownWhen: SeedMetrics
}

export interface InfoResponse {
  config: ClusterConfig
  info: {
    dropletCount: number
    /** A droplet cluster's droplets as the DigitalOcean API returned them; other targets' instances. */
    droplets: Array<Instance | Record<string, unknown>>
    baseDroplet: Instance | Record<string, unknown> | null
    region: string
    dropletSize: string
    snapshotImageID: number
    loadBalancerID: string
  }
}

/**
 * Which Tide metric fills each of the seed's fields: the first name the group has.
 * Units follow the seed: load average, free memory in MB, outbound bandwidth in Mbit/s.
 */
export const SEED_METRIC_NAMES = {
  load: ['load_1', 'load', 'cpu'],
  freeMemory: ['memory_free'],
  outboundBandwidth: ['bandwidth_out'],
} as const

type SeedField = keyof typeof SEED_METRIC_NAMES

/**
 * Fields without which an instance is not valid. Seed 000 marks a droplet invalid when load or
 * memory is missing, but counts missing bandwidth as 0 ("machine just came up", seeds.md §1.5).
 */
const REQUIRED: SeedField[] = ['load', 'freeMemory']

/** The seed's recommendation strings, verbatim (seeds.md §1.2), including its odd first prefix. */
export const RECOMMENDATION = {
  invalid:
    'Recommendation: no change (cluster metrics are not valid, cluster may be in the process of scaling)',
  atMax: "no change (can't scale up, reached max droplet count)",
  up: 'scale up',
  onlyOne: "no change (can't scale down, only 1 droplet in cluster)",
  down: 'scale down',
  none: 'no change',
} as const

export const UNKNOWN_OP = 'unknown or missing op parameter (i.e. /scale?op=[info|up|down|status|auto])'

function metricFor(group: GroupView, field: SeedField) {
  for (const name of SEED_METRIC_NAMES[field]) {
    const metric = group.metrics[name]
    if (metric) return metric
  }
  return undefined
}

function emptyMetrics(id = ''): SeedMetrics {
  return { ID: id, valid: false, load: 0, freeMemory: 0, outboundBandwidth: 0 }
}

export function instanceMetrics(group: GroupView, instance: Instance): SeedMetrics {
  const out = emptyMetrics(instance.id)
  let valid = true
  for (const field of Object.keys(SEED_METRIC_NAMES) as SeedField[]) {
    const value = metricFor(group, field)?.perInstance[instance.id]
    if (value === undefined || !Number.isFinite(value)) {
      if (REQUIRED.includes(field)) valid = false
    } else {
      out[field] = value
    }
  }
  out.valid = valid
  return out
}

/** True while the seed would have called the metrics invalid: cooling down, or a change under way. */
function settling(group: GroupView, now: number): string | undefined {
  if (group.operation) return `an operation is under way: ${group.operation.from} → ${group.operation.to}`
  if (group.cooldownUntil !== undefined && group.cooldownUntil > now) {
    return `cooling down for ${Math.ceil((group.cooldownUntil - now) / 1000)}s more`
  }
  return undefined
}

export function clusterMetrics(group: GroupView, droplets: SeedMetrics[], now: number): SeedMetrics {
  const out = emptyMetrics()
  for (const field of Object.keys(SEED_METRIC_NAMES) as SeedField[]) {
    const metric = metricFor(group, field)
    const values = group.instances
      .map((i) => metric?.perInstance[i.id])
      .filter((v): v is number => v !== undefined && Number.isFinite(v))
    // Dividing by the instances that reported, not by all (seed 000 bug, seeds.md §1.12 item 11);
    // a group-level reading stands in when no instance has its own.
    if (values.length > 0) out[field] = values.reduce((a, b) => a + b, 0) / values.length
    else if (metric?.value !== undefined) out[field] = metric.value
  }
  out.valid = settling(group, now) === undefined && droplets.length > 0 && droplets.every((d) => d.valid)
  return out
}

function direction(d: DecisionRecord): 'up' | 'down' | undefined {
  if (d.kind !== 'scale' || d.to === d.from) return undefined
  return d.to > d.from ? 'up' : 'down'
}

/**
 * The seed's recommendation, from Tide's own evaluation of the group (its configured policies,
 * not the seed's fixed thresholds). `fresh` is true when `decision` was made by this request
 * (`op=auto`); otherwise the last automatic decision is shown unless the group is settling, which
 * the seed reports as invalid metrics.
 */
export function recommend(
  group: GroupView,
  decision: DecisionRecord | undefined,
  now: number,
  fresh: boolean,
): Pick<StatusResponse, 'scaleUp' | 'scaleDown' | 'recommendation' | 'reason'> {
  const result = (recommendation: string, reason: string, dir?: 'up' | 'down') => ({
    scaleUp: dir === 'up',
    scaleDown: dir === 'down',
    recommendation,
    reason,
  })
  const moving = decision && direction(decision)
  if (decision && fresh && moving) return result(RECOMMENDATION[moving], decision.reason, moving)
  const busy = settling(group, now)
  if (busy) return result(RECOMMENDATION.invalid, busy)
  if (!decision) return result(RECOMMENDATION.invalid, 'Tide has not evaluated this group yet')
  if (moving) return result(RECOMMENDATION[moving], decision.reason, moving)
  const recs = decision.recommendations
  if (recs.length > 0 && recs.every((r) => r.kind === 'unknown'))
    return result(RECOMMENDATION.invalid, decision.reason)
  const wantsUp = recs.some((r) => r.kind === 'scale' && r.to > decision.from)
  const wantsDown = !wantsUp && recs.some((r) => r.kind === 'scale' && r.to < decision.from)
  if (wantsUp && decision.from >= group.max) return result(RECOMMENDATION.atMax, decision.reason)
  if (wantsDown && decision.from <= group.min) {
    const text =
      decision.from === 1
        ? RECOMMENDATION.onlyOne
        : `no change (can't scale down, at the minimum of ${group.min})`
    return result(text, decision.reason)
  }
  return result(RECOMMENDATION.none, decision.reason)
}

/** The last automatic decision: the one that reflects the metrics rather than a person. */
function lastAutoDecision(controller: Controller, group: GroupView): DecisionRecord | undefined {
  if (group.lastDecision?.trigger === 'auto') return group.lastDecision
  return controller.decisions(group.name, { limit: 50 }).find((d) => d.trigger === 'auto')
}

/**
 * A `digitalocean` group's cluster as its target last read it (Target.describe(), see
 * DropletClusterDescription in src/targets/digitalocean/target.ts), or undefined for other
 * targets and before the first reading. Checked field by field: the API sees it as plain data.
 */
function dropletCluster(group: GroupView) {
  const d = group.details
  if (group.target !== 'digitalocean' || !d || !Array.isArray(d.droplets)) return undefined
  const str = (key: string) => (typeof d[key] === 'string' ? (d[key] as string) : '')
  const droplets = (d.droplets as unknown[]).filter(
    (x): x is Record<string, unknown> & { id: number; name: string } =>
      typeof x === 'object' && x !== null && typeof (x as { id?: unknown }).id === 'number',
  )
  return {
    tag: str('tag'),
    baseDroplet: str('baseDroplet'),
    snapshot: str('snapshot'),
    clonePrefix: str('clonePrefix'),
    loadBalancer: str('loadBalancer'),
    droplets,
    base: typeof d.base === 'object' && d.base !== null ? (d.base as Record<string, unknown>) : null,
    region: str('region'),
    size: str('size'),
    snapshotImageId: typeof d.snapshotImageId === 'number' ? d.snapshotImageId : 0,
    loadBalancerId: str('loadBalancerId'),
  }
}

export function statusResponse(
  group: GroupView,
  decision: DecisionRecord | undefined,
  now: number,
  fresh: boolean,
) {
  // Seed 000 put the droplet's name in `ID` (seeds.md §1.2); other targets' ids are their names.
  const names = new Map(dropletCluster(group)?.droplets.map((d) => [String(d.id), d.name]))
  const dropletMetrics = group.instances.map((i) => ({
    ...instanceMetrics(group, i),
    ID: names.get(i.id) ?? i.id,
  }))
  const response: StatusResponse = {
    dropletMetrics,
    clusterMetrics: clusterMetrics(group, dropletMetrics, now),
    ...recommend(group, decision, now, fresh),
  }
  return response
}

/**
 * Seed 000's `info`. A `digitalocean` group fills every field from its target's last reading:
 * the API's droplet objects, the base droplet, the base's region and size (not droplets[0]'s,
 * seed bug 6), the snapshot's image id, the load balancer's id. `scalingInterval` is the group's
 * cooldown in seconds. `scaleUpWhen`/`scaleDownWhen` stay empty (valid false): a Tide group's
 * thresholds are its policies (`GET /v1/groups/:name`), not three fixed numbers.
 */
export function infoResponse(group: GroupView): InfoResponse {
  const base = group.instances.find((i) => i.protected) ?? null
  const cluster = dropletCluster(group)
  const scalingInterval = group.cooldown === undefined ? 0 : Math.round(group.cooldown / 1000)
  if (cluster) {
    return {
      config: {
        tag: cluster.tag,
        baseDropletName: cluster.baseDroplet,
        snapshotName: cluster.snapshot,
        cloneNamePrefix: cluster.clonePrefix,
        LoadBalancerName: cluster.loadBalancer,
        maxDropletsInCluster: group.max,
        scalingInterval,
        scaleUpWhen: emptyMetrics(),
        scaleDownWhen: emptyMetrics(),
      },
      info: {
        dropletCount: cluster.droplets.length,
        droplets: cluster.droplets,
        baseDroplet: cluster.base,
        region: cluster.region,
        dropletSize: cluster.size,
        snapshotImageID: cluster.snapshotImageId,
        loadBalancerID: cluster.loadBalancerId,
      },
    }
  }
  return {
    config: {
      tag: group.name,
      baseDropletName: base?.id ?? '',
      snapshotName: '',
      cloneNamePrefix: '',
      LoadBalancerName: group.route ?? '',
      maxDropletsInCluster: group.max,
      scalingInterval,
      // A Tide group's thresholds are its policies, not three fixed numbers.
      scaleUpWhen: emptyMetrics(),
      scaleDownWhen: emptyMetrics(),
    },
    info: {
      dropletCount: group.instances.length,
      droplets: group.instances,
      baseDroplet: base,
      region: '',
      dropletSize: '',
      snapshotImageID: 0,
      loadBalancerID: '',
    },
  }
}

/** The seed's success messages apply word for word to droplets; other targets get Tide's sentence. */
function scaleMessage(group: GroupView, d: DecisionRecord): string {
  if (d.outcome === 'failed') return d.error ?? d.reason
  if (d.outcome === 'pending') return `${d.reason} (under way)`
  if (d.outcome === 'applied' && group.target === 'digitalocean') {
    return d.to > d.from ? 'droplet created and added to load balancer' : 'clone droplet deleted'
  }
  return d.reason
}

/** `pending` (the operation started and is still running, as after `auto`) counts as success. */
function scaleResponse(group: GroupView, d: DecisionRecord): ScaleResponse {
  return { success: d.outcome === 'applied' || d.outcome === 'pending', msg: scaleMessage(group, d) }
}

export class AtBoundsError extends TideError {
  constructor(message: string) {
    super('E_AT_BOUNDS', message, { status: 409 })
  }
}

function resolveGroup(controller: Controller, name: string | undefined): GroupView {
  if (name !== undefined && name !== '') return controller.getGroup(name)
  const groups = controller.listGroups()
  if (groups.length === 1) return groups[0]!
  if (groups.length === 0) throw new TideError('E_NOT_FOUND', 'no groups are configured', { status: 404 })
  const names = groups.map((g) => g.name).join(', ')
  throw new TideError(
    'E_BAD_REQUEST',
    `group: required when there is more than one group (one of: ${names})`,
    {
      status: 400,
    },
  )
}

const OPS = new Set(['info', 'status', 'up', 'down', 'auto'])
const pretty = (json: unknown, status = 200): Reply => ({ status, json, indent: 1 })

async function handle(ctx: RequestContext): Promise<Reply> {
  const { controller, url } = ctx
  // The DigitalOcean Functions runtime merged query and body parameters; the query wins here.
  const body = ctx.req.method === 'POST' ? await ctx.json() : undefined
  const fromBody = (key: string) => {
    const v = body && typeof body === 'object' ? (body as Record<string, unknown>)[key] : undefined
    return typeof v === 'string' ? v : undefined
  }
  const op = url.searchParams.get('op') ?? fromBody('op') ?? ''
  if (!OPS.has(op)) throw new TideError('E_BAD_REQUEST', UNKNOWN_OP, { status: 400 })
  ctx.authorize(op === 'up' || op === 'down' || op === 'auto')
  const group = resolveGroup(controller, url.searchParams.get('group') ?? fromBody('group'))
  const now = Date.now()

  switch (op) {
    case 'info':
      return pretty(infoResponse(group))
    case 'status':
      return pretty(statusResponse(group, lastAutoDecision(controller, group), now, false))
    case 'up':
    case 'down': {
      // Seed 000's manual ops ignore the cooldown (seeds.md §1.7), hence `force`; bounds still hold.
      if (op === 'up' && group.desired >= group.max) throw new AtBoundsError('cluster is at maximum size')
      if (op === 'down' && group.desired <= group.min) {
        throw new AtBoundsError(
          group.desired === 1
            ? 'cluster has no autoscaled droplets'
            : `cluster is at its minimum size (${group.min})`,
        )
      }
      // The seed answered once the droplet existed, so this waits for the change too.
      const d = await controller.scale(group.name, {
        by: op === 'up' ? 1 : -1,
        force: true,
        wait: true,
        reason: `manual scale ${op} through /scale?op=${op}`,
      })
      return pretty(scaleResponse(group, d), d.outcome === 'failed' ? 502 : 200)
    }
    default: {
      const d = await controller.auto(group.name)
      const moving = direction(d)
      const none: ScaleResponse = { success: false, msg: '' }
      // The status shows the metrics this evaluation read, not those from before it.
      const evaluated = controller.getGroup(group.name)
      const response: AutoResponse = {
        status: statusResponse(evaluated, d, now, true),
        scaleUp: moving === 'up' ? scaleResponse(group, d) : none,
        scaleDown: moving === 'down' ? scaleResponse(group, d) : none,
      }
      return pretty(response, d.outcome === 'failed' ? 502 : 200)
    }
  }
}

/** Seed 000's error body, `{"error": msg}`, compact as it was, with Tide's stable code added. */
const seedError = (err: TideError) => ({ error: err.message, code: err.code })

export const compatRoutes: Route[] = [
  { method: 'GET', path: '/scale', mutating: false, handle, errorBody: seedError },
  { method: 'POST', path: '/scale', mutating: false, handle, errorBody: seedError },
]
