/** `tide up`, `tide down`, `tide scale`, `tide auto` and `tide decisions`. */
import { TideError } from '../core/errors.js'
import type { DecisionRecord } from '../engine/controller.js'
import type { ApiClient } from './client.js'
import type { ClientFlags, Context } from './context.js'
import { type Colors, change, clockTime, outcomeColour, table } from './format.js'
import { EXIT } from './io.js'
import { groupPath } from './status.js'
import { waitForGroup } from './wait.js'

export interface ScaleFlags extends ClientFlags {
  force?: boolean
  wait?: boolean
  /** How long `--wait` waits, in ms. */
  timeout: number
  reason?: string
}

/** Manual scaling can take as long as the target needs to answer; reads stay at 30s. */
const SCALE_TIMEOUT_MS = 120_000

/** `web  ▲ 2 → 3  pending  scale up 2 → 3: manual request`. */
export function describeDecision(d: DecisionRecord, c: Colors): string {
  const error = d.error ? c.red(` — ${d.error}`) : ''
  return `${c.bold(d.group)}  ${change(d, c)}  ${outcomeColour(d.outcome, c)(d.outcome)}  ${d.reason}${error}`
}

async function report(
  ctx: Context,
  client: ApiClient,
  d: DecisionRecord,
  flags: ScaleFlags,
): Promise<number> {
  if (!flags.json) ctx.out(describeDecision(d, ctx.c))
  let final = d
  let code: number = EXIT.ok
  if (flags.wait && (d.outcome === 'pending' || d.outcome === 'applied')) {
    const result = await waitForGroup(ctx, client, d, flags.timeout, flags.json === true)
    final = result.decision
    code = result.code
  }
  if (flags.json) ctx.json(final)
  if (final.outcome === 'failed') {
    throw new TideError(
      'E_SCALE_FAILED',
      `scaling ${d.group} ${d.from} → ${d.to} failed: ${final.error ?? final.reason}`,
    )
  }
  return code
}

export async function scaleCommand(
  ctx: Context,
  group: string,
  request: { to: number } | { by: number },
  flags: ScaleFlags,
): Promise<number> {
  const client = ctx.client(flags, SCALE_TIMEOUT_MS)
  const body: Record<string, unknown> = { ...request }
  if (flags.force) body.force = true
  if (flags.reason) body.reason = flags.reason
  const d = await client.post<DecisionRecord>(groupPath(group, '/scale'), body)
  return report(ctx, client, d, flags)
}

export async function autoCommand(ctx: Context, group: string, flags: ScaleFlags): Promise<number> {
  const client = ctx.client(flags, SCALE_TIMEOUT_MS)
  const d = await client.post<DecisionRecord>(groupPath(group, '/auto'))
  return report(ctx, client, d, flags)
}

function when(at: number, now: number): string {
  const date = new Date(at)
  const today = new Date(now).toDateString() === date.toDateString()
  return today ? clockTime(at) : `${date.toISOString().slice(0, 10)} ${clockTime(at)}`
}

export async function decisionsCommand(
  ctx: Context,
  group: string,
  flags: ClientFlags & { limit: number },
): Promise<number> {
  const client = ctx.client(flags)
  const { decisions } = await client.get<{ decisions: DecisionRecord[] }>(
    groupPath(group, `/decisions?limit=${flags.limit}`),
  )
  if (flags.json) {
    ctx.json({ decisions })
    return EXIT.ok
  }
  const { c } = ctx
  if (decisions.length === 0) {
    ctx.out(c.dim(`no decisions for ${group} yet`))
    return EXIT.ok
  }
  const now = ctx.io.now()
  const rows = decisions.map((d) => [
    c.dim(when(d.at, now)),
    d.trigger + (d.forced ? c.yellow(' (forced)') : ''),
    outcomeColour(d.outcome, c)(d.outcome),
    change(d, c),
    d.reason + (d.error ? c.red(` — ${d.error}`) : ''),
  ])
  for (const line of table(['TIME', 'TRIGGER', 'OUTCOME', 'CHANGE', 'REASON'], rows, c)) ctx.out(line)
  return EXIT.ok
}
