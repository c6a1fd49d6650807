/**
 * The receiver's HTTP surface and its failure paths, with real clients pointed at a Docker
 * Engine and an AWS endpoint that are not there (no Swarm needed; test/e2e/swarm*.test.ts has the
 * real ones): every failure is an answer with a real status and Docker Scaler's `NOK` body, an
 * error alert with seed 003's labels (seeds.md §3.6), and a count in `/metrics`.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { Registry } from 'prom-client'
import type { ScaleEvent } from '../core/types.js'
import { silentLogger } from '../engine/log.js'
import { AsgApi } from '../targets/aws-asg/index.js'
import { SwarmApi } from '../targets/docker-swarm/client.js'
import { receiverSchema } from './config.js'
import { receiverMetrics } from './metrics.js'
import { Receiver } from './receiver.js'
import { createReceiverServer } from './server.js'
import { seedAlerts } from '../../test/support/swarm.js'

const TOKEN = 'receiver-test-token-0123'

describe('receiver failure paths and HTTP surface (Docker and AWS unreachable)', () => {
  let dir: string
  let base: string
  let closed: Server
  let receiver: Receiver
  let asg: AsgApi
  let stop: () => Promise<void>
  const registry = new Registry()
  const events: ScaleEvent[] = []

  const call = async (method: string, path: string, auth = true, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: auth ? { authorization: `Bearer ${TOKEN}` } : {},
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await res.text()
    return {
      status: res.status,
      type: res.headers.get('content-type') ?? '',
      text,
      body: (text ? JSON.parse(text) : undefined) as { status: string; message: string; code?: string },
    }
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tide-receiver-'))
    // A port that refuses connections: listen, note it, close.
    closed = createServer()
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r))
    const port = (closed.address() as { port: number }).port
    await new Promise<void>((r) => closed.close(() => r()))
    const envFile = join(dir, 'aws')
    writeFileSync(envFile, 'export AWS_ACCESS_KEY_ID=AKIDEXAMPLE\nexport AWS_SECRET_ACCESS_KEY=secret\n')
    const config = receiverSchema.parse({
      prefix: '/',
      auth: { token: TOKEN },
      host: `unix://${join(dir, 'no-docker.sock')}`,
      call_timeout: '3s',
      nodes: {
        region: 'us-east-1',
        endpoint: `http://127.0.0.1:${port}`,
        env_file: envFile,
        worker: { asg: 'workers' },
        manager: { asg: 'managers' },
      },
    })
    asg = new AsgApi({
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${port}`,
      envFile,
      callTimeout: 3000,
    })
    receiver = new Receiver(config, {
      logger: silentLogger(),
      swarm: new SwarmApi({ host: config.host, callTimeout: 3000 }),
      asg,
      events: (e) => events.push(e),
      metrics: receiverMetrics(registry, () => false),
    })
    const server = createReceiverServer(receiver, {
      listen: '127.0.0.1:0',
      logger: silentLogger(),
      registry,
    })
    base = await server.start()
    stop = () => server.close()
  })
  after(async () => {
    await stop?.()
    await receiver?.close()
    asg?.close()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  test('Docker unreachable: 502 NOK naming the call, an error alert, counted as failed', async () => {
    events.length = 0
    const res = await call('POST', '/v1/scale-service?service=web&scale=up')
    assert.equal(res.status, 502)
    assert.match(res.type, /^application\/json/)
    assert.equal(res.body.status, 'NOK')
    assert.equal(res.body.code, 'E_TARGET')
    assert.match(res.body.message, /^Docker .*web.* failed: /)
    assert.deepEqual(seedAlerts(events), [
      ['scale_service', 'web', 'error', 'Scale service up: web', res.body.message],
    ])
    assert.match(
      await registry.metrics(),
      /tide_receiver_operations_total\{operation="scale_service",result="failed"\} 1/,
    )
  })

  test('scale-nodes: AWS unreachable is a 502 and a scale_nodes/aws error alert; the alerting service’s labels unreadable is "node scaling failed"', async () => {
    events.length = 0
    const res = await call('POST', '/v1/scale-nodes?scale=up&type=worker&by=2')
    assert.equal(res.status, 502, res.text)
    assert.equal(res.body.status, 'NOK')
    assert.deepEqual(seedAlerts(events), [
      ['scale_nodes', 'aws', 'error', 'Scale nodes up on: aws, by: 2, type: worker', res.body.message],
    ])
    events.length = 0
    const labels = await call('POST', '/v1/scale-nodes?scale=down&type=manager&service=node-exporter')
    assert.equal(labels.status, 502)
    assert.match(labels.body.message, /^node scaling failed: Docker .*node-exporter/)
    assert.deepEqual(seedAlerts(events)[0]!.slice(0, 4), [
      'scale_nodes',
      'aws',
      'error',
      // No step was resolved: the configured default for the direction.
      'Scale nodes down on: aws, by: 1, type: manager',
    ])
  })

  test('scale-nodes: bad requests are 400s and scale_nodes bad_request alerts with the seed’s messages', async () => {
    events.length = 0
    const none = await call('POST', '/v1/scale-nodes?type=worker')
    assert.equal(none.status, 400)
    assert.equal(none.body.message, 'No scale direction')
    const bad = await call('POST', '/v1/scale-nodes?type=worker&scale=sideways')
    assert.equal(bad.status, 400)
    assert.match(bad.body.message, /^Incorrect scale direction in request/)
    const type = await call('POST', '/v1/scale-nodes?scale=up&type=robot')
    assert.equal(type.body.message, 'Incorrect node type: robot, type can only be worker or manager')
    const by = await call('POST', '/v1/scale-nodes?scale=up&type=worker&by=lots')
    assert.equal(by.status, 400)
    assert.equal(by.body.message, 'query parameter by must be a whole number (got "lots")')
    assert.deepEqual(
      seedAlerts(events).map((a) => a.slice(0, 4)),
      Array.from({ length: 4 }, () => ['scale_nodes', 'bad_request', 'error', 'Incorrect request']),
    )
  })

  test('HTTP: credentials, 404 and 405, ping, SERVER_PREFIX "/" adds nothing, resolved alerts counted, /metrics', async () => {
    const anonymous = await call('POST', '/v1/scale-service?service=web&scale=up', false)
    assert.equal(anonymous.status, 401)
    assert.equal(anonymous.body.status, 'NOK')
    const ping = await call('GET', '/v1/ping', false)
    assert.deepEqual([ping.status, ping.text], [200, ''])
    const unknown = await call('POST', '/v1/scale-everything')
    assert.equal(unknown.status, 404)
    assert.equal(unknown.body.code, 'E_NOT_FOUND')
    assert.equal((await call('GET', '/v1/scale-service')).status, 405)
    assert.equal((await call('GET', '//v1/ping', false)).status, 404, 'prefix "/" serves /v1 only')
    events.length = 0
    const resolved = await call('POST', '/v1/alerts', true, {
      version: '4',
      status: 'resolved',
      groupLabels: { service: 'web', scale: 'up' },
      commonLabels: { type: 'service' },
      alerts: [{ status: 'resolved', labels: { service: 'web', scale: 'up' } }],
    })
    assert.equal(resolved.status, 200)
    assert.equal(resolved.body.message, 'resolved alerts never scale; nothing done')
    assert.equal(events.length, 0, 'a resolved alert is not an operation and sends no alert')
    const metrics = await fetch(`${base}/metrics`)
    assert.equal(metrics.status, 200)
    assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain/)
    const text = await metrics.text()
    assert.match(text, /tide_receiver_operations_total\{operation="scale_service",result="resolved"\} 1/)
    assert.match(text, /tide_receiver_operations_total\{operation="scale_nodes",result="bad_request"\} 4/)
    assert.match(text, /tide_receiver_node_wait_active 0/)
  })
})
