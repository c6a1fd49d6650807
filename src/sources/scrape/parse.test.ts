import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, test } from 'node:test'
import { TideError } from '../../core/errors.js'
import { type MetricFamily, parseExposition, parseNumber } from './parse.js'

const lines = (...text: string[]) => `${text.join('\n')}\n`

describe('parseExposition: valid input', () => {
  const cases: Array<{ name: string; text: string; want: MetricFamily[] }> = [
    {
      name: 'a gauge with HELP and TYPE',
      text: lines('# HELP node_load1 1m load average.', '# TYPE node_load1 gauge', 'node_load1 0.21'),
      want: [
        {
          name: 'node_load1',
          type: 'gauge',
          help: '1m load average.',
          samples: [{ name: 'node_load1', labels: {}, value: 0.21 }],
        },
      ],
    },
    {
      name: 'HELP unescapes \\\\ and \\n and keeps other backslashes as written',
      text: lines('# HELP x a\\\\b\\nc \\t \\', 'x 1'),
      want: [
        {
          name: 'x',
          type: 'untyped',
          help: 'a\\b\nc \\t \\',
          samples: [{ name: 'x', labels: {}, value: 1 }],
        },
      ],
    },
    {
      name: 'an empty HELP text',
      text: lines('# HELP x', 'x 1'),
      want: [{ name: 'x', type: 'untyped', help: '', samples: [{ name: 'x', labels: {}, value: 1 }] }],
    },
    {
      name: 'other comments, # EOF and blank lines are ignored',
      text: lines('# a comment', '#', '', '   ', '#HELPER not a help line', 'x 1', '# EOF'),
      want: [{ name: 'x', type: 'untyped', samples: [{ name: 'x', labels: {}, value: 1 }] }],
    },
    {
      name: 'label values unescape \\", \\\\ and \\n and may hold }, commas and #',
      text: lines('x{a="say \\"hi\\"",b="C:\\\\dir",c="two\\nlines",d="},# {"} 1'),
      want: [
        {
          name: 'x',
          type: 'untyped',
          samples: [
            { name: 'x', labels: { a: 'say "hi"', b: 'C:\\dir', c: 'two\nlines', d: '},# {' }, value: 1 },
          ],
        },
      ],
    },
    {
      name: 'a trailing comma, blanks around labels, an empty label set',
      text: lines('x{a="1",} 1', 'x { a = "2" ,\tb="3" , } 2', 'x{} 3'),
      want: [
        {
          name: 'x',
          type: 'untyped',
          samples: [
            { name: 'x', labels: { a: '1' }, value: 1 },
            { name: 'x', labels: { a: '2', b: '3' }, value: 2 },
            { name: 'x', labels: {}, value: 3 },
          ],
        },
      ],
    },
    {
      name: 'special values, exponents and signs',
      text: lines(
        'v{i="1"} NaN',
        'v{i="2"} +Inf',
        'v{i="3"} -Inf',
        'v{i="4"} 1e3',
        'v{i="5"} -2.5E-3',
        'v{i="6"} .5',
      ),
      want: [
        {
          name: 'v',
          type: 'untyped',
          samples: [
            { name: 'v', labels: { i: '1' }, value: Number.NaN },
            { name: 'v', labels: { i: '2' }, value: Number.POSITIVE_INFINITY },
            { name: 'v', labels: { i: '3' }, value: Number.NEGATIVE_INFINITY },
            { name: 'v', labels: { i: '4' }, value: 1000 },
            { name: 'v', labels: { i: '5' }, value: -0.0025 },
            { name: 'v', labels: { i: '6' }, value: 0.5 },
          ],
        },
      ],
    },
    {
      name: 'timestamps in milliseconds, negative ones too',
      text: lines('x 1 1395066363000', 'y{a="b"} 2 -1'),
      want: [
        {
          name: 'x',
          type: 'untyped',
          samples: [{ name: 'x', labels: {}, value: 1, timestamp: 1395066363000 }],
        },
        { name: 'y', type: 'untyped', samples: [{ name: 'y', labels: { a: 'b' }, value: 2, timestamp: -1 }] },
      ],
    },
    {
      name: 'a histogram gathers its _bucket, _sum and _count samples',
      text: lines(
        '# HELP rpc_seconds RPC latency.',
        '# TYPE rpc_seconds histogram',
        'rpc_seconds_bucket{le="0.1"} 2',
        'rpc_seconds_bucket{le="+Inf"} 3',
        'rpc_seconds_sum 0.35',
        'rpc_seconds_count 3',
      ),
      want: [
        {
          name: 'rpc_seconds',
          type: 'histogram',
          help: 'RPC latency.',
          samples: [
            { name: 'rpc_seconds_bucket', labels: { le: '0.1' }, value: 2 },
            { name: 'rpc_seconds_bucket', labels: { le: '+Inf' }, value: 3 },
            { name: 'rpc_seconds_sum', labels: {}, value: 0.35 },
            { name: 'rpc_seconds_count', labels: {}, value: 3 },
          ],
        },
      ],
    },
    {
      name: 'a summary gathers its quantiles, _sum and _count',
      text: lines(
        '# TYPE gc summary',
        'gc{quantile="0.5"} 0.01',
        'gc{quantile="0.99"} NaN',
        'gc_sum 2',
        'gc_count 40',
      ),
      want: [
        {
          name: 'gc',
          type: 'summary',
          samples: [
            { name: 'gc', labels: { quantile: '0.5' }, value: 0.01 },
            { name: 'gc', labels: { quantile: '0.99' }, value: Number.NaN },
            { name: 'gc_sum', labels: {}, value: 2 },
            { name: 'gc_count', labels: {}, value: 40 },
          ],
        },
      ],
    },
    {
      name: 'samples without TYPE are untyped, one family per name, _bucket not gathered',
      text: lines('# HELP a_total A.', 'a_total 5', 'a_bucket{le="1"} 1'),
      want: [
        {
          name: 'a_total',
          type: 'untyped',
          help: 'A.',
          samples: [{ name: 'a_total', labels: {}, value: 5 }],
        },
        { name: 'a_bucket', type: 'untyped', samples: [{ name: 'a_bucket', labels: { le: '1' }, value: 1 }] },
      ],
    },
    {
      name: 'CRLF line endings, no final newline, a byte-order mark and leading blanks',
      text: '\ufeff# TYPE x gauge\r\n\r\n  x 1\r\n\tx{a="b"} 2',
      want: [
        {
          name: 'x',
          type: 'gauge',
          samples: [
            { name: 'x', labels: {}, value: 1 },
            { name: 'x', labels: { a: 'b' }, value: 2 },
          ],
        },
      ],
    },
    {
      name: 'OpenMetrics: counters declared without _total, _created, type unknown, exemplars',
      text: lines(
        '# TYPE requests counter',
        'requests_total{code="200"} 10 # {trace_id="abc"} 1 1520879607789',
        'requests_created{code="200"} 1520430000',
        '# TYPE temp unknown',
        'temp 21',
        '# EOF',
      ),
      want: [
        {
          name: 'requests',
          type: 'counter',
          samples: [
            { name: 'requests_total', labels: { code: '200' }, value: 10 },
            { name: 'requests_created', labels: { code: '200' }, value: 1520430000 },
          ],
        },
        { name: 'temp', type: 'untyped', samples: [{ name: 'temp', labels: {}, value: 21 }] },
      ],
    },
    {
      name: 'a family named again later collects all its samples; HELP/TYPE-only families are left out',
      text: lines('# TYPE empty gauge', 'a 1', 'b 2', 'a{x="y"} 3', '# HELP b B.'),
      want: [
        {
          name: 'a',
          type: 'untyped',
          samples: [
            { name: 'a', labels: {}, value: 1 },
            { name: 'a', labels: { x: 'y' }, value: 3 },
          ],
        },
        { name: 'b', type: 'untyped', help: 'B.', samples: [{ name: 'b', labels: {}, value: 2 }] },
      ],
    },
    {
      name: 'type names are case-insensitive and metric names may hold colons',
      text: lines('# TYPE job:rate:5m GAUGE', 'job:rate:5m 4'),
      want: [
        { name: 'job:rate:5m', type: 'gauge', samples: [{ name: 'job:rate:5m', labels: {}, value: 4 }] },
      ],
    },
    {
      name: 'a value right after the label set',
      text: lines('x{a="b"}7'),
      want: [{ name: 'x', type: 'untyped', samples: [{ name: 'x', labels: { a: 'b' }, value: 7 }] }],
    },
    { name: 'empty input', text: '', want: [] },
  ]
  for (const c of cases) {
    test(c.name, () => assert.deepStrictEqual(parseExposition(c.text), c.want))
  }

  test('a label named __proto__ is an ordinary label', () => {
    const [family] = parseExposition('x{__proto__="p",a="b"} 1\n')
    const labels = family!.samples[0]!.labels
    assert.equal(Object.getPrototypeOf(labels), Object.prototype)
    assert.deepEqual(Object.entries(labels), [
      ['__proto__', 'p'],
      ['a', 'b'],
    ])
  })

  test('a realistic node_exporter exposition', () => {
    const text = readFileSync(new URL('./testdata/node_exporter.txt', import.meta.url), 'utf8')
    const families = parseExposition(text)
    const byName = new Map(families.map((f) => [f.name, f]))
    assert.equal(byName.get('node_load1')?.samples[0]?.value, 0.42)
    assert.equal(byName.get('node_network_transmit_bytes_total')?.type, 'counter')
    assert.deepEqual(
      byName.get('node_network_transmit_bytes_total')?.samples.map((s) => s.labels.device),
      ['eth0', 'eth1', 'lo'],
    )
    const histogram = byName.get('go_gc_duration_seconds')
    assert.equal(histogram?.type, 'summary')
    assert.equal(histogram?.samples.length, 7)
  })
})

describe('parseExposition: malformed input', () => {
  const cases: Array<{ name: string; text: string; line: number; message: RegExp }> = [
    { name: 'a sample without a value', text: 'x\n', line: 1, message: /expected a value/ },
    { name: 'a value that is not a number', text: 'ok 1\nx one\n', line: 2, message: /invalid value "one"/ },
    { name: 'hex is not a value', text: 'x 0x10\n', line: 1, message: /invalid value/ },
    { name: 'text after the timestamp', text: 'x 1 2 3\n', line: 1, message: /after the timestamp/ },
    { name: 'a fractional timestamp', text: 'x 1 1.5\n', line: 1, message: /invalid timestamp "1.5"/ },
    {
      name: 'a timestamp beyond 2^53',
      text: 'x 1 99999999999999999999\n',
      line: 1,
      message: /invalid timestamp/,
    },
    {
      name: 'an unterminated label value',
      text: 'x{a="b} 1\n',
      line: 1,
      message: /unterminated value of label a/,
    },
    { name: 'a backslash at the end of a line', text: 'x{a="b\\\n', line: 1, message: /unterminated value/ },
    {
      name: 'an unknown escape in a label value',
      text: 'x{a="\\t"} 1\n',
      line: 1,
      message: /invalid escape "\\t"/,
    },
    { name: 'labels without a comma', text: 'x{a="1" b="2"} 1\n', line: 1, message: /expected "," or "}"/ },
    { name: 'an unterminated label set', text: 'x{a="1"\n', line: 1, message: /unterminated label set/ },
    { name: 'a lone comma in a label set', text: 'x{,} 1\n', line: 1, message: /expected a label name/ },
    { name: 'a duplicate label', text: 'x{a="1",a="2"} 1\n', line: 1, message: /duplicate label a/ },
    { name: 'an unquoted label value', text: 'x{a=1} 1\n', line: 1, message: /quoted value for label a/ },
    { name: 'a label without =', text: 'x{a} 1\n', line: 1, message: /expected "=" after label a/ },
    { name: 'the reserved label __name__', text: 'x{__name__="y"} 1\n', line: 1, message: /reserved/ },
    { name: 'a name starting with a digit', text: '1x 1\n', line: 1, message: /expected a metric name/ },
    {
      name: 'a dash in a metric name',
      text: 'x-y 1\n',
      line: 1,
      message: /invalid character in metric name/,
    },
    {
      name: 'a second TYPE line',
      text: lines('# TYPE x gauge', '# TYPE x gauge'),
      line: 2,
      message: /second TYPE/,
    },
    {
      name: 'TYPE after samples',
      text: lines('x 1', '# TYPE x gauge'),
      line: 2,
      message: /after its samples/,
    },
    { name: 'a second HELP line', text: lines('# HELP x a', '# HELP x b'), line: 2, message: /second HELP/ },
    { name: 'an unknown type', text: '# TYPE x bogus\n', line: 1, message: /unknown type "bogus"/ },
    { name: 'TYPE without a type', text: '# TYPE x\n', line: 1, message: /without a type/ },
    { name: 'text after the type', text: '# TYPE x gauge now\n', line: 1, message: /after the type/ },
    { name: 'a bad name in HELP', text: '# HELP 9x text\n', line: 1, message: /invalid metric name in HELP/ },
    {
      name: 'a histogram bucket without le',
      text: lines('# TYPE h histogram', 'h_bucket 1'),
      line: 2,
      message: /without a "le" label/,
    },
    {
      name: 'a histogram bucket whose le is not a number',
      text: lines('# TYPE h histogram', 'h_bucket{le="big"} 1'),
      line: 2,
      message: /"le" label that is not a number/,
    },
    {
      name: 'a histogram sample without a suffix',
      text: lines('# TYPE h histogram', 'h 1'),
      line: 2,
      message: /without a _bucket, _sum or _count suffix/,
    },
    {
      name: 'a summary sample without quantile',
      text: lines('# TYPE s summary', 's{a="b"} 1'),
      line: 2,
      message: /without a "quantile" label/,
    },
    {
      name: 'CRLF does not shift line numbers',
      text: 'a 1\r\nb 2\r\nc\r\n',
      line: 3,
      message: /expected a value/,
    },
  ]
  for (const c of cases) {
    test(c.name, () => {
      assert.throws(
        () => parseExposition(c.text),
        (err: unknown) => {
          assert.ok(err instanceof TideError)
          assert.equal(err.code, 'E_SCRAPE_PARSE')
          assert.equal(err.status, 502)
          assert.match(err.message, new RegExp(`^line ${c.line}: `))
          assert.match(err.message, c.message)
          assert.equal((err.details as { line: number }).line, c.line)
          return true
        },
      )
    })
  }

  test('the message quotes the offending line, cut short when long', () => {
    const long = `x{a="${'v'.repeat(500)}`
    assert.throws(() => parseExposition(long), /: "x\{a=\\"v+\.\.\."$/)
  })
})

describe('parseNumber', () => {
  const cases: Array<[string, number | undefined]> = [
    ['0', 0],
    ['-0', -0],
    ['+3', 3],
    ['5.', 5],
    ['.5', 0.5],
    ['1E+2', 100],
    ['1e-2', 0.01],
    ['inf', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
    ['nan', Number.NaN],
    ['', undefined],
    ['.', undefined],
    ['1e', undefined],
    ['e5', undefined],
    ['1..2', undefined],
    ['--1', undefined],
    ['+NaN', undefined],
    [' 1', undefined],
    ['Infinit', undefined],
    ['0x1p3', undefined],
    ['0x10', undefined],
    ['0b1', undefined],
    ['0o7', undefined],
    ['1 ', undefined],
    ['1_000', undefined],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['+inf', Number.POSITIVE_INFINITY],
    ['1.e5', 100000],
    ['-.5', -0.5],
  ]
  for (const [text, want] of cases) {
    test(`${JSON.stringify(text)} → ${want}`, () => assert.equal(parseNumber(text), want))
  }
})
