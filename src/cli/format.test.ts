import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import pc from 'picocolors'
import { fakeGroup, fakeInstance } from '../api/fake-controller.js'
import { age, instanceBar, num, table, truncate, visibleLength } from './format.js'

const plain = pc.createColors(false)
const colour = pc.createColors(true)

describe('format', () => {
  test('numbers read like a person writes them', () => {
    const cases: Array<[number | undefined, string]> = [
      [3, '3'],
      [0.4219, '0.42'],
      [11.54, '11.5'],
      [1250.4, '1250'],
      [0.1, '0.1'],
      [undefined, '–'],
      [Number.NaN, '–'],
    ]
    for (const [value, text] of cases) assert.equal(num(value), text, String(value))
  })

  test('ages: sub-second is now, days past two days', () => {
    assert.equal(age(10), 'now')
    assert.equal(age(90_000), '1m30s')
    assert.equal(age(3 * 86_400_000 + 5), '3d')
  })

  test('truncate counts visible characters and keeps colour codes whole', () => {
    const line = `${colour.green('ready')} ${colour.red('failed')}`
    const cut = truncate(line, 8)
    assert.equal(visibleLength(cut), 8)
    assert.ok(cut.endsWith('…\x1b[0m'))
    assert.ok(cut.startsWith('\x1b[32mready\x1b[39m'), 'the first code and its reset survive')
    assert.equal(truncate('short', 10), 'short')
  })

  test('the bar shows each state by symbol, then free places up to max', () => {
    const group = fakeGroup('g', {
      max: 6,
      instances: ['ready', 'starting', 'draining', 'stopping', 'failed'].map((state, i) =>
        fakeInstance(`g-${i}`, { state: state as 'ready' }),
      ),
    })
    assert.equal(instanceBar(group, plain), '█▒░×!·')
    assert.equal(instanceBar({ ...group, max: 100 }, plain, 8), '█▒░×!···')
  })

  test('tables align on visible width, numbers to the right', () => {
    const lines = table(
      ['NAME', 'N'],
      [
        [colour.bold('a'), '5'],
        ['bbb', '10'],
      ],
      plain,
      new Set([1]),
    )
    assert.deepEqual(lines, ['NAME   N', `${colour.bold('a')}      5`, 'bbb   10'])
  })
})
