import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { BadRequestError } from '../core/errors.js'
import { baseline, peakNeed, run } from './index.js'
import { type Controller, type GroupModel, simulate } from './model.js'
import { renderPlot } from './plot.js'
import { meanRate, parseTrace, sliceTrace, type Trace } from './trace.js'

function traceOf(rates: number[], step = 60): Trace {
  return parseTrace(`t,rps\n${rates.map((r, i) => `${i * step},${r}`).join('\n')}\n`, 'test.csv')
}

/** A fixed size, never changed. */
function fixed(n: number, interval = 60_000): Controller {
  return { name: `fixed-${n}`, interval, evaluate: () => n }
}

/** Sizes to the demand it sees, at every row start (with no lag it sees the row it is in). */
function oracle(capacity: number): Controller {
  return {
    name: 'oracle',
    interval: 60_000,
    // No float-noise allowance: 199.99999999999955 rps at 49.9999999875 each needs 5, not 4.
    evaluate: (o) => Math.max(1, Math.ceil(o.rate(0) / capacity)),
  }
}

const model = (m: Partial<GroupModel> = {}): GroupModel => ({
  capacity: 10,
  boot: 60_000,
  lag: 0,
  min: 0,
  max: 100,
  ...m,
})

const rates = fc.array(fc.double({ min: 0, max: 200, noNaN: true }), { minLength: 2, maxLength: 60 })

describe('simulate: the model', () => {
  test('conservation: a fixed count is under capacity exactly the minutes demand exceeded it', () => {
    fc.assert(
      fc.property(
        rates,
        fc.integer({ min: 0, max: 20 }),
        fc.double({ min: 0.5, max: 50, noNaN: true }),
        (r, n, capacity) => {
          const trace = traceOf(r)
          const { result } = simulate(trace, model({ capacity, initial: n }), fixed(n))
          const over = r.filter((d) => d > n * capacity)
          assert.ok(Math.abs(result.underCapacityMinutes - over.length) < 1e-9)
          const requests = over.reduce((sum, d) => sum + (d - n * capacity) * 60, 0)
          assert.ok(Math.abs(result.overCapacityRequests - requests) < 1e-6 * Math.max(1, requests))
          assert.ok(Math.abs(result.instanceHours - (n * r.length) / 60) < 1e-9)
          assert.equal(result.actions, 0)
        },
      ),
    )
  })

  test('a zero-boot oracle that sizes to demand is never under capacity', () => {
    fc.assert(
      fc.property(rates, fc.double({ min: 0.5, max: 50, noNaN: true }), (r, capacity) => {
        // max above any need here (200 rps at 0.5 each is 400): the bound must not be what misses.
        const { result } = simulate(traceOf(r), model({ capacity, boot: 0, max: 1000 }), oracle(capacity))
        assert.equal(result.underCapacityMinutes, 0)
        assert.equal(result.overCapacityRequests, 0)
      }),
    )
  })

  test('the same oracle with a boot time misses every rise, for exactly the boot time', () => {
    // 1 → 3 → 3 → 1 instances: the rise at minute 1 is short of 2 instances for 30 s.
    const trace = traceOf([10, 30, 30, 10])
    const { result } = simulate(trace, model({ boot: 30_000 }), oracle(10))
    assert.equal(result.underCapacityMinutes, 0.5)
    assert.ok(Math.abs(result.overCapacityRequests - 20 * 30) < 1e-9)
    // Billed from the request: 1 for 4 min, +2 from minute 1 to minute 3.
    assert.ok(Math.abs(result.instanceHours - (4 + 2 * 2) / 60) < 1e-9)
    assert.equal(result.actions, 2)
  })

  test('metrics arrive late: with a 60 s lag the oracle sees the previous row', () => {
    const trace = traceOf([10, 30, 30, 30])
    const seen: number[] = []
    const spy: Controller = {
      name: 'spy',
      interval: 60_000,
      evaluate: (o) => {
        seen.push(o.rate(0))
        return 1
      },
    }
    simulate(trace, model({ lag: 60_000 }), spy)
    assert.deepEqual(seen, [10, 10, 30, 30])
  })

  test('scale-down removes starting instances before ready ones', () => {
    const sizes = [1, 3, 1]
    const c: Controller = { name: 'c', interval: 30_000, evaluate: () => sizes.shift() ?? 1 }
    const { result } = simulate(traceOf([30, 30]), model({ boot: 60_000, initial: 1 }), c)
    // The two added at 30 s are removed at 60 s, before serving: 30 s × 2 billed, no capacity gained.
    assert.ok(Math.abs(result.instanceHours - (2 * 60 + 2 * 30) / 3600) < 1e-9)
    assert.equal(result.underCapacityMinutes, 2)
  })

  test('deterministic: the same run twice gives the same figures', () => {
    const trace = traceOf([5, 50, 120, 80, 10, 200, 30, 30, 0, 90])
    for (const name of ['seed-threshold', 'hpa', 'kpa', 'tide']) {
      const m = model({ capacity: 10, min: 1, max: 40 })
      const a = simulate(trace, m, baseline(name, m)).result
      const b = simulate(trace, m, baseline(name, m)).result
      assert.deepEqual(a, b, name)
    }
  })

  test('every built-in stays within the bounds and bills at least min', () => {
    fc.assert(
      fc.property(rates, fc.integer({ min: 1, max: 3 }), (r, min) => {
        const trace = traceOf(r)
        const m = model({ capacity: 10, min, max: min + 20 })
        for (const name of ['seed-threshold', 'hpa', 'kpa', 'tide']) {
          const { result, timeline } = simulate(trace, m, baseline(name, m))
          for (const d of timeline.desired) assert.ok(d >= min && d <= m.max, `${name}: ${d}`)
          assert.ok(result.instanceHours >= (min * r.length) / 60 - 1e-9, name)
          assert.ok(result.meanUtilization >= 0 && result.meanUtilization <= 1 + 1e-9, name)
        }
      }),
      { numRuns: 30 },
    )
  })

  test('bad model values are refused with the flag and the value', () => {
    const trace = traceOf([1, 2])
    assert.throws(() => simulate(trace, model({ capacity: 0 }), fixed(1)), /--capacity must be .* not 0/)
    assert.throws(() => simulate(trace, model({ min: 5, max: 2 }), fixed(1)), /--max must be/)
    assert.throws(
      () => simulate(trace, model(), { name: 'bad', interval: 60_000, evaluate: () => 1.5 }),
      (err: unknown) => err instanceof BadRequestError && /policy bad wanted 1.5/.test(err.message),
    )
  })
})

describe('simulate: traces', () => {
  test('reads t,rps and a Prometheus export with epoch seconds, made relative', () => {
    const a = parseTrace('t,rps\n0,1\n60,2\n120,3\n')
    const b = parseTrace('timestamp,value\n1700000000,1\n1700000060,2\n1700000120,3\n')
    assert.deepEqual([...a.at], [...b.at])
    assert.equal(a.end, 180_000)
    assert.equal(meanRate(a, 0, 180_000), 2)
    assert.equal(meanRate(a, 30_000, 90_000), 1.5)
  })

  test('bad rows name the line and the value', () => {
    assert.throws(() => parseTrace('t,rps\n0,1\n60,-2\n', 'x.csv'), /x\.csv line 3: the rate .* not "-2"/)
    assert.throws(() => parseTrace('t,rps\n0,1\n0,2\n', 'x.csv'), /x\.csv line 3: times must increase/)
    assert.throws(
      () => parseTrace('t,rps\n0,1\nabc,2\n', 'x.csv'),
      /x\.csv line 3: the time must be .* "abc"/,
    )
    assert.throws(() => parseTrace('t,rps\n0,1\n', 'x.csv'), /at least two rows/)
  })

  test('--from/--to cut a window that starts at 0', () => {
    const t = traceOf([1, 2, 3, 4, 5])
    const s = sliceTrace(t, '2m', '4m')
    assert.deepEqual([...s.rps], [3, 4])
    assert.equal(s.end, 120_000)
    assert.throws(() => sliceTrace(t, '10m'), /--from 10m is at or after the end/)
    assert.throws(() => sliceTrace(t, 'soon'), /--from must be a duration/)
  })

  test('peak need and the plot', () => {
    const trace = traceOf([10, 95, 40])
    assert.equal(peakNeed(trace, 10), 10)
    const m = model({ capacity: 10, min: 1, max: 20 })
    const runs = run(trace, m, [() => baseline('hpa', m), () => baseline('tide', m)])
    const svg = renderPlot(runs, { title: 'a <test>', capacity: 10 })
    assert.match(svg, /^<svg /)
    assert.match(svg, /a &lt;test&gt;/)
    assert.equal(svg.match(/<polyline /g)?.length, 4, 'capacity and desired lines for each of two panels')
    assert.match(svg, />hpa</)
    assert.match(svg, />tide</)
  })
})
