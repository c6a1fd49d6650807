/**
 * The router's byte-level helpers and limits: one shared read buffer, copies out of it, finding
 * the end of a head, adopting accepted sockets so they read into the shared buffer, and a coarse
 * clock for timeouts. Shared by the client and upstream sides of the data path (proxy.ts).
 */

import { Socket, type SocketConstructorOpts } from 'node:net'
import { performance } from 'node:perf_hooks'

/** Largest request or response head (Node's default limit is 16 KiB; nginx allows 4 × 8 KiB). */
export const MAX_HEAD = 64 * 1024
/** A client that sent part of a head and then nothing for this long gets a 408 (nginx client_header_timeout). */
export const HEADERS_TIMEOUT_MS = 60_000
/** Idle keep-alive client connections are closed after this long (nginx keepalive_timeout 75s; longer
 * than the 60s idle timeout of the cloud load balancers that may sit in front, so they close first). */
export const CLIENT_IDLE_MS = 75_000
/** Connecting to an instance longer than this is a failure (then retried on another). */
export const CONNECT_TIMEOUT_MS = 5_000
/**
 * Upstream idle connections are dropped before the instance drops them, so a request never races
 * the instance closing it: `Keep-Alive: timeout=N` from the instance is honoured minus 2 s (the
 * coarse clock is up to 1 s late), up to a minute; without it, 3 s (Node's default is 5 s).
 */
export const UPSTREAM_IDLE_MS = 3_000
export const UPSTREAM_IDLE_MAX_MS = 60_000
/** Idle upstream connections kept per backend per process. */
export const MAX_IDLE_PER_BACKEND = 512

/**
 * Every socket reads into this one buffer (net.Socket's `onread`): no allocation and no stream
 * machinery per read. A read's bytes are valid only until the callback returns, so whatever must
 * outlive it (a partial head, a held body, a body piece written to a socket) is copied first.
 */
export const READ_BUFFER = Buffer.allocUnsafe(64 * 1024)
export const HEAD_END = Buffer.from('\r\n\r\n')
/** Pieces up to this size travel as latin1 strings (one copy, and a head and body share one write). */
export const SMALL = 16 * 1024

interface Latin1 {
  latin1Slice(start: number, end: number): string
}
/** Buffer#latin1Slice (what toString('latin1') calls, without its argument checks). */
export function latin1(buf: Buffer, start: number, end: number): string {
  return (buf as unknown as Latin1).latin1Slice(start, end)
}

/** A private copy of buf[off, end). */
export function keep(buf: Buffer, off: number, end: number): Buffer {
  const out = Buffer.allocUnsafe(end - off)
  buf.copy(out, 0, off, end)
  return out
}

/** A copy of buf[off, end) fit to write: a string when small. */
export function copyOut(buf: Buffer, off: number, end: number): string | Buffer {
  return end - off <= SMALL ? latin1(buf, off, end) : keep(buf, off, end)
}

export function join(a: Buffer, buf: Buffer, off: number, end: number): Buffer {
  const out = Buffer.allocUnsafe(a.length + end - off)
  a.copy(out, 0)
  buf.copy(out, a.length, off, end)
  return out
}

export function send(socket: Socket, data: string | Buffer): boolean {
  return typeof data === 'string' ? socket.write(data, 'latin1') : socket.write(data)
}

// findHead's results (module variables rather than an object per call).
export let headAt = -1
export let headText = ''

/**
 * Looks for the end of a head in buf[off, end): sets headAt to the offset of its CRLF CRLF
 * (relative to off) and headText to the head as a latin1 string (for a small chunk, the whole
 * chunk: the parsers stop at the head's end). False when the head is not complete yet.
 */
export function findHead(buf: Buffer, off: number, end: number): boolean {
  if (end - off <= SMALL) {
    headText = latin1(buf, off, end)
    headAt = headText.indexOf('\r\n\r\n')
  } else {
    headAt = buf.subarray(off, end).indexOf(HEAD_END)
    headText = headAt < 0 ? '' : latin1(buf, off, off + headAt + 4)
  }
  return headAt >= 0
}

type ReadCallback = (n: number, buf: Uint8Array) => boolean

/**
 * Re-wraps an accepted connection's handle in a socket that reads into READ_BUFFER. Node offers
 * `onread` only for sockets it builds from a handle or a connect, not for accepted ones, so the
 * server accepts with pauseOnConnect (nothing read yet) and the handle moves to a new Socket. If
 * a future Node hides the handle, this falls back to 'data' events on the accepted socket.
 */
export function adopt(accepted: Socket, callback: ReadCallback): Socket {
  const inner = accepted as unknown as { _handle?: unknown }
  const handle = inner._handle
  if (handle === null || typeof handle !== 'object') {
    accepted.on('data', (chunk: Buffer) => callback(chunk.length, chunk))
    accepted.resume()
    return accepted
  }
  inner._handle = null
  accepted.destroy()
  const options = { handle, allowHalfOpen: true, onread: { buffer: READ_BUFFER, callback } }
  return new Socket(options as unknown as SocketConstructorOpts)
}

/** A coarse clock for timeouts and back-off, moved by the sweep timer (no clock read per event). */
export let coarse = performance.now()

/** Moves the coarse clock to now (the sweep calls this once a second). */
export function tickClock(): number {
  coarse = performance.now()
  return coarse
}
