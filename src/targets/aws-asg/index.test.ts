/**
 * The aws-asg target against moto_server (a real, stateful AWS fake) through the real AWS SDK.
 * Each test makes its own Auto Scaling group; moto is started once for the file.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { SetInstanceHealthCommand, SetInstanceProtectionCommand } from '@aws-sdk/client-auto-scaling'
import { type Moto, requireMoto, startMoto } from '../../../test/support/moto.js'
import type { Instance, ScalePlan } from '../../core/types.js'
import { type AwsAsgTargetConfig, awsAsgTargetSchema, createAwsAsgTarget } from './index.js'

const skip = requireMoto()
const signal = () => AbortSignal.timeout(60_000)
let counter = 0
const uniqueName = (what: string) => `tide-${what}-${process.pid}-${++counter}`

describe('aws-asg target on moto', { skip }, () => {
  let moto: Moto

  before(async () => {
    moto = await startMoto()
  })
  after(async () => {
    await moto?.close()
  })

  function target(name: string, extra: Partial<Record<keyof AwsAsgTargetConfig, unknown>> = {}) {
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
    return createAwsAsgTarget('nodes', config)
  }

  function plan(extra: Partial<ScalePlan> = {}): ScalePlan & { messages: string[] } {
    const messages: string[] = []
    return { reason: 'test', progress: (m) => messages.push(m), ...extra, messages }
  }

  test('status reports the desired capacity and each InService instance as ready', async () => {
    const name = uniqueName('status')
    await moto.createGroup(name, { min: 0, max: 5, desired: 2 })
    const t = target(name)
    const status = await t.status(signal())
    assert.equal(status.desired, 2)
    assert.equal(status.ready, 2)
    assert.equal(status.instances.length, 2)
    for (const i of status.instances) {
      assert.match(i.id, /^i-[0-9a-f]+$/)
      assert.equal(i.state, 'ready')
      assert.match(i.detail ?? '', /InService/)
    }
    assert.match(status.message ?? '', /min 0, max 5/)
    await t.close()
  })

  test('a worker group scales up with SetDesiredCapacity and leaves MinSize/MaxSize alone', async () => {
    const name = uniqueName('up')
    const created = await moto.createGroup(name, { min: 1, max: 5, desired: 1 })
    const t = target(name)
    const p = plan()
    const result = await t.scale(3, p, signal())
    assert.equal(result.from, 1)
    assert.equal(result.to, 3)
    assert.equal(result.added.length, 2)
    assert.deepEqual(result.removed, [])
    const group = await moto.describe(name)
    assert.equal(group.DesiredCapacity, 3)
    assert.equal(group.Instances?.length, 3)
    assert.equal(group.MinSize, created.MinSize, 'MinSize must not be overwritten')
    assert.equal(group.MaxSize, created.MaxSize, 'MaxSize must not be overwritten')
    for (const id of result.added) assert.ok(group.Instances?.some((i) => i.InstanceId === id))
    assert.ok(
      p.messages.some((m) => m.includes('desired capacity 1 → 3')),
      p.messages.join('\n'),
    )
    await t.close()
  })

  test('a scale-down drains and terminates the chosen instances with decrement, no replacement', async () => {
    const name = uniqueName('down')
    const created = await moto.createGroup(name, { min: 0, max: 5, desired: 3 })
    const ids = created.Instances!.map((i) => i.InstanceId!)
    const t = target(name)
    const drained: string[] = []
    const p = plan({
      victims: [ids[0]!],
      drain: async (instance: Instance) => {
        // Drained before it is terminated: it is still in the group now.
        const now = await moto.describe(name)
        assert.ok(
          now.Instances?.some((i) => i.InstanceId === instance.id),
          `${instance.id} gone before drain`,
        )
        drained.push(instance.id)
      },
    })
    const result = await t.scale(1, p, signal())
    assert.equal(result.removed.length, 2)
    assert.equal(result.removed[0], ids[0], 'the engine’s victim goes first')
    assert.deepEqual([...drained].sort(), [...result.removed].sort())
    const group = await moto.describe(name)
    assert.equal(group.DesiredCapacity, 1, 'decremented, so AWS does not launch replacements')
    assert.deepEqual(
      group.Instances?.map((i) => i.InstanceId),
      ids.filter((id) => !result.removed.includes(id)),
    )
    assert.equal(group.MinSize, 0)
    assert.equal(group.MaxSize, 5)
    await t.close()
  })

  test('newest instances leave first when the engine names none', async () => {
    const name = uniqueName('newest')
    const created = await moto.createGroup(name, { min: 0, max: 5, desired: 1 })
    const oldest = created.Instances![0]!.InstanceId!
    const t = target(name)
    await t.status(signal()) // Tide sees the first instance now…
    const up = await t.scale(3, plan(), signal()) // …and the two new ones later
    const down = await t.scale(1, plan(), signal())
    assert.deepEqual([...down.removed].sort(), [...up.added].sort())
    assert.deepEqual(
      (await moto.describe(name)).Instances?.map((i) => i.InstanceId),
      [oldest],
    )
    await t.close()
  })

  test('a size outside the group’s MinSize/MaxSize is refused and nothing changes', async () => {
    const name = uniqueName('bounds')
    await moto.createGroup(name, { min: 1, max: 3, desired: 2 })
    const t = target(name)
    for (const to of [4, 0]) {
      await assert.rejects(t.scale(to, plan(), signal()), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'E_ASG_BOUNDS')
        assert.match(err.message, new RegExp(`allows 1–3 instances .* asked for ${to}`))
        return true
      })
    }
    const group = await moto.describe(name)
    assert.equal(group.DesiredCapacity, 2)
    assert.equal(group.Instances?.length, 2)
    await t.close()
  })

  test('with min_size/max_size set, Tide writes them to the group, then scales', async () => {
    const name = uniqueName('setbounds')
    await moto.createGroup(name, { min: 1, max: 2, desired: 2 })
    const t = target(name, { min_size: 0, max_size: 4 })
    await t.scale(4, plan(), signal())
    let group = await moto.describe(name)
    assert.equal(group.MaxSize, 4)
    assert.equal(group.MinSize, 0)
    assert.equal(group.DesiredCapacity, 4)
    await t.scale(0, plan(), signal())
    group = await moto.describe(name)
    assert.equal(group.DesiredCapacity, 0)
    assert.equal(group.Instances?.length, 0)
    await t.close()
  })

  test('asking for the current size is "no change" (no cooldown), and nothing is called', async () => {
    const name = uniqueName('same')
    await moto.createGroup(name, { min: 0, max: 5, desired: 2 })
    const t = target(name)
    await assert.rejects(t.scale(2, plan(), signal()), { code: 'E_NO_CHANGE' })
    await t.close()
  })

  test('an unknown group is E_ASG_NOT_FOUND naming the group and region', async () => {
    const t = target('no-such-group')
    await assert.rejects(t.status(signal()), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'E_ASG_NOT_FOUND')
      assert.match(err.message, /'no-such-group' does not exist in region us-east-1/)
      return true
    })
    await t.close()
  })

  test('instances protected from scale-in are never terminated; too few removable changes nothing', async () => {
    const name = uniqueName('protect')
    const created = await moto.createGroup(name, { min: 0, max: 5, desired: 3 })
    const ids = created.Instances!.map((i) => i.InstanceId!)
    await moto.client.send(
      new SetInstanceProtectionCommand({
        AutoScalingGroupName: name,
        InstanceIds: [ids[0]!, ids[1]!],
        ProtectedFromScaleIn: true,
      }),
    )
    const t = target(name)
    const status = await t.status(signal())
    assert.equal(status.instances.filter((i) => i.protected).length, 2)
    // The engine names a protected one; Tide takes the unprotected one instead.
    const result = await t.scale(2, plan({ victims: [ids[0]!] }), signal())
    assert.deepEqual(result.removed, [ids[2]])
    await assert.rejects(t.scale(1, plan(), signal()), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'E_TARGET')
      assert.match(err.message, /need to remove 1 instances but only 0 can be.*protected from scale-in/)
      return true
    })
    const group = await moto.describe(name)
    assert.equal(group.DesiredCapacity, 2)
    assert.equal(group.Instances?.length, 2)
    await t.close()
  })

  test('scale_in: aws lowers the desired capacity and lets the group choose', async () => {
    const name = uniqueName('awschoice')
    await moto.createGroup(name, { min: 0, max: 5, desired: 3 })
    const t = target(name, { scale_in: 'aws' })
    const result = await t.scale(1, plan(), signal())
    assert.equal(result.removed.length, 2)
    const group = await moto.describe(name)
    assert.equal(group.DesiredCapacity, 1)
    assert.equal(group.Instances?.length, 1)
    await t.close()
  })

  test('a manager group changes one instance at a time', async () => {
    const name = uniqueName('managers')
    await moto.createGroup(name, { min: 1, max: 7, desired: 1 })
    const t = target(name, { role: 'manager' })
    const p = plan()
    const up = await t.scale(3, p, signal())
    assert.equal(up.added.length, 2)
    const steps = p.messages.filter((m) => m.includes('desired capacity'))
    assert.deepEqual(steps, [`${name}: desired capacity 1 → 2`, `${name}: desired capacity 2 → 3`])
    const down = await t.scale(1, p, signal())
    assert.equal(down.removed.length, 2)
    assert.equal(p.messages.filter((m) => m.includes('terminating')).length, 2)
    assert.equal((await moto.describe(name)).DesiredCapacity, 1)
    await t.close()
  })

  test('scaling up waits until every instance is InService and healthy, then reports progress', async () => {
    const name = uniqueName('wait')
    const created = await moto.createGroup(name, { min: 0, max: 5, desired: 1 })
    const sick = created.Instances![0]!.InstanceId!
    await moto.client.send(new SetInstanceHealthCommand({ InstanceId: sick, HealthStatus: 'Unhealthy' }))
    const t = target(name)
    assert.equal((await t.status(signal())).instances[0]?.state, 'failed')
    const p = plan()
    const scaling = t.scale(2, p, signal())
    // Until the unhealthy one recovers, only 1 of 2 is ready: the operation must still be waiting.
    let settled = false
    void scaling.then(
      () => (settled = true),
      () => (settled = true),
    )
    for (let i = 0; i < 20 && (await moto.describe(name)).Instances?.length !== 2; i++) {
      await new Promise((r) => setTimeout(r, 50))
    }
    await new Promise((r) => setTimeout(r, 300))
    assert.equal(settled, false, 'scale() returned before the instances were healthy')
    await moto.client.send(new SetInstanceHealthCommand({ InstanceId: sick, HealthStatus: 'Healthy' }))
    const result = await scaling
    assert.equal(result.added.length, 1)
    assert.ok(p.messages.includes(`${name}: 2 of 2 instances InService`), p.messages.join('\n'))
    await t.close()
  })

  test('instances that never become healthy end the wait with E_ASG_TIMEOUT naming them', async () => {
    const name = uniqueName('timeout')
    const created = await moto.createGroup(name, { min: 0, max: 5, desired: 1 })
    const sick = created.Instances![0]!.InstanceId!
    await moto.client.send(new SetInstanceHealthCommand({ InstanceId: sick, HealthStatus: 'Unhealthy' }))
    const t = target(name, { ready_timeout: '300ms' })
    await assert.rejects(t.scale(2, plan(), signal()), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'E_ASG_TIMEOUT')
      assert.match(
        err.message,
        new RegExp(`1 of 2 instances InService after 300ms \\(${sick}: InService, Unhealthy\\)`),
      )
      return true
    })
    assert.equal((await moto.describe(name)).DesiredCapacity, 2, 'the change itself stands')
    await t.close()
  })

  test('an aborted operation stops waiting at once', async () => {
    const name = uniqueName('abort')
    const created = await moto.createGroup(name, { min: 0, max: 5, desired: 1 })
    await moto.client.send(
      new SetInstanceHealthCommand({
        InstanceId: created.Instances![0]!.InstanceId!,
        HealthStatus: 'Unhealthy',
      }),
    )
    const t = target(name, { ready_timeout: '10m' })
    const abort = new AbortController()
    const scaling = t.scale(2, plan(), abort.signal)
    setTimeout(() => abort.abort(new Error('Tide is shutting down')), 300)
    await assert.rejects(scaling, /shutting down|aborted/i)
    await t.close()
  })

  test('credentials and endpoint come from the SDK’s environment variables when not configured', async () => {
    const name = uniqueName('envchain')
    await moto.createGroup(name, { min: 0, max: 5, desired: 1 })
    const saved = { ...process.env }
    Object.assign(process.env, {
      AWS_ACCESS_KEY_ID: 'AKIDFROMENV',
      AWS_SECRET_ACCESS_KEY: 'from-env',
      AWS_ENDPOINT_URL: moto.endpoint,
      AWS_DEFAULT_REGION: 'us-east-1', // Docker Scaler's variable; SDK v3 alone ignores it
    })
    delete process.env.AWS_REGION
    try {
      const t = createAwsAsgTarget('nodes', awsAsgTargetSchema.parse({ kind: 'aws-asg', name }))
      assert.equal((await t.status(signal())).desired, 1)
      await t.close()
    } finally {
      for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key]
      Object.assign(process.env, saved)
    }
  })

  test('the env file may carry the region and endpoint as well as the keys', async () => {
    const name = uniqueName('envfile')
    await moto.createGroup(name, { min: 0, max: 5, desired: 1 })
    const file = moto.envFile({ AWS_DEFAULT_REGION: 'us-east-1', AWS_ENDPOINT_URL: moto.endpoint })
    const t = createAwsAsgTarget('nodes', awsAsgTargetSchema.parse({ kind: 'aws-asg', name, env_file: file }))
    assert.equal((await t.status(signal())).desired, 1)
    await t.close()
  })
})

describe('aws-asg config', () => {
  test('a missing env file fails when the target is created, naming the file', () => {
    const config = awsAsgTargetSchema.parse({ kind: 'aws-asg', name: 'x', env_file: '/nonexistent/aws' })
    assert.throws(() => createAwsAsgTarget('g', config), {
      code: 'E_AWS_ENV_FILE',
      message: 'AWS env file /nonexistent/aws: no such file',
    })
  })

  test('bad values are reported with their key', () => {
    const bad = awsAsgTargetSchema.safeParse({
      kind: 'aws-asg',
      name: '',
      region: 'east',
      endpoint: 'ftp://x',
      role: 'boss',
      min_size: 3,
      max_size: 2,
      scale_in: 'random',
    })
    assert.equal(bad.success, false)
    const paths = bad.error!.issues.map((i) => i.path.join('.')).sort()
    assert.deepEqual(paths, ['endpoint', 'name', 'region', 'role', 'scale_in'])
    // the cross-field rule runs once the fields themselves are valid
    const crossed = awsAsgTargetSchema.safeParse({ kind: 'aws-asg', name: 'x', min_size: 3, max_size: 2 })
    assert.deepEqual(
      crossed.error?.issues.map((i) => [i.path.join('.'), i.message]),
      [['max_size', 'must be at least min_size']],
    )
  })

  test('defaults', () => {
    const c = awsAsgTargetSchema.parse({ kind: 'aws-asg', name: 'x' })
    assert.equal(c.role, 'worker')
    assert.equal(c.scale_in, 'terminate')
    assert.equal(c.ready_timeout, 600_000)
    assert.equal(c.poll_interval, 5000)
    assert.equal(c.min_size, undefined)
    assert.equal(c.max_size, undefined)
    const swarm = awsAsgTargetSchema.parse({ kind: 'aws-asg', name: 'x', swarm: {} }).swarm
    assert.equal(swarm?.unmatched, 'refuse', 'an instance with no Swarm node is refused by default')
  })

  test('swarm.unmatched takes refuse or terminate; anything else is named with its value', () => {
    const parse = (unmatched: unknown) =>
      awsAsgTargetSchema.safeParse({ kind: 'aws-asg', name: 'x', swarm: { unmatched } })
    assert.equal(parse('terminate').data?.swarm?.unmatched, 'terminate')
    const bad = parse('drain')
    assert.deepEqual(
      bad.error?.issues.map((i) => i.path.join('.')),
      ['swarm.unmatched'],
    )
    assert.match(bad.error!.issues[0]!.message, /refuse.*terminate/)
  })
})
