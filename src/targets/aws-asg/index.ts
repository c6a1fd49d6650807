/**
 * The `aws-asg` target: an EC2 Auto Scaling group, through the AWS SDK v3.
 *
 * ```yaml
 * target:
 *   kind: aws-asg
 *   name: swarm-workers          # the Auto Scaling group
 *   role: worker                 # or manager: one instance at a time
 *   region: us-east-1            # default: AWS_REGION / AWS_DEFAULT_REGION / the SDK's profile
 *   endpoint: http://127.0.0.1:5000   # moto, LocalStack; default: AWS_ENDPOINT_URL or AWS
 *   env_file: /run/secrets/aws   # seed 003's AWS_ENV_FILE (dotenv, `export` allowed)
 *   scale_in: terminate          # Tide picks + drains + terminates; `aws`: the ASG's policy picks
 *   ready_timeout: 10m
 *   address: private             # EC2 DescribeInstances: `ip[:port]` per instance; public; none
 *   port: 8080
 *   swarm:                       # the instances are Swarm nodes: drain each before it is terminated
 *     host: unix:///var/run/docker.sock
 *     node_label: tide.instance-id
 *     drain_timeout: 5m
 *     unmatched: refuse          # an InService instance with no node: refuse, or terminate undrained
 * ```
 *
 * `docs/targets/aws-asg.md` is the user's page.
 */
import { z } from 'zod'
import { duration, portNumber } from '../../core/schema.js'
import { SwarmApi } from '../docker-swarm/client.js'
import { SwarmNodeDrainer } from '../docker-swarm/nodes.js'
import { AsgApi, type AwsConnection } from './client.js'
import { Ec2Api } from './ec2.js'
import { AsgTarget } from './target.js'

export { AsgApi, type AwsConnection, type AwsLogger } from './client.js'
export { type Ec2Instance, Ec2Api, type Ec2Options } from './ec2.js'
export {
  AsgBoundsError,
  AsgNotFoundError,
  AsgTimeoutError,
  AwsEnvFileError,
  Ec2AccessError,
} from './errors.js'
export { type NodeScaleIn, type NodeScaleRequest, type NodeScaleResult, scaleNodes } from './nodes.js'
export {
  AsgTarget,
  type AsgTargetOptions,
  instanceState,
  type LeavingInstance,
  type NodeDrainer,
  type NodeDrainHandle,
} from './target.js'

/** How an Auto Scaling group's instances are found and drained as Swarm nodes (shared with the receiver). */
export const swarmDrainSchema = z
  .object({
    host: z
      .string()
      .regex(/^(unix:\/\/\/|tcp:\/\/|\/)/, 'must be unix:///path, tcp://host:port or a socket path')
      .optional()
      .describe('The Docker Engine of a Swarm manager. Default: `DOCKER_HOST`, then `/var/run/docker.sock`.'),
    node_label: z
      .string()
      .min(1, 'must not be empty')
      .default('tide.instance-id')
      .describe(
        'A node label (`docker node update --label-add`) or engine label (dockerd `--label`) holding the instance id. Nodes without it are matched by hostname (the private DNS name, its first part, the instance id or the private IP) and then by address (the private IP).',
      ),
    drain_timeout: duration('5m')
      .refine((ms) => ms > 0, { message: 'must be longer than 0' })
      .describe(
        "How long to wait for the drained nodes' tasks to run elsewhere (and managers to be demoted); the nodes of one scale-in drain together, within one timeout. Past it a node still waiting is made active again and its instance kept (the others still go), and the operation fails with E_SWARM_DRAIN_TIMEOUT.",
      ),
    poll: duration('2s')
      .refine((ms) => ms > 0, { message: 'must be longer than 0' })
      .describe('Time between checks while a node drains.'),
    unmatched: z
      .enum(['refuse', 'terminate'])
      .default('refuse')
      .describe(
        'An InService instance chosen to leave whose Swarm node cannot be found (it never joined the swarm, or its node is gone). `refuse`: the scale-in fails with E_SWARM_NODE_MATCH before anything changes. `terminate`: the instance is terminated without a drain, and the progress and log say so. An instance that matches two nodes is refused either way.',
      ),
  })
  .strict()

const size = (what: string) =>
  z
    .number()
    .int('must be a whole number')
    .min(0, 'must be 0 or more')
    .optional()
    .describe(
      `When set, Tide writes it to the group's ${what} before scaling (Docker Scaler's behaviour). Default: never change ${what}; a size outside it is refused (E_ASG_BOUNDS).`,
    )

export const awsAsgTargetSchema = z
  .object({
    kind: z.literal('aws-asg').describe('An EC2 Auto Scaling group.'),
    name: z
      .string()
      .min(1, 'must not be empty')
      .max(255, 'must be at most 255 characters (an AWS limit)')
      .describe("The Auto Scaling group's name (AutoScalingGroupName)."),
    role: z
      .enum(['worker', 'manager'])
      .default('worker')
      .describe(
        'What the instances are to a Docker Swarm. `manager` groups change one instance at a time, each waited for, so the Raft quorum never loses more than one member at once.',
      ),
    region: z
      .string()
      .regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'must be an AWS region like "us-east-1"')
      .optional()
      .describe(
        "AWS region. Default: the env file's AWS_REGION or AWS_DEFAULT_REGION, then the environment's, then the SDK's profile.",
      ),
    endpoint: z
      .url({ protocol: /^https?$/, error: 'must be an http(s) URL like "http://127.0.0.1:5000"' })
      .optional()
      .describe(
        "Endpoint override (moto, LocalStack, a VPC endpoint). Default: the env file's AWS_ENDPOINT_URL, then the SDK's (AWS_ENDPOINT_URL_AUTO_SCALING, AWS_ENDPOINT_URL), then AWS.",
      ),
    env_file: z
      .string()
      .min(1)
      .optional()
      .describe(
        "A dotenv file with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and optionally AWS_SESSION_TOKEN, AWS_REGION), `export K=V` lines allowed: Docker Scaler's AWS_ENV_FILE (a Docker secret). Its keys win over the environment. Relative to Tide's working directory. Default: the SDK's credential chain.",
      ),
    min_size: size('MinSize'),
    max_size: size('MaxSize'),
    scale_in: z
      .enum(['terminate', 'aws'])
      .default('terminate')
      .describe(
        "How instances leave. `terminate`: Tide picks them (the engine's choice, then instances not yet InService, then the newest; never one protected from scale-in), drains them, and calls TerminateInstanceInAutoScalingGroup with ShouldDecrementDesiredCapacity. `aws`: Tide lowers the desired capacity and the group's termination policy picks (no drain).",
      ),
    ready_timeout: duration('10m').describe(
      'How long a scaling operation waits for new instances to be InService and removed ones to be gone; `0s` does not wait. Past it the operation fails with E_ASG_TIMEOUT (AWS keeps working).',
    ),
    poll_interval: duration('5s')
      .refine((ms) => ms > 0, { message: 'must be longer than 0' })
      .describe('Time between DescribeAutoScalingGroups calls while waiting.'),
    call_timeout: duration('30s')
      .refine((ms) => ms > 0, { message: 'must be longer than 0' })
      .describe("How long one AWS call may take, the SDK's retries included."),
    address: z
      .enum(['private', 'public', 'none'])
      .default('private')
      .describe(
        "Which IPv4 is an instance's address (what a route and the `scrape` source connect to), from EC2 DescribeInstances (needs ec2:DescribeInstances; without it instances have no address, which the log and status say). `none`: no address, and EC2 is asked only with `swarm`.",
      ),
    port: portNumber()
      .optional()
      .describe(
        'Appended to the address (`ip:port`), for a route in front of the instances. Default: no port (the `scrape` source sets its own).',
      ),
    swarm: swarmDrainSchema
      .optional()
      .describe(
        "The instances are Docker Swarm nodes: before Tide terminates them (scale_in: terminate), it finds each instance's node, drains all of them together, waits until their tasks run on the nodes that stay, demotes the managers (refusing if the Raft quorum would be lost), and removes the nodes from the swarm afterwards. Default: no Swarm.",
      ),
  })
  .strict()
  .refine((c) => !c.swarm || c.scale_in === 'terminate', {
    message:
      'needs `scale_in: terminate` (with `aws`, AWS picks the instance and nothing can be drained first)',
    path: ['swarm'],
  })
  .refine((c) => c.min_size === undefined || c.max_size === undefined || c.min_size <= c.max_size, {
    message: 'must be at least min_size',
    path: ['max_size'],
  })
  .describe('An EC2 Auto Scaling group (AWS SDK v3).')

export type AwsAsgTargetConfig = z.output<typeof awsAsgTargetSchema>

export interface AwsAsgTargetDeps {
  logger?: {
    debug(obj: object, msg: string): void
    info(obj: object, msg: string): void
    warn(obj: object, msg: string): void
  }
}

/** A node drainer for `swarm` settings, talking to that manager (or `DOCKER_HOST`). */
export function createSwarmDrainer(
  config: z.output<typeof swarmDrainSchema>,
  callTimeout: number,
  logger?: AwsAsgTargetDeps['logger'],
): SwarmNodeDrainer {
  const swarm = new SwarmApi({ host: config.host, callTimeout, ...(logger ? { logger } : {}) })
  return new SwarmNodeDrainer(swarm, {
    label: config.node_label,
    timeout: config.drain_timeout,
    poll: config.poll,
    ...(logger ? { logger } : {}),
  })
}

/** Reads `env_file` now, so a missing or broken credentials file fails at start-up. */
export function createAwsAsgTarget(
  group: string,
  config: AwsAsgTargetConfig,
  deps: AwsAsgTargetDeps = {},
): AsgTarget {
  const connection: AwsConnection = {
    ...(config.region ? { region: config.region } : {}),
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    ...(config.env_file ? { envFile: config.env_file } : {}),
    callTimeout: config.call_timeout,
    ...(deps.logger ? { logger: deps.logger } : {}),
  }
  const api = new AsgApi(connection)
  const ec2 = config.address !== 'none' || config.swarm ? new Ec2Api(connection) : undefined
  return new AsgTarget(group, api, {
    name: config.name,
    role: config.role,
    ...(config.min_size === undefined ? {} : { minSize: config.min_size }),
    ...(config.max_size === undefined ? {} : { maxSize: config.max_size }),
    scaleIn: config.scale_in,
    readyTimeout: config.ready_timeout,
    pollInterval: config.poll_interval,
    address: config.address,
    ...(config.port === undefined ? {} : { port: config.port }),
    ...(ec2 ? { ec2 } : {}),
    ...(config.swarm
      ? {
          drainer: createSwarmDrainer(config.swarm, config.call_timeout, deps.logger),
          unmatched: config.swarm.unmatched,
        }
      : {}),
    ...(deps.logger ? { logger: deps.logger } : {}),
  })
}
