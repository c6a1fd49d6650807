/**
 * Draining a Swarm node before its instance goes, for real: moto plays the Auto Scaling group and
 * EC2, extra dockerds play its instances, each joined to the real Swarm under the instance's
 * private DNS name (its own UTS namespace) or carrying its instance id in a label. Tide finds the
 * node, drains it, waits until its tasks run elsewhere, demotes a manager, terminates the instance
 * with decrement and removes the node; a drain that cannot finish puts the node back and keeps the
 * instance; a node it cannot find, or a manager it must not remove, is refused before anything
 * changes. The same through the receiver's `/v1/scale-nodes`.
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

  test('an InService instance whose node cannot be found is refused before anything changes (E_SWARM_NODE_MATCH)', async () => {
    const { asg, first: z } = await oneInstanceGroup()
    const t = target(asg)
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
