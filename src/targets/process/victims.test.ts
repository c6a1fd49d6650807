import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { InstanceState } from '../../core/types.js'
import { chooseVictims } from './victims.js'

const group = (...states: InstanceState[]) => states.map((state, i) => ({ id: `web-${i + 1}`, state }))

describe('chooseVictims', () => {
  const cases: Array<{ name: string; args: Parameters<typeof chooseVictims>; want: string[] }> = [
    { name: 'newest ready first', args: [group('ready', 'ready', 'ready'), 2], want: ['web-3', 'web-2'] },
    {
      name: 'oldest ready first when asked',
      args: [group('ready', 'ready', 'ready'), 2, [], 'oldest'],
      want: ['web-1', 'web-2'],
    },
    {
      name: 'the engine names victims first, in its order',
      args: [group('ready', 'ready', 'ready'), 2, ['web-1']],
      want: ['web-1', 'web-3'],
    },
    {
      name: 'unknown or repeated names are skipped',
      args: [group('ready', 'ready'), 1, ['web-9', 'web-1', 'web-1']],
      want: ['web-1'],
    },
    {
      name: 'failed, then starting (newest first), then ready',
      args: [group('ready', 'starting', 'failed', 'starting', 'ready'), 4],
      want: ['web-3', 'web-4', 'web-2', 'web-5'],
    },
    {
      name: 'a starting instance goes before an older ready one',
      args: [group('ready', 'starting'), 1],
      want: ['web-2'],
    },
    {
      name: 'a starting instance goes before a newer ready one',
      args: [group('starting', 'ready'), 1, [], 'newest'],
      want: ['web-1'],
    },
    { name: 'never more than asked', args: [group('ready', 'ready'), 0], want: [] },
    { name: 'never more than there are', args: [group('ready'), 3], want: ['web-1'] },
  ]
  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(chooseVictims(...c.args), c.want)
    })
  }
})
