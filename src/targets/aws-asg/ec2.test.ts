/**
 * Instance addresses from EC2 DescribeInstances, against moto_server through the real SDK:
 * private or public IP with a port, batched and paginated calls, and what happens when the
 * credentials may not call DescribeInstances (moto's IAM enforcement, a real policy that allows
 * Auto Scaling only).
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { SetDesiredCapacityCommand } from '@aws-sdk/client-auto-scaling'
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2'
import { type Moto, MOTO_CREDENTIALS, requireMoto, startMoto } from '../../../test/support/moto.js'
import { type AwsAsgTargetConfig, awsAsgTargetSchema, createAwsAsgTarget, Ec2Api } from './index.js'

const skip = requireMoto()
const signal = () => AbortSignal.timeout(60_000)
let counter = 0
const uniqueName = (what: string) => `tide-${what}-${process.pid}-${++counter}`

function recordingLogger() {
  const warnings: string[] = []
  const noop = () => undefined
  return {
    warnings,
    logger: { debug: noop, info: noop, warn: (_o: object, msg: string) => warnings.push(msg) },
  }
}

describe('aws-asg instance addresses from EC2 on moto', { skip }, () => {
  let moto: Moto
  let ec2: EC2Client

  before(async () => {
    moto = await startMoto()
    ec2 = new EC2Client({ endpoint: moto.endpoint, region: moto.region, credentials: MOTO_CREDENTIALS })
  })
  after(async () => {
    ec2?.destroy()
    await moto?.close()
  })

  function target(name: string, extra: Partial<Record<keyof AwsAsgTargetConfig, unknown>> = {}, deps = {}) {
    const config = awsAsgTargetSchema.parse({
      kind: 'aws-asg',
      name,
      region: moto.region,
      endpoint: moto.endpoint,
      env_file: moto.envFile(),
      poll_interval: '50ms',
      ready_timeout: '20s',
      ...extra,
    })
    return createAwsAsgTarget('nodes', config, deps)
  }

  /** What EC2 says about the group's instances, asked by the test's own client. */
  async function ec2View(name: string) {
    const group = await moto.describe(name)
    const ids = group.Instances!.map((i) => i.InstanceId!)
    const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: ids }))
    return new Map(
      (out.Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => [i.InstanceId!, i] as const),
    )
  }

  test('by default each instance’s address is its private IPv4, and a new instance gets one too', async () => {
    const name = uniqueName('private')
    await moto.createGroup(name, { min: 0, max: 5, desired: 2 })
    const t = target(name)
    const status = await t.status(signal())
    const truth = await ec2View(name)
    assert.equal(status.instances.length, 2)
    for (const i of status.instances) {
      assert.match(truth.get(i.id)!.PrivateIpAddress!, /^\d+\.\d+\.\d+\.\d+$/)
      assert.equal(i.address, truth.get(i.id)!.PrivateIpAddress)
    }
    await t.scale(3, { reason: 'test' }, signal())
    const after = await t.status(signal())
    const truth2 = await ec2View(name)
    assert.equal(after.instances.length, 3)
    for (const i of after.instances) assert.equal(i.address, truth2.get(i.id)!.PrivateIpAddress)
    await t.close()
  })

  test('`address: public` with a `port` gives ip:port on the public IPv4', async () => {
    const name = uniqueName('public')
    await moto.createGroup(name, { min: 0, max: 5, desired: 2 })
    const t = target(name, { address: 'public', port: 8080 })
    const status = await t.status(signal())
    const truth = await ec2View(name)
    for (const i of status.instances) {
      const ip = truth.get(i.id)!.PublicIpAddress
      assert.ok(ip, 'moto gives instances a public IP')
      assert.equal(i.address, `${ip}:8080`)
    }
    await t.close()
  })

  test('`address: none` leaves instances without an address', async () => {
    const name = uniqueName('none')
    await moto.createGroup(name, { min: 0, max: 5, desired: 1 })
    const t = target(name, { address: 'none', port: 80 })
    const status = await t.status(signal())
    assert.equal(status.instances.length, 1)
    assert.equal(status.instances[0]!.address, undefined)
    await t.close()
  })

  test('DescribeInstances is batched and follows pages; ids EC2 no longer knows are left out', async () => {
    const name = uniqueName('batch')
    await moto.createGroup(name, { min: 0, max: 10, desired: 1 })
    // One launch per step: six reservations, and EC2 (moto too) pages by reservation.
    for (let n = 2; n <= 6; n++) {
      await moto.client.send(
        new SetDesiredCapacityCommand({ AutoScalingGroupName: name, DesiredCapacity: n }),
      )
    }
    const ids = (await moto.describe(name)).Instances!.map((i) => i.InstanceId!)
    assert.equal(ids.length, 6)
    const api = new Ec2Api({
      endpoint: moto.endpoint,
      region: moto.region,
      envFile: moto.envFile(),
      batchSize: 4,
      pageSize: 5,
    })
    const calls: Array<{ values: number; token: boolean }> = []
    api.client.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { Filters?: Array<{ Values?: string[] }>; NextToken?: string }
        calls.push({ values: input.Filters?.[0]?.Values?.length ?? 0, token: Boolean(input.NextToken) })
        return next(args)
      },
      { step: 'initialize' },
    )
    const found = await api.describeInstances([...ids, 'i-00000000000000000'], name, signal())
    assert.deepEqual([...found.keys()].sort(), [...ids].sort())
    // Seven ids in batches of four (each batch within one page of five reservations); then every
    // id in one batch: six reservations, two pages.
    assert.deepEqual(calls, [
      { values: 4, token: false },
      { values: 3, token: false },
    ])
    calls.length = 0
    const paged = new Ec2Api({
      endpoint: moto.endpoint,
      region: moto.region,
      envFile: moto.envFile(),
      pageSize: 5,
    })
    paged.client.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { Filters?: Array<{ Values?: string[] }>; NextToken?: string }
        calls.push({ values: input.Filters?.[0]?.Values?.length ?? 0, token: Boolean(input.NextToken) })
        return next(args)
      },
      { step: 'initialize' },
    )
    const all = await paged.describeInstances(ids, name, signal())
    assert.equal(all.size, 6)
    assert.deepEqual(calls, [
      { values: 6, token: false },
      { values: 6, token: true },
    ])
    for (const info of all.values()) {
      assert.match(info.privateDns ?? '', /^ip-\d+-\d+-\d+-\d+\./)
      assert.equal(info.state, 'running')
      assert.ok(info.launchTime && info.launchTime > 0)
    }
    api.close()
    paged.close()
  })
})

describe('aws-asg without EC2 permission (moto IAM enforcement)', { skip }, () => {
  let moto: Moto

  before(async () => {
    moto = await startMoto()
  })
  after(async () => {
    // Auth off again before close, in case the process is reused.
    await fetch(`${moto?.endpoint}/moto-api/reset-auth`, { method: 'POST', body: 'inf' }).catch(
      () => undefined,
    )
    await moto?.close()
  })

  /** An IAM query API call to moto (its IAM needs no signature while auth is off). */
  async function iam(params: Record<string, string>): Promise<string> {
    const res = await fetch(moto.endpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `AWS4-HMAC-SHA256 Credential=${MOTO_CREDENTIALS.accessKeyId}/20250101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0`,
      },
      body: new URLSearchParams({ Version: '2010-05-08', ...params }).toString(),
    })
    const text = await res.text()
    assert.ok(res.ok, `IAM ${params.Action}: ${res.status} ${text}`)
    return text
  }

  test('instances have no address, status says why once, and scaling still works', async () => {
    const name = uniqueName('denied')
    await moto.createGroup(name, { min: 0, max: 5, desired: 1 })
    await iam({ Action: 'CreateUser', UserName: 'tide' })
    await iam({
      Action: 'PutUserPolicy',
      UserName: 'tide',
      PolicyName: 'autoscaling-only',
      PolicyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Action: 'autoscaling:*', Resource: '*' }],
      }),
    })
    const key = await iam({ Action: 'CreateAccessKey', UserName: 'tide' })
    const keyId = /<AccessKeyId>([^<]+)</.exec(key)![1]!
    const secret = /<SecretAccessKey>([^<]+)</.exec(key)![1]!
    const envFile = moto.envFile({ AWS_ACCESS_KEY_ID: keyId, AWS_SECRET_ACCESS_KEY: secret })
    const res = await fetch(`${moto.endpoint}/moto-api/reset-auth`, { method: 'POST', body: '0' })
    assert.ok(res.ok)

    // The same credentials on EC2 directly: denied, as AWS would.
    const api = new Ec2Api({ endpoint: moto.endpoint, region: moto.region, envFile })
    await assert.rejects(api.describeInstances(['i-0'], name, signal()), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'E_AWS_EC2_DENIED')
      assert.match(err.message, /ec2:DescribeInstances/)
      assert.match(err.message, new RegExp(`'${name}'`))
      return true
    })
    api.close()

    const { warnings, logger } = recordingLogger()
    const config = awsAsgTargetSchema.parse({
      kind: 'aws-asg',
      name,
      region: moto.region,
      endpoint: moto.endpoint,
      env_file: envFile,
      poll_interval: '50ms',
      ready_timeout: '20s',
    })
    const t = createAwsAsgTarget('nodes', config, { logger })
    const status = await t.status(signal())
    assert.equal(status.instances.length, 1)
    assert.equal(status.instances[0]!.state, 'ready')
    assert.equal(status.instances[0]!.address, undefined)
    assert.match(status.message ?? '', /no addresses: EC2 DescribeInstances .* was denied/)
    const result = await t.scale(2, { reason: 'test' }, signal())
    assert.equal(result.to, 2)
    await t.status(signal())
    assert.equal(warnings.filter((w) => /denied/.test(w)).length, 1, warnings.join('\n'))
    await t.close()
  })
})
