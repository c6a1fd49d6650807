/**
 * Draining a Swarm node before its instance goes, for real: moto plays the Auto Scaling group and
 * EC2, extra dockerds play its instances, each joined to the real Swarm under the instance's
 * private DNS name (its own UTS namespace) or carrying its instance id in a label. Tide finds the
 * node, drains it, waits until its tasks run elsewhere, demotes a manager, terminates the instance
 * with decrement and removes the node; a drain that cannot finish puts the node back and keeps the
 * instance; a node it cannot find, or a manager it must not remove, is refused before anything
 * changes. Several victims drain together: all are drained before any is terminated, and a task
 * moved off one never lands on another. With `unmatched: terminate` an instance without a node
 * goes undrained. The same through the receiver's `/v1/scale-nodes`.
 */
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import { SetDesiredCapacityCommand } from '@aws-sdk/client-auto-scaling'
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2'
import { createReceiverServer } from '../../src/alertmanager/server.js'
import { silentLogger } from '../../src/engine/log.js'
import {
  type AwsAsgTargetConfig,
  awsAsgTargetSchema,
  createAwsAsgTarget,
} from '../../src/targets/aws-asg/index.js'
import { type SwarmNode, SwarmApi } from '../../src/targets/docker-swarm/index.js'
import { type Moto, MOTO_CREDENTIALS, requireMoto } from '../support/moto.js'
import {
  acquireSwarmNodes,
  eventually,
  nodeReceiver,
  requireSwarm,
  type Swarm,
  type SwarmNodes,
  type Worker,
  type WorkerOptions,
} from '../support/swarm.js'

const skip = requireSwarm() || requireMoto()
const LABEL = 'tide.instance-id'
const signal = () => AbortSignal.timeout(180_000)

describe('draining Swarm nodes before their instances go (real Swarm, moto)', { skip }, () => {
  let nodes: SwarmNodes
  let swarm: Swarm
  let moto: Moto
  let ec2: EC2Client
  let api: SwarmApi
  let n = 0

  before(async () => {
    nodes = await acquireSwarmNodes()
    ;({ swarm, moto } = nodes)
    ec2 = new EC2Client({ endpoint: moto.endpoint, region: moto.region, credentials: MOTO_CREDENTIALS })
    api = new SwarmApi({ host: swarm.host })
  })
  after(async () => {
    ec2?.destroy()
    await nodes?.close()
  })

  async function worker(options: WorkerOptions = {}): Promise<Worker> {
    const w = await nodes.addWorker(options)
    await eventually(`node ${w.nodeId} ready`, 60_000, async () => {
      const node = (await api.node(w.nodeId, signal())) as SwarmNode
      return node.Status?.State === 'ready'
    })
    return w
  }

  /** The group's instances as EC2 has them, oldest launch first. */
  async function instances(asg: string) {
    const ids = (await moto.describe(asg)).Instances!.map((i) => i.InstanceId!)
    const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: ids }))
    return (out.Reservations ?? [])
      .flatMap((r) => r.Instances ?? [])
      .map((i) => ({
        id: i.InstanceId!,
        dns: i.PrivateDnsName!,
        ip: i.PrivateIpAddress!,
        launch: i.LaunchTime!,
      }))
      .sort((a, b) => a.launch.getTime() - b.launch.getTime())
  }

  /** A new group (max 3) with `count` instances, as EC2 has them. */
  async function group(count: number) {
    const asg = `drain-${++n}`
    await moto.createGroup(asg, { min: 0, max: 3, desired: count })
    const all = await instances(asg)
    assert.equal(all.length, count)
    return { asg, all }
  }

  /** Every task the swarm has of a service, whatever its state (its history included). */
  async function history(service: string) {
    return (await swarm.docker.listTasks({ filters: { service: [service] } })) as Array<{
      ID: string
      Slot?: number
      NodeID?: string
      CreatedAt?: string
      DesiredState?: string
      Status?: { State?: string }
    }>
  }

  /** A new group (max 3) with one instance, as EC2 has it. */
  async function oneInstanceGroup() {
    const asg = `drain-${++n}`
    await moto.createGroup(asg, { min: 0, max: 3, desired: 1 })
    const [first] = await instances(asg)
    return { asg, first: first! }
  }

  function target(asg: string, extra: Partial<Record<keyof AwsAsgTargetConfig, unknown>> = {}) {
    const config = awsAsgTargetSchema.parse({
      kind: 'aws-asg',
      name: asg,
      region: moto.region,
      endpoint: moto.endpoint,
      env_file: moto.envFile(),
      poll_interval: '100ms',
      ready_timeout: '30s',
      swarm: { host: swarm.host, drain_timeout: '90s', poll: '300ms' },
      ...extra,
    })
    return createAwsAsgTarget('nodes', config)
  }

  const nodeIds = async () => new Set((await api.nodes(signal())).map((x) => x.ID))
  const tasksOn = async (service: string, nodeId: string) =>
    (await swarm.runningTasks(service)).filter((t) => t.NodeID === nodeId).length

  /** A new service of `replicas` tasks, once they all run and some run on `w`. */
  async function serviceOn(w: Worker, replicas: number): Promise<string> {
    const name = await swarm.createService({ replicas })
    await eventually(`${replicas} tasks running, some on the worker`, 90_000, async () => {
      return (await swarm.runningTasks(name)).length === replicas && (await tasksOn(name, w.nodeId)) > 0
    })
    return name
  }

  test('a worker found by its hostname is drained, its tasks move, then its instance is terminated and the node removed', async () => {
    const { asg, first: x } = await oneInstanceGroup()
    const w = await worker({ hostname: x.dns })
    const web = await serviceOn(w, 4)

    const t = target(asg)
    const messages: string[] = []
    const result = await t.scale(0, { reason: 'test', progress: (m) => messages.push(m) }, signal())
    assert.deepEqual(result.removed, [x.id])

    const order = [
      /draining node .*found by hostname/,
      /drained, its tasks run elsewhere/,
      new RegExp(`terminating ${x.id}`),
    ]
    const at = order.map((re) => messages.findIndex((m) => re.test(m)))
    assert.ok(
      at.every((i) => i >= 0) && at[0]! < at[1]! && at[1]! < at[2]!,
      `drain, then terminate:\n${messages.join('\n')}`,
    )
    const running = await swarm.runningTasks(web)
    assert.equal(running.length, 4, 'every task runs elsewhere')
    assert.ok(running.every((task) => task.NodeID !== w.nodeId))
    assert.equal((await moto.describe(asg)).DesiredCapacity, 0, 'terminated with decrement')
    assert.ok(!(await nodeIds()).has(w.nodeId), 'the node was removed from the swarm')
    await t.close()
  })

  test('nodes found by engine label and node label; the newest instance leaves, the other node stays active', async () => {
    const asg = `drain-${++n}`
    await moto.createGroup(asg, { min: 0, max: 3, desired: 1 })
    await sleep(1100) // EC2 launch times have one-second resolution
    await moto.client.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: asg, DesiredCapacity: 2 }))
    const [older, newer] = await instances(asg)
    assert.ok(older!.launch < newer!.launch)
    // Hostnames ("vm" here) and addresses (127.0.0.1) match no instance: only the labels can.
    const w1 = await worker({ engineLabels: { [LABEL]: older!.id } })
    const w2 = await worker()
    await api.updateNode(w2.nodeId, (node) => ({ ...node.Spec, Labels: { [LABEL]: newer!.id } }), signal())

    const t = target(asg)
    const messages: string[] = []
    const result = await t.scale(1, { reason: 'test', progress: (m) => messages.push(m) }, signal())
    assert.deepEqual(result.removed, [newer!.id], 'the newest instance goes first')
    assert.ok(
      messages.some((m) => /node label tide\.instance-id=/.test(m)),
      messages.join('\n'),
    )
    assert.ok(!(await nodeIds()).has(w2.nodeId))
    const kept = await api.node(w1.nodeId, signal())
    assert.equal(kept.Spec?.Availability, 'active')
    const group = await moto.describe(asg)
    assert.equal(group.DesiredCapacity, 1)
    assert.deepEqual(
      group.Instances?.map((i) => i.InstanceId),
      [older!.id],
    )
    await t.close()
  })

  test('tasks that cannot move: after drain_timeout the node is active again, its tasks return and the instance stays (E_SWARM_DRAIN_TIMEOUT)', async () => {
    const { asg, first: y } = await oneInstanceGroup()
    const w = await worker({ hostname: y.dns })
    const pinned = await swarm.createService({ replicas: 1, constraints: [`node.id==${w.nodeId}`] })
    await eventually(
      'the pinned task runs on the worker',
      90_000,
      async () => (await tasksOn(pinned, w.nodeId)) === 1,
    )

    const t = target(asg, { swarm: { host: swarm.host, drain_timeout: '3s', poll: '300ms' } })
    await assert.rejects(t.scale(0, { reason: 'test' }, signal()), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'E_SWARM_DRAIN_TIMEOUT')
      assert.match(err.message, new RegExp(`instance ${y.id}: node ${w.nodeId}`))
      assert.match(err.message, /has 0 of 1 tasks running elsewhere/)
      assert.match(err.message, /made active again and the instance kept/)
      return true
    })
    assert.equal((await api.node(w.nodeId, signal())).Spec?.Availability, 'active')
    const group = await moto.describe(asg)
    assert.equal(group.DesiredCapacity, 1)
    assert.deepEqual(
      group.Instances?.map((i) => [i.InstanceId, i.LifecycleState]),
      [[y.id, 'InService']],
    )
    await eventually(
      'the pinned task runs again',
      90_000,
      async () => (await tasksOn(pinned, w.nodeId)) === 1,
    )
    await t.close()
  })

  for (const unmatched of [undefined, 'refuse'] as const)
    test(`an InService instance whose node cannot be found is refused before anything changes (E_SWARM_NODE_MATCH; unmatched: ${unmatched ?? 'default'})`, async () => {
      const { asg, first: z } = await oneInstanceGroup()
      const t = target(
        asg,
        unmatched ? { swarm: { host: swarm.host, drain_timeout: '90s', poll: '300ms', unmatched } } : {},
      )
      await assert.rejects(t.scale(0, { reason: 'test' }, signal()), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'E_SWARM_NODE_MATCH')
        assert.match(
          err.message,
          new RegExp(`no Swarm node matches instance ${z.id} \\(${z.dns}, ${z.ip.replace(/\./g, '\\.')}\\)`),
        )
        assert.match(err.message, /nothing was drained or terminated/)
        return true
      })
      assert.equal((await moto.describe(asg)).DesiredCapacity, 1)
      await t.close()
    })

  test('two victims drain together: both nodes drain before either instance goes, and no task moves twice', async () => {
    const { asg, all } = await group(2)
    const [a, b] = await Promise.all(all.map((x) => worker({ hostname: x.dns })))
    const victims = new Set([a!.nodeId, b!.nodeId])
    // Spread over the manager and both workers: two tasks each, so draining one victim alone
    // would put a task on the other.
    const web = await swarm.createService({ replicas: 6 })
    await eventually('6 tasks running, some on each worker', 90_000, async () => {
      return (
        (await swarm.runningTasks(web)).length === 6 &&
        (await tasksOn(web, a!.nodeId)) > 0 &&
        (await tasksOn(web, b!.nodeId)) > 0
      )
    })
    const onVictims = (await swarm.runningTasks(web)).filter((task) => victims.has(task.NodeID!)).length
    const startedAt = Date.now()

    const t = target(asg)
    const messages: string[] = []
    const result = await t.scale(0, { reason: 'test', progress: (m) => messages.push(m) }, signal())
    assert.deepEqual(new Set(result.removed), new Set(all.map((x) => x.id)))

    const log = messages.join('\n')
    const firstTerminate = messages.findIndex((m) => /terminating i-/.test(m))
    for (const w of [a!, b!]) {
      const drained = messages.findIndex((m) => m.includes(`draining node ${w.nodeId}`))
      assert.ok(
        drained >= 0 && drained < firstTerminate,
        `node ${w.nodeId} drains before any terminate:\n${log}`,
      )
    }
    const emptied = messages
      .map((m, i) => (/drained, its tasks run elsewhere/.test(m) ? i : -1))
      .filter((i) => i >= 0)
    assert.equal(emptied.length, 2, log)
    assert.ok(
      emptied.every((i) => i < firstTerminate),
      `both empty before any terminate:\n${log}`,
    )

    const running = await swarm.runningTasks(web)
    assert.equal(running.length, 6, 'every task runs again')
    assert.ok(
      running.every((task) => !victims.has(task.NodeID!)),
      'all on the node(s) that stay',
    )
    // Task history: each task that ran on a victim was replaced once, on a node that stays; no
    // replacement ever landed on a victim.
    const tasks = await history(web)
    assert.equal(tasks.length, 6 + onVictims, `6 tasks plus one replacement per task moved (${onVictims})`)
    const late = tasks.filter((task) => victims.has(task.NodeID!) && Date.parse(task.CreatedAt!) >= startedAt)
    assert.deepEqual(late, [], 'no task was placed on a leaving node during the scale-in')
    const slots = new Map<number, number>()
    for (const task of tasks) slots.set(task.Slot!, (slots.get(task.Slot!) ?? 0) + 1)
    assert.ok(
      [...slots.values()].every((count) => count <= 2),
      `no slot moved twice: ${[...slots]}`,
    )

    const g = await moto.describe(asg)
    assert.equal(g.DesiredCapacity, 0, 'terminated with decrement')
    const left = await nodeIds()
    assert.ok(!left.has(a!.nodeId) && !left.has(b!.nodeId), 'both nodes removed from the swarm')
    await t.close()
  })

  test('one victim cannot drain in time: it is made active again and kept, the other still goes, and the scale-in fails naming it', async () => {
    const { asg, all } = await group(2)
    const [stuck, free] = all as [(typeof all)[0], (typeof all)[0]]
    const [ws, wf] = await Promise.all([worker({ hostname: stuck.dns }), worker({ hostname: free.dns })])
    const pinned = await swarm.createService({ replicas: 1, constraints: [`node.id==${ws.nodeId}`] })
    const web = await serviceOn(wf, 3)
    await eventually(
      'the pinned task runs on its worker',
      90_000,
      async () => (await tasksOn(pinned, ws.nodeId)) === 1,
    )

    const t = target(asg, { swarm: { host: swarm.host, drain_timeout: '20s', poll: '300ms' } })
    const messages: string[] = []
    await assert.rejects(
      t.scale(0, { reason: 'test', progress: (m) => messages.push(m) }, signal()),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'E_SWARM_DRAIN_TIMEOUT')
        assert.match(err.message, new RegExp(`^instance ${stuck.id}: node ${ws.nodeId}`))
        assert.match(err.message, /has 0 of 1 tasks running elsewhere/)
        assert.match(err.message, /made active again and the instance kept/)
        assert.match(err.message, new RegExp(`drained and terminated: ${free.id}`))
        return true
      },
    )
    assert.ok(
      messages.some((m) => m.includes(`terminated ${free.id}; kept ${stuck.id}: instance ${stuck.id}`)),
      messages.join('\n'),
    )
    assert.equal(
      (await api.node(ws.nodeId, signal())).Spec?.Availability,
      'active',
      'the stuck node is active again',
    )
    assert.ok(!(await nodeIds()).has(wf.nodeId), 'the drained node was removed')
    const g = await moto.describe(asg)
    assert.equal(g.DesiredCapacity, 1)
    assert.deepEqual(
      g.Instances?.map((i) => [i.InstanceId, i.LifecycleState]),
      [[stuck.id, 'InService']],
    )
    const running = await swarm.runningTasks(web)
    assert.equal(running.length, 3)
    assert.ok(running.every((task) => task.NodeID !== wf.nodeId))
    await eventually(
      'the pinned task runs again',
      90_000,
      async () => (await tasksOn(pinned, ws.nodeId)) === 1,
    )
    await t.close()
  })

  test('unmatched: terminate — an InService instance with no node is terminated without a drain, and the progress says so', async () => {
    const { asg, all } = await group(2)
    const [joined, never] = all as [(typeof all)[0], (typeof all)[0]]
    const w = await worker({ hostname: joined.dns })
    const t = target(asg, {
      swarm: { host: swarm.host, drain_timeout: '90s', poll: '300ms', unmatched: 'terminate' },
    })
    const messages: string[] = []
    const result = await t.scale(0, { reason: 'test', progress: (m) => messages.push(m) }, signal())
    assert.deepEqual(new Set(result.removed), new Set([joined.id, never.id]))
    const log = messages.join('\n')
    assert.ok(
      messages.some((m) =>
        m.includes(
          `terminating ${never.id} without a drain: no Swarm node matches it (swarm.unmatched: terminate)`,
        ),
      ),
      log,
    )
    assert.ok(
      messages.some((m) => m.includes(`draining node ${w.nodeId}`)),
      `the node that exists still drains:\n${log}`,
    )
    assert.ok(!messages.some((m) => m.includes(`terminating ${joined.id} without a drain`)), log)
    assert.equal((await moto.describe(asg)).DesiredCapacity, 0)
    assert.ok(!(await nodeIds()).has(w.nodeId))
    await t.close()
  })

  test('a manager node is drained and demoted before its instance goes; the swarm keeps its manager', async () => {
    const { asg, first: m } = await oneInstanceGroup()
    const w = await worker({ hostname: m.dns, role: 'manager' })
    await eventually('the new manager is reachable', 60_000, async () => {
      const node = await api.node(w.nodeId, signal())
      return node.ManagerStatus?.Reachability === 'reachable'
    })
    const t = target(asg, { role: 'manager' })
    const messages: string[] = []
    const result = await t.scale(0, { reason: 'test', progress: (x) => messages.push(x) }, signal())
    assert.deepEqual(result.removed, [m.id])
    const demoted = messages.findIndex((x) => /demoted to worker/.test(x))
    const terminated = messages.findIndex((x) => x.includes(`terminating ${m.id}`))
    assert.ok(demoted >= 0 && demoted < terminated, messages.join('\n'))
    assert.ok(!(await nodeIds()).has(w.nodeId))
    const info = (await swarm.docker.info()) as { Swarm: { ControlAvailable: boolean; Managers: number } }
    assert.equal(info.Swarm.ControlAvailable, true)
    assert.equal(info.Swarm.Managers, 1)
    await t.close()
  })

  test('removing the manager Tide talks to is refused (E_SWARM_QUORUM) and nothing changes', async () => {
    const { asg, first: s } = await oneInstanceGroup()
    const self = (await api.selfNodeId(signal()))!
    await api.updateNode(
      self,
      (node) => ({ ...node.Spec, Labels: { ...node.Spec?.Labels, [LABEL]: s.id } }),
      signal(),
    )
    try {
      const t = target(asg, { role: 'manager' })
      await assert.rejects(t.scale(0, { reason: 'test' }, signal()), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'E_SWARM_QUORUM')
        assert.match(err.message, new RegExp(`instance ${s.id} is the Swarm manager Tide talks to`))
        return true
      })
      assert.equal((await moto.describe(asg)).DesiredCapacity, 1)
      const node = await api.node(self, signal())
      assert.equal(node.Spec?.Availability, 'active')
      assert.equal(node.Spec?.Role, 'manager')
      await t.close()
    } finally {
      await api.updateNode(
        self,
        (node) => {
          const labels = { ...node.Spec?.Labels }
          delete labels[LABEL]
          return { ...node.Spec, Labels: labels }
        },
        signal(),
      )
    }
  })

  test('/v1/scale-nodes down drains the worker’s node, then terminates its instance with decrement', async () => {
    const { asg, first: z } = await oneInstanceGroup()
    const w = await worker({ hostname: z.dns })
    const web = await serviceOn(w, 2)
    const scaler = nodeReceiver(
      nodes,
      api,
      {
        nodes: {
          worker: { asg, min: 0, max: 2 },
          drain: { timeout: '90s', poll: '300ms' },
        },
      },
      { ec2: true },
    )
    const { receiver, events } = scaler
    const server = createReceiverServer(receiver, { listen: '127.0.0.1:0', logger: silentLogger() })
    const base = await server.start()
    try {
      const res = await fetch(`${base}/v1/scale-nodes?scale=down&type=worker&by=1`, { method: 'POST' })
      const body = (await res.json()) as { status: string; message: string }
      assert.equal(res.status, 200, body.message)
      assert.equal(body.message, 'Changing the number of worker nodes on aws from 1 to 0')
      const running = await swarm.runningTasks(web)
      assert.equal(running.length, 2)
      assert.ok(
        running.every((task) => task.NodeID !== w.nodeId),
        'the tasks moved before the answer',
      )
      assert.ok(!(await nodeIds()).has(w.nodeId))
      const group = await moto.describe(asg)
      assert.equal(group.DesiredCapacity, 0)
      assert.equal(group.MinSize, 0)
      assert.ok(events.some((e) => e.kind === 'applied' && e.trigger === 'scale_nodes'))
    } finally {
      await server.close()
      await scaler.close()
    }
  })
})
