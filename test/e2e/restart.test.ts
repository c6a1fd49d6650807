/**
 * `tide run` killed with SIGKILL and started again: no instance is orphaned, the group gets
 * its size back, and the cooldown it was in still holds (the store survived the kill).
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, describe, test } from 'node:test'
import { parse, stringify } from 'yaml'
import { waitFor } from '../support/daemon.js'

const dir = mkdtempSync(join(tmpdir(), 'tide-restart-'))
const children: ChildProcess[] = []
const pidsSeen = new Set<number>()

after(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL')
  // Whatever the outcome, no instance of this test may outlive it.
  for (const pid of pidsSeen) {
    try {
      process.kill(-pid, 'SIGKILL')
    } catch {}
  }
  rmSync(dir, { recursive: true, force: true })
})

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}

/** Starts `tide run --json` and resolves with the process and its API URL. */
async function startTide(config: string): Promise<{ child: ChildProcess; api: string }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'test/fixtures/tide.ts', 'run', '-c', config, '--json'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TIDE_LOG_LEVEL: 'warn' },
    },
  )
  children.push(child)
  let err = ''
  child.stderr!.on('data', (c: Buffer) => {
    err += c.toString()
  })
  const api = await new Promise<string>((resolveApi, reject) => {
    let out = ''
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString()
      const line = out.split('\n').find((l) => l.startsWith('{'))
      if (line) resolveApi((JSON.parse(line) as { api: string }).api)
    })
    child.on('exit', (code) => reject(new Error(`tide exited with ${code}: ${err}`)))
  })
  return { child, api }
}

interface Group {
  desired: number
  ready: number
  instances: Array<{ id: string; pid?: number; state: string }>
}

const group = async (api: string) => (await (await fetch(`${api}/v1/groups/app`)).json()) as Group
const scale = (api: string, body: object) =>
  fetch(`${api}/v1/groups/app/scale`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })

describe('tide run killed with SIGKILL, then started again', () => {
  test('no orphaned instance, the size comes back, and the cooldown still holds', async () => {
    const raw = parse(readFileSync('test/fixtures/manual.yaml', 'utf8'))
    raw.api = { listen: '127.0.0.1:0' }
    raw.store = { path: join(dir, 'tide.db') }
    raw.groups.app.cooldown = '10m'
    raw.groups.app.target.cwd = resolve('test/fixtures')
    const config = join(dir, 'tide.yaml')
    writeFileSync(config, stringify(raw))

    const first = await startTide(config)
    await waitFor('the first instance', 20_000, async () => (await group(first.api)).ready === 1)
    const up = await scale(first.api, { to: 3, force: true, wait: true })
    assert.equal(up.status, 200)
    const before = (await group(first.api)).instances.map((i) => i.pid!)
    assert.equal(before.length, 3)
    for (const pid of before) pidsSeen.add(pid)

    first.child.kill('SIGKILL')
    await new Promise((r) => first.child.once('exit', r))
    assert.ok(before.every(alive), 'the instances outlive a Tide killed with SIGKILL')

    const second = await startTide(config)
    await waitFor('the old instances to be stopped', 30_000, () => before.every((pid) => !alive(pid)))
    await waitFor('the group to be back at 3 ready', 30_000, async () => {
      const g = await group(second.api)
      return g.desired === 3 && g.ready === 3
    })
    const now = (await group(second.api)).instances.map((i) => i.pid!)
    for (const pid of now) pidsSeen.add(pid)
    assert.ok(now.every((pid) => !before.includes(pid)))

    const refused = await scale(second.api, { to: 2 })
    assert.equal(refused.status, 409, 'the 10m cooldown from before the kill still holds')
    assert.equal(((await refused.json()) as { code: string }).code, 'E_COOLDOWN')

    second.child.kill('SIGTERM')
    const code = await new Promise((r) => second.child.once('exit', r))
    assert.equal(code, 0, 'a SIGTERM stops Tide cleanly')
    await waitFor('every instance to be gone after a clean stop', 15_000, () =>
      now.every((pid) => !alive(pid)),
    )
  })
})
