/**
 * `slack`: posts each event to a Slack incoming webhook as a message with one attachment whose
 * colour says the outcome (seed 003's Slack route: `danger` for errors, `good` otherwise; Tide
 * adds blue for work in progress and grey for "nothing changed" and shadow decisions).
 *
 * ```yaml
 * notify:
 *   - kind: slack
 *     url: ${SLACK_WEBHOOK_URL}
 *     on: [applied, failed]
 * ```
 *
 * The webhook URL is a secret: errors and logs show only `https://hooks.slack.com/…`.
 */
import { z } from 'zod'
import { formatDuration } from '../core/duration.js'
import type { Notifier, ScaleEvent } from '../core/types.js'
import { eventSummary, notifierCommon } from './common.js'
import { postJson } from './post.js'

export const slackNotifierSchema = z
  .object({
    kind: z.literal('slack'),
    url: z
      .url({ protocol: /^https?$/, error: 'must be an http(s) URL (the incoming webhook’s)' })
      .describe('The incoming webhook URL (`https://hooks.slack.com/services/…`); keep it in `${ENV}`.'),
    channel: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Channel override (`#ops`); only legacy webhooks honour it, app webhooks post to their own channel.',
      ),
    username: z.string().min(1).optional().describe('Sender name override (legacy webhooks).'),
    icon_emoji: z
      .string()
      .regex(/^:[a-z0-9_+-]+:$/, 'must look like :chart_with_upwards_trend:')
      .optional()
      .describe('Sender icon override (legacy webhooks).'),
    ...notifierCommon,
  })
  .strict()
  .describe('Post every event to a Slack incoming webhook.')

export type SlackNotifierConfig = z.output<typeof slackNotifierSchema>

/** The attachment colour of each event kind. */
export const SLACK_COLORS: Record<ScaleEvent['kind'], string> = {
  applied: 'good',
  failed: 'danger',
  started: '#439FE0',
  progress: '#439FE0',
  unchanged: '#9E9E9E',
  shadow: '#9E9E9E',
}

const TITLES: Record<ScaleEvent['kind'], string> = {
  started: 'scaling started',
  progress: 'scaling in progress',
  applied: 'scaled',
  failed: 'scaling failed',
  unchanged: 'nothing changed',
  shadow: 'would scale (shadow mode)',
}

/** The webhook's JSON body for one event. */
export function slackMessage(
  event: ScaleEvent,
  config: Pick<SlackNotifierConfig, 'channel' | 'username' | 'icon_emoji'> = {},
): object {
  const fields = [
    { title: 'Group', value: event.group, short: true },
    { title: 'Change', value: `${event.from} → ${event.to} (${event.direction})`, short: true },
    { title: 'Trigger', value: event.trigger, short: true },
    { title: 'Target', value: event.target, short: true },
  ]
  if (event.durationMs !== undefined)
    fields.push({ title: 'Took', value: formatDuration(event.durationMs), short: true })
  const detail =
    event.kind === 'failed' || event.kind === 'unchanged' || event.kind === 'progress'
      ? `${event.message ?? ''}\n_${event.reason}_`
      : event.reason
  return {
    ...(config.channel ? { channel: config.channel } : {}),
    ...(config.username ? { username: config.username } : {}),
    ...(config.icon_emoji ? { icon_emoji: config.icon_emoji } : {}),
    // The notification's text (and what clients without attachments show).
    text: eventSummary(event),
    attachments: [
      {
        color: SLACK_COLORS[event.kind],
        fallback: eventSummary(event),
        title: `${event.group}: ${TITLES[event.kind]} ${event.from} → ${event.to}`,
        text: detail.trim(),
        fields,
        footer: `Tide · decision ${event.decision}`,
        ts: Math.floor(event.at / 1000),
        mrkdwn_in: ['text'],
      },
    ],
  }
}

export function createSlackNotifier(config: SlackNotifierConfig): Notifier {
  return {
    kind: 'slack',
    async notify(event: ScaleEvent, signal: AbortSignal): Promise<void> {
      await postJson(config.url, slackMessage(event, config), { signal, what: 'slack webhook' })
    },
  }
}
