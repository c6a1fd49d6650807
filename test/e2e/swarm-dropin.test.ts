/**
 * `tide docker-scaler`, the drop-in, configured only by Docker Scaler's environment variables:
 * it serves the routes (also under SERVER_PREFIX), scales a real Swarm service through
 * DOCKER_HOST, checks basic credentials, reports to a real Alertmanager (ALERTMANAGER_ADDRESS)
 * and stops on a signal. Bad variables are all reported at once, naming each.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { main } from '../../src/cli/main.js'
import { requireAlertmanager, type RunningAlertmanager, startAlertmanager } from '../support/prometheus.js'
import { acquireSwarm, eventually, requireSwarm, type Swarm } from '../support/swarm.js'
import { sink } from '../support/sink.js'

const skip = requireSwarm() || requireAlertmanager()

/**
 * Starts `tide docker-scaler --json` with `env` (listening on a free loopback port, logging
 * nothing, unless `env` says otherwise); resolves to the first line it printed, and a stop
 * function that sends SIGTERM and expects exit code 0.
 */
async function startDropIn(env: Record<string, string>) {
  const stdout = sink()
  let signal: ((s: string) => void) | undefined
  const exit = main(['node', 'tide', 'docker-scaler', '--json'], {
    env: { TIDE_LISTEN: '127.0.0.1:0', TIDE_LOG_LEVEL: 'silent', ...env },
    stdout,
    stderr: sink(),
    onSignal: (listener) => {
      signal = listener
      return () => (signal = undefined)
    },
  })
  await eventually('the address on stdout', 30_000, () => stdout.text.includes('\n'))
  const ready = JSON.parse(stdout.text.split('\n')[0]!) as { url: string; prefix: string; nodes: boolean }
  return {
    ...ready,
    async stop() {
      signal?.('SIGTERM')
      assert.equal(await exit, 0)
    },
  }
}

describe('tide docker-scaler (drop-in) on a real Swarm', { skip }, () => {
  let swarm: Swarm
  let am: RunningAlertmanager

  before(async () => {
    swarm = await acquireSwarm()
    am = await startAlertmanager({ config: { route: { receiver: 'none' }, receivers: [{ name: 'none' }] } })
  })
  after(async () => {
    await am?.stop()
    await swarm?.release()
  })

  test('serves the routes from the environment alone, with basic auth, and reports to Alertmanager', async () => {
    const name = await swarm.createService({ replicas: 1 })
    const tide = await startDropIn({
      DOCKER_HOST: swarm.host,
      TIDE_LISTEN: '127.0.0.1:0',
      SERVER_PREFIX: '/scaler',
      ALERTMANAGER_ADDRESS: am.url,
      DEFAULT_MAX_REPLICAS: '3',
      DEFAULT_SCALE_SERVICE_UP_BY: '2',
      TIDE_RECEIVER_USERNAME: 'alertmanager',
      TIDE_RECEIVER_PASSWORD: 'correct horse battery',
      TIDE_LOG_LEVEL: 'silent',
    })
    const { url, prefix, nodes } = tide
    assert.equal(prefix, '/scaler')
    assert.equal(nodes, false)
    const basic = `Basic ${Buffer.from('alertmanager:correct horse battery').toString('base64')}`

    const ping = await fetch(`${url}/scaler/v1/ping`)
    assert.equal(ping.status, 200)
    const anonymous = await fetch(`${url}/v1/scale-service?service=${name}&scale=up`, { method: 'POST' })
    assert.equal(anonymous.status, 401)
    assert.equal(anonymous.headers.get('www-authenticate'), 'Basic')
    const wrong = await fetch(`${url}/v1/scale-service?service=${name}&scale=up`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from('alertmanager:nope').toString('base64')}` },
    })
    assert.equal(wrong.status, 401)
    assert.equal((await swarm.docker.getService(name).inspect()).Spec.Mode.Replicated.Replicas, 1)

    const up = await fetch(`${url}/scaler/v1/scale-service?service=${name}&scale=up`, {
      method: 'POST',
      headers: { authorization: basic },
    })
    const body = (await up.json()) as { status: string; message: string }
    assert.equal(up.status, 200, body.message)
    // DEFAULT_SCALE_SERVICE_UP_BY=2 and DEFAULT_MAX_REPLICAS=3 from the environment.
    assert.deepEqual(body, { status: 'OK', message: `Scaling ${name} from 1 to 3 replicas (min: 1, max: 3)` })
    assert.equal((await swarm.docker.getService(name).inspect()).Spec.Mode.Replicated.Replicas, 3)

    const nodesRoute = await fetch(`${url}/v1/scale-nodes?scale=up&type=worker`, {
      method: 'POST',
      headers: { authorization: basic },
    })
    assert.equal(nodesRoute.status, 404, 'no NODE_SCALER_BACKEND, no node route')

    await eventually('the alert in Alertmanager', 30_000, async () => {
      return (await am.alerts({ alertname: 'scale_service', service: name, status: 'success' })).length > 0
    })

    await tide.stop()
    await assert.rejects(fetch(`${url}/v1/ping`), 'the server is closed after the signal')
  })

  test('/metrics counts the operations; with TIDE_STORE a restart keeps the alert group’s cooldown', async () => {
    const name = await swarm.createService({ replicas: 1 })
    const dir = mkdtempSync(join(tmpdir(), 'tide-dropin-store-'))
    const env = { DOCKER_HOST: swarm.host, TIDE_STORE: join(dir, 'tide.db') }
    const alert = {
      version: '4',
      groupKey: `{}:{service="${name}"}`,
      status: 'firing',
      groupLabels: { service: name, scale: 'up' },
      commonLabels: { alertname: 'ServiceLoadHigh', service: name, scale: 'up' },
      alerts: [
        { status: 'firing', labels: { service: name, scale: 'up' }, startsAt: '2026-01-01T00:00:00Z' },
      ],
    }
    const post = async (url: string) => {
      const res = await fetch(`${url}/v1/scale-service`, { method: 'POST', body: JSON.stringify(alert) })
      return ((await res.json()) as { message: string }).message
    }
    const count = async (url: string, result: string) => {
      const text = await (await fetch(`${url}/metrics`)).text()
      const re = new RegExp(
        `^tide_receiver_operations_total\\{operation="scale_service",result="${result}"\\} (\\d+)$`,
        'm',
      )
      return Number(re.exec(text)?.[1] ?? 0)
    }
    try {
      let tide = await startDropIn(env)
      assert.equal(await post(tide.url), `Scaling ${name} from 1 to 2 replicas (min: 1, max: 5)`)
      assert.equal(await count(tide.url, 'applied'), 1)
      assert.match(await (await fetch(`${tide.url}/metrics`)).text(), /^tide_process_cpu_seconds_total /m)
      await tide.stop()

      tide = await startDropIn(env)
      assert.match(await post(tide.url), /this alert group already scaled it; ignored/)
      assert.equal(await count(tide.url, 'ignored'), 1)
      assert.equal((await swarm.docker.getService(name).inspect()).Spec.Mode.Replicated.Replicas, 2)
      await tide.stop()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('bad variables are all reported at once, each by name; no credentials beyond loopback is refused', async () => {
    const stderr = sink()
    const code = await main(['node', 'tide', 'docker-scaler'], {
      env: {
        DEFAULT_MAX_REPLICAS: 'five',
        ALERT_SCALE_MAX: 'yes',
        NODE_SCALER_BACKEND: 'gcp',
        RESCHEDULE_FILTER_LABEL: 'no-equals-sign',
        TIDE_LISTEN: '0.0.0.0:0',
      },
      stdout: sink(),
      stderr,
      onSignal: () => () => {},
    })
    assert.equal(code, 1)
    for (const expected of [
      'DEFAULT_MAX_REPLICAS: must be a whole number ≥ 0 (got "five")',
      'ALERT_SCALE_MAX: must be true or false (got "yes")',
      'NODE_SCALER_BACKEND: only "aws" is supported',
      'RESCHEDULE_FILTER_LABEL: must have the form key=value',
      'TIDE_RECEIVER_TOKEN: is required to listen on 0.0.0.0:0',
    ]) {
      assert.ok(stderr.text.includes(expected), `missing ${JSON.stringify(expected)} in:\n${stderr.text}`)
    }
    const aws = sink()
    await main(['node', 'tide', 'docker-scaler'], {
      env: { NODE_SCALER_BACKEND: 'aws', TIDE_LISTEN: '127.0.0.1:0' },
      stdout: sink(),
      stderr: aws,
      onSignal: () => () => {},
    })
    assert.match(aws.text, /AWS_MANAGER_ASG: AWS Scaling requires AWS_MANAGER_ASG/)
    assert.match(aws.text, /AWS_WORKER_ASG: AWS Scaling requires AWS_WORKER_ASG/)
  })
})
