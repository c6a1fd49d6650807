import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { CHUNKED_BAD, CHUNKED_MORE, ChunkedScanner } from './chunked.js'

function encode(pieces: string[], trailer = ''): string {
  return `${pieces.map((p) => `${p.length.toString(16)}\r\n${p}\r\n`).join('')}0\r\n${trailer}\r\n`
}

describe('ChunkedScanner', () => {
  test('finds the end of a body, with extensions and trailers', () => {
    const body = Buffer.from('5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\nNEXT')
    const scanner = new ChunkedScanner()
    assert.equal(scanner.scan(body, 0, body.length), body.length - 4)
  })

  test('fuzz: however the bytes are split, the end is found in the same place and data is intact', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ minLength: 1, maxLength: 40 }), { maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        fc.boolean(),
        (pieces, cuts, trailer) => {
          const wire = Buffer.from(encode(pieces, trailer ? 'X-Checksum: 1\r\n' : '') + 'GET', 'latin1')
          const end = wire.length - 3
          const points = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b)
          const scanner = new ChunkedScanner()
          const data: Uint8Array[] = []
          let from = 0
          let found = -1
          for (const to of [...points, wire.length]) {
            if (to <= from) continue
            const r = scanner.scan(wire, from, to, data)
            assert.notEqual(r, CHUNKED_BAD)
            if (r !== CHUNKED_MORE) {
              found = r
              break
            }
            from = to
          }
          assert.equal(found, end)
          assert.equal(
            Buffer.concat(data).toString('latin1'),
            Buffer.from(pieces.join(''), 'latin1').toString('latin1'),
          )
        },
      ),
      { numRuns: 500 },
    )
  })

  for (const bad of [
    'x\r\n',
    '5\nhello\r\n',
    '5\r\nhelloXX',
    '1234567890abc\r\n',
    '0\r\nX: \x01\r\n\r\n',
    '2\r\nab\r\n0\r\r\n',
  ]) {
    test(`refuses ${JSON.stringify(bad)}`, () => {
      const b = Buffer.from(bad, 'latin1')
      assert.equal(new ChunkedScanner().scan(b, 0, b.length), CHUNKED_BAD)
    })
  }
})
