/**
 * EC2 DescribeInstances for an Auto Scaling group's instances: their IPs and DNS names (an
 * instance's address, and how its Docker Swarm node is found) and launch times (newest first).
 * The Auto Scaling API has none of these.
 *
 * Batched and paginated as the EC2 guide advises (ec2-api-pagination): the ids go in an
 * `instance-id` filter, at most `batchSize` per call (200 by default: EC2 takes up to 200 values
 * per filter), with MaxResults and every NextToken followed. A filter, unlike `InstanceIds`,
 * does not fail the whole call when one instance has just gone.
 */
import { DescribeInstancesCommand, EC2Client, type Instance } from '@aws-sdk/client-ec2'
import { callWithDeadline } from '../../core/deadline.js'
import { type AwsConnection, type AwsLogger, resolveConnection } from './client.js'
import { awsCallError, Ec2AccessError } from './errors.js'

/** What Tide reads of one EC2 instance. */
export interface Ec2Instance {
  id: string
  privateIp?: string
  /** `ip-10-0-1-17.ec2.internal`, or the resource name `i-0abc….ec2.internal`. */
  privateDns?: string
  publicIp?: string
  publicDns?: string
  /** Epoch ms. */
  launchTime?: number
  /** `pending`, `running`, `shutting-down`, `terminated`, `stopping`, `stopped`. */
  state?: string
}

/** AWS error names that mean "these credentials may not call this" (not "these credentials are wrong"). */
const DENIED = new Set([
  'UnauthorizedOperation',
  'AccessDenied',
  'AccessDeniedException',
  'UnauthorizedAccess',
])

export function isAccessDenied(err: unknown): boolean {
  const e = err as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } }
  return DENIED.has(e?.name ?? '') || DENIED.has(e?.Code ?? '')
}

export interface Ec2Options extends AwsConnection {
  /**
   * Instance ids per DescribeInstances call.
   * @default 200
   */
  batchSize?: number
  /**
   * MaxResults per page (EC2 allows 5–1000).
   * @default 1000
   */
  pageSize?: number
}

export class Ec2Api {
  readonly client: EC2Client
  private readonly callTimeout: number
  private readonly logger: AwsLogger | undefined
  private readonly batchSize: number
  private readonly pageSize: number

  constructor(options: Ec2Options = {}) {
    this.client = new EC2Client(resolveConnection(options, 'EC2').client)
    this.callTimeout = options.callTimeout ?? 30_000
    this.logger = options.logger
    this.batchSize = Math.max(1, Math.min(200, options.batchSize ?? 200))
    this.pageSize = Math.max(5, Math.min(1000, options.pageSize ?? 1000))
  }

  /**
   * The instances among `ids` that EC2 knows, by id. An id EC2 no longer lists is left out.
   * Throws E_AWS_EC2_DENIED when the credentials may not call DescribeInstances, E_TARGET for
   * any other failure. `group` only names the Auto Scaling group in messages.
   */
  async describeInstances(
    ids: readonly string[],
    group: string,
    signal: AbortSignal,
  ): Promise<Map<string, Ec2Instance>> {
    const found = new Map<string, Ec2Instance>()
    const unique = [...new Set(ids)]
    for (let at = 0; at < unique.length; at += this.batchSize) {
      const batch = unique.slice(at, at + this.batchSize)
      let token: string | undefined
      for (let page = 0; page < 1000; page++) {
        const out = await this.call(group, signal, (abortSignal) =>
          this.client.send(
            new DescribeInstancesCommand({
              Filters: [{ Name: 'instance-id', Values: batch }],
              MaxResults: this.pageSize,
              ...(token ? { NextToken: token } : {}),
            }),
            { abortSignal },
          ),
        )
        for (const reservation of out.Reservations ?? []) {
          for (const instance of reservation.Instances ?? []) {
            if (instance.InstanceId) found.set(instance.InstanceId, toEc2Instance(instance))
          }
        }
        if (!out.NextToken || out.NextToken === token) break
        token = out.NextToken
      }
    }
    return found
  }

  close(): void {
    this.client.destroy()
  }

  private call<T>(group: string, signal: AbortSignal, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return callWithDeadline(run, {
      signal,
      timeout: this.callTimeout,
      log: (fields) =>
        this.logger?.debug(
          { operation: 'DescribeInstances', asg: group, ...fields },
          `AWS DescribeInstances ${group}${fields.err === undefined ? '' : ' failed'}`,
        ),
      fail: (cause, thrown) =>
        isAccessDenied(thrown)
          ? new Ec2AccessError(group, thrown)
          : awsCallError('DescribeInstances', group, cause),
    })
  }
}

function toEc2Instance(i: Instance): Ec2Instance {
  const launch = i.LaunchTime ? new Date(i.LaunchTime).getTime() : NaN
  return {
    id: i.InstanceId!,
    ...(i.PrivateIpAddress ? { privateIp: i.PrivateIpAddress } : {}),
    ...(i.PrivateDnsName ? { privateDns: i.PrivateDnsName } : {}),
    ...(i.PublicIpAddress ? { publicIp: i.PublicIpAddress } : {}),
    ...(i.PublicDnsName ? { publicDns: i.PublicDnsName } : {}),
    ...(Number.isFinite(launch) ? { launchTime: launch } : {}),
    ...(i.State?.Name ? { state: i.State.Name } : {}),
  }
}
