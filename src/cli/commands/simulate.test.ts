import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { loadConfigFile } from '../../config/index.js'
import { main } from '../main.js'
import { sink } from '../../../test/support/sink.js'

const dir = mkdtempSync(join(tmpdir(), 'tide-sim-'))
const trace = join(dir, 'rps.csv')
// Two quiet hours with a burst in the middle.
writeFileSync(
  trace,
  `t,rps\n${Array.from({ length: 120 }, (_, i) => `${i * 60},${i >= 50 && i < 60 ? 200 : 40}`).join('\n')}\n`,
)

async function tide(...args: string[]) {
  const stdout = sink()
  const stderr = sink()
  const code = await main(['node', 'tide', 'simulate', ...args], {
    stdout,
    stderr,
    env: { NO_COLOR: '1' },
    loadConfigFile,
  })
  return { code, out: stdout.text, err: stderr.text }
}

describe('tide simulate', () => {
  after(() => rmSync(dir, { recursive: true, force: true }))

  test("--compare --json prints exactly the issue's shape, one result per built-in", async () => {
    const { code, out } = await tide('--trace', trace, '--compare', '--json', '--capacity', '20')
    assert.equal(code, 0)
    const report = JSON.parse(out) as { trace: string; results: Array<Record<string, unknown>> }
    assert.deepEqual(Object.keys(report), ['trace', 'results'])
    assert.equal(report.trace, 'rps.csv')
    assert.deepEqual(
      report.results.map((r) => r.policy),
      ['seed-threshold', 'hpa', 'kpa', 'tide'],
    )
    for (const r of report.results) {
      assert.deepEqual(Object.keys(r).sort(), [
        'actions',
        'instanceHours',
        'meanUtilization',
        'overCapacityRequests',
        'policy',
        'underCapacityMinutes',
      ])
      assert.ok((r.underCapacityMinutes as number) > 0, 'a 5× burst with a 60 s boot is missed by everyone')
    }
  })

  test('a group from a config file, and a plot', async () => {
    const config = join(dir, 'tide.yaml')
    writeFileSync(
      config,
      [
        'groups:',
        '  web:',
        '    min: 1',
        '    max: 20',
        '    interval: 15s',
        '    target: { kind: process, command: node app.js }',
        '    route: { listen: 127.0.0.1:0 }',
        '    policies:',
        '      - { kind: target, metric: request_rate, per_instance: 14 }',
      ].join('\n'),
    )
    const plot = join(dir, 'web.svg')
    const { code, out } = await tide('--trace', trace, '--config', config, '--capacity', '20', '--plot', plot)
    assert.equal(code, 0)
    assert.match(out, /^web\s+[\d.]+\s+/m)
    assert.match(readFileSync(plot, 'utf8'), /^<svg [^]*>web<\/text>/)
  })

  test('bad input says which option and value', async () => {
    let r = await tide('--trace', trace, '--capacity', '-3')
    assert.equal(r.code, 2)
    assert.match(r.err, /--capacity.*must be a number of requests per second > 0/)
    r = await tide('--trace', trace, '--policy', 'magic')
    assert.equal(r.code, 2)
    assert.match(r.err, /--policy must be one of seed-threshold, hpa, kpa, tide, not "magic"/)
    r = await tide('--trace', join(dir, 'nope.csv'))
    assert.equal(r.code, 2)
    assert.match(r.err, /--trace .*nope\.csv: no such file/)
    r = await tide('--trace', trace, '--group', 'web')
    assert.equal(r.code, 2)
    assert.match(r.err, /--group needs --config/)
  })
})
