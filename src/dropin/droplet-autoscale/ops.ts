/**
 * Seed 000's five operations (reference/seeds.md §1.2), stateless, on Tide's parts: the
 * `digitalocean` target does the droplets, the `digitalocean` source reads the Monitoring API,
 * the `threshold` policy and the governor decide. Nothing here is a second scaler; this file
 * only wires them to seed 000's variables and answers in its JSON shapes.
 *
 *   info    discover → { config, info }
 *   status  discover → cooldown tag → metrics → policy + governor → { dropletMetrics, …, recommendation }
 *   up      discover → at max? → lock → mark cooldown → target.scale(n + 1)   (ignores the cooldown, as the seed)
 *   down    discover → only base? → lock → mark cooldown → target.scale(n − 1)
 *   auto    status → scale? → lock → re-read (cooldown, size) → mark cooldown → target.scale
 *
 * Fixes of seeds.md §1.12 this file is responsible for: the recommendation is emitted (item 1);
 * real HTTP statuses (item 9); a lock so two invocations never both scale (item 7); an overall
 * deadline so a Functions invocation hands over instead of being killed mid-operation (item 4):
 * a clone still booting when the deadline comes is left for the next invocation, which waits
 * for it and attaches it to the load balancer (the target's start-up adoption).
 */
import { buildThreshold, thresholdSchema } from '../../policies/threshold.js'
import { govern } from '../../core/governor.js'
import { ConfigError, errorMessage, NoChangeError, TideError } from '../../core/errors.js'
import type { Decision, Instance, Metrics } from '../../core/types.js'
import {
  AtBoundsError,
  type AutoResponse,
  type ClusterConfig,
  RECOMMENDATION,
  type ScaleResponse,
  type SeedMetrics,
  type StatusResponse,
  UNKNOWN_OP,
} from '../../api/compat.js'
import { createDigitalOceanTarget, digitaloceanTargetSchema } from '../../targets/digitalocean/index.js'
import type { ClientLogger } from '../../targets/digitalocean/client.js'
import type { Cluster, DigitalOceanTarget } from '../../targets/digitalocean/target.js'
import { type ClusterInfo, clusterInfo, discover } from './cluster.js'
import { type DropinConfig, readDropinEnv, type Thresholds } from './env.js'
import { acquireLock, markCooldown, readCooldown } from './lease.js'
import { readMetrics, SEED_METRICS } from './metrics.js'

export const OPS = ['info', 'status', 'up', 'down', 'auto'] as const
export type Op = (typeof OPS)[number]

/** An answer: the HTTP status and the JSON body (pretty-printed with one space when `pretty`). */
export interface OpResult {
  status: number
  body: unknown
  pretty: boolean
}

/** The body as seed 000 printed it: one JSON document and a newline. */
export function renderBody(result: OpResult): string {
  return `${result.pretty ? JSON.stringify(result.body, null, 1) : JSON.stringify(result.body)}\n`
}

export interface DropinDeps {
  /** Epoch ms. */
  now?: () => number
  logger?: ClientLogger
  /**
   * Aborts when the invocation must answer (the Functions time limit minus a margin). A clone
   * still booting then is left to the next invocation.
   */
  signal?: AbortSignal
  /** Target settings for tests (a short poll against the emulator). */
  targetOverrides?: { poll?: string }
}

export type { ClusterConfig } from '../../api/compat.js'

/** The same bodies as the daemon's `/scale` compatibility route (api/compat.ts). */
export type DropinStatus = StatusResponse
export type DropinAuto = AutoResponse

const NONE: ScaleResponse = { success: false, msg: '' }

function thresholdsAsMetrics(t: Thresholds): SeedMetrics {
  return {
    ID: '',
    valid: false,
    load: t.load,
    freeMemory: t.freeMemory,
    outboundBandwidth: t.outboundBandwidth,
  }
}

export function clusterConfig(c: DropinConfig): ClusterConfig {
  return {
    tag: c.tag,
    baseDropletName: c.baseDroplet,
    snapshotName: c.snapshot,
    cloneNamePrefix: c.clonePrefix,
    LoadBalancerName: c.loadBalancer,
    maxDropletsInCluster: c.maxDroplets,
    scalingInterval: c.scalingInterval,
    scaleUpWhen: thresholdsAsMetrics(c.scaleUpWhen),
    scaleDownWhen: thresholdsAsMetrics(c.scaleDownWhen),
  }
}

/** The group config equivalent to the variables: what `tide run` would need (docs/migrate). */
export function equivalentGroup(c: DropinConfig): Record<string, unknown> {
  const { scaleUpWhen: up, scaleDownWhen: down } = c
  return {
    min: 1,
    max: c.maxDroplets,
    interval: '1m',
    cooldown: `${c.scalingInterval}s`,
    scale_up: { max_step: 1, stabilization: '0s' },
    scale_down: { max_step: 1, stabilization: '0s' },
    target: {
      kind: 'digitalocean',
      token: '${DIGITALOCEAN_TOKEN}',
      ...(c.apiUrl !== 'https://api.digitalocean.com' ? { api_url: c.apiUrl } : {}),
      tag: c.tag,
      base_droplet: c.baseDroplet,
      snapshot: c.snapshot,
      clone_prefix: c.clonePrefix,
      load_balancer: c.loadBalancer,
      boot_timeout: `${c.bootTimeout / 1000}s`,
      drain: `${c.drain / 1000}s`,
      remove: c.remove,
    },
    sources: [{ kind: 'digitalocean', window: '4m', metrics: [...SEED_METRICS] }],
    policies: [thresholdPolicyInput(up, down)],
  }
}

function thresholdPolicyInput(up: Thresholds, down: Thresholds) {
  return {
    kind: 'threshold' as const,
    name: 'droplet-autoscale',
    aggregate: 'mean' as const,
    up: {
      match: 'any' as const,
      conditions: [
        `load_1 > ${up.load}`,
        `memory_free < ${up.freeMemory}`,
        `bandwidth_out > ${up.outboundBandwidth}`,
      ],
    },
    down: {
      match: 'all' as const,
      conditions: [
        `load_1 < ${down.load}`,
        `memory_free > ${down.freeMemory}`,
        `bandwidth_out < ${down.outboundBandwidth}`,
      ],
    },
  }
}

/** `{"error": msg}` as the seed, with Tide's code and a real status. */
function failure(err: unknown): OpResult {
  if (err instanceof TideError) {
    return { status: err.status, body: { error: err.message, code: err.code }, pretty: false }
  }
  return { status: 500, body: { error: errorMessage(err), code: 'E_INTERNAL' }, pretty: false }
}

/** Everything one invocation works with. */
class Invocation {
  readonly target: DigitalOceanTarget
  constructor(
    readonly config: DropinConfig,
    readonly deps: DropinDeps,
  ) {
    const targetConfig = digitaloceanTargetSchema.parse({
      kind: 'digitalocean',
      token: config.token,
      api_url: config.apiUrl,
      tag: config.tag,
      base_droplet: config.baseDroplet,
      snapshot: config.snapshot,
      clone_prefix: config.clonePrefix,
      load_balancer: config.loadBalancer,
      boot_timeout: `${config.bootTimeout}ms`,
      drain: `${config.drain}ms`,
      remove: config.remove,
      ...deps.targetOverrides,
    })
    this.target = createDigitalOceanTarget('droplet-autoscale', targetConfig, { logger: deps.logger })
  }

  get signal(): AbortSignal | undefined {
    return this.deps.signal
  }

  now(): number {
    return (this.deps.now ?? Date.now)()
  }

  nowS(): number {
    return Math.floor(this.now() / 1000)
  }

  discover(): Promise<Cluster> {
    return discover(this.target, this.config, this.signal)
  }

  info(cluster: Cluster): { config: ClusterConfig; info: ClusterInfo } {
    return { config: clusterConfig(this.config), info: clusterInfo(cluster) }
  }

  /** Seed 000's status with Tide's decision behind it. */
  async status(cluster: Cluster): Promise<{ status: DropinStatus; decision: Decision }> {
    const c = this.config
    const now = this.now()
    const instances: Instance[] = (await this.target.status(this.signal)).instances
    const metrics = await readMetrics(this.target, c.tag, instances, now, this.signal)
    const names = new Map(cluster.droplets.map((d) => [String(d.id), d.name]))
    const dropletMetrics = cluster.droplets.map((d) => seedMetrics(metrics, String(d.id), names))
    const cooldown = readCooldown(cluster.base, c.clonePrefix, c.scalingInterval, this.nowS())
    const cooling = cooldown !== undefined && cooldown.left > 0
    const clusterMetrics = averages(
      metrics,
      dropletMetrics,
      cluster.droplets.map((d) => String(d.id)),
    )
    clusterMetrics.valid = !cooling && dropletMetrics.every((d) => d.valid)

    const policy = buildThreshold(thresholdSchema.parse(thresholdPolicyInput(c.scaleUpWhen, c.scaleDownWhen)))
    const current = cluster.droplets.length
    const input = {
      now,
      group: c.tag,
      current,
      ready: instances.filter((i) => i.state === 'ready').length,
      min: 1,
      max: c.maxDroplets,
      metrics,
      staleAfter: 10 * 60_000,
    }
    const recommendation = { ...policy(input), policy: 'droplet-autoscale' }
    const { decision } = govern({
      now,
      current,
      config: {
        min: 1,
        max: c.maxDroplets,
        cooldown: c.scalingInterval * 1000,
        stabilizationDown: 0,
        stabilizationUp: 0,
        maxStepUp: 1,
        maxStepDown: 1,
      },
      recommendations: [recommendation],
      state: {
        history: [],
        ...(cooling ? { lastChange: { at: cooldown.since * 1000, direction: 'up' as const } } : {}),
      },
    })
    const wantsUp = recommendation.kind === 'scale' && recommendation.to > current
    const wantsDown = recommendation.kind === 'scale' && recommendation.to < current
    let text: string
    if (decision.to > current) text = RECOMMENDATION.up
    else if (decision.to < current) text = RECOMMENDATION.down
    else if (cooling || recommendation.kind === 'unknown') text = RECOMMENDATION.invalid
    else if (wantsUp && current >= c.maxDroplets) text = RECOMMENDATION.atMax
    else if (wantsDown && current <= 1) text = RECOMMENDATION.onlyOne
    else text = RECOMMENDATION.none
    return {
      status: {
        dropletMetrics,
        clusterMetrics,
        scaleUp: decision.to > current,
        scaleDown: decision.to < current,
        recommendation: text,
        reason: decision.reason,
      },
      decision,
    }
  }

  /**
   * One change of one droplet under the lock, the cooldown marked first (seed 000 marks before
   * every add or remove so a failing operation cannot loop fast). `checkCooldown` (auto only)
   * re-reads it under the lock: another invocation may have just finished.
   */
  async change(direction: 'up' | 'down', reason: string, checkCooldown: boolean): Promise<ScaleResponse> {
    const c = this.config
    const cluster = await this.discover()
    const { lock, base } = await acquireLock(
      this.target.client,
      cluster.base,
      c.clonePrefix,
      this.nowS(),
      this.signal,
    )
    try {
      // Fresh state under the lock: the size and the cooldown may have moved since we looked.
      const fresh = await this.discover()
      fresh.base.tags = base.tags
      const from = fresh.droplets.length
      if (checkCooldown) {
        const cooldown = readCooldown(base, c.clonePrefix, c.scalingInterval, this.nowS())
        if (cooldown && cooldown.left > 0) {
          return {
            success: false,
            msg: `no change: another invocation scaled the cluster ${c.scalingInterval - cooldown.left}s ago (cooldown ${cooldown.left}s more)`,
          }
        }
      }
      if (direction === 'up' && from >= c.maxDroplets) throw new AtBoundsError('cluster is at maximum size')
      if (direction === 'down' && from <= 1) throw new AtBoundsError('cluster has no autoscaled droplets')
      await markCooldown(this.target.client, fresh.base, c.clonePrefix, this.nowS(), this.signal)
      return await this.scale(fresh, from, direction === 'up' ? from + 1 : from - 1, reason)
    } finally {
      await lock.release().catch((err: unknown) => {
        this.deps.logger?.warn(
          { lock: lock.tag, err: errorMessage(err) },
          `could not remove lock tag ${lock.tag}`,
        )
      })
    }
  }

  private async scale(cluster: Cluster, from: number, to: number, reason: string): Promise<ScaleResponse> {
    const up = to > from
    const progress: string[] = []
    const signal = this.signal ?? new AbortController().signal
    try {
      await this.target.scale(to, { reason, progress: (m) => progress.push(m) }, signal)
      return up
        ? { success: true, msg: 'droplet created and added to load balancer' }
        : { success: true, msg: 'clone droplet deleted' }
    } catch (err) {
      if (signal.aborted) return this.handOver(cluster, up, progress)
      if (err instanceof NoChangeError) return { success: false, msg: `no change: ${err.message}` }
      const prefix = up ? "can't create droplet: " : "couldn't delete last droplet: "
      throw new TideError(err instanceof TideError ? err.code : 'E_TARGET', `${prefix}${errorMessage(err)}`, {
        status: 502,
        cause: err,
      })
    }
  }

  /**
   * The deadline came mid-operation. A clone that exists is adopted by the next invocation
   * (it waits for it to boot and attaches it to the load balancer); a removal that has started
   * is finished by the next `down`. Says what was done and what is left.
   */
  private async handOver(before: Cluster, up: boolean, progress: string[]): Promise<ScaleResponse> {
    const done = progress.length > 0 ? ` (${progress.join('; ')})` : ''
    if (up) {
      const known = new Set(before.droplets.map((d) => d.id))
      let created: string | undefined
      try {
        const now = await this.target.discover(AbortSignal.timeout(10_000))
        created = now.clones.find((d) => !known.has(d.id))?.name
      } catch {
        // Reported below without the name.
      }
      return {
        success: created !== undefined,
        msg:
          created !== undefined
            ? `droplet ${created} created; it was still booting when this invocation's time ran out, so the next invocation adds it to the load balancer${done}`
            : `the time ran out before a droplet was created; nothing changed${done}`,
      }
    }
    return {
      success: false,
      msg: `the time ran out while removing a clone; the next invocation finishes${done}`,
    }
  }
}

function seedMetrics(metrics: Metrics, id: string, names: Map<string, string>): SeedMetrics {
  const value = (name: string) => {
    const v = metrics[name]?.perInstance[id]
    return v !== undefined && Number.isFinite(v) ? v : undefined
  }
  const load = value('load_1')
  const freeMemory = value('memory_free')
  return {
    ID: names.get(id) ?? id,
    // Seed 000: load and memory are needed; missing bandwidth counts as 0 (a droplet just up).
    valid: load !== undefined && freeMemory !== undefined,
    load: load ?? 0,
    freeMemory: freeMemory ?? 0,
    outboundBandwidth: value('bandwidth_out') ?? 0,
  }
}

/** Cluster means over the droplets that reported (seeds.md §1.12 item 11: the seed divided by all). */
function averages(metrics: Metrics, droplets: SeedMetrics[], ids: string[]): SeedMetrics {
  const mean = (name: string) => {
    const values = ids
      .map((id) => metrics[name]?.perInstance[id])
      .filter((v): v is number => v !== undefined && Number.isFinite(v))
    return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length
  }
  return {
    ID: '',
    valid: droplets.length > 0,
    load: mean('load_1'),
    freeMemory: mean('memory_free'),
    outboundBandwidth: mean('bandwidth_out'),
  }
}

/**
 * Runs one operation with the configuration in `env`. Never throws: every failure is an answer
 * with a status and `{"error": …}`.
 */
export async function runDropin(
  op: string | undefined,
  env: Record<string, string | undefined>,
  deps: DropinDeps = {},
): Promise<OpResult> {
  if (op === undefined || !(OPS as readonly string[]).includes(op)) {
    return { status: 400, body: { error: UNKNOWN_OP, code: 'E_BAD_REQUEST' }, pretty: false }
  }
  let config: DropinConfig
  try {
    config = readDropinEnv(env)
  } catch (err) {
    if (err instanceof ConfigError) return failure(err)
    throw err
  }
  for (const w of config.warnings) deps.logger?.warn({ warning: w }, w)
  const run = new Invocation(config, deps)
  try {
    const cluster = await run.discover()
    const which = op as Op
    // Operations that may change the cluster first finish what an earlier run handed over;
    // info and status change nothing (the seed's status deleted expired tags).
    // The target does it (attach active clones left out of the load balancer, delete those
    // booting past TIDE_BOOT_TIMEOUT); clones still within their boot time are left for later.
    if (which !== 'info' && which !== 'status') {
      await run.target.finishPending(cluster, { wait: false, now: run.now(), signal: run.signal })
    }
    switch (which) {
      case 'info':
        return { status: 200, body: run.info(cluster), pretty: true }
      case 'status':
        return { status: 200, body: (await run.status(cluster)).status, pretty: true }
      case 'up':
      case 'down': {
        // Manual: ignores the metrics and the cooldown (seed 000), not the bounds.
        const from = cluster.droplets.length
        if (which === 'up' && from >= config.maxDroplets)
          throw new AtBoundsError('cluster is at maximum size')
        if (which === 'down' && from <= 1) throw new AtBoundsError('cluster has no autoscaled droplets')
        const response = await run.change(
          which,
          `manual scale ${which} (droplet-autoscale op=${which})`,
          false,
        )
        return { status: response.success ? 200 : 409, body: response, pretty: true }
      }
      case 'auto': {
        const { status, decision } = await run.status(cluster)
        const body: DropinAuto = { status, scaleUp: NONE, scaleDown: NONE }
        if (decision.to === decision.from) return { status: 200, body, pretty: true }
        const direction = decision.to > decision.from ? 'up' : 'down'
        let response: ScaleResponse
        let code = 200
        try {
          response = await run.change(direction, decision.reason, true)
        } catch (err) {
          // The seed reported a failed scale inside the auto answer; so does Tide, with a status.
          const f = failure(err)
          response = { success: false, msg: (f.body as { error: string }).error }
          code = f.status
        }
        if (direction === 'up') body.scaleUp = response
        else body.scaleDown = response
        return { status: code, body, pretty: true }
      }
    }
  } catch (err) {
    return failure(err)
  }
}
