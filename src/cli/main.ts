/**
 * The `tide` command (docs/cli.md). `main` parses, runs one command and returns its exit code:
 * 0 ok, 1 failure, 2 usage or bad input, 3 the daemon cannot be reached, 130 interrupted.
 * It never calls process.exit itself (bin/tide.js sets the exit code), so tests call it in-process.
 */
import { readFileSync } from 'node:fs'
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import { parseDuration } from '../core/duration.js'
import { TideError } from '../core/errors.js'
import type { GroupView } from '../engine/controller.js'
import { DEFAULT_API } from './client.js'
import { schemaCommand, validateCommand } from './config.js'
import { type ClientFlags, Context } from './context.js'
import { EXTRA_COMMANDS } from './commands/index.js'
import { type CliIO, defaultIO, EXIT, exitCodeFor } from './io.js'
import { runCommand } from './run.js'
import { autoCommand, decisionsCommand, type ScaleFlags, scaleCommand } from './scale.js'
import { fetchSnapshot, renderGroup, renderList } from './status.js'
import { watchStatus } from './watch.js'

function version(): string {
  try {
    // Two levels up from both src/cli (tsx) and dist/cli (built).
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string
    }
    return pkg.version
  } catch {
    return 'unknown'
  }
}

// ─── Argument parsers (commander reports their message as a usage error, exit 2) ──

function integer(min: number, max = Number.MAX_SAFE_INTEGER, what = `an integer ≥ ${min}`) {
  return (value: string): number => {
    if (!/^-?\d+$/.test(value.trim()) || Number(value) < min || Number(value) > max) {
      throw new InvalidArgumentError(`must be ${what}.`)
    }
    return Number(value)
  }
}

function duration(min: number) {
  return (value: string): number => {
    const ms = parseDuration(value)
    if (ms === undefined || ms < min) {
      throw new InvalidArgumentError(`must be a duration of at least ${min}ms, like "1s", "500ms" or "2m".`)
    }
    return ms
  }
}

async function statusCommand(
  ctx: Context,
  name: string | undefined,
  flags: ClientFlags & { watch?: boolean; interval: number },
): Promise<number> {
  const client = ctx.client(flags)
  if (flags.watch) return watchStatus(ctx, client, name, flags.interval, flags.json === true)
  const snapshot = await fetchSnapshot(client, name, name && !flags.json ? 5 : 0, ctx.io.now)
  if (flags.json) {
    ctx.json(name ? snapshot.groups[0] : { groups: snapshot.groups })
    return EXIT.ok
  }
  const lines = name
    ? renderGroup(snapshot.groups[0] as GroupView, snapshot.decisions.get(name) ?? [], snapshot.at, ctx.c)
    : renderList(snapshot.groups, snapshot.at, ctx.c)
  for (const line of lines) ctx.out(line)
  return EXIT.ok
}

// ─── The program ─────────────────────────────────────────────────────────────

function clientOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--api <url>', `daemon address (env TIDE_API, default ${DEFAULT_API})`))
    .addOption(new Option('--token <token>', 'bearer token for changes (env TIDE_TOKEN)'))
    .option('--json', 'machine-readable output on stdout')
}

function timeoutOption(): Option {
  return new Option('--timeout <duration>', 'how long --wait waits')
    .argParser(duration(1))
    .default(300_000, '5m')
}

function scaleOptions(cmd: Command): Command {
  return clientOptions(cmd)
    .option('--force', 'skip the cooldown (bounds still apply)')
    .option('--wait', 'show progress until the new instances are ready')
    .addOption(timeoutOption())
    .option('--reason <text>', 'why, for the decision log')
}

function buildProgram(ctx: Context, done: (code: number) => void): Command {
  const program = new Command('tide')
    .description('Tide scales groups of instances to match their load.')
    .version(version(), '-V, --version')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.io.stdout.write(s),
      writeErr: (s) => ctx.io.stderr.write(s),
      outputError: (s, write) => write(`${ctx.ce.red(s.replace(/\n$/, ''))}\n`),
    })
    .showHelpAfterError('(tide --help shows the commands)')
    .addHelpText(
      'after',
      '\nExit codes: 0 ok, 1 failure, 2 usage or bad input, 3 cannot reach the daemon.\nDocs: docs/cli.md',
    )

  program
    .command('run')
    .description('run the daemon: engine, API, routers')
    .requiredOption('-c, --config <file>', 'the config file (YAML)')
    .option('--listen <addr>', 'API address, overriding api.listen (host:port)')
    .option('--log-level <level>', 'trace, debug, info, warn, error or silent')
    .option('--json', 'print where things are as JSON')
    .action(async (flags) => done(await runCommand(ctx, flags)))

  clientOptions(
    program
      .command('status [group]')
      .description('show groups, or one group in detail')
      .option('-w, --watch', 'redraw in place every interval until Ctrl-C')
      .addOption(
        new Option('--interval <duration>', 'how often --watch redraws')
          .argParser(duration(100))
          .default(1000, '1s'),
      ),
  ).action(async (group: string | undefined, flags) => done(await statusCommand(ctx, group, flags)))

  for (const direction of ['up', 'down'] as const) {
    const verb = direction === 'up' ? 'add' : 'remove'
    scaleOptions(
      program
        .command(`${direction} <group>`)
        .description(`${verb} instances (--by N, default 1)`)
        .option('--by <n>', `how many instances to ${verb}`, integer(1), 1),
    ).action(async (group: string, flags: ScaleFlags & { by: number }) =>
      done(await scaleCommand(ctx, group, { by: direction === 'up' ? flags.by : -flags.by }, flags)),
    )
  }

  scaleOptions(
    program
      .command('scale <group>')
      .description('set the number of instances')
      .requiredOption('--to <n>', 'the new size (bounds apply)', integer(0)),
  ).action(async (group: string, flags: ScaleFlags & { to: number }) =>
    done(await scaleCommand(ctx, group, { to: flags.to }, flags)),
  )

  clientOptions(program.command('auto <group>').description('evaluate the group now and act on it'))
    .option('--wait', 'show progress until the new instances are ready')
    .addOption(timeoutOption())
    .action(async (group: string, flags: ScaleFlags) => done(await autoCommand(ctx, group, flags)))

  clientOptions(
    program
      .command('decisions <group>')
      .description("the group's recent decisions, newest first")
      .option('--limit <n>', 'how many (1–1000)', integer(1, 1000, 'an integer from 1 to 1000'), 20),
  ).action(async (group: string, flags) => done(await decisionsCommand(ctx, group, flags)))

  program
    .command('validate <file>')
    .description('check a config file and list every problem')
    .option('--json', 'machine-readable output on stdout')
    .action(async (file: string, flags) => done(await validateCommand(ctx, file, flags)))

  program
    .command('schema')
    .description("print the config file's JSON Schema, for editors")
    .action(async () => done(await schemaCommand(ctx)))

  for (const register of EXTRA_COMMANDS) register(program, ctx, done)

  return program
}

function printError(ctx: Context, err: TideError): void {
  const { ce } = ctx
  ctx.err(`${ce.red('error:')} ${err.message} ${ce.dim(`(${err.code})`)}`)
  if (ctx.io.env.TIDE_DEBUG && err.cause instanceof Error && err.cause.stack) ctx.err(ce.dim(err.cause.stack))
}

/**
 * Runs the `tide` command. `argv` is process.argv (node, script, arguments…); `io` replaces the
 * process's streams, environment, signals and daemon for tests.
 */
export async function main(argv: string[], io: Partial<CliIO> = {}): Promise<number> {
  const ctx = new Context({ ...defaultIO(), ...io })
  let code: number = EXIT.ok
  const program = buildProgram(ctx, (c) => {
    code = c
  })
  try {
    if (argv.length <= 2) {
      program.outputHelp({ error: true })
      return EXIT.usage
    }
    await program.parseAsync(argv, { from: 'node' })
    return code
  } catch (thrown) {
    if (thrown instanceof CommanderError) {
      return thrown.code === 'commander.helpDisplayed' || thrown.code === 'commander.version'
        ? EXIT.ok
        : EXIT.usage
    }
    const err =
      thrown instanceof TideError
        ? thrown
        : new TideError('E_INTERNAL', thrown instanceof Error ? thrown.message : String(thrown), {
            cause: thrown,
          })
    printError(ctx, err)
    return exitCodeFor(err)
  } finally {
    await ctx.close()
  }
}
