/**
 * Zod building blocks shared by every kind's config schema, so durations and addresses
 * read and fail the same way everywhere.
 */
import { z } from 'zod'
import { parseDuration } from './duration.js'

/**
 * A duration: `"250ms"`, `"30s"`, `"5m"`, `"1h30m"`, or a number of seconds. Parses to milliseconds.
 * Pass the default as text: it goes through the same parsing (zod's `.default()` would skip it).
 * @example duration('30s')   // optional, 30000 when absent
 */
function durationSchema() {
  return z
    .union([z.string(), z.number()])
    .transform((value, ctx) => {
      const ms = parseDuration(value)
      if (ms === undefined) {
        ctx.addIssue({
          code: 'custom',
          message: `must be a duration like "500ms", "30s", "5m" or a number of seconds, not ${JSON.stringify(value)}`,
        })
        return z.NEVER
      }
      return ms
    })
    .meta({
      description: 'A duration: "500ms", "30s", "5m", "1h", or a number of seconds.',
      format: 'duration',
    })
}

type DurationSchema = ReturnType<typeof durationSchema>

// Overloads, so that a key with a default is optional in the config's input type.
export function duration(): DurationSchema
export function duration(defaultValue: string): z.ZodPrefault<DurationSchema>
export function duration(defaultValue?: string): DurationSchema | z.ZodPrefault<DurationSchema> {
  const schema = durationSchema()
  return defaultValue === undefined ? schema : schema.prefault(defaultValue)
}

const HOST_PORT = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/

/** `host:port` or `[v6]:port`; port 0 means "any free port" (tests). */
export function listenAddress() {
  return z
    .string()
    .refine(
      (value) => {
        const m = HOST_PORT.exec(value)
        return m !== null && Number(m[2]) <= 65535
      },
      { message: 'must be host:port, e.g. "127.0.0.1:8080"' },
    )
    .meta({ description: 'host:port to listen on, e.g. "127.0.0.1:8080".' })
}

/** A TCP port, 1–65535 (port 0 is only for listening: see `listenAddress`). */
export function portNumber() {
  return z.number().int('must be a whole number').min(1, 'must be 1–65535').max(65535, 'must be 1–65535')
}

/** Splits a checked `host:port` (IPv6 brackets removed). */
export function splitHostPort(address: string): { host: string; port: number } {
  const m = HOST_PORT.exec(address)
  if (!m) throw new Error(`not a host:port address: ${address}`)
  const host = m[1]!.startsWith('[') ? m[1]!.slice(1, -1) : m[1]!
  return { host, port: Number(m[2]) }
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}
