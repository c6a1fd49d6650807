/**
 * The requests Tide's AWS calls put on the wire, checked against the official Auto Scaling API
 * model (../shared/apis/aws-autoscaling-model.json, Smithy 2.0): every operation exists, every
 * parameter sent is a member of that operation's input, and every required member is sent.
 * The requests are captured from the real SDK talking to moto.
 */
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { type Moto, requireMoto, startMoto } from '../../../test/support/moto.js'
import { AsgApi, scaleNodes } from './index.js'

const MODEL = '../shared/apis/aws-autoscaling-model.json'
const NS = 'com.amazonaws.autoscaling#'

interface Shape {
  type: string
  input?: { target: string }
  members?: Record<string, { target: string; traits?: Record<string, unknown> }>
  traits?: Record<string, unknown>
}

const skip = requireMoto() || (existsSync(MODEL) ? false : `${MODEL} is missing; SKIPPED`)

describe('AWS requests match the Auto Scaling API model', { skip }, () => {
  let moto: Moto
  const sent: Array<{ action: string; params: string[]; protocol: string }> = []

  before(async () => {
    moto = await startMoto()
  })
  after(async () => {
    await moto?.close()
  })

  test('every call Tide makes is a modelled operation with modelled, complete input', async () => {
    const shapes = (JSON.parse(readFileSync(MODEL, 'utf8')) as { shapes: Record<string, Shape> }).shapes
    const api = new AsgApi({ endpoint: moto.endpoint, region: moto.region, envFile: moto.envFile() })
    api.client.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { body?: unknown; headers?: Record<string, string> }
        const body = typeof request.body === 'string' ? request.body : ''
        const form = new URLSearchParams(body)
        sent.push({
          action: form.get('Action') ?? '',
          params: [
            ...new Set(
              [...form.keys()].filter((k) => k !== 'Action' && k !== 'Version').map((k) => k.split('.')[0]!),
            ),
          ],
          protocol: request.headers?.['content-type'] ?? '',
        })
        return next(args)
      },
      { step: 'finalizeRequest', name: 'tideCapture' },
    )
    const signal = AbortSignal.timeout(30_000)
    const group = await moto.createGroup('model-check', { min: 0, max: 4, desired: 2 })
    await api.describe('model-check', signal)
    await api.setDesired('model-check', 3, signal)
    await api.update('model-check', { desired: 3, min: 0, max: 4 }, signal)
    await api.terminate('model-check', group.Instances![0]!.InstanceId!, signal)
    await scaleNodes(
      api,
      { asg: 'model-check', type: 'worker', direction: 'up', by: 1, min: 0, max: 4, setBounds: true },
      signal,
    )
    api.close()

    assert.deepEqual([...new Set(sent.map((s) => s.action))].sort(), [
      'DescribeAutoScalingGroups',
      'SetDesiredCapacity',
      'TerminateInstanceInAutoScalingGroup',
      'UpdateAutoScalingGroup',
    ])
    for (const request of sent) {
      assert.match(request.protocol, /x-www-form-urlencoded/, 'awsQuery protocol, as the model says')
      const operation = shapes[`${NS}${request.action}`]
      assert.equal(operation?.type, 'operation', `${request.action} is an operation in the model`)
      const input = shapes[operation!.input!.target]!
      const members = input.members ?? {}
      for (const param of request.params) {
        assert.ok(
          param in members,
          `${request.action}: ${param} is not a member of ${operation!.input!.target}`,
        )
      }
      for (const [member, def] of Object.entries(members)) {
        if (def.traits?.['smithy.api#required'] !== undefined) {
          assert.ok(request.params.includes(member), `${request.action}: required ${member} was not sent`)
        }
      }
    }
    // Docker Scaler's flaw, fixed: the group is asked for by name, never listed whole.
    for (const d of sent.filter((s) => s.action === 'DescribeAutoScalingGroups')) {
      assert.ok(d.params.includes('AutoScalingGroupNames'))
    }
    // MinSize/MaxSize go out only in the explicit bounds update.
    const updates = sent.filter((s) => s.action === 'UpdateAutoScalingGroup')
    assert.ok(updates.every((u) => u.params.includes('MinSize') && u.params.includes('MaxSize')))
    const setDesired = sent.find((s) => s.action === 'SetDesiredCapacity')!
    assert.deepEqual(setDesired.params.sort(), ['AutoScalingGroupName', 'DesiredCapacity', 'HonorCooldown'])
  })
})
