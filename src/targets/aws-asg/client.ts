/**
 * A thin wrapper around the AWS SDK's Auto Scaling client: the four calls Tide makes, each with
 * a time limit, cancellation, a debug log line and errors that name the operation and group.
 * The SDK itself retries throttling and 5xx answers with back-off (its "standard" retry mode).
 *
 * Credentials: the SDK's default chain (environment, shared config/credentials files, SSO,
 * container and instance roles), unless `envFile` (seed 003's AWS_ENV_FILE) holds
 * AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, which are then used for this client only.
 */
import {
  type AutoScalingGroup,
  AutoScalingClient,
  DescribeAutoScalingGroupsCommand,
  SetDesiredCapacityCommand,
  TerminateInstanceInAutoScalingGroupCommand,
  UpdateAutoScalingGroupCommand,
} from '@aws-sdk/client-auto-scaling'
import { callWithDeadline } from '../../core/deadline.js'
import { AsgNotFoundError, AwsEnvFileError, awsCallError } from './errors.js'
import { readEnvFile } from './envfile.js'

export type { AutoScalingGroup } from '@aws-sdk/client-auto-scaling'

export interface AwsLogger {
  debug(obj: object, msg: string): void
  /** Problems Tide works around (EC2 access denied: instances go without addresses). */
  warn?(obj: object, msg: string): void
}

/** Where and as whom to talk to AWS. Every field is optional: the SDK's defaults apply. */
export interface AwsConnection {
  /** AWS region; default: the env file's AWS_REGION / AWS_DEFAULT_REGION, then the environment's, then the SDK's profile. */
  region?: string
  /** Endpoint override (moto, LocalStack, a VPC endpoint); default: the env file's AWS_ENDPOINT_URL, then the SDK's own (AWS_ENDPOINT_URL_AUTO_SCALING, AWS_ENDPOINT_URL). */
  endpoint?: string
  /** A dotenv file with credentials (seed 003's AWS_ENV_FILE); `export K=V` lines allowed. */
  envFile?: string
  /**
   * Milliseconds one API call may take, retries included.
   * @default 30000
   */
  callTimeout?: number
  logger?: AwsLogger
}

/** What an SDK client is built from: region, endpoint and credentials, resolved once. */
export interface ResolvedConnection {
  region: string | undefined
  client: {
    region?: string
    endpoint?: string
    credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }
  }
}

/**
 * Region, endpoint and credentials for one AWS service's client, from the connection, then the
 * env file, then the environment. `service` names the service-specific endpoint variable the env
 * file may hold (`AWS_ENDPOINT_URL_AUTO_SCALING`, `AWS_ENDPOINT_URL_EC2`); the SDK reads the
 * environment's own.
 */
export function resolveConnection(
  connection: AwsConnection,
  service: 'AUTO_SCALING' | 'EC2',
): ResolvedConnection {
  const file = connection.envFile ? readEnvFile(connection.envFile) : {}
  const env = process.env
  const region =
    connection.region ??
    file.AWS_REGION ??
    file.AWS_DEFAULT_REGION ??
    env.AWS_REGION ??
    // The Go SDK Docker Scaler used read AWS_DEFAULT_REGION (its Dockerfile sets it); SDK v3 does not.
    env.AWS_DEFAULT_REGION
  const endpoint = connection.endpoint ?? file[`AWS_ENDPOINT_URL_${service}`] ?? file.AWS_ENDPOINT_URL
  const keyId = file.AWS_ACCESS_KEY_ID
  const secret = file.AWS_SECRET_ACCESS_KEY
  if ((keyId === undefined) !== (secret === undefined)) {
    throw new AwsEnvFileError(
      connection.envFile!,
      `has ${keyId === undefined ? 'AWS_SECRET_ACCESS_KEY without AWS_ACCESS_KEY_ID' : 'AWS_ACCESS_KEY_ID without AWS_SECRET_ACCESS_KEY'}`,
    )
  }
  return {
    region,
    client: {
      ...(region ? { region } : {}),
      ...(endpoint ? { endpoint } : {}),
      ...(keyId && secret
        ? {
            credentials: {
              accessKeyId: keyId,
              secretAccessKey: secret,
              ...(file.AWS_SESSION_TOKEN ? { sessionToken: file.AWS_SESSION_TOKEN } : {}),
            },
          }
        : {}),
    },
  }
}

/** The calls the `aws-asg` target and node scaling make. One instance per connection. */
export class AsgApi {
  readonly client: AutoScalingClient
  readonly region: string | undefined
  private readonly callTimeout: number
  private readonly logger: AwsLogger | undefined

  constructor(connection: AwsConnection = {}) {
    const resolved = resolveConnection(connection, 'AUTO_SCALING')
    this.region = resolved.region
    this.client = new AutoScalingClient(resolved.client)
    this.callTimeout = connection.callTimeout ?? 30_000
    this.logger = connection.logger
  }

  /**
   * The group by name. Asks for that one name (Docker Scaler listed every group and read only the
   * first page, so a group on page two was "not found") and follows NextToken to the end.
   */
  async describe(name: string, signal: AbortSignal): Promise<AutoScalingGroup> {
    let token: string | undefined
    for (let page = 0; page < 100; page++) {
      const out = await this.call('DescribeAutoScalingGroups', name, signal, (abortSignal) =>
        this.client.send(
          new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name], NextToken: token }),
          { abortSignal },
        ),
      )
      const group = out.AutoScalingGroups?.find((g) => g.AutoScalingGroupName === name)
      if (group) return group
      if (!out.NextToken || out.NextToken === token) break
      token = out.NextToken
    }
    throw new AsgNotFoundError(name, this.region)
  }

  /** SetDesiredCapacity without honouring the ASG's own cooldown (Tide has its own). */
  async setDesired(name: string, desired: number, signal: AbortSignal): Promise<void> {
    await this.call('SetDesiredCapacity', name, signal, (abortSignal) =>
      this.client.send(
        new SetDesiredCapacityCommand({
          AutoScalingGroupName: name,
          DesiredCapacity: desired,
          HonorCooldown: false,
        }),
        { abortSignal },
      ),
    )
  }

  /** UpdateAutoScalingGroup with only the fields given: MinSize/MaxSize are sent only when asked. */
  async update(
    name: string,
    change: { desired?: number; min?: number; max?: number },
    signal: AbortSignal,
  ): Promise<void> {
    await this.call('UpdateAutoScalingGroup', name, signal, (abortSignal) =>
      this.client.send(
        new UpdateAutoScalingGroupCommand({
          AutoScalingGroupName: name,
          ...(change.desired === undefined ? {} : { DesiredCapacity: change.desired }),
          ...(change.min === undefined ? {} : { MinSize: change.min }),
          ...(change.max === undefined ? {} : { MaxSize: change.max }),
        }),
        { abortSignal },
      ),
    )
  }

  /** Terminates one instance and lowers the desired capacity by one, so AWS does not replace it. */
  async terminate(name: string, instanceId: string, signal: AbortSignal): Promise<void> {
    await this.call('TerminateInstanceInAutoScalingGroup', name, signal, (abortSignal) =>
      this.client.send(
        new TerminateInstanceInAutoScalingGroupCommand({
          InstanceId: instanceId,
          ShouldDecrementDesiredCapacity: true,
        }),
        { abortSignal },
      ),
    )
  }

  close(): void {
    this.client.destroy()
  }

  private call<T>(
    operation: string,
    group: string,
    signal: AbortSignal,
    run: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    return callWithDeadline(run, {
      signal,
      timeout: this.callTimeout,
      log: (fields) =>
        this.logger?.debug(
          { operation, asg: group, ...fields },
          `AWS ${operation} ${group}${fields.err === undefined ? '' : ' failed'}`,
        ),
      fail: (cause) => awsCallError(operation, group, cause),
    })
  }
}
