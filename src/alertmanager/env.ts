/**
 * `tide docker-scaler`'s configuration: Docker Scaler's environment variables (seeds.md §3.7),
 * read into a `receiver` config. Every problem is reported at once, naming the variable and its
 * value (the original panicked on the first bad one, and swallowed a broken node backend).
 *
 * Defaults are the original Dockerfile's, here in code. Tide's additions:
 * - `TIDE_LISTEN` (default `0.0.0.0:8080`, the original's port);
 * - `TIDE_RECEIVER_TOKEN`, or `TIDE_RECEIVER_USERNAME` + `TIDE_RECEIVER_PASSWORD`: credentials
 *   (the original had none); without them a non-loopback address needs `TIDE_INSECURE=true`;
 * - `TIDE_ALERT_COOLDOWN` (default `3m`): one alert group scales at most once per this long;
 * - `TIDE_STORE`: a SQLite file that keeps those cooldowns across restarts (default: in memory);
 * - `TIDE_NODE_DRAIN` (default true), `TIDE_NODE_LABEL` (default `tide.instance-id`),
 *   `TIDE_NODE_DRAIN_TIMEOUT` (default `5m`): a node scale-down drains the Swarm nodes first
 *   (receiver.nodes.drain); `TIDE_NODE_DRAIN=false` lets AWS pick, as the original.
 * `RESCHEDULE_ENV_KEY` is accepted and unused: Tide reschedules with a forced update.
 */
import { existsSync } from 'node:fs'
import { ConfigError, type ConfigProblem } from '../core/errors.js'
import { isLoopback, splitHostPort } from '../core/schema.js'
import { type ReceiverConfig, type ReceiverInput, receiverSchema } from './config.js'

export interface DockerScalerSettings {
  listen: string
  /** `TIDE_STORE`: a store file keeping alert-group cooldowns across restarts; in memory without. */
  store?: string
  config: ReceiverConfig
  /** Lines worth a log line at start (ignored variables). */
  notes: string[]
}

type Env = Record<string, string | undefined>

/** Go's strconv.ParseBool, which envconfig used. */
const TRUE = ['1', 't', 'T', 'TRUE', 'true', 'True']
const FALSE = ['0', 'f', 'F', 'FALSE', 'false', 'False']

export function dockerScalerSettings(env: Env): DockerScalerSettings {
  const problems: ConfigProblem[] = []
  const notes: string[] = []
  const get = (name: string) => {
    const v = env[name]
    return v === undefined || v === '' ? undefined : v
  }
  const bool = (name: string, fallback: boolean): boolean => {
    const v = get(name)
    if (v === undefined) return fallback
    if (TRUE.includes(v)) return true
    if (FALSE.includes(v)) return false
    problems.push({ path: name, message: 'must be true or false', value: v })
    return fallback
  }
  const int = (name: string, fallback: number, min = 0): number => {
    const v = get(name)
    if (v === undefined) return fallback
    if (!/^\d+$/.test(v.trim()) || Number(v) < min) {
      problems.push({ path: name, message: `must be a whole number ≥ ${min}`, value: v })
      return fallback
    }
    return Number(v)
  }
  const str = (name: string, fallback: string) => get(name) ?? fallback

  const nodeRole = (role: 'MANAGER' | 'WORKER', min: number, max: number, asg: string | undefined) => {
    if (!asg) return undefined
    const cap = role === 'MANAGER' ? 'Manager' : 'Worker'
    return {
      asg,
      min: int(`DEFAULT_MIN_${role}_NODES`, min),
      max: int(`DEFAULT_MAX_${role}_NODES`, max),
      up_by: int(`DEFAULT_SCALE_${role}_NODE_UP_BY`, 1, 1),
      down_by: int(`DEFAULT_SCALE_${role}_NODE_DOWN_BY`, 1, 1),
      labels: {
        min: str(`MIN_SCALE_${role}_NODE_LABEL`, `com.df.scale${cap}NodeMin`),
        max: str(`MAX_SCALE_${role}_NODE_LABEL`, `com.df.scale${cap}NodeMax`),
        up_by: str(`SCALE_${role}_NODE_UP_BY_LABEL`, `com.df.scale${cap}NodeUpBy`),
        down_by: str(`SCALE_${role}_NODE_DOWN_BY_LABEL`, `com.df.scale${cap}NodeDownBy`),
      },
      notify_at_min: bool('ALERT_NODE_MIN', false),
      notify_at_max: bool('ALERT_NODE_MAX', true),
    }
  }

  let nodes: ReceiverInput['nodes']
  const backend = get('NODE_SCALER_BACKEND')
  if (backend !== undefined && backend !== 'aws') {
    problems.push({
      path: 'NODE_SCALER_BACKEND',
      message: 'only "aws" is supported (or leave it empty)',
      value: backend,
    })
  } else if (backend === 'aws') {
    const manager = get('AWS_MANAGER_ASG')
    const worker = get('AWS_WORKER_ASG')
    if (!manager) problems.push({ path: 'AWS_MANAGER_ASG', message: 'AWS Scaling requires AWS_MANAGER_ASG' })
    if (!worker) problems.push({ path: 'AWS_WORKER_ASG', message: 'AWS Scaling requires AWS_WORKER_ASG' })
    // The original's Dockerfile pointed AWS_ENV_FILE at a Docker secret; read it when it is there.
    const envFile = get('AWS_ENV_FILE') ?? (existsSync('/run/secrets/aws') ? '/run/secrets/aws' : undefined)
    nodes = {
      backend: 'aws',
      ...(envFile ? { env_file: envFile } : {}),
      ...(get('AWS_ENDPOINT_URL') ? { endpoint: get('AWS_ENDPOINT_URL') } : {}),
      set_bounds: bool('TIDE_SET_ASG_BOUNDS', false),
      drain: {
        enabled: bool('TIDE_NODE_DRAIN', true),
        node_label: str('TIDE_NODE_LABEL', 'tide.instance-id'),
        timeout: str('TIDE_NODE_DRAIN_TIMEOUT', '5m'),
      },
      manager: nodeRole('MANAGER', 3, 7, manager),
      worker: nodeRole('WORKER', 0, 5, worker),
    }
  }

  const alertmanager = get('ALERTMANAGER_ADDRESS')
  const token = get('TIDE_RECEIVER_TOKEN')
  const username = get('TIDE_RECEIVER_USERNAME')
  const password = get('TIDE_RECEIVER_PASSWORD')
  if ((username === undefined) !== (password === undefined)) {
    problems.push({
      path: username ? 'TIDE_RECEIVER_PASSWORD' : 'TIDE_RECEIVER_USERNAME',
      message: 'TIDE_RECEIVER_USERNAME and TIDE_RECEIVER_PASSWORD go together',
    })
  }
  if (get('RESCHEDULE_ENV_KEY')) {
    notes.push(
      'RESCHEDULE_ENV_KEY is not used: Tide reschedules with a forced update (docker service update --force)',
    )
  }
  const input: ReceiverInput = {
    prefix: str('SERVER_PREFIX', '/'),
    ...(token ? { auth: { token } } : username && password ? { auth: { username, password } } : {}),
    ...(get('DOCKER_HOST') ? { host: get('DOCKER_HOST') } : {}),
    cooldown: str('TIDE_ALERT_COOLDOWN', '3m'),
    services: {
      min: int('DEFAULT_MIN_REPLICAS', 1),
      max: int('DEFAULT_MAX_REPLICAS', 5),
      up_by: int('DEFAULT_SCALE_SERVICE_UP_BY', 1, 1),
      down_by: int('DEFAULT_SCALE_SERVICE_DOWN_BY', 1, 1),
      labels: {
        min: str('MIN_SCALE_LABEL', 'com.df.scaleMin'),
        max: str('MAX_SCALE_LABEL', 'com.df.scaleMax'),
        up_by: str('SCALE_UP_BY_LABEL', 'com.df.scaleUpBy'),
        down_by: str('SCALE_DOWN_BY_LABEL', 'com.df.scaleDownBy'),
      },
      notify_at_min: bool('ALERT_SCALE_MIN', false),
      notify_at_max: bool('ALERT_SCALE_MAX', true),
    },
    ...(nodes ? { nodes } : {}),
    reschedule: {
      label: str('RESCHEDULE_FILTER_LABEL', 'com.df.reschedule=true'),
      interval: int('RESCHEDULE_TICKER_INTERVAL', 60, 1),
      timeout: int('RESCHEDULE_TIMEOUT', 1000, 1),
    },
    notify: alertmanager
      ? [{ kind: 'alertmanager', url: alertmanager, alert_timeout: int('ALERT_TIMEOUT', 10, 1) }]
      : [],
  }

  const listen = str('TIDE_LISTEN', '0.0.0.0:8080')
  let host = ''
  try {
    host = splitHostPort(listen).host
  } catch {
    problems.push({ path: 'TIDE_LISTEN', message: 'must be host:port, e.g. "0.0.0.0:8080"', value: listen })
  }
  if (host && !isLoopback(host) && !input.auth && !bool('TIDE_INSECURE', false)) {
    problems.push({
      path: 'TIDE_RECEIVER_TOKEN',
      message:
        `is required to listen on ${listen}: without credentials anyone who can reach the port can scale your services. ` +
        'Set TIDE_RECEIVER_TOKEN (or TIDE_RECEIVER_USERNAME and TIDE_RECEIVER_PASSWORD) and send it from Alertmanager ' +
        "(http_config), listen on 127.0.0.1 (TIDE_LISTEN), or set TIDE_INSECURE=true to accept Docker Scaler's open port",
    })
  }

  const parsed = receiverSchema.safeParse(input)
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      problems.push({ path: ENV_NAMES[issue.path.join('.')] ?? issue.path.join('.'), message: issue.message })
    }
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems, 'the environment')
  const store = get('TIDE_STORE')
  return { listen, config: parsed.data, notes, ...(store ? { store } : {}) }
}

/** Which variable a schema path came from, for error messages. */
const ENV_NAMES: Record<string, string> = {
  prefix: 'SERVER_PREFIX',
  host: 'DOCKER_HOST',
  cooldown: 'TIDE_ALERT_COOLDOWN',
  'auth.token': 'TIDE_RECEIVER_TOKEN',
  'auth.password': 'TIDE_RECEIVER_PASSWORD',
  'reschedule.label': 'RESCHEDULE_FILTER_LABEL',
  'notify.0.url': 'ALERTMANAGER_ADDRESS',
  'nodes.endpoint': 'AWS_ENDPOINT_URL',
  'nodes.drain.node_label': 'TIDE_NODE_LABEL',
  'nodes.drain.timeout': 'TIDE_NODE_DRAIN_TIMEOUT',
}
