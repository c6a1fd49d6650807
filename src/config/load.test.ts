import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import type { ConfigError } from '../core/errors.js'
import { configJsonSchema, effectiveSources, loadConfigFile, parseConfigText } from './index.js'

const dir = mkdtempSync(join(tmpdir(), 'tide-config-'))
after(() => rmSync(dir, { recursive: true, force: true }))

const GOOD = `
groups:
  web:
    max: 4
    target: { kind: process, command: node app.js }
    route: { listen: 127.0.0.1:8080 }
    policies:
      - { kind: target, metric: concurrency, per_instance: 8 }
`

function problems(
  text: string,
  env: NodeJS.ProcessEnv = {},
): Array<{ path: string; message: string; value?: unknown }> {
  try {
    parseConfigText(text, 'test.yaml', env)
  } catch (err) {
    return (err as ConfigError).problems
  }
  assert.fail('expected the config to be rejected')
}

describe('config', () => {
  test('a minimal config gets every default, durations in milliseconds, and is frozen', () => {
    const config = parseConfigText(GOOD, 'test.yaml', {})
    const web = config.groups.web!
    assert.equal(config.api.listen, '127.0.0.1:7070')
    assert.equal(config.store.path, '.tide/tide.db')
    assert.equal(web.min, 1)
    assert.equal(web.interval, 2000)
    assert.equal(web.cooldown, 30_000)
    assert.equal(web.shadow, false)
    assert.ok(Object.isFrozen(web.policies[0]))
    assert.deepEqual(
      effectiveSources(web).map((s) => s.kind),
      ['router', 'process'],
      'a routed process group reads the router and its processes by default',
    )
  })

  test('every problem is reported at once, each with its path and the bad value', () => {
    const got = problems(`
api: { listen: "nope" }
groups:
  web:
    min: 3
    max: 2
    interval: soon
    colour: blue
    target: { kind: proces, command: x }
    policies:
      - { kind: target, metric: concurrency, per_instance: -2 }
`)
    const byPath = new Map(got.map((p) => [p.path, p]))
    assert.match(byPath.get('api.listen')!.message, /host:port/)
    assert.equal(byPath.get('api.listen')!.value, 'nope')
    assert.match(byPath.get('groups.web.interval')!.message, /duration/)
    assert.equal(byPath.get('groups.web.colour')!.message, 'unknown key')
    assert.match(byPath.get('groups.web.target.kind')!.message, /must be one of: .*\bprocess\b/)
    assert.equal(byPath.get('groups.web.target.kind')!.value, 'proces')
    assert.equal(byPath.get('groups.web.policies[0].per_instance')!.value, -2)
    assert.ok(got.length >= 5, `all problems listed: ${JSON.stringify(got)}`)
  })

  test('the error message lists each problem on its own line with the value', () => {
    try {
      parseConfigText(
        'groups: { web: { max: 0, target: { kind: process, command: x }, policies: [] } }',
        'tide.yaml',
        {},
      )
      assert.fail('should throw')
    } catch (err) {
      const e = err as ConfigError
      assert.equal(e.code, 'E_CONFIG')
      assert.match(e.message, /^tide\.yaml has \d+ problems?:/)
      assert.match(e.message, /groups\.web\.max: must be >= 1 \(got 0\)/)
      assert.match(e.message, /groups\.web\.policies: needs at least 1 item/)
    }
  })

  test('min must not exceed max, and min 0 needs a route to wake the group', () => {
    const got = problems(`
groups:
  a: { min: 5, max: 2, target: { kind: process, command: x }, sources: [{ kind: process }], policies: [{ kind: target, metric: cpu, per_instance: 0.5 }] }
  b: { min: 0, max: 2, target: { kind: process, command: x }, policies: [{ kind: target, metric: cpu, per_instance: 0.5 }] }
`)
    assert.ok(got.some((p) => p.path === 'groups.a.min' && /<= max \(2\)/.test(p.message) && p.value === 5))
    assert.ok(got.some((p) => p.path === 'groups.b.min' && /wake/.test(p.message)))
  })

  test('checks across keys are reported together with the schema problems, in one pass', () => {
    const got = problems(`
groups:
  web:
    min: 3
    max: 2
    interval: soon
    target: { kind: process, command: x }
    policies: [{ kind: target, metric: concurrncy, per_instance: 8 }]
`)
    const paths = got.map((p) => p.path)
    assert.ok(paths.includes('groups.web.interval'), 'the schema problem')
    assert.ok(paths.includes('groups.web.min'), 'min > max, although the schema failed elsewhere')
    assert.ok(
      paths.includes('groups.web.policies[0]'),
      'the unknown metric, although the schema failed elsewhere',
    )
  })

  test('a policy reading a metric no source provides is named, with the metrics that are available', () => {
    const got = problems(`
groups:
  web:
    max: 3
    target: { kind: process, command: x }
    policies: [{ kind: target, metric: concurrncy, per_instance: 8 }]
`)
    const p = got.find((x) => x.path === 'groups.web.policies[0]')!
    assert.match(p.message, /"concurrncy"/)
    assert.match(p.message, /available: cpu, memory/)
  })

  test('a router source without a route, duplicate route addresses and a public API without a token are refused', () => {
    const got = problems(`
api: { listen: 0.0.0.0:7070 }
groups:
  a: { max: 2, target: { kind: process, command: x }, route: { listen: 127.0.0.1:9000 }, policies: [{ kind: target, metric: concurrency, per_instance: 4 }] }
  b: { max: 2, target: { kind: process, command: x }, route: { listen: 127.0.0.1:9000 }, policies: [{ kind: target, metric: concurrency, per_instance: 4 }] }
  c: { max: 2, target: { kind: process, command: x }, sources: [{ kind: router }], policies: [{ kind: target, metric: concurrency, per_instance: 4 }] }
`)
    assert.ok(got.some((p) => p.path === 'api.token' && /loopback/.test(p.message)))
    assert.ok(
      got.some((p) => p.path === 'groups.b.route.listen' && /already used by group a/.test(p.message)),
    )
    assert.ok(
      got.some((p) => p.path === 'groups.c.sources[0]' && /needs the group to have a route/.test(p.message)),
    )
  })

  test('two sources providing the same metric name are refused: a policy could not tell which it reads', () => {
    const got = problems(`
groups:
  web:
    max: 3
    target: { kind: process, command: x }
    sources: [{ kind: process }, { kind: scrape, metrics: { cpu: { family: process_cpu_seconds_total } } }]
    policies: [{ kind: target, metric: cpu, per_instance: 0.5 }]
`)
    assert.ok(
      got.some(
        (p) => p.path === 'groups.web.sources[1]' && /"cpu".*sources\[0\] \(process\)/.test(p.message),
      ),
    )
  })

  test('$ENV interpolation: values, defaults, whole-value numbers, $${ escapes, and unset variables named', () => {
    const text = `
api: { token: "\${TOKEN}" }
groups:
  web:
    max: \${MAX}
    min: \${MIN:-2}
    target: { kind: process, command: "echo $\${HOME} \${WORD}" }
    route: { listen: 127.0.0.1:8080 }
    policies: [{ kind: target, metric: concurrency, per_instance: 8 }]
`
    const config = parseConfigText(text, 't', { TOKEN: 'a-token-of-sixteen-chars', MAX: '7', WORD: 'hi' })
    assert.equal(config.api.token, 'a-token-of-sixteen-chars')
    assert.equal(config.groups.web!.max, 7)
    assert.equal(config.groups.web!.min, 2)
    const target = config.groups.web!.target as { command: string }
    assert.equal(target.command, `echo $${'{'}HOME} hi`)
    const got = problems(text, { TOKEN: 'a-token-of-sixteen-chars', WORD: 'x' })
    assert.ok(got.some((p) => p.path === 'groups.web.max' && /MAX is not set/.test(p.message)))
  })

  test('YAML syntax errors and a missing file are config errors, not crashes', async () => {
    assert.ok(problems('groups: [unclosed')[0]!.message.startsWith('YAML:'))
    await assert.rejects(
      loadConfigFile(join(dir, 'absent.yaml')),
      (e: ConfigError) => e.code === 'E_CONFIG' && /no such file/.test(e.message),
    )
  })

  test('a file on disk loads with its directory, so relative paths follow the file', async () => {
    const path = join(dir, 'tide.yaml')
    writeFileSync(path, GOOD)
    const loaded = await loadConfigFile(path, {})
    assert.equal(loaded.dir, dir)
    assert.equal(loaded.path, path)
  })

  test('the JSON Schema describes the input, rejects unknown keys and carries descriptions', () => {
    const schema = configJsonSchema() as {
      properties: Record<string, { description?: string }>
      additionalProperties: boolean
    }
    assert.equal(schema.additionalProperties, false)
    assert.ok(schema.properties.groups!.description)
  })

  test('every example config validates', async () => {
    for (const file of ['examples/local.yaml']) {
      const loaded = await loadConfigFile(file, {})
      assert.ok(Object.keys(loaded.config.groups).length > 0, file)
    }
  })
})
