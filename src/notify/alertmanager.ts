/**
 * `alertmanager`: every event becomes an alert POSTed to Alertmanager's API v2
 * (`/api/v2/alerts`; Docker Scaler used v1, removed in Alertmanager 0.27), with seed 003's
 * labels and annotations (seeds.md §3.6) so its routes and Slack templates keep working:
 *
 * | label / annotation | value |
 * |---|---|
 * | `alertname` | `scale_nodes` for an aws-asg group, else `scale_service` (or `alertname`); the receiver's events: their trigger |
 * | `service` | `aws` for an aws-asg group, else the group's name (or `service`) |
 * | `status` | `success` (applied, unchanged), `error` (failed), `pending` (started, progress, shadow) |
 * | `group` | the Tide group (Tide's addition, so two groups never merge into one alert) |
 * | `summary` | what happened: "Scaling web from 1 to 3 replicas: …", the error, the progress line |
 * | `request` | what was asked: "Scale service up: web", "Scale nodes up on: aws, by: 1" |
 *
 * `startsAt` is the event's time and `endsAt` that plus `alert_timeout` (ALERT_TIMEOUT, 10s),
 * so each alert resolves by itself. `started` events are not sent unless `on` lists them: one
 * operation is one alert, as in Docker Scaler.
 *
 * ```yaml
 * notify:
 *   - kind: alertmanager
 *     url: http://127.0.0.1:9093
 *     labels: { receiver: system }
 * ```
 */
import { z } from 'zod'
import { duration } from '../core/schema.js'
import type { Notifier, ScaleEvent } from '../core/types.js'
import { EVENT_KINDS, notifierCommon } from './common.js'
import { postJson } from './post.js'

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/

/**
 * The events sent by default. Not `started`: Docker Scaler sent one alert per operation (its
 * outcome), and `pending` only while waiting for nodes (`progress`), so a `started` alert would be
 * one the seed never sent, and a second Slack message for every scale.
 */
export const ALERTMANAGER_EVENTS = ['progress', 'applied', 'failed', 'unchanged', 'shadow'] as const

export const alertmanagerNotifierSchema = z
  .object({
    kind: z.literal('alertmanager'),
    url: z
      .url({ protocol: /^https?$/, error: 'must be an http(s) URL like "http://127.0.0.1:9093"' })
      .describe("Alertmanager's base URL (ALERTMANAGER_ADDRESS); alerts go to `<url>/api/v2/alerts`."),
    headers: z
      .record(z.string(), z.string())
      .default({})
      .describe('Extra request headers (`Authorization: Basic …` for an Alertmanager behind a proxy).'),
    alert_timeout: duration('10s')
      .refine((ms) => ms >= 1000, { message: 'must be at least 1s' })
      .describe("How long each alert stays active: `endsAt` = the event's time + this (ALERT_TIMEOUT)."),
    alertname: z
      .string()
      .min(1)
      .optional()
      .describe(
        'The `alertname` label. Default: `scale_nodes` for an aws-asg group, else `scale_service` (seed 003).',
      ),
    service: z
      .string()
      .min(1)
      .optional()
      .describe(
        "The `service` label. Default: `aws` for an aws-asg group, else the group's name (seed 003).",
      ),
    labels: z
      .record(z.string().regex(LABEL_NAME, 'must be a label name like receiver'), z.string())
      .default({})
      .describe('Extra labels on every alert, for routing (`receiver: system`).'),
    generator_url: z
      .url()
      .optional()
      .describe("The alert's `generatorURL` (a link shown in Alertmanager), e.g. the Tide dashboard."),
    ...notifierCommon,
    on: z
      .array(z.enum(EVENT_KINDS))
      .min(1)
      .default([...ALERTMANAGER_EVENTS])
      .describe(
        'Which events to send. Default: every event but `started` (`progress`, `applied`, `failed`, `unchanged`, `shadow`), ' +
          'so one operation is one alert as in Docker Scaler; add `started` for a `pending` alert when an operation begins.',
      ),
  })
  .strict()
  .describe("Send events to Alertmanager as alerts (API v2), with Docker Scaler's labels.")

export type AlertmanagerNotifierConfig = z.output<typeof alertmanagerNotifierSchema>

/** An alert as POST /api/v2/alerts takes it (the `postableAlert` of Alertmanager's OpenAPI). */
export interface PostableAlert {
  labels: Record<string, string>
  annotations: Record<string, string>
  startsAt: string
  endsAt: string
  generatorURL?: string
}

/** Docker Scaler's three statuses (seeds.md §3.6). */
export type SeedStatus = 'success' | 'error' | 'pending'

export interface SeedAlert {
  alertname: string
  service: string
  status: SeedStatus
  summary: string
  request: string
  /** Epoch ms; default now. */
  at?: number
  /** Milliseconds until `endsAt`; default 10s. */
  timeout?: number
  labels?: Record<string, string>
  generatorURL?: string
}

/**
 * Docker Scaler's alert: labels `{alertname, service, status}`, annotations `{summary, request}`,
 * `endsAt = startsAt + timeout`. The drop-in mode builds its alerts with this too.
 */
export function seedAlert(alert: SeedAlert): PostableAlert {
  const at = alert.at ?? Date.now()
  return {
    labels: { ...alert.labels, alertname: alert.alertname, service: alert.service, status: alert.status },
    annotations: { summary: alert.summary, request: alert.request },
    startsAt: new Date(at).toISOString(),
    endsAt: new Date(at + (alert.timeout ?? 10_000)).toISOString(),
    ...(alert.generatorURL ? { generatorURL: alert.generatorURL } : {}),
  }
}

/** POSTs alerts to `<url>/api/v2/alerts`; throws E_NOTIFY when Alertmanager does not take them. */
export async function postAlerts(
  url: string,
  alerts: PostableAlert[],
  options: { signal: AbortSignal; headers?: Record<string, string> },
): Promise<void> {
  const endpoint = new URL('api/v2/alerts', url.endsWith('/') ? url : `${url}/`).href
  await postJson(endpoint, alerts, {
    signal: options.signal,
    what: 'alertmanager',
    showPath: true,
    ...(options.headers ? { headers: options.headers } : {}),
  })
}

const STATUS: Record<ScaleEvent['kind'], SeedStatus> = {
  started: 'pending',
  progress: 'pending',
  shadow: 'pending',
  applied: 'success',
  unchanged: 'success',
  failed: 'error',
}

/** Triggers of the Docker Scaler receiver, named after the seed's alerts. */
const SEED_TRIGGERS = new Set(['scale_service', 'scale_nodes', 'reschedule_service'])

/**
 * The alert for one event. Events of the Docker Scaler receiver (trigger `scale_service`,
 * `scale_nodes` or `reschedule_service`) carry the seed's own texts, and become exactly its
 * alerts: alertname = the trigger, service = the event's group (`aws`, `reschedule`,
 * `bad_request` or the service), summary = the message, request = the reason. Group events are
 * described from the event, with a `group` label.
 */
export function eventAlert(
  event: ScaleEvent,
  config: Partial<AlertmanagerNotifierConfig> = {},
): PostableAlert {
  const common = {
    status: STATUS[event.kind],
    at: event.at,
    timeout: config.alert_timeout ?? 10_000,
    ...(config.generator_url ? { generatorURL: config.generator_url } : {}),
  }
  if (SEED_TRIGGERS.has(event.trigger)) {
    return seedAlert({
      ...common,
      alertname: config.alertname ?? event.trigger,
      service: config.service ?? event.group,
      summary: event.message ?? event.reason,
      request: event.reason,
      labels: { ...config.labels },
    })
  }
  const nodes = event.target === 'aws-asg'
  const by = Math.abs(event.to - event.from)
  const request = nodes
    ? `Scale nodes ${event.direction} on: aws, by: ${by}`
    : `Scale service ${event.direction}: ${event.group}`
  const change = nodes
    ? `Changing the number of nodes of ${event.group} on aws from ${event.from} to ${event.to}`
    : `Scaling ${event.group} from ${event.from} to ${event.to} replicas`
  let summary: string
  switch (event.kind) {
    case 'applied':
      summary = `${change}: ${event.reason}`
      break
    case 'started':
      summary = `${change} started: ${event.reason}`
      break
    case 'shadow':
      summary = `Would be ${change.charAt(0).toLowerCase()}${change.slice(1)} (shadow mode): ${event.reason}`
      break
    default:
      summary = event.message ?? event.reason
  }
  return seedAlert({
    ...common,
    alertname: config.alertname ?? (nodes ? 'scale_nodes' : 'scale_service'),
    service: config.service ?? (nodes ? 'aws' : event.group),
    summary,
    request,
    labels: { ...config.labels, group: event.group },
  })
}

export function createAlertmanagerNotifier(config: AlertmanagerNotifierConfig): Notifier {
  return {
    kind: 'alertmanager',
    async notify(event: ScaleEvent, signal: AbortSignal): Promise<void> {
      await postAlerts(config.url, [eventAlert(event, config)], { signal, headers: config.headers })
    },
  }
}
