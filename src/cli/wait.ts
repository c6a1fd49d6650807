/**
 * `--wait`: follows a scaling operation until the group has settled, printing each instance's
 * state changes as they happen ("web-3  starting → ready after 1.4s"). It polls
 * GET /v1/groups/:name rather than asking the API to wait, so people see progress.
 *
 * Settled means: the operation is over, it did not fail, no instance is starting, draining
 * or stopping, and as many instances are ready as the group wants.
 */
import { formatDuration } from '../core/duration.js'
import { TideError } from '../core/errors.js'
import type { InstanceState } from '../core/types.js'
import type { DecisionRecord, GroupView } from '../engine/controller.js'
import type { ApiClient } from './client.js'
import type { Context } from './context.js'
import { clockTime, stateColour } from './format.js'
import { EXIT } from './io.js'
import { groupPath } from './status.js'

const POLL_MS = 500
const MOVING: InstanceState[] = ['starting', 'draining', 'stopping']

export interface WaitResult {
  code: number
  decision: DecisionRecord
  group?: GroupView
}

/** The record of `id` as the daemon now has it (it changes from `pending` when done). */
async function currentRecord(
  client: ApiClient,
  g: GroupView,
  id: number,
): Promise<DecisionRecord | undefined> {
  if (g.lastDecision?.id === id) return g.lastDecision
  const { decisions } = await client.get<{ decisions: DecisionRecord[] }>(
    groupPath(g.name, '/decisions?limit=100'),
  )
  return decisions.find((d) => d.id === id)
}

export async function waitForGroup(
  ctx: Context,
  client: ApiClient,
  record: DecisionRecord,
  timeoutMs: number,
  /** Progress goes to stdout for people, to stderr under --json (stdout is for the result). */
  json: boolean,
): Promise<WaitResult> {
  const { io } = ctx
  const c = json ? ctx.ce : ctx.c
  const say = (line: string) => (json ? ctx.err(line) : ctx.out(line))
  const started = io.now()
  const abort = new AbortController()
  const off = io.onSignal(() => abort.abort())
  const seen = new Map<string, { state: InstanceState; since: number }>()
  let decision = record
  let first = true
  try {
    for (;;) {
      const g = await client.get<GroupView>(groupPath(record.group), abort.signal).catch((err) => {
        if (abort.signal.aborted) return undefined
        throw err
      })
      if (!g) break
      const now = io.now()
      const stamp = c.dim(clockTime(now))
      for (const i of g.instances) {
        const before = seen.get(i.id)
        const paint = stateColour(i.state, c)
        if (!before) {
          seen.set(i.id, { state: i.state, since: now })
          if (!first) say(`${stamp}  ${c.green('+')} ${i.id}  ${paint(i.state)}`)
          else if (MOVING.includes(i.state)) say(`${stamp}    ${i.id}  ${paint(i.state)}`)
        } else if (before.state !== i.state) {
          const took = c.dim(`after ${formatDuration(now - before.since)}`)
          say(
            `${stamp}    ${i.id}  ${stateColour(before.state, c)(before.state)} → ${paint(i.state)} ${took}`,
          )
          seen.set(i.id, { state: i.state, since: now })
        }
      }
      for (const id of [...seen.keys()]) {
        if (!g.instances.some((i) => i.id === id)) {
          say(`${stamp}  ${c.red('-')} ${id}  removed`)
          seen.delete(id)
        }
      }
      first = false
      if (g.operation?.id !== record.id) {
        decision = (await currentRecord(client, g, record.id)) ?? decision
        if (decision.outcome === 'failed') {
          throw new TideError(
            'E_SCALE_FAILED',
            `scaling ${record.group} ${decision.from} → ${decision.to} failed: ${decision.error ?? decision.reason}`,
          )
        }
        const moving = g.instances.some((i) => MOVING.includes(i.state))
        if (!moving && g.ready === g.desired) {
          say(
            `${c.green('✓')} ${g.name}: ${g.ready} of ${g.desired} ready after ${formatDuration(now - started)}`,
          )
          return { code: EXIT.ok, decision, group: g }
        }
      }
      if (now - started >= timeoutMs) {
        const waiting = g.instances
          .filter((i) => MOVING.includes(i.state))
          .map((i) => `${i.id} is ${i.state}${i.detail ? ` (${i.detail})` : ''}`)
        throw new TideError(
          'E_WAIT_TIMEOUT',
          `gave up waiting after ${formatDuration(timeoutMs)}: ${g.ready} of ${g.desired} instances ready` +
            (waiting.length ? `; ${waiting.join(', ')}` : '') +
            '. The operation goes on in the daemon; `tide status` follows it.',
        )
      }
      await io.sleep(POLL_MS, abort.signal)
      if (abort.signal.aborted) break
    }
  } finally {
    off()
  }
  say(c.yellow('stopped waiting; the operation goes on in the daemon'))
  return { code: EXIT.interrupted, decision }
}
