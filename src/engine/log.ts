/**
 * Logging: pino, JSON for machines; for a terminal, one readable line per event
 * ("12:00:01 INFO  web  scale up 1 → 3: …"), without pulling in pino-pretty.
 */
import { Writable } from 'node:stream'
import pc from 'picocolors'
import { type Logger as PinoLogger, pino } from 'pino'

export type Logger = PinoLogger
export type LogFormat = 'auto' | 'json' | 'pretty'

const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
}
const HIDDEN = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'group', 'v'])

function colourLevel(level: number, text: string): string {
  if (level >= 50) return pc.red(text)
  if (level >= 40) return pc.yellow(text)
  if (level >= 30) return pc.green(text)
  return pc.dim(text)
}

/** Turns one pino JSON line into a line a person reads. */
export function prettyLine(json: string): string {
  let entry: Record<string, unknown>
  try {
    entry = JSON.parse(json) as Record<string, unknown>
  } catch {
    return json
  }
  const level = typeof entry.level === 'number' ? entry.level : 30
  const time = new Date(typeof entry.time === 'number' ? entry.time : Date.now()).toTimeString().slice(0, 8)
  const group = typeof entry.group === 'string' ? `${pc.cyan(entry.group)} ` : ''
  const extras = Object.entries(entry)
    .filter(([k]) => !HIDDEN.has(k))
    .map(([k, v]) => {
      if (k === 'err' && v && typeof v === 'object' && 'message' in v)
        return pc.red(`err=${String(v.message)}`)
      return pc.dim(`${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    })
  const label = colourLevel(level, (LEVELS[level] ?? String(level)).padEnd(5))
  return `${pc.dim(time)} ${label} ${group}${String(entry.msg ?? '')}${extras.length ? ` ${extras.join(' ')}` : ''}\n`
}

export function createLogger(
  options: { level?: string; format?: LogFormat; stream?: NodeJS.WritableStream } = {},
): Logger {
  const out = options.stream ?? process.stderr
  const level = process.env.TIDE_LOG_LEVEL ?? options.level ?? 'info'
  const pretty =
    options.format === 'pretty' || (options.format !== 'json' && (out as { isTTY?: boolean }).isTTY === true)
  if (!pretty) return pino({ level, base: undefined }, out)
  let pending = ''
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      pending += chunk.toString()
      let nl = pending.indexOf('\n')
      while (nl >= 0) {
        out.write(prettyLine(pending.slice(0, nl)))
        pending = pending.slice(nl + 1)
        nl = pending.indexOf('\n')
      }
      done()
    },
  })
  return pino({ level, base: undefined }, sink)
}

/** A logger that drops everything (tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
