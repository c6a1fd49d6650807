/**
 * The `aws-asg` target: one EC2 Auto Scaling group. AWS launches and replaces instances;
 * Tide sets the desired capacity, chooses which instances leave on a scale-in (draining them
 * first), and waits until the group has what it asked for.
 *
 * ```text
 * scale(to):  describe ──► bounds check ──► up:   SetDesiredCapacity ──► wait for `to` InService
 *                                       └─► down: drop not-yet-launched capacity (SetDesiredCapacity)
 *                                                 ──► choose victims ──► drain ──► Terminate…(decrement)
 *                                                 ──► wait until the victims are gone
 * ```
 *
 * With `drainer` (the instances are Docker Swarm nodes), each victim's node is found and the
 * managers' quorum checked (all of them leaving) before anything changes. Then the victims'
 * nodes leave together (src/targets/docker-swarm/nodes.ts):
 *
 * ```text
 * pause every victim's node ──► drain every one ──► wait until all are empty (one drain timeout)
 *   ──► demote the managers, one at a time ──► terminate each drained instance ──► remove its node
 * ```
 *
 * Pausing all before draining any means a task moved off one victim never lands on another
 * (and moves twice), and N nodes take one drain time, not N. A victim whose node does not empty
 * in time is made active again and kept; the others still go, and the operation fails naming it.
 * An InService instance with no node is refused, unless `unmatched: 'terminate'`: then it is
 * terminated without a drain, and the progress says so.
 *
 * EC2 DescribeInstances (optional: `ec2`) gives instances their address (`ip[:port]`) and launch
 * time (newest first by launch, not by when Tide first saw them). Without EC2 permission the
 * target keeps working without addresses, says so once in the log and in the status message.
 *
 * Never touched unless configured: the group's MinSize/MaxSize (Docker Scaler overwrote them
 * on every call, seeds.md §3.9 item 4). A manager group (Swarm managers, Raft quorum) changes
 * one instance at a time, each step waited for.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Instance as AwsInstance } from '@aws-sdk/client-auto-scaling'
import { formatDuration } from '../../core/duration.js'
import { errorMessage, NoChangeError, TargetError } from '../../core/errors.js'
import type {
  GroupStatus,
  Instance,
  InstanceState,
  ScalePlan,
  ScaleResult,
  Target,
} from '../../core/types.js'
import type { DrainHandle, LeavingInstance } from '../docker-swarm/nodes.js'
import type { AsgApi, AutoScalingGroup, AwsLogger } from './client.js'
import type { Ec2Api, Ec2Instance } from './ec2.js'
import { AsgBoundsError, AsgTimeoutError, Ec2AccessError } from './errors.js'

/** An instance about to be removed, for finding its Swarm node (docker-swarm/nodes.ts). */
export type { LeavingInstance }

/** One Swarm node ready to be drained (docker-swarm/nodes.ts `DrainHandle`). */
export type NodeDrainHandle = DrainHandle

/** Finds and checks the Swarm nodes of instances about to leave (docker-swarm/nodes.ts `SwarmNodeDrainer`). */
export interface NodeDrainer {
  prepare(instances: readonly LeavingInstance[], signal: AbortSignal): Promise<Map<string, NodeDrainHandle>>
}

/** After EC2 denied access, ask again this long later (the IAM policy may have been fixed). */
const EC2_RETRY_AFTER_DENIAL = 5 * 60_000

export interface AsgTargetOptions {
  /** The Auto Scaling group's name. */
  name: string
  role: 'worker' | 'manager'
  /** When set, Tide sets the group's MinSize to this (and may scale down to it). */
  minSize?: number
  /** When set, Tide sets the group's MaxSize to this (and may scale up to it). */
  maxSize?: number
  /** `terminate`: Tide picks, drains and terminates instances; `aws`: the ASG's termination policy picks. */
  scaleIn: 'terminate' | 'aws'
  /** Milliseconds to wait for instances to be InService (or gone); 0 does not wait. */
  readyTimeout: number
  /** Milliseconds between checks while waiting. */
  pollInterval: number
  /**
   * Which IPv4 is an instance's address; `none` asks EC2 nothing for addresses.
   * @default 'none' without `ec2`
   */
  address?: 'private' | 'public' | 'none'
  /** Appended to the address (`ip:port`). */
  port?: number
  /** EC2 DescribeInstances: addresses, DNS names (to find Swarm nodes) and launch times. */
  ec2?: Ec2Api
  /** The instances are Swarm nodes: drain each before its instance is terminated. */
  drainer?: NodeDrainer
  /**
   * With `drainer`, an InService instance whose Swarm node cannot be found: `refuse` fails the
   * scale-in before anything changes (E_SWARM_NODE_MATCH); `terminate` terminates it without a drain.
   * @default 'refuse'
   */
  unmatched?: 'refuse' | 'terminate'
  logger?: AwsLogger
}

/** The Tide state of an ASG instance, from its LifecycleState and HealthStatus. */
export function instanceState(instance: AwsInstance): InstanceState {
  const state = instance.LifecycleState ?? ''
  if (state === 'InService') return instance.HealthStatus === 'Unhealthy' ? 'failed' : 'ready'
  if (state.startsWith('Pending') || state.startsWith('Warmed:Pending')) return 'starting'
  if (state === 'EnteringStandby' || state === 'Standby') return 'draining'
  if (state === 'Quarantined') return 'failed'
  if (/^(Warmed:)?Terminat|^Detach/.test(state)) return 'stopping'
  return 'starting'
}

export class AsgTarget implements Target {
  readonly kind = 'aws-asg'
  /** When Tide first saw each instance (the API's Instance has no launch time without EC2). */
  private readonly firstSeen = new Map<string, number>()
  /** What EC2 said about each instance (kept while the instance is in the group). */
  private readonly ec2Info = new Map<string, Ec2Instance>()
  /** The last EC2 failure, shown in the status message until a call succeeds. */
  private ec2Problem: { message: string; at: number; denied: boolean } | undefined

  constructor(
    readonly group: string,
    private readonly api: AsgApi,
    private readonly options: AsgTargetOptions,
  ) {}

  async status(signal: AbortSignal): Promise<GroupStatus> {
    const group = await this.api.describe(this.options.name, signal)
    await this.refreshEc2(group, signal)
    return this.view(group)
  }

  /**
   * Asks EC2 about the instances it has not described yet (or that had no IP yet). Never throws:
   * a denial (E_AWS_EC2_DENIED) is logged once and asked again after 5 minutes; other failures
   * are logged and leave the addresses known so far.
   */
  private async refreshEc2(group: AutoScalingGroup, signal: AbortSignal): Promise<void> {
    const { ec2, logger } = this.options
    if (!ec2) return
    const ids = (group.Instances ?? []).map((i) => i.InstanceId).filter((id): id is string => Boolean(id))
    for (const id of this.ec2Info.keys()) if (!ids.includes(id)) this.ec2Info.delete(id)
    const wantPublic = this.options.address === 'public'
    const missing = ids.filter((id) => {
      const known = this.ec2Info.get(id)
      return !known || !known.privateIp || (wantPublic && !known.publicIp)
    })
    if (missing.length === 0) return
    const problem = this.ec2Problem
    if (problem?.denied && Date.now() - problem.at < EC2_RETRY_AFTER_DENIAL) return
    try {
      const found = await ec2.describeInstances(missing, this.options.name, signal)
      for (const [id, info] of found) this.ec2Info.set(id, info)
      if (problem)
        logger?.warn?.(
          { asg: this.options.name },
          `EC2 DescribeInstances works again for ${this.options.name}`,
        )
      this.ec2Problem = undefined
    } catch (err) {
      signal.throwIfAborted()
      const denied = err instanceof Ec2AccessError
      const message = err instanceof Error ? err.message : String(err)
      if (!problem || problem.message !== message) {
        logger?.warn?.({ asg: this.options.name, code: (err as { code?: string }).code }, message)
      }
      this.ec2Problem = { message, at: Date.now(), denied }
    }
  }

  /** When an instance was launched (EC2), else when Tide first saw it. */
  private createdAt(id: string): number {
    return this.ec2Info.get(id)?.launchTime ?? this.firstSeen.get(id) ?? 0
  }

  private addressOf(id: string): string | undefined {
    const info = this.ec2Info.get(id)
    const mode = this.options.address ?? 'none'
    if (!info || mode === 'none') return undefined
    const ip = mode === 'public' ? info.publicIp : info.privateIp
    if (!ip) return undefined
    return this.options.port ? `${ip}:${this.options.port}` : ip
  }

  /** Whether the instance serves (InService, healthy): it must have a Swarm node, unless `unmatched: terminate`. */
  private serving(id: string, group: AutoScalingGroup): boolean {
    const asg = (group.Instances ?? []).find((i) => i.InstanceId === id)
    return asg ? instanceState(asg) === 'ready' : false
  }

  private leaving(id: string, group: AutoScalingGroup): LeavingInstance {
    const info = this.ec2Info.get(id)
    return {
      id,
      ...(info?.privateIp ? { privateIp: info.privateIp } : {}),
      ...(info?.privateDns ? { privateDns: info.privateDns } : {}),
      ...(info?.publicIp ? { publicIp: info.publicIp } : {}),
      required: this.options.unmatched !== 'terminate' && this.serving(id, group),
    }
  }

  async scale(to: number, plan: ScalePlan, signal: AbortSignal): Promise<ScaleResult> {
    if (!Number.isInteger(to) || to < 0) {
      throw new TargetError(`group ${this.group}: cannot scale to ${to} (must be a whole number ≥ 0)`)
    }
    if (this.options.role !== 'manager') return this.step(to, plan, signal)
    // Managers: one at a time, so the swarm never loses more than one Raft member per step.
    const first = await this.api.describe(this.options.name, signal)
    const from = first.DesiredCapacity ?? 0
    if (from === to) return this.step(to, plan, signal) // throws NoChangeError
    const result: ScaleResult = { from, to, added: [], removed: [] }
    for (let n = from; n !== to;) {
      n += to > n ? 1 : -1
      const part = await this.step(n, plan, signal)
      result.added.push(...part.added)
      result.removed.push(...part.removed)
    }
    return result
  }

  private async step(to: number, plan: ScalePlan, signal: AbortSignal): Promise<ScaleResult> {
    const { name } = this.options
    const group = await this.api.describe(name, signal)
    const from = group.DesiredCapacity ?? 0
    const asgMin = group.MinSize ?? 0
    const asgMax = group.MaxSize ?? 0
    const min = this.options.minSize ?? asgMin
    const max = this.options.maxSize ?? asgMax
    if (to < min || to > max) throw new AsgBoundsError(name, to, min, max)
    const bounds =
      min !== asgMin || max !== asgMax
        ? { ...(min !== asgMin ? { min } : {}), ...(max !== asgMax ? { max } : {}) }
        : undefined
    if (to === from) {
      if (bounds) await this.api.update(name, bounds, signal)
      throw new NoChangeError(`Auto Scaling group '${name}' already has a desired capacity of ${to}`)
    }
    const say = (message: string) => plan.progress?.(`${name}: ${message}`)
    if (to > from || this.options.scaleIn === 'aws') {
      if (bounds) await this.api.update(name, { ...bounds, desired: to }, signal)
      else await this.api.setDesired(name, to, signal)
      say(`desired capacity ${from} → ${to}`)
      const before = new Set((group.Instances ?? []).map((i) => i.InstanceId))
      const after = await this.waitFor(to, [], signal, say)
      const ids = new Set(after.map((i) => i.InstanceId))
      return {
        from,
        to,
        added: [...ids].filter((id) => !before.has(id)) as string[],
        removed: [...before].filter((id) => !ids.has(id)) as string[],
      }
    }
    // Scale-in by Tide's choice: lower MinSize first if asked, else a termination could be refused.
    if (bounds) await this.api.update(name, bounds, signal)
    let desired = from
    const live = (group.Instances ?? []).filter((i) => instanceState(i) !== 'stopping')
    // Capacity AWS has not launched an instance for yet goes first: removing it stops nothing.
    const unlaunched = Math.min(from - to, Math.max(0, from - live.length))
    if (unlaunched > 0) {
      desired = from - unlaunched
      await this.api.setDesired(name, desired, signal)
      say(`desired capacity ${from} → ${desired} (capacity not launched yet)`)
    }
    const { drainer } = this.options
    if (drainer) await this.refreshEc2(group, signal)
    const victims = this.chooseVictims(group, desired - to, plan.victims ?? [])
    const instances = this.view(group).instances
    // Every victim's Swarm node is found, and the managers' quorum checked, before anything changes.
    const nodes =
      drainer && victims.length > 0
        ? await drainer.prepare(
            victims.map((id) => this.leaving(id, group)),
            signal,
          )
        : new Map<string, NodeDrainHandle>()
    // Serving instances with no node (only with `unmatched: terminate`; prepare refuses them otherwise).
    const nodeless = drainer ? victims.filter((id) => !nodes.has(id) && this.serving(id, group)) : []
    await Promise.all(
      victims.map(async (id) => {
        const instance = instances.find((i) => i.id === id)
        if (instance && plan.drain) await plan.drain(instance)
      }),
    )
    const undrain = (ids: Iterable<string>) => {
      // The router takes back the victims that stay.
      for (const id of ids) {
        const instance = instances.find((i) => i.id === id)
        if (instance) plan.undrain?.(instance)
      }
    }
    /** Victims that stay, and why (their nodes are active again). */
    const kept = new Map<string, unknown>()
    try {
      await this.drainNodes(victims, nodes, kept, signal, say)
    } catch (err) {
      undrain(victims) // nothing was terminated, every node is back
      throw err
    }
    const terminated: string[] = []
    for (const id of victims) {
      if (kept.has(id)) continue
      const node = nodes.get(id)
      if (signal.aborted) {
        await node?.restore()
        kept.set(id, signal.reason)
        continue
      }
      try {
        await this.api.terminate(name, id, signal)
      } catch (err) {
        await node?.restore()
        kept.set(id, err)
        continue
      }
      terminated.push(id)
      desired--
      if (nodeless.includes(id)) {
        this.options.logger?.warn?.(
          { asg: name, instance: id },
          `${name}: terminated ${id} without a drain: no Swarm node matches it (swarm.unmatched: terminate)`,
        )
        say(
          `terminating ${id} without a drain: no Swarm node matches it (swarm.unmatched: terminate); desired capacity now ${desired}`,
        )
      } else say(`terminating ${id} (desired capacity now ${desired})`)
      if (node) await node.remove(signal)
    }
    if (kept.size > 0) {
      undrain(kept.keys())
      const reasons = [...kept].map(([id, err]) => `${id}: ${errorMessage(err)}`)
      if (terminated.length > 0) say(`terminated ${terminated.join(', ')}; kept ${reasons.join('; ')}`)
      const [first] = kept.values()
      signal.throwIfAborted()
      if (!(first instanceof Error)) throw first
      // The first failure keeps its code; its message also says what became of the other victims.
      const others = [
        ...reasons.slice(1).map((r) => `also kept ${r}`),
        ...(terminated.length > 0 ? [`drained and terminated: ${terminated.join(', ')}`] : []),
      ]
      if (others.length > 0) first.message = `${first.message} (${others.join('; ')})`
      throw first
    }
    await this.waitFor(to, victims, signal, say)
    return { from, to, added: [], removed: victims }
  }

  /**
   * Drains the victims' nodes together: pauses all, drains all, waits until all are empty, then
   * demotes the managers one at a time (the quorum after all of them leave was checked in
   * prepare). A node that does not empty (or demote) in time is put back by its handle and its
   * victim lands in `kept`; the others are left drained, for their instances to be terminated.
   * Throws, with every node put back, when nothing may be terminated: a pause or drain call
   * failed, or `signal` was aborted.
   */
  private async drainNodes(
    victims: readonly string[],
    nodes: ReadonlyMap<string, NodeDrainHandle>,
    kept: Map<string, unknown>,
    signal: AbortSignal,
    say: (message: string) => void,
  ): Promise<void> {
    const leaving = victims.flatMap((id) => {
      const node = nodes.get(id)
      return node ? [{ id, node }] : []
    })
    if (leaving.length === 0) return
    const restoreAll = () => Promise.all(leaving.map(({ node }) => node.restore()))
    try {
      // Paused first, so the tasks drained off one victim go only to the nodes that stay.
      for (const { node } of leaving) await node.pause(signal)
      for (const { node } of leaving) await node.startDrain(signal, say)
      const settled = await Promise.allSettled(leaving.map(({ node }) => node.settle(signal, say)))
      signal.throwIfAborted()
      settled.forEach((s, k) => {
        if (s.status === 'rejected') kept.set(leaving[k]!.id, s.reason)
      })
      // One demotion at a time: Raft removes members one by one.
      for (const { id, node } of leaving) {
        if (kept.has(id) || !node.manager) continue
        try {
          await node.demote(signal, say)
        } catch (err) {
          signal.throwIfAborted()
          kept.set(id, err)
        }
      }
    } catch (err) {
      await restoreAll()
      kept.clear()
      throw err
    }
  }

  /**
   * `count` instances to terminate: the plan's victims first, then instances not yet serving,
   * then the newest. Never an instance protected from scale-in, in Standby or already leaving.
   * Checked before anything is terminated, so a refusal changes nothing.
   */
  private chooseVictims(group: AutoScalingGroup, count: number, preferred: string[]): string[] {
    if (count <= 0) return []
    const all = group.Instances ?? []
    const eligible = all.filter(
      (i) =>
        i.InstanceId && !i.ProtectedFromScaleIn && ['starting', 'ready', 'failed'].includes(instanceState(i)),
    )
    const rank = (i: AwsInstance): number => {
      const p = preferred.indexOf(i.InstanceId!)
      if (p >= 0) return p - 1e9
      const state = instanceState(i)
      return state === 'failed' ? -2e8 : state === 'starting' ? -1e8 : 0
    }
    const order = eligible
      .map((i, n) => ({ i, n }))
      .sort(
        (a, b) =>
          rank(a.i) - rank(b.i) ||
          // newest first: seen latest, then later in AWS's listing
          this.createdAt(b.i.InstanceId!) - this.createdAt(a.i.InstanceId!) ||
          b.n - a.n,
      )
      .map(({ i }) => i.InstanceId!)
    if (order.length < count) {
      const blocked = all
        .filter((i) => !eligible.includes(i))
        .map(
          (i) => `${i.InstanceId} (${i.ProtectedFromScaleIn ? 'protected from scale-in' : i.LifecycleState})`,
        )
      throw new TargetError(
        `Auto Scaling group '${this.options.name}': need to remove ${count} instances but only ${order.length} can be` +
          (blocked.length ? `; not removable: ${blocked.join(', ')}` : ''),
      )
    }
    return order.slice(0, count)
  }

  /**
   * Polls until `want` instances are InService and every instance in `leaving` is gone, or
   * `readyTimeout` passes. Returns the group's instances as last seen.
   */
  private async waitFor(
    want: number,
    leaving: string[],
    signal: AbortSignal,
    say: (message: string) => void,
  ): Promise<AwsInstance[]> {
    const { name, readyTimeout, pollInterval } = this.options
    const deadline = Date.now() + readyTimeout
    let lastReady = -1
    for (;;) {
      const group = await this.api.describe(name, signal)
      const instances = group.Instances ?? []
      this.view(group)
      const ready = instances.filter((i) => instanceState(i) === 'ready').length
      const still = leaving.filter((id) =>
        instances.some((i) => i.InstanceId === id && i.LifecycleState !== 'Terminated'),
      )
      if (ready !== lastReady && lastReady >= 0) say(`${ready} of ${want} instances InService`)
      lastReady = ready
      if (ready >= want && still.length === 0) return instances
      if (readyTimeout === 0) return instances
      if (Date.now() >= deadline) {
        const waiting = instances
          .filter((i) => instanceState(i) !== 'ready')
          .map(
            (i) =>
              `${i.InstanceId}: ${i.LifecycleState}${i.HealthStatus === 'Unhealthy' ? ', Unhealthy' : ''}`,
          )
        throw new AsgTimeoutError(
          `Auto Scaling group '${name}': ${ready} of ${want} instances InService` +
            (still.length ? `, ${still.join(', ')} not yet terminated` : '') +
            ` after ${formatDuration(readyTimeout)}` +
            (waiting.length ? ` (${waiting.join('; ')})` : '') +
            '; AWS keeps working on it',
        )
      }
      await sleep(Math.min(pollInterval, Math.max(1, deadline - Date.now())), undefined, { signal })
    }
  }

  private view(group: AutoScalingGroup): GroupStatus {
    const now = Date.now()
    const present = new Set<string>()
    const instances: Instance[] = (group.Instances ?? [])
      .filter((i) => i.InstanceId)
      .map((i) => {
        const id = i.InstanceId!
        present.add(id)
        if (!this.firstSeen.has(id)) this.firstSeen.set(id, now)
        const details = [i.LifecycleState, i.HealthStatus, i.AvailabilityZone, i.InstanceType].filter(Boolean)
        const address = this.addressOf(id)
        return {
          id,
          state: instanceState(i),
          createdAt: this.createdAt(id),
          ...(address ? { address } : {}),
          detail: details.join(', '),
          ...(i.ProtectedFromScaleIn ? { protected: true } : {}),
        }
      })
      .sort((a, b) => a.createdAt - b.createdAt)
    for (const id of this.firstSeen.keys()) if (!present.has(id)) this.firstSeen.delete(id)
    const ready = instances.filter((i) => i.state === 'ready').length
    const desired = group.DesiredCapacity ?? 0
    const suspended = (group.SuspendedProcesses ?? []).map((p) => p.ProcessName).filter(Boolean)
    const message = [
      `ASG ${group.AutoScalingGroupName} (min ${group.MinSize ?? 0}, max ${group.MaxSize ?? 0})`,
      ...(group.Status ? [`status ${group.Status}`] : []),
      ...(suspended.length ? [`suspended processes: ${suspended.join(', ')}`] : []),
      ...(this.ec2Problem ? [`no addresses: ${this.ec2Problem.message}`] : []),
    ].join('; ')
    return { desired, instances, ready, message }
  }

  async close(): Promise<void> {
    this.api.close()
    this.options.ec2?.close()
  }
}
