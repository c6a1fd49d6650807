/**
 * Target kinds, one alphabetical table (KEDA's scalers_builder style): a new kind is one
 * folder under src/targets/ plus one line here.
 */
import { z } from 'zod'
import type { Clock } from '../core/clock.js'
import type { Target } from '../core/types.js'
import type { Logger } from '../engine/log.js'
import { createProcessTarget, processTargetSchema } from './process/index.js'

export const targetSchema = z.discriminatedUnion('kind', [processTargetSchema])

export type TargetConfig = z.output<typeof targetSchema>

export interface TargetDeps {
  logger: Logger
  clock: Clock
  /** Where the group's files live (process logs), resolved against the config file. */
  dataDir: string
}

export function createTarget(group: string, config: TargetConfig, deps: TargetDeps): Target {
  switch (config.kind) {
    case 'process':
      return createProcessTarget(group, config, {
        logger: deps.logger,
        clock: deps.clock,
        logDir: `${deps.dataDir}/logs/${group}`,
      })
  }
}
