/**
 * The whole chain, every part real: a Prometheus alerting rule fires → Alertmanager groups it
 * and calls Tide's webhook (with a bearer token from its http_config) → Tide scales the Swarm
 * service → Tide's notification arrives back in Alertmanager as Docker Scaler's alert. Then the
 * rule goes away, Alertmanager sends the resolved notification, and nothing scales.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { stringify } from 'yaml'
import { type Daemon, startDaemon } from '../../src/engine/daemon.js'
import { createLogger } from '../../src/engine/log.js'
import {
  requireAlertmanager,
  requirePrometheus,
  type RunningAlertmanager,
  type RunningPrometheus,
  startAlertmanager,
  startPrometheus,
} from '../support/prometheus.js'
import { acquireSwarm, eventually, requireSwarm, type Swarm } from '../support/swarm.js'

const skip = requireSwarm() || requirePrometheus() || requireAlertmanager()
const TOKEN = 'chain-test-token-0123456789'

/** Alertmanager's config: scale alerts go to Tide's webhook; Tide's own alerts to a receiver of their own. */
function alertmanagerConfig(tideUrl: string) {
  return {
    route: {
      receiver: 'tide',
      group_by: ['service', 'scale'],
      group_wait: '1s',
      group_interval: '2s',
      repeat_interval: '1h',
      routes: [
        // Tide's notifications must never be sent back to Tide as scaling requests.
        { receiver: 'scaler-notes', matchers: ['alertname=~"scale_service|scale_nodes|reschedule_service"'] },
      ],
    },
    receivers: [
      {
        name: 'tide',
        webhook_configs: [
          {
            url: `${tideUrl}/v1/alerts`,
            send_resolved: true,
            http_config: { authorization: { credentials: TOKEN } },
          },
        ],
      },
      { name: 'scaler-notes' },
    ],
  }
}

describe('Prometheus rule → Alertmanager → Tide → Swarm → notification in Alertmanager', { skip }, () => {
  let swarm: Swarm
  let am: RunningAlertmanager
  let prom: RunningPrometheus
  let tide: Daemon
  let dir: string
  const logLines: Array<Record<string, unknown>> = []

  before(async () => {
    swarm = await acquireSwarm()
    am = await startAlertmanager({ config: { route: { receiver: 'none' }, receivers: [{ name: 'none' }] } })
    dir = mkdtempSync(join(tmpdir(), 'tide-chain-'))
    const idle = await swarm.createService({ replicas: 1 })
    const config = {
      api: { listen: '127.0.0.1:0' },
      store: { path: join(dir, 'tide.db') },
      receiver: {
        host: swarm.host,
        auth: { token: TOKEN },
        cooldown: '1h',
        notify: [{ kind: 'alertmanager', url: am.url, labels: { receiver: 'system' } }],
      },
      // A docker-swarm group of its own, held still: its one metric never has data (nothing listens
      // on port 9), and missing data never scales.
      groups: {
        idle: {
          min: 1,
          max: 2,
          interval: '5s',
          target: { kind: 'docker-swarm', service: idle, host: swarm.host },
          sources: [
            { kind: 'prometheus', url: 'http://127.0.0.1:9', metrics: { never: { query: 'vector(0)' } } },
          ],
          policies: [{ kind: 'threshold', up: { conditions: ['never > 1'] } }],
        },
      },
    }
    writeFileSync(join(dir, 'tide.yaml'), stringify(config))
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) {
          try {
            logLines.push(JSON.parse(line) as Record<string, unknown>)
          } catch {}
        }
        done()
      },
    })
    tide = await startDaemon({
      configPath: join(dir, 'tide.yaml'),
      logger: createLogger({ level: 'info', format: 'json', stream }),
    })
    await am.reload(alertmanagerConfig(tide.apiUrl))
  })

  test('the receiver routes on the API need the receiver token; ping does not', async () => {
    const anonymous = await fetch(`${tide.apiUrl}/v1/alerts`, { method: 'POST', body: '{}' })
    assert.equal(anonymous.status, 401)
    assert.equal(((await anonymous.json()) as { status: string }).status, 'NOK')
    const wrong = await fetch(`${tide.apiUrl}/v1/scale-service?service=x&scale=up`, {
      method: 'POST',
      headers: { authorization: 'Bearer not-the-token' },
    })
    assert.equal(wrong.status, 401)
    assert.equal((await fetch(`${tide.apiUrl}/v1/ping`)).status, 200)
    // Tide's own API is still there beside them.
    assert.equal((await fetch(`${tide.apiUrl}/v1/groups`)).status, 200)
  })
  after(async () => {
    await prom?.stop()
    await tide?.close()
    await am?.stop()
    await swarm?.release()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  const webhookCalls = () => logLines.filter((l) => l.msg === 'api call' && l.path === '/v1/alerts')
  const replicas = async (name: string) =>
    (await swarm.docker.getService(name).inspect()).Spec.Mode.Replicated?.Replicas as number

  test('a firing rule scales the service once and Tide reports back; the resolved notification does not scale', async () => {
    const name = await swarm.createService({ replicas: 1, labels: { 'com.df.scaleMax': '3' } })
    const rule = {
      groups: [
        {
          name: 'scaling',
          rules: [
            {
              alert: 'ServiceLoadHigh',
              expr: 'vector(1)',
              // Label values are strings, `by` included (Docker Scaler could not decode it).
              labels: { service: name, scale: 'up', type: 'service', by: '2' },
              annotations: { summary: `load on ${name} is high` },
            },
          ],
        },
      ],
    }
    prom = await startPrometheus({ alertmanagers: [am.url], rules: rule })

    await eventually('the service to be scaled to 3', 60_000, async () => (await replicas(name)) === 3)
    await eventually('3 running tasks', 60_000, async () => (await swarm.runningTasks(name)).length === 3)
    assert.equal(webhookCalls().length, 1)
    assert.equal(webhookCalls()[0]!.status, 200)

    // Tide's notification, back in Alertmanager with Docker Scaler's labels and annotations.
    await eventually('the scale_service alert in Alertmanager', 30_000, async () => {
      return (await am.alerts({ alertname: 'scale_service', service: name, status: 'success' })).length > 0
    })
    const [note] = await am.alerts({ alertname: 'scale_service', service: name, status: 'success' })
    assert.equal(note!.annotations.request, `Scale service up: ${name}`)
    assert.equal(note!.labels.receiver, 'system')

    // The rule goes away: Prometheus resolves the alert, Alertmanager sends `resolved`, nothing scales.
    await prom.reloadRules({ groups: [] })
    await eventually('the resolved notification to reach Tide', 60_000, () => webhookCalls().length >= 2)
    assert.equal(webhookCalls().at(-1)!.status, 200)
    assert.equal(await replicas(name), 3, 'a resolved alert must not scale')
  })
})
