/**
 * One HTTP client per source for the Prometheus query API: POST (form-encoded, so a long query
 * fits), a time limit per query, a bounded answer, one retry on 429/502/503/504 that honours
 * Retry-After when it fits in the time limit. Returns the parsed JSON body or throws with a
 * sentence a person can act on.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, request } from 'undici'
import { formatDuration } from '../../core/duration.js'
import { errorMessage } from '../../core/errors.js'
import { networkFailure } from '../../core/network.js'

export const MAX_ANSWER_BYTES = 16 * 1024 * 1024
const RETRY_ON = new Set([429, 502, 503, 504])

export class PrometheusClient {
  private readonly agent: Agent
  private readonly base: URL

  constructor(
    url: string,
    private readonly timeout: number,
    private readonly headers: Record<string, string> = {},
  ) {
    this.base = new URL(url.endsWith('/') ? url : `${url}/`)
    this.agent = new Agent({ connect: { timeout }, keepAliveTimeout: 60_000 })
  }

  /** POSTs `params` to `api/v1/<endpoint>`; resolves to the JSON body (also for 4xx API errors). */
  async post(
    endpoint: 'query' | 'query_range',
    params: Record<string, string>,
    signal: AbortSignal,
  ): Promise<unknown> {
    const url = new URL(`api/v1/${endpoint}`, this.base)
    const deadline = Date.now() + this.timeout
    const limit = AbortSignal.timeout(this.timeout)
    const both = AbortSignal.any([signal, limit])
    try {
      for (let attempt = 0; ; attempt++) {
        const res = await request(url, {
          method: 'POST',
          dispatcher: this.agent,
          signal: both,
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            accept: 'application/json',
            ...this.headers,
          },
          body: new URLSearchParams(params).toString(),
        })
        const text = await readBounded(res.body)
        if (RETRY_ON.has(res.statusCode) && attempt === 0) {
          const wait = retryAfter(res.headers['retry-after']) ?? 250
          if (Date.now() + wait < deadline) {
            await sleep(wait, undefined, { signal: both })
            continue
          }
        }
        // The API answers 400/422/503 with a JSON error envelope; anything else that is not JSON is a proxy's page.
        try {
          return JSON.parse(text) as unknown
        } catch {
          throw new Error(
            `HTTP ${res.statusCode} with a body that is not JSON: ${JSON.stringify(text.slice(0, 120))}`,
          )
        }
      }
    } catch (err) {
      if (limit.aborted && !signal.aborted)
        throw new Error(`${url.href}: no answer within ${formatDuration(this.timeout)}`)
      if (signal.aborted) throw new Error(`${url.href}: evaluation cancelled`)
      throw new Error(`${url.href}: ${describe(err)}`)
    }
  }

  async close(): Promise<void> {
    await this.agent.close()
  }
}

async function readBounded(body: AsyncIterable<unknown> & { destroy(): unknown }): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += (chunk as Buffer).length
    if (size > MAX_ANSWER_BYTES) {
      body.destroy()
      throw new Error(`answer larger than ${MAX_ANSWER_BYTES / 1048576} MB`)
    }
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function retryAfter(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header
  if (!value) return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000)
  const at = Date.parse(value)
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now())
}

function describe(err: unknown): string {
  return networkFailure(err) ?? errorMessage(err)
}
