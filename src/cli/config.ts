/** `tide validate FILE` and `tide schema`: config checks that need no daemon. */
import type { LoadedConfig } from '../config/index.js'
import { ConfigError, type ConfigProblem, TideError, valueNote } from '../core/errors.js'
import type { Context } from './context.js'
import { EXIT } from './io.js'

export async function validateCommand(
  ctx: Context,
  file: string,
  flags: { json?: boolean },
): Promise<number> {
  let groups: string[]
  let receiver = false
  try {
    const loaded = await ctx.io.loadConfigFile(file, ctx.io.env as NodeJS.ProcessEnv)
    groups = Object.keys(loaded.config.groups)
    receiver = loaded.config.receiver !== undefined
    const problems = await pluginProblems(loaded)
    if (problems.length > 0) throw new ConfigError(problems, loaded.path)
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
  if (flags.json) ctx.json({ ok: true, file, groups, receiver })
  else {
    const list = groups.length > 0 ? ` (${groups.join(', ')})` : ''
    const plus = receiver ? ', and the Alertmanager receiver' : ''
    ctx.out(`${ctx.c.green('ok')}: ${groups.length} group${groups.length === 1 ? '' : 's'}${list}${plus}`)
  }
  return EXIT.ok
}

/**
 * Plugin targets are imported and checked as `tide run` would (the module loads, exports
 * `createTarget`, which returns an object with status() and scale()), without being started.
 */
async function pluginProblems(loaded: LoadedConfig): Promise<ConfigProblem[]> {
  const problems: ConfigProblem[] = []
  for (const [name, group] of Object.entries(loaded.config.groups)) {
    if (group.target?.kind !== 'plugin') continue
    const { checkPlugin } = await import('../targets/plugin/index.js')
    try {
      await checkPlugin(name, group.target, loaded.dir)
    } catch (err) {
      if (!(err instanceof TideError)) throw err
      problems.push({ path: `groups.${name}.target.module`, message: `${err.message} (${err.code})` })
    }
  }
  return problems
}

export async function schemaCommand(ctx: Context): Promise<number> {
  ctx.out(JSON.stringify(await ctx.io.configJsonSchema(), null, 2))
  return EXIT.ok
}
