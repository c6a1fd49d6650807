/**
 * Node scaling and rescheduling for real: a worker Auto Scaling group in moto is scaled up by
 * `/v1/scale-nodes`, a second dockerd joins the real Swarm as that worker, Tide notices it
 * (≥, not ==), force-updates the services labelled `com.df.reschedule=true`, and their tasks
 * spread onto the new node while unlabelled services stay where they were.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { createReceiverServer } from '../../src/alertmanager/server.js'
import { silentLogger } from '../../src/engine/log.js'
import { NodeWaiter, SwarmApi } from '../../src/targets/docker-swarm/index.js'
import { type Moto, MOTO_CREDENTIALS, requireMoto } from '../support/moto.js'
import {
  acquireSwarmNodes,
  eventually,
  nodeReceiver,
  requireSwarm,
  seedAlerts,
  type Swarm,
  type SwarmNodes,
} from '../support/swarm.js'

const skip = requireSwarm() || requireMoto()

const TICK = /^Waited \d+ seconds for a total of \d+ worker nodes to come online$/

describe('node scaling and rescheduling on a real Swarm with moto', { skip }, () => {
  let nodes: SwarmNodes
  let swarm: Swarm
  let moto: Moto
  let api: SwarmApi

  before(async () => {
    nodes = await acquireSwarmNodes()
    ;({ swarm, moto } = nodes)
    api = new SwarmApi({ host: swarm.host })
  })
  after(async () => {
    await nodes?.close()
  })

  test('the node waiter counts ready nodes with ≥, times out with a clear error, and a newer wait cancels an older one', async () => {
    const waiter = new NodeWaiter(api)
    const managers = await api.readyNodes('manager', AbortSignal.timeout(10_000))
    assert.ok(managers >= 1)
    // More nodes than asked for is enough (Docker Scaler waited for exact equality), and the
    // first check is at once (Docker Scaler's came one full interval, 60s, after the start).
    const started = Date.now()
    assert.deepEqual(
      await waiter.wait({ role: 'manager', atLeast: 1, interval: 3_600_000, timeout: 7_200_000 }),
      {
        outcome: 'ready',
        ready: managers,
      },
    )
    assert.ok(Date.now() - started < 30_000)
    await assert.rejects(
      waiter.wait({ role: 'worker', atLeast: 50, interval: 100, timeout: 600 }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'E_SWARM_TIMEOUT')
        assert.match(err.message, /^Timeout: waited [\d.]+ seconds for 50 worker nodes to activate/)
        return true
      },
    )
    const older = waiter.wait({ role: 'worker', atLeast: 50, interval: 100, timeout: 60_000 })
    const newer = waiter.wait({ role: 'manager', atLeast: 1, interval: 100, timeout: 60_000 })
    assert.deepEqual(await older, { outcome: 'cancelled' })
    assert.equal((await newer).outcome, 'ready')
    assert.equal(waiter.waiting, false)
  })

  test('scale-nodes up: the ASG grows, Tide waits for the worker to join, then reschedules labelled services onto it', async () => {
    await moto.createGroup('swarm-workers', { min: 0, max: 3, desired: 0 })
    const scaler = nodeReceiver(nodes, api, {
      nodes: {
        worker: { asg: 'swarm-workers', min: 0, max: 2 },
      },
      reschedule: { interval: '300ms', timeout: '2m' },
    })
    const { receiver, events } = scaler
    const server = createReceiverServer(receiver, { listen: '127.0.0.1:0', logger: silentLogger() })
    const base = await server.start()
    try {
      // Both on the manager only, as a swarm of one node leaves them.
      const labelled = await swarm.createService({ replicas: 4, labels: { 'com.df.reschedule': 'true' } })
      const pinned = await swarm.createService({ replicas: 2 })
      await eventually('6 running tasks', 90_000, async () => {
        return (
          (await swarm.runningTasks(labelled)).length === 4 && (await swarm.runningTasks(pinned)).length === 2
        )
      })
      const pinnedNodes = new Set((await swarm.runningTasks(pinned)).map((t) => t.NodeID))

      const res = await fetch(`${base}/v1/scale-nodes?by=1&type=worker`, {
        method: 'POST',
        // The tutorial's curl: the direction in the body's groupLabels, no JSON content type.
        body: '{"groupLabels": {"scale": "up"}}',
      })
      const body = (await res.json()) as { status: string; message: string }
      assert.equal(res.status, 200, body.message)
      assert.equal(body.message, 'Changing the number of worker nodes on aws from 0 to 1')
      assert.equal((await moto.describe('swarm-workers')).DesiredCapacity, 1)
      assert.equal((await moto.describe('swarm-workers')).MinSize, 0, 'the ASG bounds are not overwritten')
      assert.equal(receiver.waiter.waiting, true)

      // The "instance" boots and joins the swarm as a worker, its instance id in an engine label
      // (as user-data would set it), so the scale-down below can find and drain its node.
      const instance = (await moto.describe('swarm-workers')).Instances![0]!.InstanceId!
      const worker = await nodes.addWorker({ engineLabels: { 'tide.instance-id': instance } })
      await receiver.idle()

      const done = events.find((e) => e.group === 'reschedule' && e.kind === 'applied')
      assert.ok(
        done,
        `no reschedule event in ${JSON.stringify(events.map((e) => [e.kind, e.group, e.message]))}`,
      )
      assert.match(done.message ?? '', new RegExp(`^1 worker nodes are up, .*${labelled}.* rescheduled$`))
      assert.ok(
        events.some(
          (e) =>
            e.kind === 'progress' &&
            e.message === 'Waiting for worker nodes to scale from 0 to 1 for rescheduling',
        ),
      )
      assert.deepEqual(
        events.filter((e) => e.group === 'aws').map((e) => [e.kind, e.trigger, e.from, e.to, e.target]),
        [
          ['started', 'scale_nodes', 0, 1, 'aws-asg'],
          ['applied', 'scale_nodes', 0, 1, 'aws-asg'],
        ],
      )
      // Seed 003's alerts, in order (seeds.md §3.6); the checks while waiting are pending alerts.
      const alerts = seedAlerts(events)
      const ticks = alerts.filter((a) => TICK.test(a[4]!))
      assert.ok(ticks.length >= 1, 'at least one check found the worker missing')
      for (const tick of ticks) {
        assert.deepEqual(tick.slice(0, 4), [
          'reschedule_service',
          'reschedule',
          'pending',
          'Waiting for nodes to scale',
        ])
      }
      assert.deepEqual(
        alerts.filter((a) => !TICK.test(a[4]!)),
        [
          [
            'scale_nodes',
            'aws',
            'success',
            'Scale nodes up on: aws, by: 1, type: worker',
            'Changing the number of worker nodes on aws from 0 to 1',
          ],
          [
            'scale_nodes',
            'reschedule',
            'pending',
            'Wait to reschedule',
            'Waiting for worker nodes to scale from 0 to 1 for rescheduling',
          ],
          ['reschedule_service', 'reschedule', 'success', done.message!, done.message!],
        ],
      )
      // The forced update spread the labelled service over both nodes; the other one did not move.
      await eventually('a labelled task on the new worker', 90_000, async () => {
        const tasks = await swarm.runningTasks(labelled)
        return tasks.length === 4 && tasks.some((t) => t.NodeID === worker.nodeId)
      })
      const pinnedNow = await swarm.runningTasks(pinned)
      assert.ok(
        pinnedNow.every((t) => pinnedNodes.has(t.NodeID)),
        'the unlabelled service was not rescheduled',
      )

      // Down again: the worker's node is drained and removed, then its instance terminated; no
      // wait, no rescheduling; at the minimum, the bound message.
      const down = await fetch(`${base}/v1/scale-nodes?scale=down&type=worker`, { method: 'POST' })
      assert.equal(
        ((await down.json()) as { message: string }).message,
        'Changing the number of worker nodes on aws from 1 to 0',
      )
      assert.equal(receiver.waiter.waiting, false)
      assert.ok(!(await api.nodes(AbortSignal.timeout(10_000))).some((n) => n.ID === worker.nodeId))
      const moved = await swarm.runningTasks(labelled)
      assert.equal(moved.length, 4, 'the drained worker’s tasks run elsewhere')
      assert.ok(moved.every((t) => t.NodeID !== worker.nodeId))
      const count = events.length
      const atMin = await fetch(`${base}/v1/scale-nodes?scale=down&type=worker`, { method: 'POST' })
      assert.equal(
        ((await atMin.json()) as { message: string }).message,
        'worker nodes are already descaled to the minimum number of 0 nodes',
      )
      assert.equal(events.length, count, 'no alert at the minimum by default (ALERT_NODE_MIN=false)')
      const badType = await fetch(`${base}/v1/scale-nodes?scale=up&type=robot`, { method: 'POST' })
      assert.equal(badType.status, 400)
      assert.equal(
        ((await badType.json()) as { message: string }).message,
        'Incorrect node type: robot, type can only be worker or manager',
      )
      // Bounds from the alerting service's labels (com.df.scaleWorkerNodeMax).
      const exporter = await swarm.createService({
        replicas: 1,
        labels: { 'com.df.scaleWorkerNodeMax': '0' },
      })
      const capped = await fetch(`${base}/v1/scale-nodes?scale=up&type=worker&service=${exporter}`, {
        method: 'POST',
      })
      assert.equal(
        ((await capped.json()) as { message: string }).message,
        'worker nodes are already scaled to the maximum number of 0 nodes',
      )
      // At the maximum an alert by default (ALERT_NODE_MAX=true), the step from the request's default.
      assert.deepEqual(seedAlerts(events.slice(-1)), [
        [
          'scale_nodes',
          'aws',
          'success',
          'Scale nodes up on: aws, by: 1, type: worker',
          'worker nodes are already scaled to the maximum number of 0 nodes',
        ],
      ])
      assert.equal((await moto.describe('swarm-workers')).DesiredCapacity, 0)
      assert.ok(MOTO_CREDENTIALS.accessKeyId)
    } finally {
      await server.close()
      await scaler.close()
    }
  })

  test('node waits: a newer scale-up cancels the older wait (a success alert); a timeout is an error alert', async () => {
    // Far more workers than will ever join, so both waits really wait whatever the swarm holds.
    await moto.createGroup('swarm-workers-wait', { min: 0, max: 20, desired: 10 })
    const scaler = nodeReceiver(nodes, api, {
      nodes: {
        worker: { asg: 'swarm-workers-wait', min: 0, max: 20, up_by: 2 },
        // These instances are no Swarm nodes: the scale-down below is Docker Scaler's (AWS picks).
        drain: { enabled: false },
      },
      reschedule: { interval: '200ms', timeout: '1500ms' },
    })
    const { receiver, events } = scaler
    try {
      const signal = () => AbortSignal.timeout(60_000)
      const none = { groupLabels: {}, commonLabels: {}, commonAnnotations: {}, alerts: [] }
      const first = await receiver.run(
        receiver.nodeAction(new URLSearchParams('scale=up&type=worker'), none),
        signal(),
      )
      assert.equal(first.message, 'Changing the number of worker nodes on aws from 10 to 12')
      assert.equal(receiver.waiter.waiting, true)
      const second = await receiver.run(
        receiver.nodeAction(new URLSearchParams('scale=up&type=worker&by=1'), none),
        signal(),
      )
      assert.equal(second.message, 'Changing the number of worker nodes on aws from 12 to 13')
      // A scale-down while a wait is in progress restarts it with the new count (as the original).
      const third = await receiver.run(
        receiver.nodeAction(new URLSearchParams('scale=down&type=worker&by=1'), none),
        signal(),
      )
      assert.equal(third.message, 'Changing the number of worker nodes on aws from 13 to 12')
      await receiver.idle()
      assert.equal(receiver.waiter.waiting, false)

      const alerts = seedAlerts(events).filter((a) => !TICK.test(a[4]!))
      assert.deepEqual(alerts.slice(0, 5), [
        [
          'scale_nodes',
          'aws',
          'success',
          // The step used (the configured up_by 2), not "by: 0" for a request that gave none.
          'Scale nodes up on: aws, by: 2, type: worker',
          'Changing the number of worker nodes on aws from 10 to 12',
        ],
        [
          'scale_nodes',
          'reschedule',
          'pending',
          'Wait to reschedule',
          'Waiting for worker nodes to scale from 10 to 12 for rescheduling',
        ],
        [
          'scale_nodes',
          'aws',
          'success',
          'Scale nodes up on: aws, by: 1, type: worker',
          'Changing the number of worker nodes on aws from 12 to 13',
        ],
        [
          'scale_nodes',
          'reschedule',
          'pending',
          'Wait to reschedule',
          'Waiting for worker nodes to scale from 12 to 13 for rescheduling',
        ],
        [
          'reschedule_service',
          'reschedule',
          'success',
          'Rescheduling is canceled by another rescheduler',
          'Rescheduling is canceled by another rescheduler',
        ],
      ])
      assert.deepEqual(alerts.slice(5, 8), [
        [
          'scale_nodes',
          'aws',
          'success',
          'Scale nodes down on: aws, by: 1, type: worker',
          'Changing the number of worker nodes on aws from 13 to 12',
        ],
        [
          'scale_nodes',
          'reschedule',
          'pending',
          'Wait to reschedule',
          'Waiting for worker nodes to scale from 13 to 12 for rescheduling',
        ],
        [
          'reschedule_service',
          'reschedule',
          'success',
          'Rescheduling is canceled by another rescheduler',
          'Rescheduling is canceled by another rescheduler',
        ],
      ])
      assert.equal(alerts.length, 9)
      const [alertname, service, status, request, summary] = alerts[8]!
      assert.deepEqual(
        [alertname, service, status, request],
        ['reschedule_service', 'reschedule', 'error', 'Waiting for nodes to scale'],
      )
      assert.match(summary!, /^Timeout: waited [\d.]+ seconds for 12 worker nodes to activate/)
      assert.ok(
        seedAlerts(events).some((a) => /for a total of 12 worker nodes/.test(a[4]!)),
        'the newest wait reports its checks',
      )

      // Stopping Tide ends a wait in progress at once, without a misleading "canceled" alert.
      await receiver.run(
        receiver.nodeAction(new URLSearchParams('scale=up&type=worker&by=1'), none),
        signal(),
      )
      assert.equal(receiver.waiter.waiting, true)
      const count = events.length
      await receiver.close()
      assert.equal(receiver.waiter.waiting, false)
      assert.deepEqual(
        events.slice(count).filter((e) => e.kind !== 'progress'),
        [],
        'nothing but the checks already under way after close',
      )
    } finally {
      await scaler.close()
    }
  })
})
