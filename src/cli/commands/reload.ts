/**
 * `tide reload [--api URL] [--json]`: asks the running daemon to read its config file again
 * (`POST /v1/reload`, the same as sending `tide run` a SIGHUP) and prints what changed. Exit 0
 * when the file was applied (or changed nothing), 1 when it has problems (E_CONFIG, every problem
 * listed) or changes something only a restart can (E_RELOAD_REFUSED, every such path listed);
 * in both cases the daemon runs on unchanged. 3 when no daemon answers.
 */
import type { ReloadSummary } from '../../engine/controller.js'
import type { ClientFlags, Context } from '../context.js'
import { EXIT } from '../io.js'
import type { RegisterCommand } from './index.js'

export async function reloadCommand(ctx: Context, flags: ClientFlags): Promise<number> {
  const client = ctx.client(flags)
  const summary = await client.post<ReloadSummary>('/v1/reload')
  if (flags.json) {
    ctx.json(summary)
    return EXIT.ok
  }
  const { c } = ctx
  if (!summary.changed) {
    ctx.out(`${c.green('reloaded')} ${summary.file}: no change`)
    return EXIT.ok
  }
  ctx.out(`${c.green('reloaded')} ${summary.file}; applied now:`)
  const names = Object.keys(summary.groups)
  const width = Math.max(...names.map((n) => n.length))
  for (const name of names) {
    const prefix = `groups.${name}.`
    const fields = summary.groups[name]!.map((p) => (p.startsWith(prefix) ? p.slice(prefix.length) : p))
    ctx.out(`  ${c.bold(name.padEnd(width))}  ${fields.join(', ')}`)
  }
  return EXIT.ok
}

export const registerReload: RegisterCommand = (program, ctx, done) => {
  program
    .command('reload')
    .description("read the daemon's config file again and apply what changed (as SIGHUP does)")
    .option('--api <url>', 'daemon address (env TIDE_API, default http://127.0.0.1:7070)')
    .option('--token <token>', 'bearer token for changes (env TIDE_TOKEN)')
    .option('--json', 'machine-readable output on stdout')
    .action(async (flags: ClientFlags) => done(await reloadCommand(ctx, flags)))
}
