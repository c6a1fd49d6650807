/**
 * The pure parts of node draining: which Swarm node is an instance's (label, hostname, address,
 * ready over down, ambiguity), and Raft's quorum rule for demoting managers. The drain itself
 * runs on a real Swarm in test/e2e/swarm-drain.test.ts.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import type { SwarmNode } from './client.js'
import { findNode, type LeavingInstance, quorumAfter } from './nodes.js'

const LABEL = 'tide.instance-id'

function node(
  id: string,
  extra: Partial<SwarmNode> & { host?: string; addr?: string; state?: string } = {},
): SwarmNode {
  return {
    ID: id,
    Spec: { Role: 'worker', Availability: 'active', ...extra.Spec },
    Description: { Hostname: extra.host ?? `host-${id}`, ...extra.Description },
    Status: { State: extra.state ?? 'ready', Addr: extra.addr ?? '192.168.0.1' },
  }
}

const instance: LeavingInstance = {
  id: 'i-0abc',
  privateIp: '10.0.1.17',
  privateDns: 'ip-10-0-1-17.ec2.internal',
  required: true,
}

describe('findNode: which node is an instance’s', () => {
  const cases: Array<[string, SwarmNode[], string | undefined, RegExp?]> = [
    [
      'a node label with the instance id',
      [node('a'), node('b', { Spec: { Labels: { [LABEL]: 'i-0abc' } } })],
      'b',
      /node label/,
    ],
    [
      'an engine label with the instance id',
      [node('a', { Description: { Engine: { Labels: { [LABEL]: 'i-0abc' } } } })],
      'a',
      /engine label/,
    ],
    [
      'the full private DNS name as hostname',
      [node('a'), node('b', { host: 'ip-10-0-1-17.ec2.internal' })],
      'b',
      /hostname/,
    ],
    ['its first part as hostname (Ubuntu’s default)', [node('a', { host: 'ip-10-0-1-17' })], 'a', /hostname/],
    ['the hostname in another case', [node('a', { host: 'IP-10-0-1-17' })], 'a', /hostname/],
    [
      'the instance id as hostname (resource-based names)',
      [node('a', { host: 'i-0abc.us-east-1.compute.internal' })],
      'a',
      /hostname/,
    ],
    ['the private IP as hostname', [node('a', { host: '10.0.1.17' })], 'a', /hostname/],
    ['the address the node joined from', [node('a', { addr: '10.0.1.17' })], 'a', /address 10\.0\.1\.17/],
    [
      'a label beats a hostname',
      [node('a', { host: 'ip-10-0-1-17' }), node('b', { Spec: { Labels: { [LABEL]: 'i-0abc' } } })],
      'b',
    ],
    [
      'a ready node beats a down one with the same name (a reused IP)',
      [node('old', { host: 'ip-10-0-1-17', state: 'down' }), node('new', { host: 'ip-10-0-1-17' })],
      'new',
    ],
    [
      'a label for another instance does not match',
      [node('a', { Spec: { Labels: { [LABEL]: 'i-0def' } } })],
      undefined,
    ],
    [
      'a similar hostname does not match',
      [node('a', { host: 'ip-10-0-1-170' }), node('b', { host: 'ip-10-0-1-1' })],
      undefined,
    ],
  ]
  for (const [name, nodes, want, how] of cases) {
    test(name, () => {
      const found = findNode(nodes, instance, LABEL)
      assert.equal(found?.node.ID, want)
      if (how) assert.match(found!.how, how)
    })
  }

  test('two ready nodes with the same hostname: E_SWARM_NODE_MATCH naming both and the fix', () => {
    assert.throws(
      () =>
        findNode([node('a', { host: 'ip-10-0-1-17' }), node('b', { host: 'ip-10-0-1-17' })], instance, LABEL),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'E_SWARM_NODE_MATCH')
        assert.match(err.message, /i-0abc matches 2 Swarm nodes by hostname ip-10-0-1-17 \(a, b\)/)
        assert.match(err.message, /--label-add/)
        return true
      },
    )
  })

  test('without EC2 details only a label can match', () => {
    const bare: LeavingInstance = { id: 'i-0abc', required: true }
    assert.equal(findNode([node('a', { host: 'ip-10-0-1-17', addr: '10.0.1.17' })], bare, LABEL), undefined)
    assert.equal(
      findNode([node('a', { Spec: { Labels: { [LABEL]: 'i-0abc' } } })], bare, LABEL)?.node.ID,
      'a',
    )
  })
})

describe('quorumAfter: Raft’s rule for demoting managers', () => {
  const m = (id: string, reach = 'reachable') => ({ ID: id, ManagerStatus: { Reachability: reach } })

  test('3 reachable managers may go down to one, one at a time; the last may not', () => {
    assert.deepEqual(quorumAfter([m('a'), m('b'), m('c')], ['a']), { ok: true })
    // 3 → 2 (2 of 2 reachable, 2 needed) → 1 (1 of 1, 1 needed).
    assert.deepEqual(quorumAfter([m('a'), m('b'), m('c')], ['a', 'b']), { ok: true })
    const last = quorumAfter([m('a')], ['a'])
    assert.equal(last.ok, false)
    assert.match((last as { reason: string }).reason, /a is the last manager/)
  })

  test('an unreachable manager counts against the quorum', () => {
    const r = quorumAfter([m('a'), m('b'), m('c', 'unreachable')], ['a'])
    assert.equal(r.ok, false)
    assert.match(
      (r as { reason: string }).reason,
      /without a, 1 of 2 managers would be reachable and Raft needs 2/,
    )
    assert.deepEqual(quorumAfter([m('a'), m('b'), m('c', 'unreachable')], ['c']), { ok: true })
  })

  test('ids that are not managers change nothing', () => {
    assert.deepEqual(quorumAfter([m('a')], ['w1', 'w2']), { ok: true })
  })

  test('property: allowed exactly when every step keeps a reachable majority', () => {
    fc.assert(
      fc.property(
        fc.array(fc.boolean(), { minLength: 1, maxLength: 9 }),
        fc.integer({ min: 1, max: 9 }),
        (reachable, k) => {
          const managers = reachable.map((r, i) => m(`m${i}`, r ? 'reachable' : 'unreachable'))
          const leaving = managers.slice(0, Math.min(k, managers.length)).map((x) => x.ID)
          let left = managers
          let ok = true
          for (const id of leaving) {
            left = left.filter((x) => x.ID !== id)
            const up = left.filter((x) => x.ManagerStatus.Reachability === 'reachable').length
            if (left.length === 0 || up * 2 <= left.length) ok = false
          }
          assert.equal(quorumAfter(managers, leaving).ok, ok)
        },
      ),
    )
  })
})
