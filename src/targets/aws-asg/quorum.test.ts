/**
 * Several Swarm managers leaving in one scale-in: the Raft quorum must hold after ALL of them
 * leave, checked before anything changes. moto plays the Auto Scaling group; the Swarm side is a
 * Docker Engine on loopback serving `GET /nodes` and `GET /info` as recorded JSON (the shapes of
 * ../shared/apis/docker-engine-swagger.yaml: Node, ManagerStatus, Reachability), and recording
 * every request. A real swarm would need four managers with one of them unreachable: that is
 * three more dockerds, and the shared test swarm's quorum at stake.
 */
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { type Moto, requireMoto, startMoto } from '../../../test/support/moto.js'
import { awsAsgTargetSchema, createAwsAsgTarget } from './index.js'

const skip = requireMoto()
const signal = () => AbortSignal.timeout(60_000)
const LABEL = 'tide.instance-id'

/** A Swarm node as GET /nodes lists it. */
function node(id: string, role: 'manager' | 'worker', reachability?: string, instance?: string) {
  return {
    ID: id,
    Version: { Index: 10 },
    Spec: { Role: role, Availability: 'active', Labels: instance ? { [LABEL]: instance } : {} },
    Description: { Hostname: `host-${id}` },
    Status: { State: reachability === 'unreachable' ? 'down' : 'ready', Addr: '192.0.2.1' },
    ...(role === 'manager'
      ? { ManagerStatus: { Leader: id === 'm0', Reachability: reachability, Addr: `192.0.2.1:2377` } }
      : {}),
  }
}

describe(
  'aws-asg: several managers leaving together keep the Raft quorum (moto, recorded engine)',
  { skip },
  () => {
    let moto: Moto
    let engine: Server
    let host = ''
    let nodes: unknown[] = []
    const requests: string[] = []

    before(async () => {
      moto = await startMoto()
      engine = createServer((req, res) => {
        requests.push(`${req.method} ${req.url}`)
        const path = (req.url ?? '').replace(/^\/v[\d.]+/, '').split('?')[0]
        res.setHeader('content-type', 'application/json')
        if (req.method === 'GET' && path === '/nodes') return res.end(JSON.stringify(nodes))
        if (req.method === 'GET' && path === '/info')
          return res.end(JSON.stringify({ Swarm: { NodeID: 'm0', LocalNodeState: 'active' } }))
        res.statusCode = 404
        res.end(JSON.stringify({ message: `not recorded: ${req.method} ${req.url}` }))
      })
      await new Promise<void>((resolve) => engine.listen(0, '127.0.0.1', resolve))
      host = `tcp://127.0.0.1:${(engine.address() as AddressInfo).port}`
    })
    after(async () => {
      await new Promise((resolve) => engine?.close(resolve))
      await moto?.close()
    })

    /** A worker-role group of two instances whose nodes are managers m1 and m2. */
    async function setUp(name: string) {
      await moto.createGroup(name, { min: 0, max: 3, desired: 2 })
      const [a, b] = (await moto.describe(name)).Instances!.map((i) => i.InstanceId!)
      // Four managers: m0 (Tide talks to it), m1 and m2 (leaving), m3 unreachable.
      nodes = [
        node('m0', 'manager', 'reachable'),
        node('m1', 'manager', 'reachable', a),
        node('m2', 'manager', 'reachable', b),
        node('m3', 'manager', 'unreachable'),
      ]
      requests.length = 0
      const config = awsAsgTargetSchema.parse({
        kind: 'aws-asg',
        name,
        region: moto.region,
        endpoint: moto.endpoint,
        env_file: moto.envFile(),
        address: 'none',
        poll_interval: '50ms',
        ready_timeout: '20s',
        swarm: { host, drain_timeout: '10s', poll: '100ms' },
      })
      return { a: a!, b: b!, target: createAwsAsgTarget('nodes', config) }
    }

    test('each could leave alone, but not both: refused before any node or instance changes (E_SWARM_QUORUM)', async () => {
      const { a, b, target } = await setUp('quorum-both')
      await assert.rejects(
        target.scale(0, { reason: 'test' }, signal()),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'E_SWARM_QUORUM')
          // 4 managers → 3 (2 reachable, 2 needed) → 2 (1 reachable, 2 needed): the second removal breaks it.
          assert.match(
            err.message,
            /removing manager nodes would lose the Raft quorum: without m[12], 1 of 2 managers would be reachable and Raft needs 2; nothing was changed/,
          )
          return true
        },
      )
      assert.deepEqual(
        requests.filter((r) => !r.startsWith('GET ')),
        [],
        'no node was updated or removed',
      )
      const group = await moto.describe('quorum-both')
      assert.equal(group.DesiredCapacity, 2)
      assert.deepEqual(group.Instances?.map((i) => i.InstanceId).sort(), [a, b].sort())
      await target.close()
    })

    test('one of them alone passes the check (and goes on to drain its node)', async () => {
      const { target } = await setUp('quorum-one')
      // The recorded engine has no tasks: the scale-in fails when the drain starts, after the check.
      await assert.rejects(
        target.scale(1, { reason: 'test' }, signal()),
        (err: Error & { code?: string }) => {
          assert.notEqual(err.code, 'E_SWARM_QUORUM', err.message)
          return true
        },
      )
      assert.ok(
        requests.some((r) => /^GET \/(v[\d.]+\/)?tasks\?/.test(r)),
        `the drain started: ${requests.join(', ')}`,
      )
      assert.equal((await moto.describe('quorum-one')).DesiredCapacity, 2, 'nothing terminated')
      await target.close()
    })
  },
)
