/**
 * The `process` target: local processes, Tide's embedded default and its end-to-end test bed.
 *
 * ```yaml
 * target:
 *   kind: process
 *   command: node examples/app/server.js   # or an argv: [node, examples/app/server.js]
 *   env: { WORK_MS: 25 }
 *   health: /healthz                       # or { path, interval, timeout, live_interval, live_failures }
 * ```
 *
 * Each instance is one process, started as `sh -c "exec <command>"` (so its pid is the app's
 * own and `$PORT` works in the command line), with `PORT` (a free port on `host`), `HOST`,
 * `TIDE_INSTANCE` (`<group>-<n>`, n never reused in a run) and `TIDE_GROUP` in its
 * environment, on top of Tide's own environment without its secrets (`inherit_env`, env.ts).
 * It is ready when `GET <health.path>` answers 2xx; with `health.live_interval` set, a ready
 * instance that fails `health.live_failures` checks in a row is killed and replaced. Its
 * output goes to `<logDir>/<instance>.log`. Instances are Tide's children: they stop when Tide stops. If Tide
 * is killed with SIGKILL they cannot; `<logDir>/instances.json` lists them, and the next Tide
 * stops them when it starts (leftovers.ts).
 */
import { resolve } from 'node:path'
import { z } from 'zod'
import { type Clock, systemClock } from '../../core/clock.js'
import { duration } from '../../core/schema.js'
import { BASE_ENV, SECRET_PATTERNS } from './env.js'
import { type ProcessLogger, ProcessTarget } from './target.js'

export { BASE_ENV, type InheritEnv, SECRET_PATTERNS } from './env.js'
export { ProcessStartError, ProcessTargetClosedError } from './errors.js'
export type { ProcessLogger } from './target.js'
export { ProcessTarget } from './target.js'

/** Variables Tide sets for each instance; `env` may not set them. */
const RESERVED_ENV = ['PORT', 'TIDE_INSTANCE', 'TIDE_GROUP']

/** `a`, `b` for a description (patterns hold `*`, which Markdown would read as emphasis). */
const code = (names: readonly string[]) => names.map((n) => `\`${n}\``).join(', ')

const positive = (what: string) =>
  [(ms: number) => ms > 0, { message: `${what} must be longer than 0` }] as const

const healthObjectSchema = z
  .object({
    path: z
      .string()
      .startsWith('/', 'must start with "/"')
      .default('/healthz')
      .describe('Path GET on each instance; a 2xx answer means ready.'),
    interval: duration('50ms')
      .refine(...positive('interval'))
      .describe(
        'Time between checks while an instance starts. Short, because every check saved is latency saved on a cold start. While the port still refuses connections (the app is not listening yet) checks repeat every 5ms whatever this says: a refused connect costs tens of microseconds.',
      ),
    timeout: duration('1s')
      .refine(...positive('timeout'))
      .describe('How long one check may take before it counts as failed.'),
    live_interval: duration('0s').describe(
      'Time between checks of a ready instance; `0s` (the default) checks only while it starts. Off by default because the router already stops sending to an instance whose connections fail; turn it on for an app that can hang or break while still accepting connections.',
    ),
    live_failures: z
      .number()
      .int('must be a whole number')
      .min(1, 'must be at least 1')
      .default(3)
      .describe(
        'With `live_interval` on: a ready instance whose check fails this many times in a row is killed (SIGKILL to its process group) and replaced, like a crash.',
      ),
  })
  .strict()

const healthSchema = z
  .union([
    z.string().startsWith('/', 'must start with "/"').describe('Shorthand for `{ path: ... }`.'),
    healthObjectSchema,
  ])
  .transform((value) => (typeof value === 'string' ? healthObjectSchema.parse({ path: value }) : value))

const restartSchema = z
  .object({
    backoff: duration('1s').describe('Wait before replacing an instance after its first failure in a row.'),
    max_backoff: duration('30s').describe('The wait doubles with each failure in a row, up to this.'),
    reset_after: duration('60s').describe(
      'An instance that stayed ready this long before it failed starts a new count of failures.',
    ),
  })
  .strict()
  .refine((r) => r.max_backoff >= r.backoff, {
    message: 'must be at least backoff',
    path: ['max_backoff'],
  })

/**
 * `{}` for `.prefault()`: every field has its default. The cast is needed because `duration()`'s
 * return type (a union of with and without a default) does not mark the key optional.
 */
const EVERY_DEFAULT = {} as never

export const processTargetSchema = z
  .object({
    kind: z.literal('process').describe('Local processes started and stopped by Tide.'),
    command: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .describe(
        'What each instance runs: a command line, run as `sh -c "exec <command>"` (so `$PORT` works), or an argv list run without a shell.',
      ),
    cwd: z
      .string()
      .min(1)
      .optional()
      .describe(
        "Working directory of the instances, relative to the config file's directory. Default: that directory.",
      ),
    env: z
      .record(
        z
          .string()
          .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a variable name (letters, digits, _)')
          .refine((name) => !RESERVED_ENV.includes(name), { message: 'is set by Tide for each instance' }),
        z.union([z.string(), z.number(), z.boolean()]).transform(String),
      )
      .default({})
      .describe(
        "Extra environment variables for every instance, on top of what `inherit_env` passes of Tide's own environment. Always passed, whatever `inherit_env` says: the way to give an instance a secret on purpose (`DB_URL: ${DB_URL}`).",
      ),
    inherit_env: z
      .union(
        [
          z.boolean(),
          z.literal('safe'),
          z.array(
            z
              .string()
              .regex(
                /^[A-Za-z_*][A-Za-z0-9_*]*$/,
                'must be a variable name or a pattern with * (such as LC_*)',
              ),
          ),
        ],
        { error: 'must be safe, true, false, or a list of variable names and patterns such as LC_*' },
      )
      .default('safe')
      .describe(
        `Which of Tide's own environment variables the instances inherit. \`safe\` (the default): all except secrets, so an app sees its usual environment but not the credentials Tide drives clouds with; left out are the variables the config reads with \`\${NAME}\`, and names matching (in any case) ${code(SECRET_PATTERNS)}. \`true\`: all of them, secrets included. \`false\`: only ${code(BASE_ENV)}. A list: exactly the names it matches (\`*\` matches any characters: \`[PATH, HOME, "LC_*", "NODE_*"]\`). Whatever this says, instances get HOST, \`env\`, PORT, TIDE_INSTANCE and TIDE_GROUP.`,
      ),
    host: z
      .string()
      .min(1)
      .regex(/^[^\s/[\]]+$/, 'must be a host name or IP address, without a port')
      .default('127.0.0.1')
      .describe('Address the instances listen on (passed as HOST) and Tide connects to.'),
    health: healthSchema
      .prefault(EVERY_DEFAULT)
      .describe(
        'When an instance is ready (and, with `live_interval`, whether it still is): a path (`/healthz`) or `{ path, interval, timeout, live_interval, live_failures }`.',
      ),
    start_timeout: duration('30s')
      .refine(...positive('start_timeout'))
      .describe(
        'An instance not ready this long after it was started is killed and counts as a failed start.',
      ),
    stop_grace: duration('10s').describe('Time between SIGTERM and SIGKILL when an instance is stopped.'),
    restart: restartSchema
      .prefault(EVERY_DEFAULT)
      .describe(
        'Replacing instances that exit without being asked (crash, failed start, killed from outside) or fail their liveness checks.',
      ),
    remove_order: z
      .enum(['newest', 'oldest'])
      .default('newest')
      .describe(
        'Which ready instances go first when the group shrinks. Instances not yet ready always go before ready ones.',
      ),
  })
  .strict()

export type ProcessTargetConfig = z.output<typeof processTargetSchema>

export interface ProcessTargetDeps {
  logger?: ProcessLogger
  clock?: Clock
  /**
   * Where instance logs go (`<logDir>/<instance>.log`), relative to the working directory.
   * @default `.tide/logs/<group>`
   */
  logDir?: string
}

/**
 * The returned target implements every optional method of Target (start, watch, close).
 * @param config a config parsed by processTargetSchema; a relative `cwd` has already been
 *   resolved against the config file's directory by the caller, or is taken from process.cwd().
 */
export function createProcessTarget(
  group: string,
  config: ProcessTargetConfig,
  deps: ProcessTargetDeps = {},
): ProcessTarget {
  return new ProcessTarget(
    group,
    {
      command: config.command,
      cwd: resolve(config.cwd ?? '.'),
      env: config.env,
      inherit_env: config.inherit_env,
      host: config.host,
      health: config.health,
      start_timeout: config.start_timeout,
      stop_grace: config.stop_grace,
      restart: config.restart,
      remove_order: config.remove_order,
    },
    resolve(deps.logDir ?? `.tide/logs/${group}`),
    deps.clock ?? systemClock,
    deps.logger,
  )
}
