/**
 * The `docker-swarm` target and the receiver's routes against a real Swarm (test/support/swarm.ts):
 * webhooks scale a service up and down, a resolved alert and a repeated one do not, a global
 * service is refused, bounds and steps come from labels, concurrent updates are not lost.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type Docker from 'dockerode'
import { receiverSchema, type ReceiverInput } from '../../src/alertmanager/config.js'
import { Receiver } from '../../src/alertmanager/receiver.js'
import { createReceiverServer } from '../../src/alertmanager/server.js'
import { NoChangeError } from '../../src/core/errors.js'
import type { ScaleEvent } from '../../src/core/types.js'
import { silentLogger } from '../../src/engine/log.js'
import {
  DockerSwarmTarget,
  dockerSwarmTargetSchema,
  Rescheduler,
  SwarmApi,
} from '../../src/targets/docker-swarm/index.js'
import { acquireSwarm, eventually, requireSwarm, seedAlerts, type Swarm } from '../support/swarm.js'

const skip = requireSwarm()

/** An Alertmanager webhook payload (version 4) as Alertmanager writes it: label values are strings. */
function webhook(
  status: 'firing' | 'resolved',
  labels: Record<string, string>,
  options: { groupKey?: string; startsAt?: string } = {},
) {
  const startsAt = options.startsAt ?? '2026-01-01T00:00:00Z'
  return {
    receiver: 'tide',
    status,
    alerts: [
      {
        status,
        labels: { alertname: 'HighLoad', ...labels },
        annotations: { summary: 'load is high' },
        startsAt,
        endsAt: status === 'resolved' ? '2026-01-01T00:05:00Z' : '0001-01-01T00:00:00Z',
        generatorURL: 'http://prometheus/graph',
        fingerprint: 'abc123',
      },
    ],
    groupLabels: { service: labels.service ?? '', scale: labels.scale ?? '' },
    commonLabels: { alertname: 'HighLoad', ...labels },
    commonAnnotations: {},
    externalURL: 'http://alertmanager:9093',
    version: '4',
    groupKey: options.groupKey ?? `{}:{service="${labels.service}", scale="${labels.scale}"}`,
    truncatedAlerts: 0,
  }
}

describe('docker-swarm target and receiver on a real Swarm', { skip }, () => {
  let swarm: Swarm
  let api: SwarmApi
  const events: ScaleEvent[] = []
  let receiver: Receiver
  let base: string
  let closeServer: () => Promise<void>

  const replicas = async (name: string) =>
    (await swarm.docker.getService(name).inspect()).Spec.Mode.Replicated?.Replicas as number
  const post = async (path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    return {
      status: res.status,
      body: (await res.json()) as { status: string; message: string; code?: string },
    }
  }

  function start(input: ReceiverInput) {
    const config = receiverSchema.parse({ host: swarm.host, ...input })
    receiver = new Receiver(config, {
      logger: silentLogger(),
      swarm: api,
      events: (e) => events.push(e),
    })
    return receiver
  }

  before(async () => {
    swarm = await acquireSwarm()
    api = new SwarmApi({ host: swarm.host })
    start({ cooldown: '1h', prefix: '/scaler' })
    const server = createReceiverServer(receiver, { listen: '127.0.0.1:0', logger: silentLogger() })
    base = await server.start()
    closeServer = () => server.close()
  })
  after(async () => {
    await closeServer?.()
    await receiver?.close()
    await swarm?.release()
  })

  test('target: status lists running tasks; scale sets replicas and waits for them', async () => {
    const name = await swarm.createService({ replicas: 1 })
    const target = new DockerSwarmTarget(
      dockerSwarmTargetSchema.parse({ kind: 'docker-swarm', service: name, host: swarm.host }),
    )
    const signal = AbortSignal.timeout(120_000)
    await eventually('1 running task', 60_000, async () => (await target.status(signal)).ready === 1)
    const result = await target.scale(3, { reason: 'test' }, signal)
    assert.equal(result.from, 1)
    assert.equal(result.to, 3)
    assert.equal(result.added.length, 2)
    const status = await target.status(signal)
    assert.equal(status.desired, 3)
    assert.equal(status.ready, 3)
    assert.equal((await swarm.runningTasks(name)).length, 3)
    await assert.rejects(target.scale(3, { reason: 'again' }, signal), NoChangeError)
    const down = await target.scale(1, { reason: 'down' }, signal)
    assert.equal(down.removed.length, 2)
    assert.equal(await replicas(name), 1)
  })

  test('target: a global service is refused with a clear error, not scaled', async () => {
    const name = await swarm.createService({ global: true })
    const target = new DockerSwarmTarget(
      dockerSwarmTargetSchema.parse({ kind: 'docker-swarm', service: name, host: swarm.host }),
    )
    await assert.rejects(
      target.scale(2, { reason: 'test' }, AbortSignal.timeout(30_000)),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'E_SWARM_GLOBAL_SERVICE')
        assert.match(err.message, new RegExp(`${name} is a global service`))
        return true
      },
    )
    const spec = (await swarm.docker.getService(name).inspect()).Spec.Mode
    assert.deepEqual(spec, { Global: {} })
  })

  test('concurrent updates retry on version conflicts and none is lost', async () => {
    const name = await swarm.createService({ replicas: 1 })
    const before = (await swarm.docker.getService(name).inspect()).Spec.TaskTemplate.ForceUpdate ?? 0
    await Promise.all(Array.from({ length: 4 }, () => api.forceUpdate(name, AbortSignal.timeout(60_000))))
    const afterUpdate = (await swarm.docker.getService(name).inspect()).Spec.TaskTemplate.ForceUpdate
    assert.equal(afterUpdate, before + 4)
  })

  test('webhook: a firing alert scales up by the label step within label bounds; a repeat is ignored; resolved never scales', async () => {
    const name = await swarm.createService({
      replicas: 1,
      labels: {
        'com.df.scaleMin': '1',
        'com.df.scaleMax': '4',
        'com.df.scaleUpBy': '2',
        'com.df.scaleDownBy': '1',
      },
    })
    events.length = 0
    const firing = webhook('firing', { service: name, scale: 'up', type: 'service' })
    const up = await post('/v1/alerts', firing)
    assert.equal(up.status, 200, up.body.message)
    assert.equal(up.body.status, 'OK')
    assert.match(up.body.message, new RegExp(`Scaling ${name} from 1 to 3 replicas \\(min: 1, max: 4\\)`))
    assert.equal(await replicas(name), 3)
    await swarm.waitForTasks(name, 3)
    assert.deepEqual(
      events.map((e) => [e.kind, e.group, e.trigger, e.from, e.to]),
      [
        ['started', name, 'scale_service', 1, 3],
        ['applied', name, 'scale_service', 1, 3],
      ],
    )
    assert.deepEqual(seedAlerts(events), [
      [
        'scale_service',
        name,
        'success',
        `Scale service up: ${name}`,
        `Scaling ${name} from 1 to 3 replicas (min: 1, max: 4)`,
      ],
    ])

    // Alertmanager repeats the same group (same groupKey and startsAt): inside the cooldown, nothing.
    const again = await post('/v1/alerts', firing)
    assert.equal(again.status, 200)
    assert.match(again.body.message, /already scaled it; ignored/)
    assert.equal(await replicas(name), 3)

    // Resolved: never scales (Docker Scaler scaled again on resolve).
    const resolved = await post(
      '/v1/alerts',
      webhook('resolved', { service: name, scale: 'up', type: 'service' }),
    )
    assert.equal(resolved.status, 200)
    assert.match(resolved.body.message, /resolved alerts never scale/)
    const resolvedOnOldRoute = await post(
      '/v1/scale-service',
      webhook('resolved', { service: name, scale: 'down' }),
    )
    assert.match(resolvedOnOldRoute.body.message, /resolved alerts never scale/)
    assert.equal(await replicas(name), 3)

    // A new firing episode (new startsAt) acts; `by` is the string Alertmanager sends and wins over the label.
    const down = await post(
      '/v1/alerts',
      webhook('firing', { service: name, scale: 'down', by: '2' }, { startsAt: '2026-01-01T01:00:00Z' }),
    )
    assert.equal(down.status, 200, down.body.message)
    assert.match(down.body.message, /from 3 to 1 replicas/)
    assert.equal(await replicas(name), 1)
    await swarm.waitForTasks(name, 1)
  })

  test('webhook: the same alert group arriving twice at once (an HA pair of Alertmanagers) scales once', async () => {
    const name = await swarm.createService({ replicas: 1 })
    const firing = webhook(
      'firing',
      { service: name, scale: 'up', type: 'service' },
      { startsAt: '2026-02-01T00:00:00Z' },
    )
    const answers = await Promise.all([post('/v1/alerts', firing), post('/v1/alerts', firing)])
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 200],
    )
    const scaled = answers.filter((a) => a.body.message.startsWith(`Scaling ${name} from 1 to 2`))
    assert.equal(scaled.length, 1, JSON.stringify(answers.map((a) => a.body.message)))
    assert.match(
      answers.find((a) => a !== scaled[0])!.body.message,
      /being acted on already; ignored|already scaled it; ignored/,
    )
    assert.equal(await replicas(name), 2)
  })

  test('scale-service: query parameters win over the body; by=-2 counts as 2; bounds clamp; bound messages', async () => {
    const name = await swarm.createService({ replicas: 1, labels: { 'com.df.scaleMax': '4' } })
    events.length = 0
    const up = await post(`/v1/scale-service?service=${name}&scale=up&by=-2`, {
      groupLabels: { scale: 'down', by: 1 },
    })
    assert.equal(up.status, 200, up.body.message)
    assert.equal(up.body.message, `Scaling ${name} from 1 to 3 replicas (min: 1, max: 4)`)
    const clamped = await post(`/v1/scale-service?service=${name}&scale=up&by=5`)
    assert.equal(clamped.body.message, `Scaling ${name} from 3 to 4 replicas (min: 1, max: 4)`)
    const atMax = await post(`/v1/scale-service?service=${name}&scale=up`)
    assert.equal(atMax.status, 200)
    assert.equal(atMax.body.message, `${name} is already scaled to the maximum number of 4 replicas`)
    assert.equal(await replicas(name), 4)
    // notify_at_max defaults to true (ALERT_SCALE_MAX), so the bound is told; notify_at_min to false.
    assert.equal(events.at(-1)?.kind, 'unchanged')
    assert.equal(events.at(-1)?.message, atMax.body.message)
    assert.deepEqual(seedAlerts(events.slice(-1)), [
      ['scale_service', name, 'success', `Scale service up: ${name}`, atMax.body.message],
    ])
    // The default min (1) applies without a label; the prefix serves the same routes.
    const down = await post(`/scaler/v1/scale-service?service=${name}&scale=down&by=10`)
    assert.equal(down.body.message, `Scaling ${name} from 4 to 1 replicas (min: 1, max: 4)`)
    const count = events.length
    const atMin = await post(`/v1/scale-service?service=${name}&scale=down`)
    assert.equal(atMin.body.message, `${name} is already descaled to the minimum number of 1 replicas`)
    assert.equal(events.length, count, 'no event at the minimum by default')
  })

  test('scale-service: bad requests answer 400 with the seed messages and a bad_request event', async () => {
    events.length = 0
    const noService = await post('/v1/scale-service?scale=up')
    assert.equal(noService.status, 400)
    assert.deepEqual(noService.body, {
      status: 'NOK',
      message: 'No service name in request',
      code: 'E_BAD_REQUEST',
    })
    const noScale = await post('/v1/scale-service?service=x')
    assert.equal(noScale.body.message, 'No scale direction in request')
    const badScale = await post('/v1/scale-service?service=x&scale=sideways')
    assert.match(badScale.body.message, /^Incorrect scale direction in request: .*"sideways"/)
    const badBy = await post('/v1/scale-service?service=x&scale=up&by=two')
    assert.equal(badBy.status, 400)
    assert.match(badBy.body.message, /query parameter by must be a whole number \(got "two"\)/)
    const notJson = await fetch(`${base}/v1/scale-service?service=x&scale=up`, {
      method: 'POST',
      body: '{nope',
    })
    assert.equal(notJson.status, 400)
    assert.equal(events.length, 5)
    assert.ok(
      events.every(
        (e) => e.kind === 'failed' && e.group === 'bad_request' && e.reason === 'Incorrect request',
      ),
    )
    assert.deepEqual(seedAlerts(events.slice(0, 2)), [
      ['scale_service', 'bad_request', 'error', 'Incorrect request', 'No service name in request'],
      ['scale_service', 'bad_request', 'error', 'Incorrect request', 'No scale direction in request'],
    ])
  })

  test('scale-service: a missing service is 404, a global service 409, a bad label 422; each is a failed event', async () => {
    events.length = 0
    const missing = await post('/v1/scale-service?service=no-such-service&scale=up')
    assert.equal(missing.status, 404)
    assert.equal(missing.body.code, 'E_SWARM_SERVICE_NOT_FOUND')
    const global = await swarm.createService({ global: true })
    const refused = await post(`/v1/scale-service?service=${global}&scale=up`)
    assert.equal(refused.status, 409)
    assert.match(refused.body.message, new RegExp(`^${global} is a global service \\(can not be scaled\\)`))
    const labelled = await swarm.createService({ replicas: 1, labels: { 'com.df.scaleMax': 'five' } })
    const badLabel = await post(`/v1/scale-service?service=${labelled}&scale=up`)
    assert.equal(badLabel.status, 422)
    assert.equal(
      badLabel.body.message,
      `service ${labelled}: label com.df.scaleMax must be a whole number ≥ 0 (got "five")`,
    )
    assert.deepEqual(
      events.map((e) => [e.kind, e.reason]),
      [
        ['failed', 'Scale service up: no-such-service'],
        ['failed', `Scale service up: ${global}`],
        ['failed', `Scale service up: ${labelled}`],
      ],
    )
    assert.deepEqual(seedAlerts(events)[1], [
      'scale_service',
      global,
      'error',
      `Scale service up: ${global}`,
      refused.body.message,
    ])
    // A job (Swarm's replicated-job mode) has no replica count either: refused, not touched.
    const job = `job-${process.pid}-${Date.now().toString(36)}`
    await swarm.docker.createService({
      Name: job,
      TaskTemplate: { ContainerSpec: { Image: swarm.image, Command: ['true'] } },
      Mode: { ReplicatedJob: { MaxConcurrent: 1, TotalCompletions: 1 } },
    } as unknown as Docker.CreateServiceOptions)
    const jobRefused = await post(`/v1/scale-service?service=${job}&scale=up`)
    assert.equal(jobRefused.status, 409)
    assert.equal(jobRefused.body.code, 'E_SWARM_SERVICE_MODE')
    assert.equal(
      jobRefused.body.message,
      `${job} is a replicated job service and has no replica count to scale`,
    )
    assert.ok((await swarm.docker.getService(job).inspect()).Spec.Mode.ReplicatedJob)
  })

  test('reschedule: one labelled service is force-updated; an unlabelled one is refused; all finds the labelled', async () => {
    const labelled = await swarm.createService({ replicas: 1, labels: { 'com.df.reschedule': 'true' } })
    const other = await swarm.createService({ replicas: 1, labels: { 'com.df.reschedule': 'false' } })
    events.length = 0
    const force = async (n: string) =>
      (await swarm.docker.getService(n).inspect()).Spec.TaskTemplate.ForceUpdate ?? 0
    const one = await post(`/v1/reschedule-service?service=${labelled}`)
    assert.equal(one.status, 200, one.body.message)
    assert.equal(one.body.message, `Rescheduled service: ${labelled}`)
    assert.equal(await force(labelled), 1)
    const refused = await post(`/v1/reschedule-service?service=${other}`)
    assert.equal(refused.status, 409)
    assert.equal(
      refused.body.message,
      `${other} is not labeled with com.df.reschedule=true (com.df.reschedule=false)`,
    )
    const missingParam = await post('/v1/reschedule-service')
    assert.equal(missingParam.status, 400)
    const all = await post('/v1/reschedule-services')
    assert.equal(all.status, 200, all.body.message)
    assert.match(all.body.message, new RegExp(`${labelled}.* rescheduled`))
    assert.doesNotMatch(all.body.message, new RegExp(other))
    assert.equal(await force(labelled), 2)
    assert.equal(await force(other), 0)
    const unlabelled = await swarm.createService({ replicas: 1 })
    const noLabel = await post(`/v1/reschedule-service?service=${unlabelled}`)
    assert.equal(noLabel.status, 409)
    assert.equal(noLabel.body.message, `${unlabelled} is not labeled with com.df.reschedule=true (no label)`)
    const missing = await post('/v1/reschedule-service?service=no-such-service')
    assert.equal(missing.status, 404)
    assert.equal(missing.body.code, 'E_SWARM_SERVICE_NOT_FOUND')
    // A filter no service carries: the seed's sentence, and success.
    const none = await new Rescheduler(api, `tide.test.none=${process.pid}`).all(AbortSignal.timeout(30_000))
    assert.deepEqual(none, { rescheduled: [], failed: [], message: 'No services to reschedule' })
    assert.deepEqual(seedAlerts(events), [
      [
        'reschedule_service',
        'reschedule',
        'success',
        `Rescheduling service: ${labelled}`,
        `Rescheduled service: ${labelled}`,
      ],
      ['reschedule_service', 'reschedule', 'error', `Rescheduling service: ${other}`, refused.body.message],
      [
        'reschedule_service',
        'bad_request',
        'error',
        'Incorrect request',
        'the query parameter service is required (the service to reschedule)',
      ],
      ['reschedule_service', 'reschedule', 'success', 'Rescheduling all labeled services', all.body.message],
      [
        'reschedule_service',
        'reschedule',
        'error',
        `Rescheduling service: ${unlabelled}`,
        noLabel.body.message,
      ],
      [
        'reschedule_service',
        'reschedule',
        'error',
        'Rescheduling service: no-such-service',
        missing.body.message,
      ],
    ])
  })

  test('ping answers 200 with an empty body; without a node backend scale-nodes is 404', async () => {
    const ping = await fetch(`${base}/v1/ping`)
    assert.equal(ping.status, 200)
    assert.equal(await ping.text(), '')
    const prefixed = await fetch(`${base}/scaler/v1/ping`)
    assert.equal(prefixed.status, 200)
    const nodes = await post('/v1/scale-nodes?scale=up&type=worker')
    assert.equal(nodes.status, 404)
    const wrongMethod = await fetch(`${base}/v1/scale-service`)
    assert.equal(wrongMethod.status, 405)
    const unknown = await post('/v1/scale-everything')
    assert.equal(unknown.status, 404)
    // Docker Scaler's answer shape, as JSON.
    const res = await fetch(`${base}/v1/scale-service?service=${'no-such-service'}&scale=up`, {
      method: 'POST',
    })
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/)
    assert.deepEqual(Object.keys((await res.json()) as object).sort(), ['code', 'message', 'status'])
  })
})
