/**
 * The CLI's one way to talk to the daemon: every call has a timeout and a bounded response, and
 * every failure becomes a TideError with a code the CLI maps to an exit status.
 */
import { Agent, request } from 'undici'
import { TideError } from '../core/errors.js'
import { UsageError } from './io.js'

/** Errors that mean "nothing is listening there" rather than "it answered badly". */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNRESET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
])

/** Responses larger than this are refused; the biggest real one (1000 decisions) is far smaller. */
const MAX_RESPONSE = 16 * 1024 * 1024

export const DEFAULT_API = 'http://127.0.0.1:7070'

export interface ClientOptions {
  token?: string
  /** Per-request time limit. @default 30000 */
  timeoutMs?: number
}

function errnoCode(err: unknown): string | undefined {
  for (let e = err; e && typeof e === 'object'; e = (e as { cause?: unknown }).cause) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && (UNREACHABLE.has(code) || code.startsWith('UND_ERR_'))) return code
  }
  return undefined
}

export class ApiClient {
  readonly base: string
  private readonly agent = new Agent({ connections: 4 })

  constructor(
    base: string,
    private readonly options: ClientOptions = {},
  ) {
    let url: URL
    try {
      url = new URL(base)
    } catch {
      throw new UsageError(`--api must be a URL like ${DEFAULT_API} (got ${JSON.stringify(base)})`)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new UsageError(`--api must be an http:// or https:// URL (got ${JSON.stringify(base)})`)
    }
    this.base = url.href.replace(/\/+$/, '')
  }

  get<T>(path: string, signal?: AbortSignal): Promise<T> {
    return this.call<T>('GET', path, undefined, signal)
  }

  post<T>(path: string, body: unknown = {}, signal?: AbortSignal): Promise<T> {
    return this.call<T>('POST', path, body, signal)
  }

  async call<T>(method: 'GET' | 'POST', path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const timeout = this.options.timeoutMs ?? 30_000
    const headers: Record<string, string> = { accept: 'application/json' }
    if (body !== undefined) headers['content-type'] = 'application/json'
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`
    let response: Awaited<ReturnType<typeof request>>
    try {
      response = await request(`${this.base}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        dispatcher: this.agent,
        headersTimeout: timeout,
        bodyTimeout: timeout,
        signal,
      })
    } catch (err) {
      throw this.transportError(err, timeout)
    }
    let text = ''
    try {
      let size = 0
      const chunks: Buffer[] = []
      for await (const chunk of response.body) {
        size += (chunk as Buffer).length
        if (size > MAX_RESPONSE) {
          response.body.destroy()
          throw new TideError(
            'E_BAD_RESPONSE',
            `the daemon's answer to ${method} ${path} is larger than 16 MiB`,
          )
        }
        chunks.push(chunk as Buffer)
      }
      text = Buffer.concat(chunks).toString('utf8')
    } catch (err) {
      if (err instanceof TideError) throw err
      throw this.transportError(err, timeout)
    }
    let parsed: unknown
    try {
      parsed = text === '' ? undefined : JSON.parse(text)
    } catch {
      parsed = undefined
    }
    if (response.statusCode >= 200 && response.statusCode < 300) {
      if (parsed === undefined) {
        throw new TideError(
          'E_BAD_RESPONSE',
          `${this.base} answered ${method} ${path} with something that is not JSON; is it Tide?`,
        )
      }
      return parsed as T
    }
    const error = parsed as { code?: unknown; message?: unknown; error?: unknown } | undefined
    if (error && typeof error.code === 'string' && typeof error.message === 'string') {
      throw new TideError(error.code, error.message, { status: response.statusCode })
    }
    throw new TideError(
      'E_BAD_RESPONSE',
      `${this.base} answered ${method} ${path} with HTTP ${response.statusCode}${text ? `: ${text.slice(0, 200)}` : ''}`,
      { status: response.statusCode },
    )
  }

  private transportError(err: unknown, timeout: number): TideError {
    if (err instanceof TideError) return err
    const code = errnoCode(err)
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
      return new TideError(
        'E_API_TIMEOUT',
        `the daemon at ${this.base} did not answer within ${timeout / 1000}s`,
        {
          cause: err,
        },
      )
    }
    if ((err as { name?: string }).name === 'AbortError') {
      return new TideError('E_INTERRUPTED', 'interrupted', { cause: err })
    }
    if (code && UNREACHABLE.has(code)) {
      return new TideError(
        'E_UNREACHABLE',
        `cannot reach the Tide daemon at ${this.base} (${code}). Start it with \`tide run -c tide.yaml\`, ` +
          'or point --api (or TIDE_API) at where it runs.',
        { cause: err },
      )
    }
    return new TideError(
      'E_UNREACHABLE',
      `cannot talk to the Tide daemon at ${this.base}: ${(err as Error).message}`,
      {
        cause: err,
      },
    )
  }

  close(): Promise<void> {
    return this.agent.close()
  }
}
