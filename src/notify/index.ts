/**
 * Notifier kinds, one alphabetical table: a new kind is one file here plus one line in the
 * schema union and one case in createNotifier.
 */
import { z } from 'zod'
import type { Notifier } from '../core/types.js'
import type { Logger } from '../engine/log.js'
import { createWebhookNotifier, webhookNotifierSchema } from './webhook.js'

export const notifierSchema = z.discriminatedUnion('kind', [webhookNotifierSchema])

export type NotifierConfig = z.output<typeof notifierSchema>

export interface NotifierDeps {
  logger: Logger
  /** The config file's directory, for relative paths (executables of `exec`). */
  dir: string
}

export function createNotifier(config: NotifierConfig, _deps: NotifierDeps): Notifier {
  switch (config.kind) {
    case 'webhook':
      return createWebhookNotifier(config)
  }
}

export { Dispatcher } from './dispatch.js'
