/**
 * `tide docker-scaler`'s environment (seeds.md §3.7): Docker Scaler's Dockerfile defaults, now in
 * code; every variable lands on its key; Go's ParseBool spellings; every bad variable reported
 * at once by name and value.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { ConfigError } from '../core/errors.js'
import { dockerScalerSettings } from './env.js'

const TOKEN = { TIDE_RECEIVER_TOKEN: 'a-token-of-sixteen-chars' }

describe('docker-scaler environment', () => {
  test('defaults are the original Dockerfile’s (a bare binary clamped every service to 0)', () => {
    const { listen, config, notes, store } = dockerScalerSettings(TOKEN)
    assert.equal(listen, '0.0.0.0:8080', "Docker Scaler's port")
    assert.equal(store, undefined, 'cooldowns in memory unless TIDE_STORE')
    assert.deepEqual(notes, [])
    assert.equal(config.prefix, '/')
    assert.deepEqual(
      {
        min: config.services.min,
        max: config.services.max,
        up_by: config.services.up_by,
        down_by: config.services.down_by,
        notify_at_min: config.services.notify_at_min,
        notify_at_max: config.services.notify_at_max,
      },
      { min: 1, max: 5, up_by: 1, down_by: 1, notify_at_min: false, notify_at_max: true },
    )
    assert.deepEqual(config.services.labels, {
      min: 'com.df.scaleMin',
      max: 'com.df.scaleMax',
      up_by: 'com.df.scaleUpBy',
      down_by: 'com.df.scaleDownBy',
    })
    assert.deepEqual(config.reschedule, {
      label: 'com.df.reschedule=true',
      interval: 60_000,
      timeout: 1_000_000,
    })
    assert.equal(config.nodes, undefined, 'no NODE_SCALER_BACKEND, no node route')
    assert.deepEqual(config.notify, [], 'no ALERTMANAGER_ADDRESS, no alerts (the original’s stub alerter)')
    assert.equal(config.cooldown, 180_000)
  })

  test('every variable lands on its key', () => {
    const { config, listen, store, notes } = dockerScalerSettings({
      ...TOKEN,
      TIDE_LISTEN: '127.0.0.1:9090',
      TIDE_STORE: '/var/lib/tide/scaler.db',
      SERVER_PREFIX: '/scaler',
      DOCKER_HOST: 'unix:///run/docker.sock',
      MIN_SCALE_LABEL: 'min',
      MAX_SCALE_LABEL: 'max',
      SCALE_UP_BY_LABEL: 'up',
      SCALE_DOWN_BY_LABEL: 'down',
      DEFAULT_MIN_REPLICAS: '2',
      DEFAULT_MAX_REPLICAS: '9',
      DEFAULT_SCALE_SERVICE_UP_BY: '3',
      DEFAULT_SCALE_SERVICE_DOWN_BY: '2',
      ALERT_SCALE_MIN: 'T',
      ALERT_SCALE_MAX: '0',
      ALERTMANAGER_ADDRESS: 'http://alertmanager:9093',
      ALERT_TIMEOUT: '30',
      RESCHEDULE_FILTER_LABEL: 'rebalance=yes',
      RESCHEDULE_TICKER_INTERVAL: '5',
      RESCHEDULE_TIMEOUT: '120',
      RESCHEDULE_ENV_KEY: 'WHEN',
      TIDE_ALERT_COOLDOWN: '10m',
      NODE_SCALER_BACKEND: 'aws',
      AWS_MANAGER_ASG: 'managers',
      AWS_WORKER_ASG: 'workers',
      AWS_ENV_FILE: '/run/secrets/aws-creds',
      AWS_ENDPOINT_URL: 'http://127.0.0.1:5000',
      TIDE_SET_ASG_BOUNDS: 'true',
      ALERT_NODE_MIN: 'true',
      ALERT_NODE_MAX: 'false',
      DEFAULT_MIN_WORKER_NODES: '1',
      DEFAULT_MAX_WORKER_NODES: '8',
      DEFAULT_SCALE_WORKER_NODE_UP_BY: '2',
      DEFAULT_SCALE_WORKER_NODE_DOWN_BY: '3',
      MAX_SCALE_WORKER_NODE_LABEL: 'wmax',
      SCALE_MANAGER_NODE_UP_BY_LABEL: 'mup',
    })
    assert.equal(listen, '127.0.0.1:9090')
    assert.equal(store, '/var/lib/tide/scaler.db')
    assert.equal(config.prefix, '/scaler')
    assert.equal(config.host, 'unix:///run/docker.sock')
    assert.equal(config.cooldown, 600_000)
    assert.deepEqual(config.services, {
      min: 2,
      max: 9,
      up_by: 3,
      down_by: 2,
      labels: { min: 'min', max: 'max', up_by: 'up', down_by: 'down' },
      notify_at_min: true,
      notify_at_max: false,
    })
    assert.deepEqual(config.reschedule, { label: 'rebalance=yes', interval: 5000, timeout: 120_000 })
    assert.equal(config.notify.length, 1)
    const am = config.notify[0]!
    assert.equal(am.kind, 'alertmanager')
    assert.ok(am.kind === 'alertmanager')
    assert.equal(am.url, 'http://alertmanager:9093')
    assert.equal(am.alert_timeout, 30_000)
    assert.ok(!am.on.includes('started'), 'one alert per operation, as the original')
    const nodes = config.nodes!
    assert.equal(nodes.env_file, '/run/secrets/aws-creds')
    assert.equal(nodes.endpoint, 'http://127.0.0.1:5000')
    assert.equal(nodes.set_bounds, true)
    assert.deepEqual(
      { ...nodes.worker, labels: undefined },
      {
        asg: 'workers',
        min: 1,
        max: 8,
        up_by: 2,
        down_by: 3,
        labels: undefined,
        notify_at_min: true,
        notify_at_max: false,
      },
    )
    assert.equal(nodes.worker!.labels.max, 'wmax')
    assert.equal(nodes.worker!.labels.min, 'com.df.scaleWorkerNodeMin')
    assert.deepEqual(
      [nodes.manager!.asg, nodes.manager!.min, nodes.manager!.max, nodes.manager!.labels.up_by],
      ['managers', 3, 7, 'mup'],
    )
    assert.deepEqual(notes, [
      'RESCHEDULE_ENV_KEY is not used: Tide reschedules with a forced update (docker service update --force)',
    ])
  })

  test('booleans take Go’s ParseBool spellings; anything else is an error naming the variable', () => {
    for (const yes of ['1', 't', 'T', 'TRUE', 'true', 'True']) {
      assert.equal(
        dockerScalerSettings({ ...TOKEN, ALERT_SCALE_MIN: yes }).config.services.notify_at_min,
        true,
      )
    }
    for (const no of ['0', 'f', 'F', 'FALSE', 'false', 'False']) {
      assert.equal(
        dockerScalerSettings({ ...TOKEN, ALERT_SCALE_MAX: no }).config.services.notify_at_max,
        false,
      )
    }
    assert.throws(
      () => dockerScalerSettings({ ...TOKEN, ALERT_SCALE_MIN: 'yes', DEFAULT_SCALE_SERVICE_UP_BY: '0' }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError)
        assert.deepEqual(
          err.problems.map((p) => [p.path, p.message, p.value]),
          [
            ['DEFAULT_SCALE_SERVICE_UP_BY', 'must be a whole number ≥ 1', '0'],
            ['ALERT_SCALE_MIN', 'must be true or false', 'yes'],
          ],
        )
        return true
      },
    )
  })

  test('an ALERTMANAGER_ADDRESS that is not a URL is named by its variable', () => {
    assert.throws(
      () => dockerScalerSettings({ ...TOKEN, ALERTMANAGER_ADDRESS: 'alertmanager:9093' }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError)
        assert.deepEqual(
          err.problems.map((p) => p.path),
          ['ALERTMANAGER_ADDRESS'],
        )
        return true
      },
    )
  })
  test('node draining: on by default; TIDE_NODE_DRAIN, TIDE_NODE_LABEL and TIDE_NODE_DRAIN_TIMEOUT set it, bad ones named', () => {
    const aws = { ...TOKEN, NODE_SCALER_BACKEND: 'aws', AWS_MANAGER_ASG: 'm', AWS_WORKER_ASG: 'w' }
    assert.deepEqual(dockerScalerSettings(aws).config.nodes?.drain, {
      enabled: true,
      node_label: 'tide.instance-id',
      timeout: 300_000,
      poll: 2_000,
    })
    const set = dockerScalerSettings({
      ...aws,
      TIDE_NODE_DRAIN: 'false',
      TIDE_NODE_LABEL: 'aws.instance',
      TIDE_NODE_DRAIN_TIMEOUT: '90s',
    }).config.nodes?.drain
    assert.deepEqual(set, { enabled: false, node_label: 'aws.instance', timeout: 90_000, poll: 2_000 })
    assert.throws(
      () => dockerScalerSettings({ ...aws, TIDE_NODE_DRAIN: 'maybe', TIDE_NODE_DRAIN_TIMEOUT: 'soon' }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError)
        assert.deepEqual(err.problems.map((p) => p.path).sort(), [
          'TIDE_NODE_DRAIN',
          'TIDE_NODE_DRAIN_TIMEOUT',
        ])
        return true
      },
    )
  })
})
