/**
 * Finds where a chunked body ends (RFC 9112 §7.1) while its bytes stream through untouched.
 * The router passes chunked bodies on as they are, so it only needs to know the end of each
 * message; the scanner is a byte state machine that keeps its place across reads and skips chunk
 * data in O(1). It is strict (hex sizes of at most 12 digits, CRLF everywhere, no control
 * characters in extensions or trailers) because a lenient proxy in front of a strict server is a
 * smuggling vector. With a sink it also collects the data (for HTTP/1.0 clients, which cannot
 * receive chunked).
 */

const HEX = new Int8Array(256).fill(-1)
for (let i = 0; i < 10; i++) HEX[48 + i] = i
for (let i = 0; i < 6; i++) {
  HEX[65 + i] = 10 + i
  HEX[97 + i] = 10 + i
}

const SIZE = 0
const SIZE_MORE = 1
const EXT = 2
const SIZE_LF = 3
const DATA = 4
const DATA_CR = 5
const DATA_LF = 6
const TRAILER = 7
const TRAILER_LINE = 8
const TRAILER_LF = 9
const END_LF = 10

/** `scan` result: the message continues past the bytes given. */
export const CHUNKED_MORE = -1
/** `scan` result: the framing is malformed. */
export const CHUNKED_BAD = -2

export class ChunkedScanner {
  private state = SIZE
  private left = 0
  private digits = 0

  reset(): void {
    this.state = SIZE
    this.left = 0
    this.digits = 0
  }

  /**
   * Scans b[start, end). Returns the offset just past the message's last byte when it ends there,
   * CHUNKED_MORE when it continues, CHUNKED_BAD on malformed framing. `sink` receives the data.
   */
  scan(b: Uint8Array, start: number, end: number, sink?: Uint8Array[]): number {
    let state = this.state
    let left = this.left
    let i = start
    while (i < end) {
      const c = b[i]!
      switch (state) {
        case SIZE: {
          const v = HEX[c]!
          if (v < 0) return CHUNKED_BAD
          left = v
          this.digits = 1
          state = SIZE_MORE
          i++
          break
        }
        case SIZE_MORE: {
          const v = HEX[c]!
          if (v >= 0) {
            if (++this.digits > 12) return CHUNKED_BAD
            left = left * 16 + v
          } else if (c === 13) state = SIZE_LF
          else if (c === 59 || c === 32 || c === 9) state = EXT
          else return CHUNKED_BAD
          i++
          break
        }
        case EXT:
          if (c === 13) state = SIZE_LF
          else if ((c < 32 && c !== 9) || c === 127) return CHUNKED_BAD
          i++
          break
        case SIZE_LF:
          if (c !== 10) return CHUNKED_BAD
          state = left === 0 ? TRAILER : DATA
          i++
          break
        case DATA: {
          const n = Math.min(left, end - i)
          if (sink !== undefined) sink.push(b.subarray(i, i + n))
          i += n
          left -= n
          if (left === 0) state = DATA_CR
          break
        }
        case DATA_CR:
          if (c !== 13) return CHUNKED_BAD
          state = DATA_LF
          i++
          break
        case DATA_LF:
          if (c !== 10) return CHUNKED_BAD
          state = SIZE
          i++
          break
        case TRAILER:
          state = c === 13 ? END_LF : TRAILER_LINE
          if (c !== 13 && ((c < 32 && c !== 9) || c === 127)) return CHUNKED_BAD
          i++
          break
        case TRAILER_LINE:
          if (c === 13) state = TRAILER_LF
          else if ((c < 32 && c !== 9) || c === 127) return CHUNKED_BAD
          i++
          break
        case TRAILER_LF:
          if (c !== 10) return CHUNKED_BAD
          state = TRAILER
          i++
          break
        case END_LF:
          if (c !== 10) return CHUNKED_BAD
          this.reset()
          return i + 1
      }
    }
    this.state = state
    this.left = left
    return CHUNKED_MORE
  }
}
