/**
 * `tide droplet-autoscale --op info|status|up|down|auto`: seed 000 (DigitalOcean's
 * droplet-autoscale Function) as a command, configured only by its environment variables
 * (src/dropin/droplet-autoscale/env.ts), printing its JSON on stdout. Stateless: run it from
 * cron as the seed ran from a schedule. `--print-config` prints the equivalent Tide config for
 * moving to `tide run` (docs/migrate/droplet-autoscale.md).
 *
 * Exit codes: 0 for a 2xx answer, 2 for bad variables or op (400), 1 for anything else.
 */
import { Option } from 'commander'
import { stringify } from 'yaml'
import { ConfigError } from '../../core/errors.js'
import { readDropinEnv } from '../../dropin/droplet-autoscale/env.js'
import { equivalentGroup, OPS, renderBody, runDropin } from '../../dropin/droplet-autoscale/ops.js'
import { createLogger } from '../../engine/log.js'
import type { Context } from '../context.js'
import { EXIT } from '../io.js'
import type { RegisterCommand } from './index.js'

async function run(
  ctx: Context,
  flags: { op?: string; printConfig?: boolean; timeout?: string },
): Promise<number> {
  const env = ctx.io.env
  if (flags.printConfig) {
    try {
      const config = readDropinEnv(env)
      const name = config.tag.toLowerCase().replace(/[^a-z0-9_-]+/g, '-')
      ctx.out('# The Tide config equivalent to the droplet-autoscale variables (tide run -c FILE).')
      ctx.out('# The token is read from DIGITALOCEAN_TOKEN; never write it into the file.')
      ctx.io.stdout.write(stringify({ groups: { [name]: equivalentGroup(config) } }, { lineWidth: 0 }))
      return EXIT.ok
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      ctx.err(`${ctx.ce.red('error:')} ${err.message} ${ctx.ce.dim(`(${err.code})`)}`)
      return EXIT.usage
    }
  }
  // Logs go to stderr, so stdout holds only the seed's JSON.
  const logger = createLogger({ stream: process.stderr, level: env.TIDE_LOG_LEVEL ?? 'warn' })
  const signal = flags.timeout ? AbortSignal.timeout(Number(flags.timeout) * 1000) : undefined
  const result = await runDropin(flags.op, env, { logger, ...(signal ? { signal } : {}) })
  ctx.io.stdout.write(renderBody(result))
  if (result.status >= 200 && result.status < 300) return EXIT.ok
  return result.status === 400 ? EXIT.usage : EXIT.failure
}

export const registerDropletAutoscale: RegisterCommand = (program, ctx, done) => {
  program
    .command('droplet-autoscale')
    .description("seed 000's droplet cluster operations, configured by its environment variables")
    .addOption(new Option('--op <op>', 'the operation').choices([...OPS]))
    .option('--print-config', 'print the equivalent Tide config (for tide run) and exit')
    .option(
      '--timeout <seconds>',
      'answer within this long: a clone still booting is left for the next run to attach',
    )
    .addHelpText(
      'after',
      '\nVariables: API_TOKEN CLUSTER_TAG BASE_DROPLET SNAPSHOT CLONE_PREFIX LOAD_BALANCER (required);\n' +
        'MAX_DROPLETS_IN_CLUSTER SCALING_INTERVAL SCALE_UP_WHEN_{LOAD,FREE_MEMORY,OUTBOUND_BANDWIDTH}\n' +
        'SCALE_DOWN_WHEN_{LOAD,FREE_MEMORY,OUTBOUND_BANDWIDTH} DIGITALOCEAN_API_URL TIDE_DRAIN\n' +
        'TIDE_BOOT_TIMEOUT TIDE_REMOVE (optional). Docs: docs/migrate/droplet-autoscale.md',
    )
    .action(async (flags: { op?: string; printConfig?: boolean; timeout?: string }) => {
      if (flags.timeout !== undefined && !(Number(flags.timeout) > 0)) {
        ctx.err(
          `${ctx.ce.red('error:')} --timeout must be a number of seconds > 0, not ${JSON.stringify(flags.timeout)}`,
        )
        return done(EXIT.usage)
      }
      done(await run(ctx, flags))
    })
}
