/**
 * The demo app (examples/app/server.js). Its test lives here because the test runner looks
 * under src/ and test/ only, and the process target is what runs the app.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { resolve } from 'node:path'
import { describe, type TestContext, test } from 'node:test'
import { fileURLToPath } from 'node:url'

const APP = resolve(fileURLToPath(import.meta.url), '../../../../examples/app/server.js')

interface RunningApp {
  child: ChildProcess
  base: string
  output: () => string
  exited: Promise<number | null>
}

async function startApp(t: TestContext, env: Record<string, string> = {}): Promise<RunningApp> {
  const child = spawn(process.execPath, [APP], {
    env: { ...process.env, PORT: '0', TIDE_INSTANCE: 'demo-1', TIDE_GROUP: 'demo', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let text = ''
  child.stdout!.on('data', (chunk) => {
    text += chunk
  })
  child.stderr!.on('data', (chunk) => {
    text += chunk
  })
  const port = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', () => {
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(text)
      if (m) resolve(m[1]!)
    })
    void exited.then((code) => reject(new Error(`app exited with ${code}: ${text}`)))
  })
  return { child, base: `http://127.0.0.1:${port}`, output: () => text, exited }
}

async function metric(base: string, line: RegExp): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text()
  const m = line.exec(text)
  assert.ok(m, `no ${line} in\n${text}`)
  return Number(m[1])
}

describe('demo app', () => {
  test('GET / does the work asked and names its instance', async (t) => {
    const app = await startApp(t, { WORK_MS: '1' })
    const res = await fetch(`${app.base}/`)
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('x-instance'), 'demo-1')
    const body = (await res.json()) as Record<string, unknown>
    assert.equal(body.instance, 'demo-1')
    assert.equal(body.group, 'demo')
    assert.equal(body.work_ms, 1)
    assert.equal(body.pid, app.child.pid)
    const custom = (await (await fetch(`${app.base}/?work=0&sleep=5`)).json()) as Record<string, unknown>
    assert.equal(custom.work_ms, 0)
    assert.equal(custom.sleep_ms, 5)
    assert.equal((await fetch(`${app.base}/?work=lots`)).status, 400)
    assert.equal((await fetch(`${app.base}/nope`)).status, 404)
    assert.equal((await fetch(`${app.base}/healthz`)).status, 200)
  })

  test('work costs CPU time, and /metrics shows requests, CPU and memory', async (t) => {
    const app = await startApp(t, { WORK_MS: '0' })
    const cpuBefore = await metric(app.base, /^process_cpu_seconds_total (\S+)$/m)
    assert.equal((await fetch(`${app.base}/?work=100`)).status, 200)
    const cpuAfter = await metric(app.base, /^process_cpu_seconds_total (\S+)$/m)
    assert.ok(cpuAfter - cpuBefore >= 0.1, `cpu went from ${cpuBefore} to ${cpuAfter}`)
    assert.equal(await metric(app.base, /^app_requests_total\{path="\/",code="200"\} (\d+)$/m), 1)
    assert.equal(await metric(app.base, /^app_requests_total\{path="\/metrics",code="200"\} (\d+)$/m), 3)
    assert.equal(await metric(app.base, /^app_request_duration_seconds_count (\d+)$/m), 5)
    assert.equal(await metric(app.base, /^app_request_duration_seconds_bucket\{le="\+Inf"\} (\d+)$/m), 6)
    assert.equal(await metric(app.base, /^app_requests_in_flight (\d+)$/m), 1, 'the /metrics request itself')
    assert.ok((await metric(app.base, /^process_resident_memory_bytes (\d+)$/m)) > 1_000_000)
    const text = await (await fetch(`${app.base}/metrics`)).text()
    for (const type of [
      '# TYPE app_requests_total counter',
      '# TYPE app_requests_in_flight gauge',
      '# TYPE app_request_duration_seconds histogram',
      '# TYPE process_cpu_seconds_total counter',
      '# TYPE process_resident_memory_bytes gauge',
    ]) {
      assert.ok(text.includes(type), type)
    }
  })

  test('POST /echo answers the body with its content type', async (t) => {
    const app = await startApp(t)
    const res = await fetch(`${app.base}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"hello":"tide"}',
    })
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('content-type'), 'application/json')
    assert.equal(await res.text(), '{"hello":"tide"}')
  })

  test('SIGTERM finishes the request in flight, then exits 0', async (t) => {
    const app = await startApp(t, { WORK_MS: '0' })
    const slow = fetch(`${app.base}/?sleep=1000`)
    // In flight: the slow request and this /metrics request. (Bounded so a bug fails, not hangs.)
    for (let i = 0; (await metric(app.base, /^app_requests_in_flight (\d+)$/m)) < 2; i++) {
      assert.ok(i < 1000, 'the slow request never showed as in flight')
    }
    app.child.kill('SIGTERM')
    const res = await slow
    assert.equal(res.status, 200)
    assert.equal(((await res.json()) as Record<string, unknown>).sleep_ms, 1000)
    assert.equal(await app.exited, 0)
    assert.match(app.output(), /SIGTERM received, finishing 1 request\(s\) in flight[\s\S]*stopped/)
  })

  test('a bad WORK_MS is refused at start with exit code 2', async (t) => {
    await assert.rejects(
      startApp(t, { WORK_MS: 'lots' }),
      /app exited with 2: WORK_MS must be a non-negative number/,
    )
  })
})
