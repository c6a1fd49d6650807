/**
 * Starts a real Tide daemon in this process from a config file, with the API and routes on
 * free ports and the store in a temporary directory, so end-to-end tests can run beside
 * anything else on the machine.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { parse, stringify } from 'yaml'
import { type Daemon, startDaemon } from '../../src/engine/daemon.js'
import { silentLogger } from '../../src/engine/log.js'

export interface TestDaemon extends Daemon {
  dir: string
  stop(): Promise<void>
}

type Raw = {
  api?: { listen?: string }
  store?: { path?: string }
  groups: Record<
    string,
    { target: { kind: string; cwd?: string }; route?: { listen: string } } & Record<string, unknown>
  >
}

/** Loads `file`, applies `edit`, moves ports to 0 and the store to a temp dir, and starts it. */
export async function startTestDaemon(
  file: string,
  edit: (raw: Raw) => void = () => {},
): Promise<TestDaemon> {
  const raw = parse(readFileSync(file, 'utf8')) as Raw
  const dir = mkdtempSync(join(tmpdir(), 'tide-e2e-'))
  raw.api = { ...raw.api, listen: '127.0.0.1:0' }
  raw.store = { ...raw.store, path: join(dir, 'tide.db') }
  for (const group of Object.values(raw.groups)) {
    if (group.target.kind === 'process') group.target.cwd = resolve(dirname(file), group.target.cwd ?? '.')
    if (group.route) group.route.listen = '127.0.0.1:0'
  }
  edit(raw)
  const path = join(dir, 'tide.yaml')
  writeFileSync(path, stringify(raw))
  const daemon = await startDaemon({ configPath: path, logger: silentLogger() })
  return {
    ...daemon,
    dir,
    async stop() {
      await daemon.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Polls `check` every 200ms until it returns true, or throws after `ms` with `what`. */
export async function waitFor(
  what: string,
  ms: number,
  check: () => boolean | Promise<boolean>,
): Promise<void> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(`timed out after ${ms}ms waiting for ${what}`)
}
