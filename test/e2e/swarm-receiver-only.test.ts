/**
 * `tide run` with a `receiver` and no groups, on a real Swarm: it starts, scales a service from
 * an Alertmanager webhook, counts the receiver's operations in `/metrics`, and keeps the alert
 * group's cooldown in its store, so the same group re-sent after a restart (Alertmanager repeats
 * it at repeat_interval) does not scale again. A config with neither groups nor receiver is refused.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { stringify } from 'yaml'
import { ConfigError } from '../../src/core/errors.js'
import { type Daemon, startDaemon } from '../../src/engine/daemon.js'
import { Writable } from 'node:stream'
import { createLogger, silentLogger } from '../../src/engine/log.js'
import { acquireSwarm, eventually, requireSwarm, type Swarm } from '../support/swarm.js'

const skip = requireSwarm()

/** Alertmanager's webhook (version 4) for one alert of a group; label values are strings. */
function webhook(status: 'firing' | 'resolved', service: string, startsAt: string) {
  const labels = { alertname: 'ServiceLoadHigh', service, scale: 'up', type: 'service' }
  return {
    version: '4',
    groupKey: `{}:{scale="up", service="${service}"}`,
    truncatedAlerts: 0,
    status,
    receiver: 'tide',
    groupLabels: { service, scale: 'up' },
    commonLabels: labels,
    commonAnnotations: {},
    externalURL: 'http://alertmanager:9093',
    alerts: [
      {
        status,
        labels,
        annotations: {},
        startsAt,
        endsAt: status === 'resolved' ? '2026-01-01T00:10:00Z' : '0001-01-01T00:00:00Z',
        generatorURL: '',
        fingerprint: 'f00d',
      },
    ],
  }
}

describe('tide run with only a receiver', { skip }, () => {
  let swarm: Swarm
  let dir: string
  let daemon: Daemon | undefined
  const logLines: Array<Record<string, unknown>> = []
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

  before(async () => {
    swarm = await acquireSwarm()
    dir = mkdtempSync(join(tmpdir(), 'tide-receiver-only-'))
  })
  after(async () => {
    await daemon?.close()
    await swarm?.release()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  const replicas = async (name: string) =>
    (await swarm.docker.getService(name).inspect()).Spec.Mode.Replicated?.Replicas as number
  const post = async (body: unknown) => {
    const res = await fetch(`${daemon!.apiUrl}/v1/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
    return { status: res.status, body: (await res.json()) as { status: string; message: string } }
  }
  const metric = async (operation: string, result: string): Promise<number> => {
    const text = await (await fetch(`${daemon!.apiUrl}/metrics`)).text()
    const line = text
      .split('\n')
      .find((l) =>
        l.startsWith(`tide_receiver_operations_total{operation="${operation}",result="${result}"} `),
      )
    return line ? Number(line.split(' ').at(-1)) : 0
  }

  test('a config with neither groups nor a receiver is refused, naming `groups`', async () => {
    const path = join(dir, 'empty.yaml')
    writeFileSync(path, stringify({ api: { listen: '127.0.0.1:0' }, store: { path: join(dir, 'x.db') } }))
    await assert.rejects(startDaemon({ configPath: path, logger: silentLogger() }), (err: unknown) => {
      assert.ok(err instanceof ConfigError)
      assert.deepEqual(
        err.problems.map((p) => [p.path, p.message]),
        [
          [
            'groups',
            'needs at least one group, or a `receiver` section (to scale Swarm services from alerts)',
          ],
        ],
      )
      return true
    })
  })

  test('scales from alerts, counts in /metrics, and a restart keeps the alert group’s cooldown', async () => {
    const name = await swarm.createService({ replicas: 1 })
    const path = join(dir, 'tide.yaml')
    writeFileSync(
      path,
      stringify({
        api: { listen: '127.0.0.1:0' },
        store: { path: join(dir, 'tide.db') },
        receiver: {
          host: swarm.host,
          cooldown: '1h',
          services: { max: 4 },
          // Nothing listens there: a notification that fails never changes the answer.
          notify: [{ kind: 'alertmanager', url: 'http://127.0.0.1:9' }],
        },
      }),
    )
    daemon = await startDaemon({
      configPath: path,
      logger: createLogger({ level: 'info', format: 'json', stream }),
    })
    const groups = (await (await fetch(`${daemon.apiUrl}/v1/groups`)).json()) as { groups: unknown[] }
    assert.deepEqual(groups.groups, [])

    const firing = webhook('firing', name, '2026-01-01T00:00:00Z')
    const up = await post(firing)
    assert.equal(up.status, 200, up.body.message)
    assert.equal(up.body.message, `Scaling ${name} from 1 to 2 replicas (min: 1, max: 4)`)
    assert.equal(await replicas(name), 2)
    assert.equal(await metric('scale_service', 'applied'), 1)
    // One structured log line per operation, with the service and the sizes.
    assert.ok(
      logLines.some((l) => l.msg === up.body.message && l.service === name && l.from === 1 && l.to === 2),
      'a log line for the scale',
    )
    // The alert could not be delivered: counted as a failed notification, the scale still answered 200.
    await eventually('the failed notification to be counted', 30_000, async () =>
      /tide_notifications_total\{group="receiver",notifier="alertmanager",result="failed"\} 1/.test(
        await (await fetch(`${daemon!.apiUrl}/metrics`)).text(),
      ),
    )
    const resolved = await post(webhook('resolved', name, '2026-01-01T00:00:00Z'))
    assert.equal(resolved.status, 200)
    assert.equal(await metric('scale_service', 'resolved'), 1)
    assert.match(
      await (await fetch(`${daemon.apiUrl}/metrics`)).text(),
      /tide_receiver_operation_duration_seconds_count\{operation="scale_service",result="applied"\} 1/,
    )

    // Tide restarts; Alertmanager re-sends the same group (same groupKey and startsAt).
    await daemon.close()
    daemon = await startDaemon({ configPath: path, logger: silentLogger() })
    const again = await post(firing)
    assert.equal(again.status, 200, again.body.message)
    assert.match(
      again.body.message,
      /this alert group already scaled it; ignored for another \d+s \(cooldown\)/,
    )
    assert.equal(await replicas(name), 2, 'the repeat after the restart did not scale')
    assert.equal(await metric('scale_service', 'ignored'), 1)

    // A new firing episode of the same group does act.
    const next = await post(webhook('firing', name, '2026-01-01T02:00:00Z'))
    assert.equal(next.body.message, `Scaling ${name} from 2 to 3 replicas (min: 1, max: 4)`)
    await swarm.waitForTasks(name, 3)
  })
})
