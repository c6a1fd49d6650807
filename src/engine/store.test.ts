import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import Database from 'better-sqlite3'
import fc from 'fast-check'
import { PRUNE_METRICS, SERIES_QUERY, Store } from './store.js'

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

  test('series: every series of the group in one answer, oldest first, within since/until', () => {
    const store = Store.open(':memory:')
    for (let at = 1000; at <= 10_000; at += 1000) {
      store.addMetrics('web', at, { desired: at / 1000, ready: at / 1000 - 1, concurrency: at / 100 })
    }
    store.addMetrics('web', 5500, { latency_p99: 42 }) // a metric that is there only once
    store.addMetrics('api', 5000, { desired: 9 })
    const got = store.series('web', { since: 3000, until: 6000, points: 300 })
    assert.deepEqual(Object.keys(got).sort(), ['concurrency', 'desired', 'latency_p99', 'ready'])
    assert.deepEqual(got.desired, [
      [3000, 3],
      [4000, 4],
      [5000, 5],
      [6000, 6],
    ])
    assert.deepEqual(got.ready, [
      [3000, 2],
      [4000, 3],
      [5000, 4],
      [6000, 5],
    ])
    assert.deepEqual(got.latency_p99, [[5500, 42]])
    assert.deepEqual(store.series('web', { since: 10_001, until: 20_000, points: 10 }), {})
    assert.deepEqual(store.series('nope', { since: 0, until: 20_000, points: 10 }), {})
    assert.deepEqual(store.series('api', { since: 0, until: 20_000, points: 10 }), { desired: [[5000, 9]] })
  })

  test('series: a long series is thinned evenly to `points`, keeping the first and the last', () => {
    const store = Store.open(':memory:')
    for (let i = 0; i < 1000; i++) store.addMetrics('web', i * 500, { desired: i, ready: i % 7 })
    const got = store.series('web', { since: 0, until: Number.MAX_SAFE_INTEGER, points: 300 })
    for (const name of ['desired', 'ready']) {
      const series = got[name]!
      assert.equal(series.length, 300, name)
      assert.deepEqual(series[0]![0], 0, `${name} keeps the first`)
      assert.deepEqual(series.at(-1)![0], 999 * 500, `${name} keeps the last`)
      const steps = series.slice(1).map(([at], k) => (at - series[k]![0]) / 500)
      assert.ok(
        steps.every((s) => s === 3 || s === 4),
        `${name}: 1000 → 300 takes every 3rd or 4th value, got steps ${[...new Set(steps)].join(', ')}`,
      )
    }
    assert.deepEqual(
      got.desired!.map(([at, v]) => at / 500 - v),
      Array(300).fill(0),
      'values stay with their time',
    )
    assert.deepEqual(store.series('web', { since: 0, until: 1e9, points: 1 }).desired, [[999 * 500, 999]])
    assert.deepEqual(store.series('web', { since: 0, until: 1e9, points: 2 }).desired, [
      [0, 0],
      [999 * 500, 999],
    ])
  })

  test('series: thinning is exactly `points` evenly spaced rows with both ends, for any sizes', () => {
    const store = Store.open(':memory:')
    for (let i = 0; i < 400; i++) store.addMetrics('g', i, { m: i })
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 399 }),
        fc.integer({ min: 0, max: 399 }),
        fc.integer({ min: 1, max: 450 }),
        (a, b, points) => {
          const [since, until] = a <= b ? [a, b] : [b, a]
          const n = until - since + 1
          const got = (store.series('g', { since, until, points }).m ?? []).map(([at]) => at - since)
          // The reference: ceil(k(n-1)/(p-1)) in integers, or everything when it fits.
          const want =
            n <= points
              ? Array.from({ length: n }, (_, i) => i)
              : points === 1
                ? [n - 1]
                : Array.from({ length: points }, (_, k) =>
                    Math.floor((k * (n - 1) + points - 2) / (points - 1)),
                  )
          assert.deepEqual(got, want)
        },
      ),
      { numRuns: 300 },
    )
  })

  test('pruning metric history uses the time index instead of reading the whole table', () => {
    const path = join(dir, 'prune-plan.db')
    Store.open(path).close()
    const db = new Database(path, { readonly: true })
    const plan = db.prepare(`EXPLAIN QUERY PLAN ${PRUNE_METRICS}`).all(0) as Array<{ detail: string }>
    db.close()
    assert.ok(
      plan.some((p) => /USING (COVERING )?INDEX metric_history_time \(at<\?\)/.test(p.detail)),
      JSON.stringify(plan),
    )
  })

  test('series: the range query uses the (group, time) index instead of reading the whole group', () => {
    const path = join(dir, 'plan.db')
    Store.open(path).close()
    const db = new Database(path, { readonly: true })
    const plan = db
      .prepare(`EXPLAIN QUERY PLAN ${SERIES_QUERY}`)
      .all({ group: 'web', since: 0, until: 1, points: 300 }) as Array<{ detail: string }>
    db.close()
    assert.ok(
      plan.some((p) =>
        /USING INDEX metric_history_group_time \(group_name=\? AND at>\? AND at<\?\)/.test(p.detail),
      ),
      JSON.stringify(plan),
    )
  })

  test('a store file written by the previous schema opens, keeps its rows and answers series', () => {
    const path = join(dir, 'schema-2.db')
    // The schema as Tide wrote it before the series index (user_version 2), with some history.
    const old = new Database(path)
    old.exec(`CREATE TABLE decisions (
       id INTEGER PRIMARY KEY AUTOINCREMENT, group_name TEXT NOT NULL, at INTEGER NOT NULL,
       trigger TEXT NOT NULL, outcome TEXT NOT NULL, kind TEXT NOT NULL, from_n INTEGER NOT NULL,
       to_n INTEGER NOT NULL, reason TEXT NOT NULL, steps TEXT NOT NULL, recommendations TEXT NOT NULL,
       forced INTEGER NOT NULL DEFAULT 0, error TEXT, duration_ms INTEGER);
     CREATE INDEX decisions_group_at ON decisions (group_name, id DESC);
     CREATE TABLE group_state (group_name TEXT PRIMARY KEY, state TEXT NOT NULL, updated_at INTEGER NOT NULL);
     CREATE TABLE intents (
       id INTEGER PRIMARY KEY AUTOINCREMENT, group_name TEXT NOT NULL, from_n INTEGER NOT NULL,
       to_n INTEGER NOT NULL, reason TEXT NOT NULL, started_at INTEGER NOT NULL,
       status TEXT NOT NULL DEFAULT 'open', finished_at INTEGER, detail TEXT);
     CREATE INDEX intents_open ON intents (status, group_name);
     CREATE TABLE metric_history (group_name TEXT NOT NULL, metric TEXT NOT NULL, at INTEGER NOT NULL, value REAL NOT NULL);
     CREATE INDEX metric_history_group_at ON metric_history (group_name, metric, at);
     CREATE TABLE receiver_cooldowns (key TEXT PRIMARY KEY, until INTEGER NOT NULL);
     INSERT INTO metric_history VALUES ('web', 'desired', 100, 1), ('web', 'desired', 200, 2), ('web', 'ready', 100, 1);`)
    old.pragma('user_version = 2')
    old.close()

    const store = Store.open(path)
    assert.deepEqual(store.series('web', { since: 0, until: 1000, points: 300 }), {
      desired: [
        [100, 1],
        [200, 2],
      ],
      ready: [[100, 1]],
    })
    store.addMetrics('web', 300, { desired: 3 })
    assert.equal(store.series('web', { since: 250, until: 1000, points: 300 }).desired!.length, 1)
    store.close()
    const check = new Database(path, { readonly: true })
    const indexes = check
      .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'metric_history'")
      .pluck()
      .all()
    assert.deepEqual(indexes.sort(), [
      'metric_history_group_at',
      'metric_history_group_time',
      'metric_history_time',
    ])
    assert.equal(check.pragma('user_version', { simple: true }), 4)
    check.close()
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
