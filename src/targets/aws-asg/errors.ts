/**
 * Errors of the `aws-asg` target. Codes (HTTP status the API uses):
 * - E_ASG_NOT_FOUND (502): no Auto Scaling group by the configured name in that region/account.
 * - E_ASG_BOUNDS (409): the size asked for is outside the group's own MinSize/MaxSize, and Tide
 *   was not told it may change them (`min_size`/`max_size` in the target config).
 * - E_ASG_TIMEOUT (504): the desired capacity was set but the instances were not InService
 *   (or gone, for a scale-in) within `ready_timeout`. AWS keeps working on it.
 * - E_AWS_ENV_FILE (400): the credentials file (seed 003's AWS_ENV_FILE) is missing or malformed.
 * - E_AWS_EC2_DENIED (403): the credentials may not call ec2:DescribeInstances; instances go
 *   without addresses (and Swarm nodes are found by label only). Reported, never fatal.
 * Any other AWS failure is an E_TARGET whose message names the operation, the group and AWS's error.
 */
import { TargetError, TideError } from '../../core/errors.js'

export class AsgNotFoundError extends TideError {
  constructor(name: string, region: string | undefined) {
    super(
      'E_ASG_NOT_FOUND',
      `Auto Scaling group '${name}' does not exist${region ? ` in region ${region}` : ''} ` +
        '(DescribeAutoScalingGroups returned no group by that name); check the name, region and account',
      { status: 502 },
    )
  }
}

export class AsgBoundsError extends TideError {
  constructor(name: string, to: number, min: number, max: number) {
    super(
      'E_ASG_BOUNDS',
      `Auto Scaling group '${name}' allows ${min}–${max} instances (its MinSize/MaxSize) and Tide asked for ${to}; ` +
        "change the group's MinSize/MaxSize in AWS, or set the target's min_size/max_size so Tide may change them",
      { status: 409 },
    )
  }
}

export class AsgTimeoutError extends TideError {
  constructor(message: string) {
    super('E_ASG_TIMEOUT', message, { status: 504 })
  }
}

export class AwsEnvFileError extends TideError {
  constructor(path: string, problem: string, cause?: unknown) {
    super('E_AWS_ENV_FILE', `AWS env file ${path}: ${problem}`, { status: 400, cause })
  }
}

export class Ec2AccessError extends TideError {
  constructor(group: string, cause: unknown) {
    const e = cause as { name?: string; message?: string }
    super(
      'E_AWS_EC2_DENIED',
      `EC2 DescribeInstances for Auto Scaling group '${group}' was denied (${e?.name ?? 'AccessDenied'}: ${e?.message ?? String(cause)}); ` +
        'its instances have no address, and Swarm nodes are found only by their instance-id label. ' +
        'Allow ec2:DescribeInstances in the IAM policy, or set `address: none`',
      { status: 403, cause },
    )
  }
}

/** An AWS API call that failed, with the operation, the group and AWS's own error name. */
export function awsCallError(operation: string, group: string, err: unknown): TargetError {
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } }
  const status = e?.$metadata?.httpStatusCode
  const name = e?.name && e.name !== 'Error' ? `${e.name}: ` : ''
  return new TargetError(
    `AWS ${operation} for Auto Scaling group '${group}' failed${status ? ` (HTTP ${status})` : ''}: ${name}${e?.message ?? String(err)}`,
    { cause: err },
  )
}
