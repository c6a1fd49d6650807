/**
 * Notifier kinds, one alphabetical table: a new kind is one file here plus one line in the
 * schema union and one case in createNotifier.
 */
import { z } from 'zod'
import type { Notifier } from '../core/types.js'
import type { Logger } from '../engine/log.js'
import { alertmanagerNotifierSchema, createAlertmanagerNotifier } from './alertmanager.js'
import { createExecNotifier, execNotifierSchema } from './exec.js'
import { createSlackNotifier, slackNotifierSchema } from './slack.js'
import { createWebhookNotifier, webhookNotifierSchema } from './webhook.js'

export const notifierSchema = z.discriminatedUnion('kind', [
  alertmanagerNotifierSchema,
  execNotifierSchema,
  slackNotifierSchema,
  webhookNotifierSchema,
])

export type NotifierConfig = z.output<typeof notifierSchema>

export interface NotifierDeps {
  logger: Logger
  /** The config file's directory, for relative paths (executables of `exec`). */
  dir: string
}

export function createNotifier(config: NotifierConfig, deps: NotifierDeps): Notifier {
  switch (config.kind) {
    case 'alertmanager':
      return createAlertmanagerNotifier(config)
    case 'exec':
      return createExecNotifier(config, deps)
    case 'slack':
      return createSlackNotifier(config)
    case 'webhook':
      return createWebhookNotifier(config)
  }
}

export { Dispatcher } from './dispatch.js'
