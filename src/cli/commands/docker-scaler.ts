/**
 * `tide docker-scaler`: a drop-in for thomasjpfan/docker-scaler (seed 003). It serves the same
 * routes on the same port (8080), configured only by Docker Scaler's environment variables
 * (src/alertmanager/env.ts, docs/migrate/docker-scaler.md), with DOCKER_HOST for the engine and
 * the AWS SDK's own variables for node scaling. Serves its metrics at `/metrics`; with
 * `TIDE_STORE` it keeps alert-group cooldowns in that store file. Runs until Ctrl-C or SIGTERM.
 */
import { resolve } from 'node:path'
import { Option } from 'commander'
import { collectDefaultMetrics, Registry } from 'prom-client'
import { createReceiver, createReceiverServer } from '../../alertmanager/index.js'
import { dockerScalerSettings } from '../../alertmanager/env.js'
import { createLogger } from '../../engine/log.js'
import { Store } from '../../engine/store.js'
import type { Context } from '../context.js'
import { EXIT } from '../io.js'
import { untilSignalled } from '../run.js'
import type { RegisterCommand } from './index.js'

export interface DockerScalerFlags {
  listen?: string
  logLevel?: string
  json?: boolean
}

export async function dockerScalerCommand(ctx: Context, flags: DockerScalerFlags): Promise<number> {
  const { io, c } = ctx
  const env = { ...io.env, ...(flags.listen ? { TIDE_LISTEN: flags.listen } : {}) }
  const settings = dockerScalerSettings(env)
  const logger = createLogger({
    level: flags.logLevel ?? io.env.TIDE_LOG_LEVEL ?? 'info',
    format: flags.json ? 'json' : 'auto',
  })
  for (const note of settings.notes) logger.warn(note)
  const { stop, off } = untilSignalled(ctx)
  // Its own /metrics (Docker Scaler had none), and the cooldowns in TIDE_STORE when given.
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'tide_' })
  const store = settings.store ? Store.open(resolve(settings.store)) : undefined
  const handle = createReceiver(settings.config, {
    logger,
    dir: process.cwd(),
    registry,
    ...(store ? { cooldowns: store } : {}),
  })
  const server = createReceiverServer(handle.receiver, { listen: settings.listen, logger, registry })
  try {
    const url = await server.start()
    const prefix = settings.config.prefix && settings.config.prefix !== '/' ? settings.config.prefix : ''
    if (flags.json) {
      ctx.json({ url, prefix: prefix || null, nodes: handle.receiver.nodesEnabled })
    } else {
      ctx.out(
        `${c.bold(c.cyan('tide docker-scaler'))} is listening on ${url}${prefix ? ` (and ${url}${prefix})` : ''}`,
      )
      ctx.out(
        c.dim(
          `  /v1/scale-service, /v1/reschedule-services, /v1/reschedule-service, /v1/alerts, /v1/ping, /metrics` +
            (handle.receiver.nodesEnabled
              ? ', /v1/scale-nodes'
              : ' (no node backend: /v1/scale-nodes is 404)'),
        ),
      )
      ctx.out(c.dim('Ctrl-C stops it.'))
    }
    await stop
    return EXIT.ok
  } finally {
    off()
    await server.close()
    await handle.close()
    store?.close()
  }
}

export const registerDockerScaler: RegisterCommand = (program, ctx, done) => {
  program
    .command('docker-scaler')
    .description("serve Docker Scaler's routes (drop-in), configured by its environment variables")
    .addOption(new Option('--listen <addr>', 'host:port (env TIDE_LISTEN, default 0.0.0.0:8080)'))
    .option('--log-level <level>', 'trace, debug, info, warn, error or silent')
    .option('--json', 'JSON logs, and the address as JSON on stdout')
    .action(async (flags: DockerScalerFlags) => done(await dockerScalerCommand(ctx, flags)))
}
