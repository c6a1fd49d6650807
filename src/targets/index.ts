/**
 * Target kinds, one alphabetical table (KEDA's scalers_builder style): a new kind is one
 * folder under src/targets/ plus one line here.
 */
import { z } from 'zod'
import type { Clock } from '../core/clock.js'
import type { Target } from '../core/types.js'
import type { Logger } from '../engine/log.js'
import { awsAsgTargetSchema, createAwsAsgTarget } from './aws-asg/index.js'
import { createDigitalOceanTarget, digitaloceanTargetSchema } from './digitalocean/index.js'
import { createDockerSwarmTarget, dockerSwarmTargetSchema } from './docker-swarm/index.js'
import { createKubernetesTarget, kubernetesTargetSchema } from './kubernetes/index.js'
import { createPluginTarget, pluginTargetSchema } from './plugin/index.js'
import { createProcessTarget, processTargetSchema } from './process/index.js'

export const targetSchema = z.discriminatedUnion('kind', [
  awsAsgTargetSchema,
  digitaloceanTargetSchema,
  dockerSwarmTargetSchema,
  kubernetesTargetSchema,
  pluginTargetSchema,
  processTargetSchema,
])

export type TargetConfig = z.output<typeof targetSchema>

export interface TargetDeps {
  logger: Logger
  clock: Clock
  /** Where the group's files live (process logs), resolved against the config file. */
  dataDir: string
  /** The config file's directory (plugin modules are resolved against it); default: the working directory. */
  configDir?: string
}

export function createTarget(group: string, config: TargetConfig, deps: TargetDeps): Target {
  switch (config.kind) {
    case 'aws-asg':
      return createAwsAsgTarget(group, config, { logger: deps.logger.child({ group, target: 'aws-asg' }) })
    case 'digitalocean':
      return createDigitalOceanTarget(group, config, {
        logger: deps.logger.child({ group, target: 'digitalocean' }),
        clock: deps.clock,
      })
    case 'docker-swarm':
      return createDockerSwarmTarget(config, deps.logger.child({ group, target: 'docker-swarm' }))
    case 'kubernetes':
      return createKubernetesTarget(group, config, {
        logger: deps.logger.child({ group, target: 'kubernetes' }),
      })
    case 'plugin':
      return createPluginTarget(group, config, {
        logger: deps.logger.child({ group, target: 'plugin' }),
        configDir: deps.configDir ?? process.cwd(),
      })
    case 'process':
      return createProcessTarget(group, config, {
        logger: deps.logger,
        clock: deps.clock,
        logDir: `${deps.dataDir}/logs/${group}`,
      })
  }
}
