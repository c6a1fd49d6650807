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
 * ```
 *
 * `docs/targets/aws-asg.md` is the user's page.
 */
import { z } from 'zod'
import { duration } from '../../core/schema.js'
import { type AwsLogger, AsgApi } from './client.js'
import { AsgTarget } from './target.js'

export { AsgApi, type AwsConnection, type AwsLogger } from './client.js'
export { AsgBoundsError, AsgNotFoundError, AsgTimeoutError, AwsEnvFileError } from './errors.js'
export { type NodeScaleRequest, type NodeScaleResult, scaleNodes } from './nodes.js'
export { AsgTarget, type AsgTargetOptions, instanceState } from './target.js'

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
  })
  .strict()
  .refine((c) => c.min_size === undefined || c.max_size === undefined || c.min_size <= c.max_size, {
    message: 'must be at least min_size',
    path: ['max_size'],
  })
  .describe('An EC2 Auto Scaling group (AWS SDK v3).')

export type AwsAsgTargetConfig = z.output<typeof awsAsgTargetSchema>

export interface AwsAsgTargetDeps {
  logger?: AwsLogger
}

/** Reads `env_file` now, so a missing or broken credentials file fails at start-up. */
export function createAwsAsgTarget(
  group: string,
  config: AwsAsgTargetConfig,
  deps: AwsAsgTargetDeps = {},
): AsgTarget {
  const api = new AsgApi({
    ...(config.region ? { region: config.region } : {}),
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    ...(config.env_file ? { envFile: config.env_file } : {}),
    callTimeout: config.call_timeout,
    ...(deps.logger ? { logger: deps.logger } : {}),
  })
  return new AsgTarget(group, api, {
    name: config.name,
    role: config.role,
    ...(config.min_size === undefined ? {} : { minSize: config.min_size }),
    ...(config.max_size === undefined ? {} : { maxSize: config.max_size }),
    scaleIn: config.scale_in,
    readyTimeout: config.ready_timeout,
    pollInterval: config.poll_interval,
  })
}
