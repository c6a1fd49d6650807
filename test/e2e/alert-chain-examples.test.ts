/**
 * The shipped examples work with the real tools: examples/prometheus/alertmanager.yml sends
 * Tide's reports to Slack with seed 003's template (title `<alertname>: <request>`, colour
 * `danger` for errors else `good`, text = summary; seeds.md §3.6) and routes scaling alerts to
 * Tide, never Tide's own; rules.yml loads in Prometheus; tide.yaml is a valid config.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { parse } from 'yaml'
import { loadConfigFile } from '../../src/config/index.js'
import type { ScaleEvent } from '../../src/core/types.js'
import { eventAlert, postAlerts } from '../../src/notify/alertmanager.js'
import {
  requireAlertmanager,
  requirePrometheus,
  type RunningAlertmanager,
  startAlertmanager,
  startPrometheus,
} from '../support/prometheus.js'
import { eventually } from '../support/swarm.js'
import { requireComponent } from '../support/requires.js'

const EXAMPLES = join(import.meta.dirname, '../../examples/prometheus')
const amtool = (() => {
  try {
    execFileSync('amtool', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()
const skip =
  requireAlertmanager() ||
  requirePrometheus() ||
  requireComponent(amtool, 'amtool', 'apt-get install prometheus-alertmanager')

interface SlackMessage {
  attachments: Array<{ title: string; color: string; text: string }>
}

describe('examples/prometheus with the real Alertmanager and Prometheus', { skip }, () => {
  let dir: string
  let am: RunningAlertmanager
  let capture: Server
  const slack: SlackMessage[] = []

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tide-examples-'))
    capture = createServer((req, res) => {
      let body = ''
      req.on('data', (c: Buffer) => (body += c.toString()))
      req.on('end', () => {
        if (req.url === '/slack') slack.push(JSON.parse(body) as SlackMessage)
        res.end('ok')
      })
    })
    await new Promise<void>((r) => capture.listen(0, '127.0.0.1', r))
    const port = (capture.address() as AddressInfo).port
    // The example as shipped, with Slack and the token file pointed at this test's.
    const config = parse(readFileSync(join(EXAMPLES, 'alertmanager.yml'), 'utf8')) as {
      global: { slack_api_url: string }
      receivers: Array<{
        name: string
        webhook_configs?: Array<{ http_config: { authorization: { credentials_file: string } } }>
      }>
    }
    config.global.slack_api_url = `http://127.0.0.1:${port}/slack`
    const token = join(dir, 'tide-token')
    writeFileSync(token, 'example-token-0123456789\n')
    for (const r of config.receivers)
      for (const w of r.webhook_configs ?? []) w.http_config.authorization.credentials_file = token
    am = await startAlertmanager({ config })
  })
  after(async () => {
    await am?.stop()
    await new Promise<void>((r) => (capture ? capture.close(() => r()) : r()))
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  test('Tide’s reports reach Slack with the seed’s title, colour and text', async () => {
    const event = (kind: ScaleEvent['kind'], message: string): ScaleEvent => ({
      kind,
      group: 'web',
      decision: 0,
      trigger: 'scale_service',
      from: 1,
      to: 3,
      direction: 'up',
      reason: 'Scale service up: web',
      message,
      at: Date.now(),
      target: 'docker-swarm',
    })
    await postAlerts(
      am.url,
      [
        eventAlert(event('applied', 'Scaling web from 1 to 3 replicas (min: 1, max: 5)')),
        eventAlert(event('failed', 'web is a global service (can not be scaled)')),
      ],
      { signal: AbortSignal.timeout(10_000) },
    )
    await eventually('two Slack messages', 30_000, () => slack.length >= 2)
    const byColour = Object.fromEntries(slack.map((m) => [m.attachments[0]!.color, m.attachments[0]!]))
    assert.deepEqual(byColour.good, {
      ...byColour.good,
      title: 'scale_service: Scale service up: web',
      text: 'Scaling web from 1 to 3 replicas (min: 1, max: 5)',
    })
    assert.deepEqual(byColour.danger, {
      ...byColour.danger,
      title: 'scale_service: Scale service up: web',
      text: 'web is a global service (can not be scaled)',
    })
  })

  test('routing: scaling alerts go to Tide, Tide’s own reports never do (amtool)', () => {
    const route = (...labels: string[]) =>
      execFileSync(
        'amtool',
        ['config', 'routes', 'test', `--config.file=${join(EXAMPLES, 'alertmanager.yml')}`, ...labels],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
      ).trim()
    assert.equal(route('alertname=WebCpuHigh', 'service=web', 'scale=up', 'type=service'), 'tide')
    assert.equal(route('alertname=WorkerMemoryHigh', 'scale=up', 'type=node'), 'tide')
    for (const alertname of ['scale_service', 'scale_nodes', 'reschedule_service']) {
      // Even carrying a `scale` label, a report must not loop back into a scaling request.
      assert.equal(
        route(`alertname=${alertname}`, 'service=web', 'status=success', 'scale=up'),
        'slack-scaler',
      )
    }
  })

  test('rules.yml loads in Prometheus; tide.yaml and ../aws-asg.yaml are valid configs', async () => {
    const rules = readFileSync(join(EXAMPLES, 'rules.yml'), 'utf8')
    const prom = await startPrometheus({ rules })
    try {
      const res = (await (await fetch(`${prom.url}/api/v1/rules`)).json()) as {
        data: { groups: Array<{ rules: Array<{ name: string; labels: Record<string, string> }> }> }
      }
      const loaded = res.data.groups.flatMap((g) => g.rules)
      assert.ok(loaded.length >= 2)
      for (const rule of loaded) {
        assert.match(rule.labels.scale ?? '', /^(up|down)$/, `${rule.name} has a scale label`)
      }
    } finally {
      await prom.stop()
    }
    const loaded = await loadConfigFile(join(EXAMPLES, 'tide.yaml'), {
      ...process.env,
      TIDE_RECEIVER_TOKEN: 'example-token-0123456789',
    })
    assert.ok(loaded.config.receiver)
    const asg = await loadConfigFile(join(EXAMPLES, '../aws-asg.yaml'), {
      ...process.env,
      WORKER_ASG: 'workers',
    })
    assert.equal(asg.config.groups['swarm-workers']?.target.kind, 'aws-asg')
  })
})
