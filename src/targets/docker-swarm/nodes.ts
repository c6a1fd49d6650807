/**
 * Draining the Swarm node of a machine before the machine goes (an Auto Scaling group's
 * scale-in, `/v1/scale-nodes` down). Docker Scaler let AWS terminate a node with its tasks on it
 * (seeds.md §3.4); Tide finds the instance's node, drains it, waits until its tasks run
 * elsewhere, demotes it if it is a manager, and only then lets the instance be terminated.
 *
 * ```text
 * prepare:    find each instance's node ─► managers: would the Raft quorum survive all of them
 *             leaving? ─► (nothing changed yet)
 * pause:      count the node's tasks; Availability=pause (no new task lands on it, its own keep running)
 * startDrain: Availability=drain (its tasks stop and start on the nodes that are neither paused nor
 *             drained); the drain timeout starts
 * settle:     wait: no task left on the node, and each service it ran has as many tasks running
 *             elsewhere as it had running before
 * demote:     a manager: demote, wait
 *             └─ any step failing (timeout, abort): Availability back as it was (and promoted
 *                again); the instance stays
 * remove:     after the instance is terminated: `docker node rm --force`
 * ```
 *
 * The steps are separate so that several nodes leave together (aws-asg/target.ts): every
 * leaving node is paused, then drained, so a task moved off one never lands on another that is
 * leaving too, and all of them empty in one drain timeout rather than one after the other.
 * `drain` runs the steps for one node.
 *
 * Finding the node of an instance, first rule that matches:
 * 1. a node label (`docker node update --label-add`) or engine label (dockerd `--label`) whose
 *    key is `label` and whose value is the instance id;
 * 2. the node's hostname (`Description.Hostname`) is the instance's private DNS name, or its
 *    first part (`ip-10-0-1-17`), or the instance id (EC2 resource-based names), or its private IP;
 * 3. the node's address (`Status.Addr`, the IP it joined from) is the instance's private IP.
 * Within a rule, a `ready` node wins over a `down` one (a new instance can reuse an old one's IP).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { errorMessage } from '../../core/errors.js'
import type { SwarmApi, SwarmNode, SwarmNodeTask } from './client.js'
import { DrainTimeoutError, NodeMatchError, QuorumError } from './errors.js'

/** An instance about to be removed, as the Auto Scaling side knows it. */
export interface LeavingInstance {
  id: string
  privateIp?: string
  privateDns?: string
  publicIp?: string
  /** True when the instance serves (InService): it must have a node. Else a missing node is fine. */
  required: boolean
}

/** One node ready to be drained; from `SwarmNodeDrainer.prepare`. */
export interface DrainHandle {
  /** "node 4k2… (ip-10-0-1-17, worker)" for messages. */
  readonly node: string
  /** The Swarm node's id. */
  readonly nodeId: string
  /** Whether the node is a manager (demoted after its drain). */
  readonly manager: boolean
  /**
   * Counts the tasks the node runs, then pauses it: no new task lands on it, its own keep
   * running. Call it for every leaving node before `startDrain` on any. On failure restores the
   * node and throws.
   */
  pause(signal: AbortSignal): Promise<void>
  /** Availability=drain: its tasks start moving; the drain timeout starts. On failure restores and throws. */
  startDrain(signal: AbortSignal, say: (message: string) => void): Promise<void>
  /**
   * Waits until no task is left on the node and each service it ran has its tasks running
   * elsewhere, until the drain timeout. On timeout or abort restores the node and throws.
   */
  settle(signal: AbortSignal, say: (message: string) => void): Promise<void>
  /** A manager: demotes it and waits, within the same drain timeout (a worker: nothing). On failure restores and throws. */
  demote(signal: AbortSignal, say: (message: string) => void): Promise<void>
  /** `pause`, `startDrain`, `settle` and `demote` for this one node. */
  drain(signal: AbortSignal, say: (message: string) => void): Promise<void>
  /** Gives the node back (availability as before, a manager promoted again); never throws. */
  restore(): Promise<void>
  /** Forgets the node once its instance is terminated; never throws (a failure is logged). */
  remove(signal: AbortSignal): Promise<void>
}

export interface NodeDrainOptions {
  /** The node or engine label key whose value is the instance id. */
  label: string
  /** Milliseconds to wait for the tasks to move (and for a demotion). */
  timeout: number
  /** Milliseconds between checks while waiting. */
  poll: number
  logger?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void }
}

const TERMINAL = new Set(['complete', 'shutdown', 'failed', 'rejected', 'remove', 'orphaned'])

const lower = (s: string | undefined) => s?.toLowerCase()
const firstLabel = (s: string | undefined) => lower(s)?.split('.')[0]

/** How a node matches an instance (rule number and words), or undefined. */
function matchRule(
  node: SwarmNode,
  i: LeavingInstance,
  label: string,
): { rank: number; how: string } | undefined {
  if (node.Spec?.Labels?.[label] === i.id) return { rank: 1, how: `node label ${label}=${i.id}` }
  if (node.Description?.Engine?.Labels?.[label] === i.id)
    return { rank: 1, how: `engine label ${label}=${i.id}` }
  const host = lower(node.Description?.Hostname)
  if (host) {
    const names = [lower(i.privateDns), lower(i.privateIp), lower(i.id)].filter(Boolean)
    const firsts = [firstLabel(i.privateDns), lower(i.id)].filter(Boolean)
    if (names.includes(host) || firsts.includes(firstLabel(host))) return { rank: 2, how: `hostname ${host}` }
  }
  if (i.privateIp && node.Status?.Addr === i.privateIp) return { rank: 3, how: `address ${i.privateIp}` }
  return undefined
}

/**
 * The node of an instance, or undefined when none matches. Throws E_SWARM_NODE_MATCH when the
 * best rule matches more than one ready node (the instance cannot be told apart).
 */
export function findNode(
  nodes: readonly SwarmNode[],
  instance: LeavingInstance,
  label: string,
): { node: SwarmNode; how: string } | undefined {
  const matches = nodes
    .map((node) => ({ node, m: matchRule(node, instance, label) }))
    .filter((x): x is { node: SwarmNode; m: { rank: number; how: string } } => x.m !== undefined)
  if (matches.length === 0) return undefined
  const best = Math.min(...matches.map((x) => x.m.rank))
  let top = matches.filter((x) => x.m.rank === best)
  const ready = top.filter((x) => x.node.Status?.State === 'ready')
  if (ready.length > 0) top = ready
  if (top.length > 1) {
    throw new NodeMatchError(
      `instance ${instance.id} matches ${top.length} Swarm nodes by ${top[0]!.m.how} (${top.map((x) => x.node.ID).join(', ')}); ` +
        `label the right one with ${label}=${instance.id} (docker node update --label-add)`,
    )
  }
  return { node: top[0]!.node, how: top[0]!.m.how }
}

/**
 * Whether the managers keep a Raft quorum after `leaving` are demoted, one after the other, as
 * Raft's own check (swarmkit's CanRemoveMember): after each removal the reachable managers left
 * must be a majority of the managers left, and at least one must be left. Pure.
 */
export function quorumAfter(
  managers: ReadonlyArray<Pick<SwarmNode, 'ID' | 'ManagerStatus'>>,
  leaving: readonly string[],
): { ok: true } | { ok: false; reason: string } {
  let left = [...managers]
  for (const id of leaving) {
    if (!left.some((m) => m.ID === id)) continue
    left = left.filter((m) => m.ID !== id)
    const reachable = left.filter((m) => m.ManagerStatus?.Reachability === 'reachable').length
    const need = Math.floor(left.length / 2) + 1
    if (left.length === 0) return { ok: false, reason: `${id} is the last manager` }
    if (reachable < need) {
      return {
        ok: false,
        reason: `without ${id}, ${reachable} of ${left.length} managers would be reachable and Raft needs ${need}`,
      }
    }
  }
  return { ok: true }
}

/** Finds, checks and drains the Swarm nodes of instances about to be terminated. */
export class SwarmNodeDrainer {
  constructor(
    private readonly api: SwarmApi,
    private readonly options: NodeDrainOptions,
  ) {}

  /**
   * The node of each instance, checked before anything changes: every serving instance has
   * exactly one node, no manager is the one Tide talks to, and the managers keep their quorum.
   * Instances not serving yet (and without a node) get no handle.
   */
  async prepare(
    instances: readonly LeavingInstance[],
    signal: AbortSignal,
  ): Promise<Map<string, DrainHandle>> {
    const { label } = this.options
    const nodes = await this.api.nodes(signal)
    const found = new Map<string, { node: SwarmNode; how: string }>()
    for (const instance of instances) {
      const match = findNode(nodes, instance, label)
      if (match) {
        const other = [...found.entries()].find(([, f]) => f.node.ID === match.node.ID)
        if (other) {
          throw new NodeMatchError(
            `instances ${other[0]} and ${instance.id} both match Swarm node ${match.node.ID} (${match.how}); label each node with ${label}=<instance id>`,
          )
        }
        found.set(instance.id, match)
      } else if (instance.required) {
        const known = [instance.privateDns, instance.privateIp].filter(Boolean).join(', ')
        throw new NodeMatchError(
          `no Swarm node matches instance ${instance.id}${known ? ` (${known})` : ''}: none has the label ${label}=${instance.id}, ` +
            'that hostname or that address; nothing was drained or terminated. Label its node ' +
            `(docker node update --label-add ${label}=${instance.id} <node>) or start its dockerd with --label ${label}=${instance.id}`,
        )
      }
    }
    const leavingManagers = [...found.values()]
      .filter((f) => f.node.Spec?.Role === 'manager')
      .map((f) => f.node)
    if (leavingManagers.length > 0) {
      const self = await this.api.selfNodeId(signal)
      for (const m of leavingManagers) {
        if (m.ID === self) {
          const instance = [...found.entries()].find(([, f]) => f.node.ID === m.ID)![0]
          throw new QuorumError(
            `instance ${instance} is the Swarm manager Tide talks to (node ${m.ID}); it cannot demote itself. ` +
              'Point Tide at another manager, or protect that instance from scale-in',
          )
        }
      }
      const managers = nodes.filter((n) => n.Spec?.Role === 'manager')
      const q = quorumAfter(
        managers,
        leavingManagers.map((m) => m.ID),
      )
      if (!q.ok)
        throw new QuorumError(
          `removing manager nodes would lose the Raft quorum: ${q.reason}; nothing was changed`,
        )
    }
    const handles = new Map<string, DrainHandle>()
    for (const [id, f] of found) handles.set(id, this.handle(id, f.node, f.how))
    return handles
  }

  private handle(instance: string, node: SwarmNode, how: string): DrainHandle {
    const api = this.api
    const { timeout, poll, logger } = this.options
    const manager = node.Spec?.Role === 'manager'
    const was = node.Spec?.Availability ?? 'active'
    const name = `node ${node.ID} (${node.Description?.Hostname ?? '?'}, ${manager ? 'manager' : 'worker'}, found by ${how})`
    let demoted = false
    const restore = async () => {
      const signal = AbortSignal.timeout(30_000)
      try {
        await api.updateNode(
          node.ID,
          (n) =>
            n.Spec?.Availability === was && (!demoted || n.Spec?.Role === 'manager')
              ? undefined
              : { ...n.Spec, Availability: was, ...(demoted ? { Role: 'manager' as const } : {}) },
          signal,
        )
        logger?.info(
          { node: node.ID, instance },
          `${name}: made ${was} again${demoted ? ' and promoted' : ''}`,
        )
      } catch (err) {
        logger?.warn(
          { node: node.ID, instance, err: errorMessage(err) },
          `${name}: could not be made ${was} again: ${errorMessage(err)}`,
        )
      }
    }
    // Set by pause (what the node ran before anything moved) and startDrain (when time is up).
    let before: SwarmNodeTask[] | undefined
    const services = new Map<string, number>()
    let deadline: number | undefined
    /** Runs one step; a step that fails puts the node back before the error goes on. */
    const step = async (run: () => Promise<void>) => {
      try {
        await run()
      } catch (err) {
        await restore()
        throw err
      }
    }
    const started = (): number => {
      if (deadline === undefined) throw new Error(`${name}: startDrain must come first`)
      return deadline
    }
    const handle: DrainHandle = {
      node: name,
      nodeId: node.ID,
      manager,
      restore,
      pause: (signal) =>
        step(async () => {
          before = (await api.tasksOnNode(node.ID, signal)).filter(
            (t) => t.DesiredState === 'running' && !TERMINAL.has(t.Status?.State ?? ''),
          )
          for (const t of before) if (t.ServiceID) services.set(t.ServiceID, 0)
          for (const id of services.keys()) services.set(id, await runningTasks(api, id, undefined, signal))
          await api.updateNode(
            node.ID,
            (n) =>
              n.Spec?.Availability === 'pause' || n.Spec?.Availability === 'drain'
                ? undefined
                : { ...n.Spec, Availability: 'pause' },
            signal,
          )
        }),
      startDrain: (signal, say) =>
        step(async () => {
          if (!before) await handle.pause(signal)
          deadline = Date.now() + timeout
          await api.updateNode(
            node.ID,
            (n) => (n.Spec?.Availability === 'drain' ? undefined : { ...n.Spec, Availability: 'drain' }),
            signal,
          )
          const count = before!.length
          say(`draining ${name}: ${count} task${count === 1 ? '' : 's'} to move`)
        }),
      settle: (signal, say) =>
        step(async () => {
          const end = started()
          for (;;) {
            const waiting = await stillWaiting(api, node.ID, services, signal)
            if (waiting.length === 0) break
            if (Date.now() >= end) {
              throw new DrainTimeoutError(
                `instance ${instance}: ${name} drained, but after ${Math.round(timeout / 1000)}s ${waiting.join('; ')}; ` +
                  `the node was made ${was} again and the instance kept`,
              )
            }
            await sleep(Math.min(poll, Math.max(1, end - Date.now())), undefined, { signal })
          }
          say(`${name}: drained, its tasks run elsewhere`)
        }),
      demote: (signal, say) =>
        step(async () => {
          if (!manager) return
          const end = started()
          // The quorum was checked in prepare; a manager that became unreachable since is Raft's to refuse.
          await api.updateNode(
            node.ID,
            (n) => (n.Spec?.Role === 'worker' ? undefined : { ...n.Spec, Role: 'worker' }),
            signal,
          )
          demoted = true
          for (;;) {
            const now = await api.node(node.ID, signal)
            if (!now.ManagerStatus && now.Spec?.Role === 'worker') break
            if (Date.now() >= end) {
              throw new DrainTimeoutError(
                `instance ${instance}: ${name} was still a manager ${Math.round(timeout / 1000)}s after its drain started; it was made ${was} and promoted again, and the instance kept`,
              )
            }
            await sleep(Math.min(poll, Math.max(1, end - Date.now())), undefined, { signal })
          }
          say(`${name}: demoted to worker`)
        }),
      async drain(signal, say) {
        await handle.pause(signal)
        await handle.startDrain(signal, say)
        await handle.settle(signal, say)
        await handle.demote(signal, say)
      },
      async remove(signal) {
        try {
          await api.removeNode(node.ID, signal)
          logger?.info({ node: node.ID, instance }, `${name}: removed from the swarm`)
        } catch (err) {
          logger?.warn(
            { node: node.ID, instance, err: errorMessage(err) },
            `${name}: could not be removed from the swarm (docker node rm): ${errorMessage(err)}`,
          )
        }
      },
    }
    return handle
  }
}

/** Running tasks of a service, not counting those on `exceptNode`. */
async function runningTasks(
  api: SwarmApi,
  serviceId: string,
  exceptNode: string | undefined,
  signal: AbortSignal,
): Promise<number> {
  const tasks = await api.tasks(serviceId, signal)
  return tasks.filter((t) => t.Status?.State === 'running' && t.NodeID !== exceptNode).length
}

/**
 * What a drain still waits for, in words: tasks still on the node, and replicated services with
 * fewer tasks running elsewhere than they had running before the drain (at most their replica
 * count). A global service's task stops with the drain and does not move; a service removed
 * meanwhile counts as moved.
 */
async function stillWaiting(
  api: SwarmApi,
  nodeId: string,
  services: Map<string, number>,
  signal: AbortSignal,
): Promise<string[]> {
  const waiting: string[] = []
  const on: SwarmNodeTask[] = (await api.tasksOnNode(nodeId, signal)).filter(
    (t) => !TERMINAL.has(t.Status?.State ?? ''),
  )
  if (on.length > 0) waiting.push(`${on.length} task${on.length === 1 ? ' is' : 's are'} still on the node`)
  for (const [id, had] of services) {
    let name = id
    let need = had
    let running: number
    try {
      const service = await api.inspect(id, signal)
      name = service.Spec?.Name ?? id
      const replicated = service.Spec?.Mode?.Replicated
      // A global service runs one task per node: the drained node's task stops and does not move.
      if (!replicated) continue
      need = Math.min(had, replicated.Replicas ?? had)
      running = await runningTasks(api, id, nodeId, signal)
    } catch (err) {
      if ((err as { code?: string }).code === 'E_SWARM_SERVICE_NOT_FOUND') continue
      throw err
    }
    if (running < need) waiting.push(`service ${name} has ${running} of ${need} tasks running elsewhere`)
  }
  return waiting
}
