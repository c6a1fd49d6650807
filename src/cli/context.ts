/** What every command gets: the IO, colours for each stream, and the daemon client. */
import pc from 'picocolors'
import { ApiClient, DEFAULT_API } from './client.js'
import type { Colors } from './format.js'
import { type CliIO, wantsColour } from './io.js'

/** Flags shared by the commands that talk to the daemon. */
export interface ClientFlags {
  api?: string
  token?: string
  json?: boolean
}

export class Context {
  /** Colours for stdout, and for stderr (each stream decides for itself). */
  readonly c: Colors
  readonly ce: Colors
  private readonly clients: ApiClient[] = []

  constructor(readonly io: CliIO) {
    this.c = pc.createColors(wantsColour(io.stdout, io.env))
    this.ce = pc.createColors(wantsColour(io.stderr, io.env))
  }

  out(line = ''): void {
    this.io.stdout.write(`${line}\n`)
  }

  err(line = ''): void {
    this.io.stderr.write(`${line}\n`)
  }

  /** Machine output: one JSON document per line on stdout, nothing else there. */
  json(value: unknown): void {
    this.io.stdout.write(`${JSON.stringify(value)}\n`)
  }

  /** `--api`, else TIDE_API, else the default address; `--token`, else TIDE_TOKEN. */
  client(flags: ClientFlags, timeoutMs?: number): ApiClient {
    const base = flags.api ?? this.io.env.TIDE_API ?? DEFAULT_API
    const token = flags.token ?? this.io.env.TIDE_TOKEN
    const client = new ApiClient(base, { token: token || undefined, timeoutMs })
    this.clients.push(client)
    return client
  }

  /** Closes the clients' connections so the process can exit. */
  async close(): Promise<void> {
    await Promise.allSettled(this.clients.map((c) => c.close()))
  }
}
