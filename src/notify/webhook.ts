/**
 * `webhook`: POSTs each event as JSON (the ScaleEvent fields plus `summary`) to a URL.
 * A non-2xx answer is a failed delivery (logged by the dispatcher, never failing a scale).
 */
import { z } from 'zod'
import { TideError } from '../core/errors.js'
import type { Notifier, ScaleEvent } from '../core/types.js'
import { eventSummary, notifierCommon } from './common.js'

export const webhookNotifierSchema = z
  .object({
    kind: z.literal('webhook'),
    url: z.url({ protocol: /^https?$/ }).describe('Where events are POSTed as JSON.'),
    headers: z
      .record(z.string(), z.string())
      .default({})
      .describe('Extra request headers (`Authorization: Bearer …`).'),
    ...notifierCommon,
  })
  .strict()
  .describe('POST every event as JSON to a URL.')

export type WebhookNotifierConfig = z.output<typeof webhookNotifierSchema>

export function createWebhookNotifier(config: WebhookNotifierConfig): Notifier {
  return {
    kind: 'webhook',
    async notify(event: ScaleEvent, signal: AbortSignal): Promise<void> {
      const res = await fetch(config.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...config.headers },
        body: JSON.stringify({ ...event, summary: eventSummary(event) }),
        signal,
      })
      await res.arrayBuffer().catch(() => undefined)
      if (!res.ok) throw new TideError('E_NOTIFY', `webhook ${config.url} answered ${res.status}`)
    },
  }
}
