/**
 * Plugins (`target: { kind: plugin }`) end to end: validated when Tide starts, with errors that
 * name the module and what is missing; a throwing plugin fails its own group and nothing else;
 * a wake that fails answers the held requests 503 and the next request wakes the group again.
 * The test plugin's instances are real HTTP servers reached through Tide's real router.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { request } from 'undici'
import { stringify } from 'yaml'
import { TideError } from '../../src/core/errors.js'
import { startDaemon } from '../../src/engine/daemon.js'
import { silentLogger } from '../../src/engine/log.js'
import { startTestDaemon, type TestDaemon, waitFor } from '../support/daemon.js'

const plugins = resolve('test/e2e/scale-to-zero-plugins')
const plugin = (name: string) => join(plugins, name)

async function get(url: string) {
  const res = await request(url)
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() }
}

function group(module: string, options: Record<string, unknown> = {}) {
  return {
    min: 0,
    max: 3,
    interval: '500ms',
    target: { kind: 'plugin', module, options },
    route: { listen: '127.0.0.1:0', workers: 1, queue: { timeout: '20s' } },
    policies: [{ kind: 'target', metric: 'concurrency', per_instance: 10 }],
  }
}

/** Starts Tide from a config object written to a temp dir; resolves with the error when it refuses. */
async function refused(groups: Record<string, unknown>): Promise<TideError> {
  const dir = mkdtempSync(join(tmpdir(), 'tide-plugin-'))
  try {
    const path = join(dir, 'tide.yaml')
    writeFileSync(
      path,
      stringify({ api: { listen: '127.0.0.1:0' }, store: { path: join(dir, 'tide.db') }, groups }),
    )
    const daemon = await startDaemon({ configPath: path, logger: silentLogger() }).catch((err: unknown) =>
      err instanceof Error ? err : new Error(String(err)),
    )
    if (!(daemon instanceof Error)) {
      await daemon.close()
      assert.fail('Tide started with a broken plugin')
    }
    assert.ok(daemon instanceof TideError, `not a TideError: ${String(daemon)}`)
    return daemon
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

describe('plugin target: validated at load', () => {
  test('a module that does not exist: E_PLUGIN_LOAD naming the module and the file looked for', async () => {
    const err = await refused({ g: group('./nowhere/scaler.js') })
    assert.equal(err.code, 'E_PLUGIN_LOAD')
    assert.match(
      err.message,
      /^plugin module \.\/nowhere\/scaler\.js not found: no file \/.*\/nowhere\/scaler\.js$/,
    )
  })

  test('a module without createTarget: E_PLUGIN_INVALID listing what it does export', async () => {
    const err = await refused({ g: group(plugin('no-factory.js')) })
    assert.equal(err.code, 'E_PLUGIN_INVALID')
    assert.match(
      err.message,
      /no-factory\.js exports no createTarget function \(it exports makeScaler, version\)/,
    )
  })

  test('a target without scale(): E_PLUGIN_INVALID naming the missing method', async () => {
    const err = await refused({ g: group(plugin('no-scale.js')) })
    assert.equal(err.code, 'E_PLUGIN_INVALID')
    assert.match(
      err.message,
      /no-scale\.js: the target from createTarget\(\) has no scale\(\) method \(its methods: status\)$/,
    )
  })

  test("bad options: the plugin's own message, with the module's name", async () => {
    const err = await refused({ g: group(plugin('bad-options.js'), { region: 7 }) })
    assert.equal(err.code, 'E_PLUGIN_INVALID')
    assert.match(
      err.message,
      /bad-options\.js: createTarget\(options\) threw: options\.region must be a string, got 7$/,
    )
  })
})

describe('plugin target: isolation and waking', () => {
  let tide: TestDaemon
  const view = (name: string) => tide.controller.getGroup(name)

  before(async () => {
    tide = await startTestDaemon('examples/scale-to-zero.yaml', (raw) => {
      raw.groups = {
        broken: group(plugin('servers.js'), { throwIn: ['status', 'scale', 'watch'] }),
        healthy: group(plugin('servers.js')),
        flaky: group(plugin('servers.js'), { failScaleUps: 1, failAfterMs: 300 }),
      } as never
    })
  })
  after(async () => {
    await tide?.stop()
  })

  test('a plugin that throws fails its own group; another group keeps scaling', async () => {
    // Tide started although `broken` throws from status() and watch().
    await waitFor('the broken group to report its error', 10_000, () =>
      /cannot read the target: plugin .*servers\.js: status\(\) failed: status exploded/.test(
        view('broken').message ?? '',
      ),
    )
    const failed = await tide.controller.scale('broken', { to: 1, wait: true, force: true })
    assert.equal(failed.outcome, 'failed')
    assert.match(failed.error ?? '', /plugin .*servers\.js: (status\(\)|scale\(1\)) failed: .* exploded/)

    // The healthy group scales up and down, and wakes on a request, all while `broken` keeps failing.
    const up = await tide.controller.scale('healthy', { to: 2, wait: true, force: true })
    assert.equal(up.outcome, 'applied')
    assert.equal(view('healthy').ready, 2)
    const down = await tide.controller.scale('healthy', { to: 0, wait: true, force: true })
    assert.equal(down.outcome, 'applied')
    const res = await get(`http://${tide.routes.healthy}/`)
    assert.equal(res.status, 200)
    assert.match(res.body, /^hello from healthy-\d+/)
    assert.match(String(res.headers['tide-cold-start']), /^\d+ms$/)
    // And `broken` is still broken, still alone.
    assert.match(view('broken').message ?? '', /status exploded/)
  })

  test('a wake that fails answers the held requests 503 with Retry-After, and the next request wakes again', async () => {
    const url = `http://${tide.routes.flaky}/`
    const started = Date.now()
    const first = await Promise.all(Array.from({ length: 10 }, () => get(url)))
    assert.ok(Date.now() - started < 15_000, 'answered when the wake failed, not at queue.timeout (20s)')
    // Requests held when the wake failed get the 503; one that came after it started a new wake
    // (nothing is cached) and was served by it.
    const refused = first.filter((res) => res.status === 503)
    assert.ok(refused.length >= 1, `statuses: ${first.map((r) => r.status).join(' ')}`)
    for (const res of first) if (res.status !== 503) assert.equal(res.status, 200)
    for (const res of refused) {
      assert.equal(res.headers['retry-after'], '5')
      assert.match(String(res.headers['tide-cold-start']), /^\d+ms$/)
      const body = JSON.parse(res.body) as { code: string; message: string }
      assert.equal(body.code, 'E_ROUTER_WAKE_FAILED')
      assert.match(
        body.message,
        /^group flaky could not be woken from zero: plugin .*servers\.js: scale\(1\) failed: the instance could not be started \(injected failure\); the next request tries again$/,
      )
    }
    // Not cached: the next request wakes the group again, and this time it works.
    const next = await get(url)
    assert.equal(next.status, 200)
    assert.match(next.body, /^hello from flaky-1/)
    const wakes = tide.controller
      .decisions('flaky')
      .filter((d) => d.reason.startsWith('scale up 0 → 1: a request arrived while the group was at zero'))
    assert.deepEqual(
      wakes.map((d) => d.outcome).reverse(),
      ['failed', 'applied'],
      'one wake for the held requests, then one more for the next request',
    )
  })
})

describe('the example plugin (examples/plugins/local-processes.js)', () => {
  let tide: TestDaemon
  before(async () => {
    tide = await startTestDaemon('examples/plugins/plugin.yaml', (raw) => {
      const target = raw.groups.plugged!.target as unknown as Record<string, unknown> & {
        options: { script: string }
      }
      // The test daemon writes the config to a temp dir: paths become absolute, and a plugin has no cwd.
      delete target.cwd
      target.module = resolve('examples/plugins/local-processes.js')
      target.options.script = resolve('examples/app/server.js')
    })
  })
  after(async () => {
    await tide?.stop()
  })

  test('wakes from zero on a request, serves it from a real process, and scales back to zero', async () => {
    assert.equal(tide.controller.getGroup('plugged').desired, 0)
    const res = await get(`http://${tide.routes.plugged}/?work=0`)
    assert.equal(res.status, 200)
    assert.match(String(res.headers['tide-cold-start']), /^\d+ms$/)
    const [instance] = tide.controller.getGroup('plugged').instances
    assert.equal(instance?.state, 'ready')
    assert.ok(instance.pid !== undefined && process.kill(instance.pid, 0))
    const down = await tide.controller.scale('plugged', { to: 0, force: true, wait: true })
    assert.equal(down.outcome, 'applied')
    assert.throws(() => process.kill(instance.pid!, 0), /ESRCH/, 'the instance process is gone')
  })
})
