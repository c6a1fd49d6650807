/** `tide validate FILE` and `tide schema`: config checks that need no daemon. */
import { ConfigError, valueNote } from '../core/errors.js'
import type { Context } from './context.js'
import { EXIT } from './io.js'

export async function validateCommand(
  ctx: Context,
  file: string,
  flags: { json?: boolean },
): Promise<number> {
  let groups: string[]
  try {
    const loaded = await ctx.io.loadConfigFile(file, ctx.io.env as NodeJS.ProcessEnv)
    groups = Object.keys(loaded.config.groups)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    if (flags.json) ctx.json({ ok: false, file, problems: err.problems })
    const { ce } = ctx
    const n = err.problems.length
    ctx.err(`${ce.red('error:')} ${file} has ${n} problem${n === 1 ? '' : 's'} ${ce.dim(`(${err.code})`)}`)
    for (const p of err.problems)
      ctx.err(`  ${ce.bold(p.path || '(root)')}: ${p.message}${ce.dim(valueNote(p))}`)
    return EXIT.failure
  }
  if (flags.json) ctx.json({ ok: true, file, groups })
  else
    ctx.out(
      `${ctx.c.green('ok')}: ${groups.length} group${groups.length === 1 ? '' : 's'} (${groups.join(', ')})`,
    )
  return EXIT.ok
}

export async function schemaCommand(ctx: Context): Promise<number> {
  ctx.out(JSON.stringify(await ctx.io.configJsonSchema(), null, 2))
  return EXIT.ok
}
