import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { Store } from './store.js'

const dir = mkdtempSync(join(tmpdir(), 'tide-store-'))
after(() => rmSync(dir, { recursive: true, force: true }))

const decision = (group: string, at: number, from: number, to: number) => ({
  group,
  at,
  trigger: 'auto' as const,
  outcome: 'applied' as const,
  kind: 'scale' as const,
  from,
  to,
  reason: `scale ${from} → ${to}`,
  steps: ['step one'],
  recommendations: [{ policy: 'p', kind: 'scale' as const, to, reason: 'because' }],
})

describe('store', () => {
  test('decisions come back newest first, per group, with every field', () => {
    const store = Store.open(':memory:')
    store.addDecision(decision('web', 1, 1, 2))
    const second = store.addDecision({ ...decision('web', 2, 2, 3), forced: true, error: 'boom' })
    store.addDecision(decision('api', 3, 1, 2))
    const got = store.decisions('web')
    assert.deepEqual(
      got.map((d) => d.id),
      [second.id, second.id - 1],
    )
    assert.equal(got[0]!.forced, true)
    assert.equal(got[0]!.error, 'boom')
    assert.deepEqual(got[0]!.recommendations, [{ policy: 'p', kind: 'scale', to: 3, reason: 'because' }])
    store.finishDecision(second.id, 'failed', { error: 'target refused', durationMs: 12 })
    assert.equal(store.decisions('web', 1)[0]!.outcome, 'failed')
    assert.equal(store.decisions('web', 1)[0]!.durationMs, 12)
  })

  test('pruning keeps the newest decisions of one group only', () => {
    const store = Store.open(':memory:')
    for (let i = 0; i < 10; i++) store.addDecision(decision('web', i, i, i + 1))
    store.addDecision(decision('api', 0, 0, 1))
    store.pruneDecisions('web', 3)
    assert.deepEqual(
      store.decisions('web', 100).map((d) => d.at),
      [9, 8, 7],
    )
    assert.equal(store.decisions('api').length, 1)
  })

  test('governor state and intents survive closing and reopening the file', () => {
    const path = join(dir, 'reopen.db')
    const store = Store.open(path)
    store.saveState('web', { history: [{ at: 5, to: 3 }], lastChange: { at: 5, direction: 'up' } }, 5)
    const open = store.openIntent('web', 1, 3, 'scale up', 5)
    const done = store.openIntent('web', 3, 2, 'scale down', 6)
    store.closeIntent(done.id, 'done', 7)
    store.close()

    const again = Store.open(path)
    assert.deepEqual(again.loadState('web'), {
      history: [{ at: 5, to: 3 }],
      lastChange: { at: 5, direction: 'up' },
    })
    assert.deepEqual(
      again.openIntents().map((i) => i.id),
      [open.id],
    )
    assert.equal(again.loadState('other'), undefined)
    again.close()
  })

  test('metric history is kept per group and metric and pruned by age', () => {
    const store = Store.open(':memory:')
    store.addMetrics('web', 10, { concurrency: 4, cpu: Number.NaN })
    store.addMetrics('web', 20, { concurrency: 6 })
    assert.deepEqual(store.metricHistory('web', 'concurrency', 0), [
      { at: 10, value: 4 },
      { at: 20, value: 6 },
    ])
    assert.deepEqual(store.metricHistory('web', 'cpu', 0), [], 'NaN is not stored')
    store.pruneMetrics(15)
    assert.deepEqual(store.metricHistory('web', 'concurrency', 0), [{ at: 20, value: 6 }])
  })

  test('a file that is not a database gets a clear error naming the path', () => {
    const path = join(dir, 'garbage.db')
    writeFileSync(path, 'this is not sqlite '.repeat(500))
    assert.throws(
      () => Store.open(path),
      (err: Error & { code?: string }) => err.code === 'E_STORE' && err.message.includes(path),
    )
  })

  test('every write committed before kill -9 is there afterwards, and the file is intact', async () => {
    const path = join(dir, 'killed.db')
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/store-writer.ts', path], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let lastCommitted = 0
    await new Promise<void>((resolve, reject) => {
      let buffer = ''
      child.stdout.on('data', (chunk: Buffer) => {
        buffer += chunk.toString()
        const lines = buffer.split('\n')
        buffer = lines.pop()!
        for (const line of lines) lastCommitted = Number(line)
        // Kill in the middle of the write loop, without warning.
        if (lastCommitted >= 300) {
          child.kill('SIGKILL')
          resolve()
        }
      })
      child.on('exit', () => resolve())
      child.on('error', reject)
    })
    await new Promise((r) => child.on('close', r))
    assert.ok(lastCommitted >= 300, `the writer committed ${lastCommitted} rows before the kill`)

    const store = Store.open(path) // runs quick_check; throws if the file were damaged
    const newest = store.decisions('web', 1)[0]!
    assert.ok(
      newest.id >= lastCommitted,
      `row ${lastCommitted} was reported committed; newest is ${newest.id}`,
    )
    const state = store.loadState('web')
    assert.equal(state?.lastChange?.direction, 'up')
    assert.ok(state!.lastChange!.at >= 1_000_000 + lastCommitted)
    store.close()
  })
})
