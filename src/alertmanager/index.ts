/**
 * The Alertmanager receiver and Docker Scaler's routes (docs/receiver.md): built from the
 * config's `receiver` section, mounted on the daemon's API (`tide run`) or served alone
 * (`tide docker-scaler`).
 */
import type { Logger } from '../engine/log.js'
import { createNotifier, Dispatcher } from '../notify/index.js'
import { AsgApi, Ec2Api } from '../targets/aws-asg/index.js'
import { SwarmApi } from '../targets/docker-swarm/client.js'
import type { Registry } from 'prom-client'
import type { ReceiverConfig } from './config.js'
import { receiverMetrics } from './metrics.js'
import { type CooldownStore, Receiver } from './receiver.js'

export { type ReceiverConfig, type ReceiverInput, receiverSchema } from './config.js'
export { type Action, type CooldownStore, memoryCooldowns, type Outcome, Receiver } from './receiver.js'
export { receiverMetrics, type ReceiverMetrics } from './metrics.js'
export { apiRoutes, receiverRoutes } from './routes.js'
export { createReceiverServer } from './server.js'

export interface ReceiverHandle {
  receiver: Receiver
  dispatcher: Dispatcher
  /** Stops waits in progress, gives queued notifications a moment, closes the clients. */
  close(): Promise<void>
}

export interface CreateReceiverDeps {
  logger: Logger
  /** The config file's directory, for relative paths. */
  dir: string
  /** Where the receiver's metrics go (the daemon's `/metrics` registry); none without. */
  registry?: Registry
  /** Where alert-group cooldowns are kept (the daemon's store); in memory without. */
  cooldowns?: CooldownStore
}

/** Builds the receiver with its Docker and AWS clients, its notifiers and its metrics. */
export function createReceiver(config: ReceiverConfig, deps: CreateReceiverDeps): ReceiverHandle {
  const logger = deps.logger.child({ component: 'receiver' })
  const swarm = new SwarmApi({ host: config.host, callTimeout: config.call_timeout, logger })
  const aws = config.nodes && {
    region: config.nodes.region,
    endpoint: config.nodes.endpoint,
    envFile: config.nodes.env_file,
    callTimeout: config.call_timeout,
    logger,
  }
  const asg = aws ? new AsgApi(aws) : undefined
  // EC2 finds a leaving instance's Swarm node by hostname or address (nodes.drain).
  const ec2 = aws && config.nodes?.drain.enabled ? new Ec2Api(aws) : undefined
  // The gauge reads `receiver` at scrape time, once it exists.
  const metrics = deps.registry
    ? receiverMetrics(deps.registry, (): boolean => receiver.waiter.waiting)
    : undefined
  const dispatcher = new Dispatcher(
    config.notify.map((n) => ({
      notifier: createNotifier(n, { logger, dir: deps.dir }),
      on: n.on,
      timeout: n.timeout,
    })),
    logger,
    metrics ? { delivered: (kind, result) => metrics.notification(kind, result) } : {},
  )
  const receiver = new Receiver(config, {
    logger,
    swarm,
    asg,
    ...(ec2 ? { ec2 } : {}),
    events: dispatcher.size > 0 ? (e) => dispatcher.emit(e) : undefined,
    ...(deps.cooldowns ? { cooldowns: deps.cooldowns } : {}),
    ...(metrics ? { metrics } : {}),
  })
  return {
    receiver,
    dispatcher,
    async close() {
      await receiver.close()
      await dispatcher.close()
      asg?.close()
      ec2?.close()
    },
  }
}
