/**
 * The whole chain with real parts: an exporter's queue length scraped by a real Prometheus,
 * read by Tide's prometheus source, a threshold policy, an aws-asg group on moto_server scaled
 * through the AWS SDK, and every outcome posted to a real Alertmanager as seed 003's alerts.
 * The ASG's own MinSize/MaxSize are never touched.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { stringify } from 'yaml'
import { type Daemon, startDaemon } from '../../src/engine/daemon.js'
import { silentLogger } from '../../src/engine/log.js'
import { waitFor } from '../support/daemon.js'
import { type Moto, requireMoto, startMoto } from '../support/moto.js'
import {
  requireAlertmanager,
  requirePrometheus,
  type RunningAlertmanager,
  type RunningPrometheus,
  startAlertmanager,
  startPrometheus,
} from '../support/prometheus.js'

const skip = requireMoto() || requirePrometheus() || requireAlertmanager()

describe('Prometheus → Tide → AWS ASG (moto) → Alertmanager', { skip }, () => {
  let moto: Moto
  let prom: RunningPrometheus
  let am: RunningAlertmanager
  let exporter: Server
  let tide: Daemon | undefined
  let dir: string
  let queue = 50

  before(async () => {
    exporter = createServer((_req, res) => {
      res.end(`# TYPE jobs_waiting gauge\njobs_waiting{queue="workers"} ${queue}\n`)
    })
    await new Promise<void>((r) => exporter.listen(0, '127.0.0.1', r))
    const address = `127.0.0.1:${(exporter.address() as AddressInfo).port}`
    ;[moto, prom, am] = await Promise.all([
      startMoto(),
      startPrometheus({ targets: [address], interval: '1s' }),
      startAlertmanager({
        config: { route: { receiver: 'null', group_wait: '0s' }, receivers: [{ name: 'null' }] },
      }),
    ])
    await moto.createGroup('swarm-workers', { min: 0, max: 10, desired: 1 })
    dir = mkdtempSync(join(tmpdir(), 'tide-e2e-aws-'))
    const config = {
      api: { listen: '127.0.0.1:0' },
      store: { path: join(dir, 'tide.db') },
      groups: {
        workers: {
          min: 1,
          max: 3,
          interval: '500ms',
          cooldown: '0s',
          target: {
            kind: 'aws-asg',
            name: 'swarm-workers',
            region: moto.region,
            endpoint: moto.endpoint,
            env_file: moto.envFile(),
            poll_interval: '100ms',
            ready_timeout: '30s',
          },
          sources: [
            {
              kind: 'prometheus',
              url: prom.url,
              metrics: { waiting: { query: 'max(jobs_waiting{queue="{{group}}"})' } },
            },
          ],
          policies: [
            {
              kind: 'threshold',
              up: { conditions: ['waiting > 10'] },
              down: { conditions: ['waiting < 1'] },
            },
          ],
          scale_down: { stabilization: '0s' },
          notify: [
            { kind: 'alertmanager', url: am.url, labels: { receiver: 'system' }, alert_timeout: '5m' },
          ],
        },
      },
    }
    writeFileSync(join(dir, 'tide.yaml'), stringify(config))
    tide = await startDaemon({ configPath: join(dir, 'tide.yaml'), logger: silentLogger() })
  })

  after(async () => {
    await tide?.close()
    await Promise.allSettled([moto?.close(), prom?.stop(), am?.stop()])
    await new Promise((r) => exporter?.close(r))
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  test('a long queue scales the ASG up to the group’s max, and each step is an alert', async () => {
    await waitFor(
      '3 workers in the ASG',
      60_000,
      async () => (await moto.describe('swarm-workers')).DesiredCapacity === 3,
    )
    const group = await moto.describe('swarm-workers')
    assert.equal(group.Instances?.length, 3)
    assert.deepEqual([group.MinSize, group.MaxSize], [0, 10], 'the ASG’s own bounds are untouched')
    await waitFor('Tide sees 3 ready', 20_000, () => tide!.controller.getGroup('workers').ready === 3)
    await waitFor('a success alert', 20_000, async () => {
      const alerts = await am.alerts({ group: 'workers', status: 'success' })
      return alerts.length >= 1
    })
    const alerts = await am.alerts({ group: 'workers' })
    const success = alerts.filter((a) => a.labels.status === 'success')
    assert.ok(success.length >= 1)
    for (const a of success) {
      assert.equal(a.labels.alertname, 'scale_nodes')
      assert.equal(a.labels.service, 'aws')
      assert.equal(a.labels.receiver, 'system')
      assert.match(a.annotations.request!, /^Scale nodes up on: aws, by: 1$/)
      assert.match(a.annotations.summary!, /^Changing the number of nodes of workers on aws from \d to \d/)
    }
  })

  test('an empty queue scales back down to min by terminating instances, no replacements', async () => {
    queue = 0
    await waitFor('1 worker in the ASG', 60_000, async () => {
      const g = await moto.describe('swarm-workers')
      return g.DesiredCapacity === 1 && g.Instances?.length === 1
    })
    // Stays at the group's min: the policy keeps asking, the bounds hold.
    await new Promise((r) => setTimeout(r, 1500))
    const group = await moto.describe('swarm-workers')
    assert.equal(group.DesiredCapacity, 1)
    assert.deepEqual([group.MinSize, group.MaxSize], [0, 10])
    const view = tide!.controller.getGroup('workers')
    assert.equal(view.desired, 1)
    // Same labels as the scale-up's alert, so Alertmanager updated that alert's annotations.
    await waitFor('the scale-down alert', 20_000, async () =>
      (await am.alerts({ group: 'workers', status: 'success' })).some(
        (a) => a.annotations.request === 'Scale nodes down on: aws, by: 1',
      ),
    )
  })
})
