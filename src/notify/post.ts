/**
 * One JSON POST for the HTTP notifiers (slack, alertmanager): bounded answer, one retry on
 * 429/502/503/504 honouring Retry-After while the delivery's time allows (the dispatcher's
 * signal carries the notifier's `timeout`), and an E_NOTIFY error that names the endpoint
 * without its secret path (a Slack webhook URL is a credential).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { TideError } from '../core/errors.js'

const RETRY_ON = new Set([429, 502, 503, 504])
const MAX_ANSWER = 64 * 1024

/** `https://hooks.slack.com/…`: the origin only, so logs never carry a webhook's token. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : '/…'}`
  } catch {
    return '(bad URL)'
  }
}

export interface PostOptions {
  headers?: Record<string, string>
  signal: AbortSignal
  /** For messages: "slack", "alertmanager". */
  what: string
  /** Show the URL's path in errors (it is not a secret). */
  showPath?: boolean
}

/** POSTs `body` as JSON; resolves to the answer's text on 2xx, throws E_NOTIFY otherwise. */
export async function postJson(url: string, body: unknown, options: PostOptions): Promise<string> {
  const shown = options.showPath ? url : redactUrl(url)
  for (let attempt = 0; ; attempt++) {
    let res: Response
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...options.headers },
        body: JSON.stringify(body),
        signal: options.signal,
      })
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code
      const why = options.signal.aborted ? 'timed out or cancelled' : (cause ?? (err as Error).message)
      throw new TideError('E_NOTIFY', `${options.what} ${shown}: ${why}`, { cause: err })
    }
    const text = await readText(res)
    if (res.ok) return text
    if (attempt === 0 && RETRY_ON.has(res.status)) {
      const wait = retryAfterMs(res.headers.get('retry-after')) ?? 500
      try {
        await sleep(wait, undefined, { signal: options.signal })
        continue
      } catch {
        // the delivery's time ran out while waiting: report the answer we have
      }
    }
    throw new TideError(
      'E_NOTIFY',
      `${options.what} ${shown} answered ${res.status}${text ? `: ${text.slice(0, 200).trim()}` : ''}`,
    )
  }
}

async function readText(res: Response): Promise<string> {
  if (!res.body) return ''
  const reader = res.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }))
    if (done || !value) break
    size += value.length
    if (size > MAX_ANSWER) {
      await reader.cancel().catch(() => {})
      break
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function retryAfterMs(value: string | null): number | undefined {
  if (!value) return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000)
  const at = Date.parse(value)
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now())
}
