/**
 * Settings every notifier kind shares: which events it hears and how long one delivery may take.
 */
import { z } from 'zod'
import { duration } from '../core/schema.js'
import type { ScaleEvent } from '../core/types.js'

export const EVENT_KINDS = [
  'started',
  'progress',
  'applied',
  'failed',
  'unchanged',
  'shadow',
] as const satisfies Array<ScaleEvent['kind']>

/** Fields every notifier kind has; spread into each kind's `z.object({...})`. */
export const notifierCommon = {
  on: z
    .array(z.enum(EVENT_KINDS))
    .min(1)
    .optional()
    .describe(
      'Which events to send. Default: every event (`started`, `progress`, `applied`, `failed`, `unchanged`, `shadow`).',
    ),
  timeout: duration('10s').describe('How long one delivery may take before it is abandoned and logged.'),
}

export interface NotifierCommon {
  on?: Array<ScaleEvent['kind']>
  timeout: number
}

/** One line for people: "web: scale up 1 → 3 applied in 420ms". */
export function eventSummary(event: ScaleEvent): string {
  const change = `${event.from} → ${event.to}`
  switch (event.kind) {
    case 'started':
      return `${event.group}: scaling ${event.direction} ${change} started (${event.reason})`
    case 'progress':
      return `${event.group}: scaling ${change}: ${event.message ?? ''}`
    case 'applied':
      return `${event.group}: scaled ${event.direction} ${change} in ${event.durationMs ?? 0}ms`
    case 'failed':
      return `${event.group}: scaling ${event.direction} ${change} failed: ${event.message ?? 'unknown error'}`
    case 'unchanged':
      return `${event.group}: scaling ${change} changed nothing: ${event.message ?? ''}`
    case 'shadow':
      return `${event.group}: would scale ${event.direction} ${change} (shadow mode): ${event.reason}`
  }
}
