/**
 * The config file's schema. Every key is declared once here or in its kind's file (target,
 * source, policy, route), with its default and a description; `tide schema` and
 * docs/config.md are generated from these declarations, and unknown keys are errors.
 */
import { z } from 'zod'
import { receiverSchema } from '../alertmanager/config.js'
import { duration, listenAddress } from '../core/schema.js'
import { notifierSchema } from '../notify/index.js'
import { policySchema } from '../policies/index.js'
import { routeSchema } from '../router/schema.js'
import { sourceSchema } from '../sources/index.js'
import { targetSchema } from '../targets/index.js'

const GROUP_NAME = /^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$/

const directionSchema = z
  .object({
    cooldown: duration()
      .optional()
      .describe(
        'No metric-driven change in this direction within this long after any change. Default: `cooldown`.',
      ),
    stabilization: duration()
      .optional()
      .describe(
        'Scale-down acts on the highest recommendation of this window, scale-up on the lowest. Default: 300s for scale-down, 0s for scale-up (as HPA).',
      ),
    max_step: z
      .number()
      .int()
      .positive()
      .optional()
      .describe('At most this many instances added (or removed) by one decision. Default: no limit.'),
  })
  .strict()

export const groupSchema = z
  .object({
    min: z
      .number()
      .int()
      .min(0)
      .default(1)
      .describe('Fewest instances. `0` lets the group sleep (needs a route).'),
    max: z.number().int().min(1).describe('Most instances.'),
    interval: duration('2s').describe('How often the group is evaluated (observe → decide → act).'),
    target: targetSchema.describe('Where instances live and how to change their number.'),
    route: routeSchema
      .optional()
      .describe("Tide's router in front of the group: balances, counts concurrency, drains before removal."),
    sources: z
      .array(sourceSchema)
      .optional()
      .describe(
        'Where metrics come from. Default: `router` when the group has a route, plus `process` for a process target, `digitalocean` (the Monitoring API, with the target’s token and endpoint) for a digitalocean target.',
      ),
    policies: z
      .array(policySchema)
      .min(1)
      .describe('How to decide the size; the largest recommendation wins.'),
    cooldown: duration('30s').describe('No metric-driven change within this long after any change.'),
    scale_up: directionSchema.prefault({}).describe('Scale-up settings.'),
    scale_down: directionSchema.prefault({}).describe('Scale-down settings.'),
    stale_after: duration()
      .optional()
      .describe('A reading older than this counts as missing. Default: three intervals.'),
    shadow: z
      .boolean()
      .default(false)
      .describe('Compute and log decisions, show what would happen, never touch the target.'),
    notify: z
      .array(notifierSchema)
      .default([])
      .describe(
        'Who hears about scaling: every operation started, its progress and its outcome (applied, failed, unchanged), and shadow decisions. Never blocks or fails a scale.',
      ),
  })
  .strict()

export const configSchema = z
  .object({
    api: z
      .object({
        listen: listenAddress().default('127.0.0.1:7070').describe('Where the HTTP API listens.'),
        token: z
          .string()
          .min(16, 'must be at least 16 characters')
          .optional()
          .describe('Bearer token for mutating calls. Required when `listen` is not a loopback address.'),
      })
      .strict()
      .prefault({})
      .describe('The HTTP API.'),
    store: z
      .object({
        path: z
          .string()
          .min(1)
          .default('.tide/tide.db')
          .describe('SQLite file, relative to the config file.'),
        history: duration('1h').describe('How long metric history is kept.'),
        decisions: z.number().int().min(10).default(1000).describe('How many decisions are kept per group.'),
      })
      .strict()
      .prefault({ history: '1h' })
      .describe('The embedded store.'),
    log: z
      .object({
        level: z
          .enum(['trace', 'debug', 'info', 'warn', 'error', 'silent'])
          .default('info')
          .describe('Log level (env TIDE_LOG_LEVEL overrides).'),
        format: z
          .enum(['auto', 'json', 'pretty'])
          .default('auto')
          .describe(
            '`pretty` lines for a terminal, `json` for machines; `auto` picks by whether stderr is a TTY.',
          ),
      })
      .strict()
      .prefault({})
      .describe('Logging.'),
    receiver: receiverSchema
      .optional()
      .describe(
        "Alertmanager webhook receiver and Docker Scaler's routes (`/v1/alerts`, `/v1/scale-service`, `/v1/scale-nodes`, `/v1/reschedule-services`, `/v1/ping`) on the API: scale Swarm services and node groups from alerts. See docs/receiver.md.",
      ),
    groups: z
      .record(
        z.string().regex(GROUP_NAME, 'group names are lowercase letters, digits, "-" and "_" (at most 63)'),
        groupSchema,
      )
      .default({})
      .describe(
        'The groups Tide scales, by name. May be empty only when a `receiver` is configured (Tide then scales from alerts alone).',
      ),
  })
  .strict()
  .refine((config) => config.receiver !== undefined || Object.keys(config.groups).length > 0, {
    path: ['groups'],
    message: 'needs at least one group, or a `receiver` section (to scale Swarm services from alerts)',
    // Reported with the other problems, not only once they are fixed.
    when: ({ value }) => {
      const v = value as { groups?: unknown } | null
      return typeof v === 'object' && v !== null && (v.groups === undefined || isPlainObject(v.groups))
    },
  })

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export type Config = z.output<typeof configSchema>
export type GroupConfig = z.output<typeof groupSchema>
export type ConfigInput = z.input<typeof configSchema>
