/**
 * The alertmanager notifier against a real Alertmanager (Debian's prometheus-alertmanager):
 * alerts arrive through API v2 with seed 003's labels and annotations (seeds.md §3.6), end by
 * themselves after alert_timeout, and a refusal is a failed delivery, not a failed scale.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  requireAlertmanager,
  type RunningAlertmanager,
  startAlertmanager,
} from '../../test/support/prometheus.js'
import type { ScaleEvent } from '../core/types.js'
import { silentLogger } from '../engine/log.js'
import {
  alertmanagerNotifierSchema,
  createAlertmanagerNotifier,
  eventAlert,
  postAlerts,
  seedAlert,
} from './alertmanager.js'
import { Dispatcher } from './dispatch.js'

const skip = requireAlertmanager()

const event = (kind: ScaleEvent['kind'], extra: Partial<ScaleEvent> = {}): ScaleEvent => ({
  kind,
  group: 'web',
  decision: 7,
  trigger: 'auto',
  from: 1,
  to: 3,
  direction: 'up',
  reason: 'scale up 1 → 3: load 0.9 > 0.35',
  at: Date.now(),
  target: 'docker-swarm',
  ...extra,
})

describe('seed 003 alerts (pure)', () => {
  test('labels alertname/service/status and annotations summary/request, endsAt = startsAt + timeout', () => {
    const at = Date.UTC(2026, 0, 1)
    assert.deepEqual(
      seedAlert({
        alertname: 'scale_service',
        service: 'go-demo_main',
        status: 'success',
        summary: 's',
        request: 'r',
        at,
        timeout: 10_000,
      }),
      {
        labels: { alertname: 'scale_service', service: 'go-demo_main', status: 'success' },
        annotations: { summary: 's', request: 'r' },
        startsAt: '2026-01-01T00:00:00.000Z',
        endsAt: '2026-01-01T00:00:10.000Z',
      },
    )
  })

  test('events map to the seed’s names: a swarm group is scale_service, an ASG scale_nodes/aws', () => {
    const applied = eventAlert(event('applied'))
    assert.deepEqual(applied.labels, {
      group: 'web',
      alertname: 'scale_service',
      service: 'web',
      status: 'success',
    })
    assert.deepEqual(applied.annotations, {
      summary: 'Scaling web from 1 to 3 replicas: scale up 1 → 3: load 0.9 > 0.35',
      request: 'Scale service up: web',
    })
    const nodes = eventAlert(
      event('failed', { target: 'aws-asg', group: 'workers', message: 'E_ASG_BOUNDS …' }),
    )
    assert.deepEqual(nodes.labels, {
      group: 'workers',
      alertname: 'scale_nodes',
      service: 'aws',
      status: 'error',
    })
    assert.deepEqual(nodes.annotations, {
      summary: 'E_ASG_BOUNDS …',
      request: 'Scale nodes up on: aws, by: 2',
    })
    const statuses = (['started', 'progress', 'applied', 'failed', 'unchanged', 'shadow'] as const).map(
      (k) => eventAlert(event(k)).labels.status,
    )
    assert.deepEqual(statuses, ['pending', 'pending', 'success', 'error', 'success', 'pending'])
  })

  test('the Docker Scaler receiver’s events become exactly the seed’s alerts', () => {
    const nodes = eventAlert(
      event('applied', {
        trigger: 'scale_nodes',
        group: 'aws',
        target: 'aws-asg',
        reason: 'Scale nodes up on: aws, by: 1, type: worker',
        message: 'Changing the number of worker nodes on aws from 1 to 2',
      }),
    )
    assert.deepEqual(nodes.labels, { alertname: 'scale_nodes', service: 'aws', status: 'success' })
    assert.deepEqual(nodes.annotations, {
      summary: 'Changing the number of worker nodes on aws from 1 to 2',
      request: 'Scale nodes up on: aws, by: 1, type: worker',
    })
    const wait = eventAlert(
      event('progress', {
        trigger: 'scale_nodes',
        group: 'reschedule',
        reason: 'Wait to reschedule',
        message: 'Waiting for worker nodes to scale from 1 to 2 for rescheduling',
      }),
    )
    assert.deepEqual(wait.labels, { alertname: 'scale_nodes', service: 'reschedule', status: 'pending' })
    assert.deepEqual(wait.annotations, {
      summary: 'Waiting for worker nodes to scale from 1 to 2 for rescheduling',
      request: 'Wait to reschedule',
    })
    const bad = eventAlert(
      event('failed', {
        trigger: 'scale_service',
        group: 'bad_request',
        reason: 'Incorrect request',
        message: 'No service name in request',
      }),
    )
    assert.deepEqual(bad.labels, { alertname: 'scale_service', service: 'bad_request', status: 'error' })
    assert.deepEqual(bad.annotations, { summary: 'No service name in request', request: 'Incorrect request' })
  })
})

test('config: `on` defaults to every event but `started`; listing `started` brings it back', () => {
  const base = { kind: 'alertmanager', url: 'http://127.0.0.1:9093' }
  assert.deepEqual(alertmanagerNotifierSchema.parse(base).on, [
    'progress',
    'applied',
    'failed',
    'unchanged',
    'shadow',
  ])
  assert.deepEqual(alertmanagerNotifierSchema.parse({ ...base, on: ['started', 'applied'] }).on, [
    'started',
    'applied',
  ])
  const bad = alertmanagerNotifierSchema.safeParse({ ...base, on: ['begun'] })
  assert.equal(bad.success, false)
  assert.deepEqual(bad.error?.issues[0]?.path, ['on', 0])
})

describe('alertmanager notifier on a real Alertmanager', { skip }, () => {
  let am: RunningAlertmanager
  before(async () => {
    am = await startAlertmanager({
      config: { route: { receiver: 'null', group_wait: '0s' }, receivers: [{ name: 'null' }] },
    })
  })
  after(async () => {
    await am?.stop()
  })

  test('each outcome arrives as an alert with the seed’s labels, annotations and endsAt', async () => {
    const n = createAlertmanagerNotifier(
      alertmanagerNotifierSchema.parse({
        kind: 'alertmanager',
        url: am.url,
        labels: { receiver: 'system' },
        alert_timeout: '30s',
      }),
    )
    const at = Date.now()
    await n.notify(event('applied', { group: 'api', at }), AbortSignal.timeout(5000))
    await n.notify(
      event('failed', { group: 'api', at, message: 'docker said no' }),
      AbortSignal.timeout(5000),
    )
    const alerts = await am.alerts({ group: 'api' })
    const byStatus = Object.fromEntries(alerts.map((a) => [a.labels.status, a]))
    assert.deepEqual(Object.keys(byStatus).sort(), ['error', 'success'])
    const ok = byStatus.success!
    assert.deepEqual(ok.labels, {
      alertname: 'scale_service',
      service: 'api',
      status: 'success',
      group: 'api',
      receiver: 'system',
    })
    assert.equal(ok.annotations.request, 'Scale service up: api')
    assert.match(ok.annotations.summary!, /^Scaling api from 1 to 3 replicas: /)
    assert.equal(Date.parse(ok.endsAt) - Date.parse(ok.startsAt), 30_000)
    assert.equal(byStatus.error!.annotations.summary, 'docker said no')
    assert.equal(ok.status.state, 'active')
  })

  test('through the dispatcher: one scale is one alert (no `started` by default); a wrong address is counted as failed', async () => {
    const results: string[] = []
    const good = alertmanagerNotifierSchema.parse({ kind: 'alertmanager', url: am.url })
    const bad = alertmanagerNotifierSchema.parse({ kind: 'alertmanager', url: `${am.url}/wrong-prefix` })
    const dispatcher = new Dispatcher(
      [
        // As the daemon and the receiver build them: with the notifier's `on`.
        { notifier: createAlertmanagerNotifier(good), on: good.on, timeout: good.timeout },
        { notifier: createAlertmanagerNotifier(bad), on: bad.on, timeout: bad.timeout },
      ],
      silentLogger(),
      { delivered: (kind, result) => results.push(`${kind}:${result}`) },
    )
    dispatcher.emit(event('started', { group: 'workers', target: 'aws-asg', from: 1, to: 2 }))
    dispatcher.emit(event('applied', { group: 'workers', target: 'aws-asg', from: 1, to: 2 }))
    await dispatcher.idle()
    await dispatcher.close(100)
    assert.deepEqual(results.sort(), ['alertmanager:failed', 'alertmanager:ok'])
    const alerts = await am.alerts({ group: 'workers' })
    // Docker Scaler sent one alert per operation, never a `pending` one when it began.
    assert.deepEqual(
      alerts.map((a) => `${a.labels.alertname}/${a.labels.service}/${a.labels.status}`).sort(),
      ['scale_nodes/aws/success'],
    )
    const applied = alerts.find((a) => a.labels.status === 'success')!
    assert.match(applied.annotations.summary!, /^Changing the number of nodes of workers on aws from 1 to 2/)
    assert.equal(applied.annotations.request, 'Scale nodes up on: aws, by: 1')
  })

  test('Alertmanager’s 400 is E_NOTIFY with its message', async () => {
    // An alert that ends before it starts is refused by Alertmanager's validation.
    const alert = {
      labels: { alertname: 'x' },
      annotations: {},
      startsAt: '2026-01-02T00:00:00Z',
      endsAt: '2026-01-01T00:00:00Z',
    }
    await assert.rejects(
      postAlerts(am.url, [alert], { signal: AbortSignal.timeout(5000) }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'E_NOTIFY')
        assert.match(
          err.message,
          /^alertmanager http:\/\/127\.0\.0\.1:\d+\/api\/v2\/alerts answered 400: .*start time must be before end time/,
        )
        return true
      },
    )
  })
})
