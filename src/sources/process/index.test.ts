import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Instance, Source } from '../../core/types.js'
import { createProcessSource, parseRss, parseStat, processSourceSchema } from './index.js'

const ready = (id: string, pid?: number): Instance => ({
  id,
  state: 'ready',
  createdAt: 0,
  ...(pid === undefined ? {} : { pid }),
})

const collect = (s: Source, instances: Instance[], now: number) =>
  s.collect({ group: 'web', now, instances, signal: new AbortController().signal })

/** A fake /proc: `stat` lines in the kernel's layout and `status` with VmRSS. */
class FakeProc {
  readonly root = mkdtempSync(join(tmpdir(), 'tide-proc-'))
  constructor() {
    after(() => rmSync(this.root, { recursive: true, force: true }))
  }
  set(
    pid: number,
    p: { ppid?: number; utime: number; stime?: number; start?: number; state?: string; rssKb?: number },
  ) {
    const dir = join(this.root, String(pid))
    mkdirSync(dir, { recursive: true })
    // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime
    // priority nice threads itrealvalue starttime vsize rss ...
    const fields = [
      p.state ?? 'S',
      p.ppid ?? 1,
      pid,
      pid,
      0,
      -1,
      4194560,
      100,
      0,
      0,
      0,
      p.utime,
      p.stime ?? 0,
      5,
      5,
    ]
    const rest = [20, 0, 1, 0, p.start ?? 1000, 1234567, 321, 18446744073709551615n, 1, 1]
    writeFileSync(join(dir, 'stat'), `${pid} (node (worker) x) ${[...fields, ...rest].join(' ')}\n`)
    const rss = p.rssKb === undefined ? '' : `VmRSS:\t  ${p.rssKb} kB\n`
    writeFileSync(join(dir, 'status'), `Name:\tnode\nState:\tS (sleeping)\nPid:\t${pid}\n${rss}Threads:\t7\n`)
  }
  remove(pid: number) {
    rmSync(join(this.root, String(pid)), { recursive: true, force: true })
  }
}

describe('process source: parsing /proc', () => {
  test('stat fields are counted after the last parenthesis of the command name', () => {
    const text = '4242 (a) b (c)) R 17 4242 4242 0 -1 4194304 1 0 0 0 250 50 0 0 20 0 1 0 98765 1 2 3\n'
    assert.deepEqual(parseStat(text), { pid: 4242, state: 'R', ppid: 17, ticks: 300, start: 98765 })
  })

  test('garbage is not a stat line', () => {
    assert.equal(parseStat(''), undefined)
    assert.equal(parseStat('12 (x) S 1'), undefined)
  })

  test('VmRSS in kB becomes bytes; a zombie has none', () => {
    assert.equal(parseRss('Name:\tnode\nVmRSS:\t   51200 kB\nThreads: 1\n'), 51200 * 1024)
    assert.equal(parseRss('Name:\tnode\nState:\tZ (zombie)\n'), undefined)
  })

  test('config: children defaults to true; unknown keys are rejected', () => {
    assert.deepEqual(processSourceSchema.parse({ kind: 'process' }), { kind: 'process', children: true })
    assert.equal(processSourceSchema.safeParse({ kind: 'process', interval: '1s' }).success, false)
  })
})

describe('process source: readings (fake /proc, 100 ticks per second)', () => {
  test('CPU is missing on the first reading, then cores used since the previous one; memory in MB', async () => {
    const proc = new FakeProc()
    proc.set(100, { utime: 500, stime: 100, rssKb: 51_200 })
    const s = createProcessSource(processSourceSchema.parse({ kind: 'process' }), {
      procRoot: proc.root,
      clockTicks: 100,
    })
    const web1 = ready('web-1', 100)

    let metrics = await collect(s, [web1], 10_000)
    assert.deepEqual(metrics.cpu, {
      at: 10_000,
      perInstance: {},
      missing: ['web-1'],
      errors: ['web-1: first reading of process 100; CPU use needs two'],
    })
    assert.deepEqual(metrics.memory, { at: 10_000, perInstance: { 'web-1': 52.4288 }, missing: [] })

    // Two seconds later it has used 300 more ticks: 3 s of CPU in 2 s is 1.5 cores.
    proc.set(100, { utime: 700, stime: 200, rssKb: 51_200 })
    metrics = await collect(s, [web1], 12_000)
    assert.deepEqual(metrics.cpu?.perInstance, { 'web-1': 1.5 })
    assert.equal(metrics.cpu?.errors, undefined)

    // A child appears (npm start → node): its ticks count, all of them since it is new; its memory adds up.
    proc.set(101, { ppid: 100, utime: 40, rssKb: 10_000 })
    proc.set(102, { ppid: 101, utime: 60, rssKb: 20_000 })
    proc.set(103, { ppid: 101, utime: 999, state: 'Z' }) // an exited grandchild: not counted
    proc.set(200, { ppid: 1, utime: 999, rssKb: 99_999 }) // someone else's process
    metrics = await collect(s, [web1], 13_000)
    assert.deepEqual(metrics.cpu?.perInstance, { 'web-1': 1 })
    assert.deepEqual(metrics.memory?.perInstance, { 'web-1': ((51_200 + 10_000 + 20_000) * 1024) / 1e6 })
  })

  test('children: false reads the instance process alone', async () => {
    const proc = new FakeProc()
    proc.set(100, { utime: 0, rssKb: 1000 })
    proc.set(101, { ppid: 100, utime: 0, rssKb: 1000 })
    const s = createProcessSource(processSourceSchema.parse({ kind: 'process', children: false }), {
      procRoot: proc.root,
      clockTicks: 100,
    })
    await collect(s, [ready('a', 100)], 0)
    proc.set(100, { utime: 50, rssKb: 1000 })
    proc.set(101, { ppid: 100, utime: 100, rssKb: 1000 })
    const metrics = await collect(s, [ready('a', 100)], 1000)
    assert.deepEqual(metrics.cpu?.perInstance, { a: 0.5 })
    assert.deepEqual(metrics.memory?.perInstance, { a: 1.024 })
  })

  test('a vanished pid, a zombie, a reused pid, no pid; starting instances are skipped', async () => {
    const proc = new FakeProc()
    proc.set(100, { utime: 10, rssKb: 1000 })
    proc.set(300, { utime: 10, rssKb: 1000, start: 5000 })
    proc.set(400, { utime: 10, state: 'Z' })
    const s = createProcessSource(processSourceSchema.parse({ kind: 'process' }), {
      procRoot: proc.root,
      clockTicks: 100,
    })
    const instances = [
      ready('gone', 100),
      ready('reused', 300),
      ready('zombie', 400),
      ready('remote'),
      { ...ready('booting', 300), state: 'starting' as const },
    ]
    await collect(s, instances, 0)
    proc.remove(100)
    proc.set(300, { utime: 20, rssKb: 1000, start: 7000 }) // pid 300 exited and another process took the number
    const metrics = await collect(s, instances, 1000)
    assert.deepEqual(metrics.cpu?.missing, ['gone', 'reused', 'zombie', 'remote'])
    assert.deepEqual(metrics.cpu?.errors, [
      'gone: process 100 is gone',
      'reused: first reading of process 300; CPU use needs two',
      'zombie: process 400 is gone',
      'remote: no process id (not a local process)',
    ])
    assert.deepEqual(metrics.memory?.perInstance, { reused: 1.024 })
    assert.deepEqual(metrics.memory?.missing, ['gone', 'zombie', 'remote'])
  })

  test('no /proc: every instance missing with the reason, no throw', async () => {
    const warnings: object[] = []
    const s = createProcessSource(processSourceSchema.parse({ kind: 'process' }), {
      procRoot: join(tmpdir(), 'tide-no-such-proc'),
      clockTicks: 100,
      logger: { warn: (o) => warnings.push(o) },
    })
    const metrics = await collect(s, [ready('a', 1)], 0)
    assert.deepEqual(metrics.cpu?.missing, ['a'])
    assert.match(
      metrics.cpu?.errors?.[0] ?? '',
      /^a: cannot read .*tide-no-such-proc \(the process source needs Linux\)/,
    )
    assert.equal(warnings.length, 1)
  })
})

describe('process source: a real process', { skip: process.platform !== 'linux' }, () => {
  test('a child burning CPU shows CPU use and memory; once killed it is missing', async () => {
    const child = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' })
    const exited = new Promise((resolve) => child.once('exit', resolve))
    after(() => {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL')
    })
    const s = createProcessSource(processSourceSchema.parse({ kind: 'process' }), {})
    const instance = ready('burn', child.pid)

    const first = await collect(s, [instance], Date.now())
    assert.deepEqual(first.cpu?.missing, ['burn'])
    assert.ok((first.memory?.perInstance.burn ?? 0) > 1, 'a node process has more than 1 MB resident')

    // Read until the kernel has charged it some ticks (bounded, so a starved machine fails rather than hangs).
    let cores: number | undefined
    for (let attempt = 0; attempt < 100 && !cores; attempt++) {
      await sleep(100)
      cores = (await collect(s, [instance], Date.now())).cpu?.perInstance.burn
    }
    assert.ok(cores !== undefined && cores > 0 && Number.isFinite(cores), `cpu ${cores}`)

    process.kill(child.pid!, 'SIGKILL')
    await exited
    const gone = await collect(s, [instance], Date.now())
    assert.deepEqual(gone.cpu?.errors, [`burn: process ${child.pid} is gone`])
    assert.deepEqual(gone.memory?.missing, ['burn'])
  })
})
