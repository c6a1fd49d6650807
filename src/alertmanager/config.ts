/**
 * The `receiver` section of the config: Tide as an Alertmanager webhook receiver and as a
 * drop-in for Docker Scaler's routes (docs/receiver.md). Defaults live here, in code (the
 * original kept them only in its Dockerfile, so a bare binary clamped every service to 0).
 */
import { z } from 'zod'
import { duration } from '../core/schema.js'
import { notifierSchema } from '../notify/index.js'

const whole = (what: string) =>
  z.number().int(`${what} must be a whole number`).min(0, `${what} must be 0 or more`)
const step = (what: string) =>
  z.number().int(`${what} must be a whole number`).min(1, `${what} must be at least 1`)

function labelKeys(prefix: string) {
  return z
    .object({
      min: z.string().min(1).default(`${prefix}Min`).describe('Label holding the fewest replicas/nodes.'),
      max: z.string().min(1).default(`${prefix}Max`).describe('Label holding the most replicas/nodes.'),
      up_by: z.string().min(1).default(`${prefix}UpBy`).describe('Label holding the scale-up step.'),
      down_by: z.string().min(1).default(`${prefix}DownBy`).describe('Label holding the scale-down step.'),
    })
    .strict()
    .prefault({})
}

function scaling(defaults: { min: number; max: number }, labelPrefix: string, unit: string) {
  return {
    min: whole('min').default(defaults.min).describe(`Fewest ${unit} when the labels do not say.`),
    max: whole('max').default(defaults.max).describe(`Most ${unit} when the labels do not say.`),
    up_by: step('up_by')
      .default(1)
      .describe(`${unit} added per scale-up when neither request nor label says.`),
    down_by: step('down_by')
      .default(1)
      .describe(`${unit} removed per scale-down when neither request nor label says.`),
    labels: labelKeys(labelPrefix).describe(
      `Label keys read from the service (docker-scaler's ${labelPrefix}*).`,
    ),
    notify_at_min: z
      .boolean()
      .default(false)
      .describe('Send an `unchanged` event when a scale-down finds the minimum (ALERT_SCALE_MIN).'),
    notify_at_max: z
      .boolean()
      .default(true)
      .describe('Send an `unchanged` event when a scale-up finds the maximum (ALERT_SCALE_MAX).'),
  }
}

const nodeRoleSchema = (defaults: { min: number; max: number }, labelPrefix: string) =>
  z
    .object({
      asg: z
        .string()
        .min(1)
        .describe('The Auto Scaling group holding these nodes (AWS_MANAGER_ASG / AWS_WORKER_ASG).'),
      ...scaling(defaults, labelPrefix, 'nodes'),
    })
    .strict()

export const receiverSchema = z
  .object({
    prefix: z
      .string()
      .regex(/^\/[A-Za-z0-9._~\-/]*$/, 'must be a path starting with "/", like "/scaler"')
      .optional()
      .describe('Also serve the receiver routes under this path (SERVER_PREFIX), besides `/v1/...`.'),
    auth: z
      .union([
        z
          .object({ token: z.string().min(16, 'must be at least 16 characters').describe('Bearer token.') })
          .strict(),
        z
          .object({
            username: z.string().min(1).describe('Basic auth user.'),
            password: z.string().min(8, 'must be at least 8 characters').describe('Basic auth password.'),
          })
          .strict(),
      ])
      .optional()
      .describe(
        "Credentials Alertmanager sends (its webhook `http_config`: `authorization: {credentials: …}` or `basic_auth`). Default: the API's own token rule.",
      ),
    host: z
      .string()
      .regex(/^(unix:\/\/\/|tcp:\/\/|\/)/, 'must be unix:///path, tcp://host:port or a socket path')
      .optional()
      .describe('Docker Engine of a Swarm manager. Default: `DOCKER_HOST`, then `/var/run/docker.sock`.'),
    cooldown: duration('3m').describe(
      'One alert group (its `groupKey` and first `startsAt`) scales a service or node role at most once per this long; repeats inside it are answered and ignored.',
    ),
    services: z
      .object(scaling({ min: 1, max: 5 }, 'com.df.scale', 'replicas'))
      .strict()
      .prefault({})
      .describe('Scaling Swarm services (`/v1/scale-service`, alerts with `type=service`).'),
    nodes: z
      .object({
        backend: z
          .literal('aws')
          .default('aws')
          .describe('Where nodes come from (only `aws`, as the original).'),
        region: z
          .string()
          .optional()
          .describe("AWS region. Default: the SDK's (AWS_REGION, AWS_DEFAULT_REGION)."),
        endpoint: z
          .url()
          .optional()
          .describe("AWS endpoint override (moto, LocalStack). Default: the SDK's."),
        env_file: z.string().optional().describe('dotenv file with AWS credentials (AWS_ENV_FILE).'),
        set_bounds: z
          .boolean()
          .default(false)
          .describe("Write min/max to the group's MinSize/MaxSize, as the original did on every call."),
        drain: z
          .object({
            enabled: z
              .boolean()
              .default(true)
              .describe(
                "Drain a node before its instance goes: on a scale-down Tide picks the instances (newest first), finds each one's Swarm node, drains it, waits until its tasks run elsewhere, demotes a manager (refusing if the Raft quorum would be lost), then terminates the instance with TerminateInstanceInAutoScalingGroup (decrementing the desired capacity) and removes the node. `false`: Docker Scaler's way, lower the desired capacity and let AWS pick (no drain).",
              ),
            node_label: z
              .string()
              .min(1, 'must not be empty')
              .default('tide.instance-id')
              .describe(
                'A node label or engine label holding the instance id. Nodes without it are matched by hostname (private DNS name, its first part, instance id, private IP), then by address (private IP); those need ec2:DescribeInstances.',
              ),
            timeout: duration('5m').describe(
              "How long to wait for a drained node's tasks to run elsewhere; past it the node is made active again, the instance kept, and the request fails with E_SWARM_DRAIN_TIMEOUT.",
            ),
            poll: duration('2s').describe('Time between checks while a node drains.'),
          })
          .strict()
          .prefault({})
          .describe('Draining Swarm nodes before a node scale-down terminates their instances.'),
        manager: nodeRoleSchema({ min: 3, max: 7 }, 'com.df.scaleManagerNode')
          .optional()
          .describe('Manager nodes.'),
        worker: nodeRoleSchema({ min: 0, max: 5 }, 'com.df.scaleWorkerNode')
          .optional()
          .describe('Worker nodes.'),
      })
      .strict()
      .optional()
      .describe(
        'Scaling Swarm nodes through Auto Scaling groups (`/v1/scale-nodes`); absent: that route answers 404.',
      ),
    reschedule: z
      .object({
        label: z
          .string()
          .regex(/^[^=]+=.+$/, 'must have the form key=value')
          .default('com.df.reschedule=true')
          .describe(
            'Services carrying this label are rescheduled after nodes join (RESCHEDULE_FILTER_LABEL).',
          ),
        interval: duration('10s').describe(
          'How often the ready nodes are counted while waiting for new ones.',
        ),
        timeout: duration('1000s').describe('How long to wait for new nodes before reporting a failure.'),
      })
      .strict()
      .prefault({})
      .describe(
        'Moving tasks onto new nodes after a node scale-up (a forced update of each labelled service).',
      ),
    call_timeout: duration('30s').describe('How long one Docker or AWS call may take.'),
    notify: z
      .array(notifierSchema)
      .default([])
      .describe(
        'Who hears about every receiver operation (service and node scaling, rescheduling), as groups do.',
      ),
  })
  .strict()

export type ReceiverConfig = z.output<typeof receiverSchema>
export type ReceiverInput = z.input<typeof receiverSchema>
