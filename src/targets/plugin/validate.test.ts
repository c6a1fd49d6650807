/**
 * `tide validate` checks plugin targets as `tide run` would: the module is imported and must
 * export createTarget, whose target has status() and scale(); every broken plugin is reported
 * at once, with the group's path and the module's name. Real files, the real CLI entry point.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, describe, test } from 'node:test'
import { stringify } from 'yaml'
import { main } from '../../cli/main.js'
import { sink } from '../../../test/support/sink.js'

const dir = mkdtempSync(join(tmpdir(), 'tide-validate-plugin-'))
after(() => rmSync(dir, { recursive: true, force: true }))
const plugins = resolve('test/e2e/scale-to-zero-plugins')

async function validate(file: string, json = false) {
  const stdout = sink()
  const stderr = sink()
  const code = await main(['node', 'tide', 'validate', file, ...(json ? ['--json'] : [])], {
    stdout,
    stderr,
    env: {},
    onSignal: () => () => {},
  })
  return { code, out: stdout.text, err: stderr.text }
}

function write(name: string, groups: Record<string, { module: string; options?: object }>): string {
  const path = join(dir, name)
  const config = {
    groups: Object.fromEntries(
      Object.entries(groups).map(([group, target]) => [
        group,
        {
          min: 0,
          max: 2,
          target: { kind: 'plugin', ...target },
          route: { listen: '127.0.0.1:0' },
          policies: [{ kind: 'target', metric: 'concurrency', per_instance: 10 }],
        },
      ]),
    ),
  }
  writeFileSync(path, stringify(config))
  return path
}

describe('tide validate with plugin targets', () => {
  test('the example plugin config is valid: its module loads and has what a target needs', async () => {
    const { code, out, err } = await validate('examples/plugins/plugin.yaml')
    assert.equal(err, '')
    assert.equal(code, 0)
    assert.equal(out, 'ok: 1 group (plugged)\n')
  })

  test('every broken plugin is a problem naming the group, the module and what is missing; exit 1', async () => {
    const file = write('broken.yaml', {
      gone: { module: './nowhere.js' },
      nofactory: { module: join(plugins, 'no-factory.js') },
      noscale: { module: join(plugins, 'no-scale.js') },
      badoptions: { module: join(plugins, 'bad-options.js'), options: { region: 7 } },
      fine: { module: join(plugins, 'servers.js') },
    })
    const { code, out, err } = await validate(file)
    assert.equal(code, 1)
    assert.equal(out, '')
    assert.match(err, /^error: .*broken\.yaml has 4 problems \(E_CONFIG\)\n/)
    const lines = err.split('\n').slice(1, -1)
    assert.equal(lines.length, 4, err)
    assert.match(
      lines[0]!,
      /^ {2}groups\.gone\.target\.module: plugin module \.\/nowhere\.js not found: no file \/.*\/nowhere\.js \(E_PLUGIN_LOAD\)$/,
    )
    assert.match(
      lines[1]!,
      /^ {2}groups\.nofactory\.target\.module: plugin module \/.*no-factory\.js exports no createTarget function \(it exports makeScaler, version\).* \(E_PLUGIN_INVALID\)$/,
    )
    assert.match(
      lines[2]!,
      /^ {2}groups\.noscale\.target\.module: plugin module \/.*no-scale\.js: the target from createTarget\(\) has no scale\(\) method \(its methods: status\) \(E_PLUGIN_INVALID\)$/,
    )
    assert.match(
      lines[3]!,
      /^ {2}groups\.badoptions\.target\.module: plugin module \/.*bad-options\.js: createTarget\(options\) threw: options\.region must be a string, got 7 \(E_PLUGIN_INVALID\)$/,
    )
  })

  test('--json lists the same problems', async () => {
    const file = write('one.yaml', { g: { module: join(plugins, 'no-scale.js') } })
    const { code, out } = await validate(file, true)
    assert.equal(code, 1)
    const answer = JSON.parse(out) as { ok: boolean; problems: Array<{ path: string; message: string }> }
    assert.equal(answer.ok, false)
    assert.deepEqual(
      answer.problems.map((p) => p.path),
      ['groups.g.target.module'],
    )
    assert.match(answer.problems[0]!.message, /has no scale\(\) method/)
  })
})
