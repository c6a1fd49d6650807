/**
 * `tide import do-scaler` on fixture directories built from seed 002's documented examples
 * (reference/seeds.md §2.3): testdata/shipped is the README's web.cfg with the three shipped
 * policies; testdata/custom has what does not carry over (custom actions, unknown keys, bad
 * policies, a user_data script with `${…}`).
 */
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { main } from '../../cli/main.js'
import { parseConfigText } from '../../config/load.js'
import { convertDoScaler, ImportError } from './convert.js'
import { Ini } from './ini.js'

const DATA = new URL('./testdata/', import.meta.url).pathname

async function run(args: string[], env: Record<string, string> = {}) {
  let stdout = ''
  let stderr = ''
  const code = await main(['node', 'tide', ...args], {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env,
  })
  return { code, stdout, stderr }
}

describe('INI as Python configparser reads it', () => {
  test('ExtendedInterpolation, DEFAULT, lower-cased keys, continuation lines, comments', () => {
    const ini = Ini.parse(
      [
        '[DEFAULT]',
        'token = abc',
        '; a comment',
        '[scaler]',
        'Do_Token = ${token}',
        'Tag_Name: web',
        'files = a.json',
        '  b.json',
        'price = $$5',
        '[other]',
        'copy = ${scaler:do_token}-x',
      ].join('\n'),
      'x.cfg',
    )
    assert.equal(ini.get('scaler', 'do_token'), 'abc')
    assert.equal(ini.get('scaler', 'tag_name'), 'web')
    assert.equal(ini.get('scaler', 'files'), 'a.json\nb.json')
    assert.equal(ini.get('scaler', 'price'), '$5')
    assert.equal(ini.get('other', 'copy'), 'abc-x')
    assert.equal(ini.get('other', 'token'), 'abc', 'DEFAULT shows through')
  })

  test('a reference to nothing names the file, line, section and key', () => {
    const ini = Ini.parse('[a]\nx = ${b:y}\n', 'conf.d/web.cfg')
    assert.throws(
      () => ini.get('a', 'x'),
      /conf\.d\/web\.cfg: line 2: \[a\] x: \$\{b:y\} refers to \[b\] y, which is not set/,
    )
  })

  test('a line that is neither a header nor key = value is an error with its line number', () => {
    assert.throws(
      () => Ini.parse('[a]\nthis is not an option\n', 'f.cfg'),
      /f\.cfg: line 2: not a section header/,
    )
  })
})

describe('do-scaler → Tide config', () => {
  test('the shipped example: bounds, interval, scrape source, the three policies in order', () => {
    const { config, notes } = convertDoScaler(join(DATA, 'shipped'))
    const web = config.groups.web!
    assert.equal(web.min, 2)
    assert.equal(web.max, 8)
    assert.equal(web.interval, '120s')
    const target = web.target as Record<string, unknown>
    assert.equal(target.kind, 'digitalocean')
    assert.equal(target.tag, 'web')
    // conf.d/droplets/web.json, as do-scaler sent it to POST /v2/droplets (seeds.md §2.3).
    assert.deepEqual(target.template, {
      name: 'web-{}',
      size: 's-2vcpu-4gb',
      image: 12345678,
      region: 'sfo2',
      ssh_keys: ['3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa'],
      tags: ['autoscaled'],
    })
    for (const key of ['base_droplet', 'snapshot', 'clone_prefix', 'ssh_keys'])
      assert.equal(key in target, false, `no ${key}: the template says how droplets are made`)
    assert.equal(target.remove, 'oldest', 'do-scaler destroyed the first listed droplet')
    assert.equal(target.address, 'private')
    assert.equal(target.boot_timeout, '240s')
    assert.equal('token' in target, false, 'the token is never copied')
    const source = (web.sources as Array<Record<string, unknown>>)[0]!
    assert.equal(source.kind, 'scrape')
    assert.equal(source.port, 9110)
    assert.equal(source.path, '/')
    assert.deepEqual((source.metrics as Record<string, unknown>).mem_avail, {
      samples: ['node_memory_MemFree_bytes', 'node_memory_Cached_bytes'],
      reducer: '+',
    })
    const policies = web.policies as Array<Record<string, unknown>>
    assert.deepEqual(
      policies.map((p) => p.name),
      ['mem_avail', 'loadavg', 'down'],
    )
    assert.deepEqual(policies[0]!.up, {
      match: 'any',
      step: 1,
      conditions: ['mean(mem_avail) <= 2068099072'],
    })
    assert.deepEqual(policies[1]!.up, {
      match: 'all',
      step: 1,
      conditions: ['mean(load1) >= 2', 'mean(load5) >= 2', 'mean(load15) >= 2'],
    })
    assert.deepEqual(policies[2]!.down, {
      match: 'all',
      step: 1,
      conditions: [
        'min(mem_avail) >= 3102148608',
        'max(load1) <= 0.5',
        'max(load5) <= 0.5',
        'max(load15) <= 0.5',
      ],
    })
    // do-scaler ran down.json on its own; in Tide the up-only policies abstain while their rule
    // does not hold, so they stay up-only and down.json still scales down
    // (test/emulators/digitalocean/do-scaler-import runs this config and scales down).
    assert.equal(policies[0]!.down, undefined)
    assert.equal(policies[1]!.down, undefined)
    assert.ok(
      notes.some(
        (n) => n.where === 'conf.d/web.cfg [scaler] policy_files' && /Tide adds one/.test(n.message),
      ),
    )
    // The same condition in two policies is one metric of the source.
    assert.deepEqual(Object.keys(source.metrics as object), ['mem_avail', 'load1', 'load5', 'load15'])
    assert.ok(notes.some((n) => n.where.includes('health_check_tcp') && n.level === 'unsupported'))
    assert.ok(!notes.some((n) => /TIDE_BASE_DROPLET/.test(n.message)), 'nothing to set by hand')
    assert.ok(
      notes.some((n) => n.where === 'conf.d/droplets/web.json name' && /web-1, are adopted/.test(n.message)),
    )
  })

  test('the result is a valid Tide config (what tide validate checks)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tide-import-'))
    try {
      const out = join(dir, 'tide.yaml')
      const r = await run(['import', 'do-scaler', join(DATA, 'shipped'), '-o', out])
      assert.equal(r.code, 0, r.stderr)
      const text = readFileSync(out, 'utf8')
      assert.match(text, /^# Tide config converted from do-scaler/)
      assert.match(text, /\[unsupported\] conf\.d\/web\.cfg \[health_check_tcp\]/)
      assert.doesNotMatch(text, /TIDE_BASE_DROPLET|TIDE_SNAPSHOT/)
      const parsed = parseConfigText(text, out, {})
      assert.deepEqual(Object.keys(parsed.groups), ['web'])
      const v = await run(['validate', out], {})
      assert.equal(v.code, 0, v.stderr)
      // Refuses to overwrite without --force.
      const again = await run(['import', 'do-scaler', join(DATA, 'shipped'), '-o', out])
      assert.equal(again.code, 2)
      assert.match(again.stderr, /exists; --force overwrites it/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('what does not carry over is reported by file, section and key', () => {
    const { notes } = convertDoScaler(join(DATA, 'custom'))
    const find = (where: string, message: RegExp) =>
      assert.ok(
        notes.some((n) => n.where === where && message.test(n.message)),
        `a note at ${where} matching ${message}: ${JSON.stringify(
          notes.map((n) => `${n.where}: ${n.message}`),
          null,
          1,
        )}`,
      )
    find('do-scaler.cfg [scheduler] colour', /unknown setting/)
    find('conf.d/api.cfg [scaler] retries', /unknown setting/)
    find('conf.d/policies/up.json conditions[1] operator', /"=>" is not one of/)
    find('conf.d/policies/notify-only.json actions', /runs neither/)
    find('conf.d/policies/missing.json', /no such file/)
    find('conf.d/droplets/api.json volumes', /not a droplet setting/)
    find('conf.d/api.cfg [unused_action]', /no policy runs this action/)
    find('conf.d/api.cfg [scaler.metrics] address', /public_ip_address .* crashed do-scaler/)
    find('conf.d/policies/up.json conditions[0] samples', /took the first series of node_cpu_seconds_total/)
  })

  test("custom actions become exec actions after the policy's direction, their settings as variables", () => {
    const { config } = convertDoScaler(join(DATA, 'custom'))
    const api = config.groups.api!
    assert.equal(api.interval, '60s', 'the inline comment after the interval is not part of it')
    assert.deepEqual(api.notify, [
      {
        kind: 'exec',
        command: join(DATA, 'custom/conf.d/actions/notify_slack/run'),
        direction: 'up',
        on: ['applied'],
        env: { CHANNEL: '#ops', WEBHOOK: 'https://hooks.example.com/x' },
        timeout: '5m',
      },
    ])
    // Seed 002's action contract: the created/deleted droplet lists arrive as TIDE_ADDED/TIDE_REMOVED.
    const { notes } = convertDoScaler(join(DATA, 'custom'))
    assert.ok(
      notes.some((n) => /notify_slack/.test(n.message) && /TIDE_ADDED and TIDE_REMOVED/.test(n.message)),
      JSON.stringify(notes),
    )
    const target = api.target as Record<string, unknown>
    assert.equal(target.address, 'public')
    // A counter compared raw, as do-scaler did.
    const metrics = (api.sources as Array<{ metrics: Record<string, unknown> }>)[0]!.metrics
    assert.deepEqual(metrics.cpu, { family: 'node_cpu_seconds_total', rate: false })
  })

  test("user_data keeps its ${…}: Tide's interpolation does not touch it", async () => {
    const r = await run(['import', 'do-scaler', join(DATA, 'custom')])
    assert.equal(r.code, 0, r.stderr)
    const parsed = parseConfigText(r.stdout, 'x', {})
    const target = parsed.groups.api!.target as { template?: { user_data?: string; image?: unknown } }
    assert.equal(target.template?.user_data, '#!/bin/sh\necho ${HOSTNAME} > /etc/motd\n')
    assert.equal(target.template?.image, 'ubuntu-22-04-x64', 'an image slug stays a slug')
  })

  test('a directory with only .cfg.example files, or none at all, is a clear usage error', async () => {
    assert.throws(
      () => convertDoScaler(join(DATA, 'examples-only')),
      (err: unknown) => {
        assert.ok(err instanceof ImportError)
        assert.match(
          err.message,
          /no scaler configs \(\*\.cfg\).*web\.cfg\.example.*copy one to a \.cfg name/,
        )
        return true
      },
    )
    const r = await run(['import', 'do-scaler', join(DATA, 'nope')])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /is not a directory \(E_IMPORT\)/)
  })

  describe('droplet templates', () => {
    let dir: string
    /** A conf.d with one group whose template is `template` (and `extra` lines in web.cfg). */
    const setup = (template: unknown, extra: string[] = []) => {
      dir = mkdtempSync(join(tmpdir(), 'tide-import-template-'))
      mkdirSync(join(dir, 'conf.d/droplets'), { recursive: true })
      mkdirSync(join(dir, 'conf.d/policies'), { recursive: true })
      writeFileSync(join(dir, 'do-scaler.cfg'), '[scheduler]\ninterval = 60\n')
      writeFileSync(
        join(dir, 'conf.d/policies/up.json'),
        readFileSync(join(DATA, 'shipped/conf.d/policies/mem_avail.json')),
      )
      const web = ['[scaler]', 'tag_name = web', 'policy_files = up.json', '', ...extra]
      if (template !== undefined) {
        web.push('[digitalocean_create_droplet]', 'max = 4', 'droplet = web.json')
        writeFileSync(
          join(dir, 'conf.d/droplets/web.json'),
          typeof template === 'string' ? template : JSON.stringify(template),
        )
      }
      writeFileSync(join(dir, 'conf.d/web.cfg'), `${web.join('\n')}\n`)
      return dir
    }
    const at = (notes: Array<{ where: string; message: string }>, where: string) =>
      notes.filter((n) => n.where === where).map((n) => n.message)
    test.afterEach(() => rmSync(dir, { recursive: true, force: true }))

    test("the group's tag is always added; python's {0} and {:03d}; booleans and vpc_uuid copied", () => {
      const { config, notes } = convertDoScaler(
        setup({
          name: 'web-{0:03d}',
          size: 's-1vcpu-1gb',
          image: 'ubuntu-24-04-x64',
          region: 'nyc3',
          tags: ['autoscaled'],
          backups: true,
          ipv6: false,
          monitoring: false,
          vpc_uuid: '5a4981aa-9653-4bd1-bef5-d6bff52042e4',
        }),
      )
      assert.deepEqual((config.groups.web!.target as Record<string, unknown>).template, {
        name: 'web-{:03d}',
        size: 's-1vcpu-1gb',
        image: 'ubuntu-24-04-x64',
        region: 'nyc3',
        tags: ['autoscaled'],
        backups: true,
        ipv6: false,
        monitoring: false,
        vpc_uuid: '5a4981aa-9653-4bd1-bef5-d6bff52042e4',
      })
      assert.match(at(notes, 'conf.d/droplets/web.json tags').join(), /lack tag_name "web"/)
      assert.match(at(notes, 'conf.d/droplets/web.json vpc_uuid').join(), /did not send vpc_uuid/)
      assert.deepEqual(at(notes, 'conf.d/droplets/web.json monitoring'), [], 'set, so nothing to say')
    })

    test('a name without {} gets one (do-scaler gave every droplet the same name)', async () => {
      const d = setup({ name: 'worker', size: 's-1vcpu-1gb', image: 1234, region: 'nyc3' })
      const { config, notes } = convertDoScaler(d)
      const template = (config.groups.web!.target as { template: { name: string } }).template
      assert.equal(template.name, 'worker-{}')
      assert.match(at(notes, 'conf.d/droplets/web.json name').join(), /every droplet got the same name/)
      const r = await run(['import', 'do-scaler', d])
      assert.equal(r.code, 0, r.stderr)
    })

    test('a template without a region: noted, and the config says what to set', async () => {
      const d = setup({ name: 'web-{}', size_slug: 's-1vcpu-1gb', image: 1234 })
      const { notes } = convertDoScaler(d)
      assert.match(at(notes, 'conf.d/droplets/web.json region').join(), /set target\.template\.region/)
      const r = await run(['import', 'do-scaler', d])
      assert.equal(r.code, 1, 'converted, not valid yet')
      assert.match(r.stderr, /groups\.web\.target\.template\.region: is required/)
    })

    test('no template at all: the base-droplet placeholders, to set by hand', async () => {
      const d = setup(undefined)
      const { config, notes } = convertDoScaler(d)
      const target = config.groups.web!.target as Record<string, unknown>
      assert.equal(target.template, undefined)
      assert.equal(target.base_droplet, '${TIDE_BASE_DROPLET_WEB}')
      assert.equal(target.snapshot, '${TIDE_SNAPSHOT_WEB}')
      assert.match(at(notes, 'groups.web.target').join(), /set TIDE_BASE_DROPLET_WEB and TIDE_SNAPSHOT_WEB/)
      const r = await run(['import', 'do-scaler', d])
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stdout, /base_droplet: \$\{TIDE_BASE_DROPLET_WEB\}/, 'the placeholder, not escaped')
    })

    test('a template that is not a JSON object is a note, and the placeholders', () => {
      const { config, notes } = convertDoScaler(setup('["web-{}"]'))
      assert.match(at(notes, 'conf.d/droplets/web.json').join(), /not a JSON object/)
      assert.equal(
        (config.groups.web!.target as Record<string, unknown>).base_droplet,
        '${TIDE_BASE_DROPLET_WEB}',
      )
    })

    test('min 0 becomes 1: at 0 there is no droplet to read metrics from', async () => {
      const d = setup({ name: 'web-{}', size: 's-1vcpu-1gb', image: 1234, region: 'nyc3' }, [
        '[digitalocean_destroy_droplet]',
        'min = 0',
      ])
      const { config, notes } = convertDoScaler(d)
      assert.equal(config.groups.web!.min, 1)
      assert.match(at(notes, 'conf.d/web.cfg [digitalocean_destroy_droplet] min').join(), /min 0: .*using 1/)
      assert.equal((await run(['import', 'do-scaler', d])).code, 0)
    })
  })

  test('--json gives the config, the notes and the files read', async () => {
    const r = await run(['import', 'do-scaler', join(DATA, 'shipped'), '--json'])
    assert.equal(r.code, 0, r.stderr)
    const out = JSON.parse(r.stdout) as { ok: boolean; files: string[]; notes: unknown[] }
    assert.equal(out.ok, true)
    assert.deepEqual(out.files.slice(0, 2), ['do-scaler.cfg', 'conf.d/web.cfg'])
    assert.ok(out.notes.length > 0)
  })
})
