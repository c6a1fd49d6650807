/**
 * `tide status --watch`: redraws in place each interval. The cursor goes home and every line is
 * rewritten then cleared to its end (ECMA-48 CUP, EL, ED), which does not flicker the way
 * clearing the whole screen does. Lines are cut to the terminal's width and height so nothing
 * wraps or scrolls. Ctrl-C restores the cursor and leaves with exit code 0.
 */
import { errorMessage } from '../core/errors.js'
import type { ApiClient } from './client.js'
import type { Context } from './context.js'
import { truncate } from './format.js'
import { fetchSnapshot, renderFrame } from './status.js'

const HIDE_CURSOR = '\x1b[?25l'
const SHOW_CURSOR = '\x1b[?25h'
const HOME = '\x1b[H'
const CLEAR_LINE_END = '\x1b[K'
const CLEAR_BELOW = '\x1b[J'
const CLEAR_SCREEN = '\x1b[2J'

/** How many recent decisions each group shows. */
const DECISIONS_SHOWN = 4

export async function watchStatus(
  ctx: Context,
  client: ApiClient,
  name: string | undefined,
  intervalMs: number,
  json: boolean,
): Promise<number> {
  const { io, c } = ctx
  const abort = new AbortController()
  const off = io.onSignal(() => abort.abort())
  const tty = io.stdout.isTTY === true && !json
  const title = `${client.base} · every ${intervalMs >= 1000 ? `${intervalMs / 1000}s` : `${intervalMs}ms`} · Ctrl-C quits`
  let first = true
  let last: string[] = []

  const draw = (lines: string[]) => {
    if (!tty) {
      io.stdout.write(`${lines.join('\n')}\n\n`)
      return
    }
    const width = Math.max(20, io.stdout.columns ?? 80)
    const height = Math.max(3, (io.stdout as { rows?: number }).rows ?? 1000)
    const shown = lines.slice(0, height - 1).map((l) => truncate(l, width) + CLEAR_LINE_END)
    io.stdout.write(`${HOME}${shown.join('\n')}\n${CLEAR_BELOW}`)
  }

  if (tty) io.stdout.write(HIDE_CURSOR + CLEAR_SCREEN)
  try {
    while (!abort.signal.aborted) {
      try {
        const snapshot = await fetchSnapshot(client, name, json ? 0 : DECISIONS_SHOWN, io.now, abort.signal)
        if (json) ctx.json({ at: snapshot.at, groups: snapshot.groups })
        else {
          last = renderFrame(snapshot, title, c)
          draw(last)
        }
      } catch (err) {
        if (abort.signal.aborted) break
        // The first read decides the exit code (3 when the daemon is not there); later the
        // daemon may restart, so keep the last frame and say what is wrong under it.
        if (first) throw err
        const problem = c.red(`${errorMessage(err)} (retrying)`)
        if (json) ctx.err(`error: ${errorMessage(err)}`)
        else draw([...last.slice(0, 1), problem, ...last.slice(1)])
      }
      first = false
      await io.sleep(intervalMs, abort.signal)
    }
  } finally {
    off()
    if (tty) io.stdout.write(SHOW_CURSOR)
  }
  return 0
}
