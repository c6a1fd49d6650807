/**
 * The Alertmanager webhook payload, version 4 (../shared/apis/alertmanager-webhook.md), and how
 * a request's parameters are read from it and from the query string.
 *
 * Docker Scaler read only `groupLabels` and ignored `status`, so a resolved notification scaled
 * again (seeds.md §3.2). Here `status: resolved` never scales, and every label value is a string
 * (as Alertmanager sends it) or, for hand-written bodies, a number.
 */
import { z } from 'zod'
import { BadRequestError } from '../core/errors.js'

const labelValue = z.union([z.string(), z.number(), z.boolean()]).transform(String)
const labels = z.record(z.string(), labelValue).default({})

const alertSchema = z
  .object({
    status: z.enum(['firing', 'resolved']).optional(),
    labels,
    annotations: labels,
    startsAt: z.string().optional(),
    endsAt: z.string().optional(),
    generatorURL: z.string().optional(),
    fingerprint: z.string().optional(),
  })
  .loose()

/** What Alertmanager sends (every field optional, so a hand-written `{"groupLabels": …}` fits too). */
export const webhookSchema = z
  .object({
    version: z.string().optional(),
    groupKey: z.string().optional(),
    truncatedAlerts: z.number().optional(),
    status: z.enum(['firing', 'resolved']).optional(),
    receiver: z.string().optional(),
    groupLabels: labels,
    commonLabels: labels,
    commonAnnotations: labels,
    externalURL: z.string().optional(),
    alerts: z.array(alertSchema).default([]),
  })
  .loose()

export type Webhook = z.output<typeof webhookSchema>
export type WebhookAlert = Webhook['alerts'][number]

/** Parses a body (already JSON-decoded; undefined when empty) or throws a 400 naming the field. */
export function parseWebhook(body: unknown): Webhook {
  if (body === undefined) return webhookSchema.parse({})
  const result = webhookSchema.safeParse(body)
  if (!result.success) {
    const issue = result.error.issues[0]!
    const path = issue.path.join('.') || 'body'
    throw new BadRequestError(`request body: ${path}: ${issue.message}`)
  }
  return result.data
}

/** JSON from a raw body whatever its Content-Type (curl -d sends form encoding; the original accepted it). */
export function decodeBody(raw: Buffer): unknown {
  const text = raw.toString('utf8').trim()
  if (text === '') return undefined
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new BadRequestError(`Unable to recognize POST body: it is not JSON (${(err as Error).message})`)
  }
}

/** The earliest `startsAt` of the firing alerts: with `groupKey`, it names one firing episode. */
export function episodeStart(payload: Webhook): string {
  const starts = payload.alerts
    .filter((a) => a.status !== 'resolved')
    .map((a) => a.startsAt ?? '')
    .filter((s) => s !== '')
    .sort()
  return starts[0] ?? ''
}

/**
 * A parameter: a non-empty query value wins over the payload's groupLabels, then commonLabels
 * (Docker Scaler read only groupLabels; commonLabels helps when `group_by` leaves a label out).
 */
export function param(query: URLSearchParams, payload: Webhook, name: string): string | undefined {
  const fromQuery = query.get(name)
  if (fromQuery !== null && fromQuery !== '') return fromQuery
  return payload.groupLabels[name] || payload.commonLabels[name] || undefined
}

/** Where a parameter came from, for `by`'s precedence and error messages. */
export function paramSource(
  query: URLSearchParams,
  payload: Webhook,
  name: string,
): 'query' | 'alert' | undefined {
  const fromQuery = query.get(name)
  if (fromQuery !== null && fromQuery !== '') return 'query'
  if (payload.groupLabels[name] || payload.commonLabels[name]) return 'alert'
  return undefined
}
