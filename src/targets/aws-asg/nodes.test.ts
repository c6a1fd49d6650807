/**
 * scaleNodes: Docker Scaler's /v1/scale-nodes step (seeds.md §3.4) against moto, with its
 * messages, and the fixes: bounds written only when asked, never moving against the direction.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type Moto, requireMoto, startMoto } from '../../../test/support/moto.js'
import { AsgApi, scaleNodes } from './index.js'

const skip = requireMoto()
const signal = () => AbortSignal.timeout(30_000)
let n = 0

describe('scaleNodes on moto', { skip }, () => {
  let moto: Moto
  let api: AsgApi
  before(async () => {
    moto = await startMoto()
    api = new AsgApi({ endpoint: moto.endpoint, region: moto.region, envFile: moto.envFile() })
  })
  after(async () => {
    api?.close()
    await moto?.close()
  })
  const group = async (min: number, max: number, desired: number) => {
    const name = `workers-${++n}`
    await moto.createGroup(name, { min, max, desired })
    return name
  }

  test('up by 2 within bounds: desired changes, MinSize/MaxSize stay, Docker Scaler’s message', async () => {
    const asg = await group(0, 10, 1)
    const r = await scaleNodes(api, { asg, type: 'worker', direction: 'up', by: 2, min: 0, max: 5 }, signal())
    assert.deepEqual(r, {
      from: 1,
      to: 3,
      changed: true,
      message: 'Changing the number of worker nodes on aws from 1 to 3',
    })
    const g = await moto.describe(asg)
    assert.equal(g.DesiredCapacity, 3)
    assert.equal(g.Instances?.length, 3)
    assert.equal(g.MinSize, 0)
    assert.equal(g.MaxSize, 10)
  })

  test('clamped to max, then at max: no change and the bound message', async () => {
    const asg = await group(0, 10, 4)
    const r1 = await scaleNodes(
      api,
      { asg, type: 'worker', direction: 'up', by: 3, min: 0, max: 5 },
      signal(),
    )
    assert.equal(r1.to, 5)
    const r2 = await scaleNodes(
      api,
      { asg, type: 'worker', direction: 'up', by: 1, min: 0, max: 5 },
      signal(),
    )
    assert.deepEqual(r2, {
      from: 5,
      to: 5,
      changed: false,
      message: 'worker nodes are already scaled to the maximum number of 5 nodes',
    })
  })

  test('down to min, then at min: the descaled message', async () => {
    const asg = await group(0, 10, 4)
    const r1 = await scaleNodes(
      api,
      { asg, type: 'manager', direction: 'down', by: 5, min: 3, max: 7 },
      signal(),
    )
    assert.deepEqual(
      [r1.from, r1.to, r1.message],
      [4, 3, 'Changing the number of manager nodes on aws from 4 to 3'],
    )
    const r2 = await scaleNodes(
      api,
      { asg, type: 'manager', direction: 'down', by: 1, min: 3, max: 7 },
      signal(),
    )
    assert.equal(r2.changed, false)
    assert.equal(r2.message, 'manager nodes are already descaled to the minimum number of 3 nodes')
    assert.equal((await moto.describe(asg)).Instances?.length, 3)
  })

  test('"up" on a group above max changes nothing (Docker Scaler scaled it down)', async () => {
    const asg = await group(0, 10, 7)
    const r = await scaleNodes(api, { asg, type: 'worker', direction: 'up', by: 1, min: 0, max: 5 }, signal())
    assert.equal(r.changed, false)
    assert.equal((await moto.describe(asg)).DesiredCapacity, 7)
  })

  test('outside the group’s own MinSize/MaxSize: refused without setBounds, written with it', async () => {
    const asg = await group(1, 2, 2)
    await assert.rejects(
      scaleNodes(api, { asg, type: 'worker', direction: 'up', by: 1, min: 0, max: 5 }, signal()),
      { code: 'E_ASG_BOUNDS' },
    )
    assert.equal((await moto.describe(asg)).DesiredCapacity, 2)
    const r = await scaleNodes(
      api,
      { asg, type: 'worker', direction: 'up', by: 1, min: 0, max: 5, setBounds: true },
      signal(),
    )
    assert.equal(r.to, 3)
    const g = await moto.describe(asg)
    assert.deepEqual([g.MinSize, g.MaxSize, g.DesiredCapacity], [0, 5, 3])
  })

  test('a group past the first page of DescribeAutoScalingGroups is found by name (Docker Scaler read page one only)', async () => {
    // AWS and moto answer 50 groups per page; the group Tide wants is created last.
    const names = Array.from({ length: 52 }, (_, i) => `page-${String(i).padStart(2, '0')}`)
    for (const name of names) await moto.createGroup(name, { min: 0, max: 3, desired: 0 })
    const last = names.at(-1)!
    const r = await scaleNodes(
      api,
      { asg: last, type: 'worker', direction: 'up', by: 1, min: 0, max: 3 },
      signal(),
    )
    assert.equal(r.message, 'Changing the number of worker nodes on aws from 0 to 1')
    assert.equal((await moto.describe(last)).DesiredCapacity, 1)
  })

  test('a misnamed group is E_ASG_NOT_FOUND; a bad step is refused before any call', async () => {
    await assert.rejects(
      scaleNodes(api, { asg: 'nope', type: 'worker', direction: 'up', by: 1, min: 0, max: 5 }, signal()),
      { code: 'E_ASG_NOT_FOUND' },
    )
    await assert.rejects(
      scaleNodes(api, { asg: 'nope', type: 'worker', direction: 'up', by: 0, min: 0, max: 5 }, signal()),
      /by must be a whole number ≥ 1, not 0/,
    )
  })
})
