/**
 * `tide import do-scaler DIR [-o FILE]`: converts seed 002's configuration
 * (src/import/do-scaler/convert.ts) into a Tide config, lists what did not carry over, and checks
 * the result the way `tide validate` does. Exit 0 when the config is valid, 1 when it is not
 * (it is still printed or written, with the problems), 2 when DIR holds nothing to convert.
 */
import { existsSync, writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { stringify } from 'yaml'
import { ConfigError, valueNote } from '../../core/errors.js'
import {
  convertDoScaler,
  ImportError,
  type ImportNote,
  type ImportResult,
} from '../../import/do-scaler/convert.js'
import type { Context } from '../context.js'
import { EXIT, UsageError } from '../io.js'
import type { RegisterCommand } from './index.js'

/** Token references the importer writes on purpose; every other `${` is the user's text. */
const OWN_REFERENCE = /^\$\{(DIGITALOCEAN_TOKEN|TIDE_BASE_DROPLET|TIDE_SNAPSHOT)_[A-Z0-9_]+\}$/

/** Escapes `${` as `$${` so Tide's `${ENV}` interpolation leaves the user's text alone (user_data scripts). */
export function escapeInterpolation(value: unknown): unknown {
  if (typeof value === 'string')
    return OWN_REFERENCE.test(value) ? value : value.replaceAll('${', () => '$${')
  if (Array.isArray(value)) return value.map(escapeInterpolation)
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, escapeInterpolation(v)]))
  }
  return value
}

function noteLine(n: ImportNote): string {
  return `[${n.level}] ${n.where}: ${n.message}`
}

/** The YAML text: a header with the notes, then the config. */
export function renderImport(result: ImportResult, dir: string): string {
  const header = [
    `Tide config converted from do-scaler (${dir}) by \`tide import do-scaler\`.`,
    `Read from: ${result.files.join(', ')}`,
    'Check it with `tide validate FILE`; docs/migrate/do-scaler.md explains each difference.',
  ]
  if (result.notes.length > 0) header.push('', 'Notes:', ...result.notes.map((n) => `  ${noteLine(n)}`))
  const comment = header.map((l) => (l === '' ? '#' : `# ${l}`)).join('\n')
  return `${comment}\n\n${stringify(escapeInterpolation(result.config), { lineWidth: 0 })}`
}

/** Placeholder values for the variables the importer introduced, so validation does not trip on them. */
function validationEnv(text: string, env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env }
  for (const m of text.matchAll(
    /(?<!\$)\$\{((?:DIGITALOCEAN_TOKEN|TIDE_BASE_DROPLET|TIDE_SNAPSHOT)_[A-Z0-9_]+)\}/g,
  ))
    out[m[1]!] ??= 'placeholder'
  return out
}

async function importDoScaler(
  ctx: Context,
  dir: string,
  flags: { output?: string; force?: boolean; json?: boolean },
): Promise<number> {
  let result: ImportResult
  try {
    result = convertDoScaler(dir)
  } catch (err) {
    if (!(err instanceof ImportError)) throw err
    ctx.err(`${ctx.ce.red('error:')} ${err.message} ${ctx.ce.dim(`(${err.code})`)}`)
    return EXIT.usage
  }
  const text = renderImport(result, dir)
  let problems: ConfigError | undefined
  try {
    const { parseConfigText } = await import('../../config/index.js')
    parseConfigText(text, flags.output ?? 'the converted config', validationEnv(text, ctx.io.env))
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    problems = err
  }
  if (flags.output !== undefined) {
    const path = resolve(flags.output)
    if (existsSync(path) && !flags.force)
      throw new UsageError(`--output: ${flags.output} exists; --force overwrites it`)
    writeFileSync(path, text)
  }
  if (flags.json) {
    ctx.json({
      ok: problems === undefined,
      config: result.config,
      notes: result.notes,
      files: result.files,
      ...(problems ? { problems: problems.problems } : {}),
      ...(flags.output !== undefined ? { output: resolve(flags.output) } : {}),
    })
  } else {
    if (flags.output === undefined) ctx.io.stdout.write(text)
    const { ce } = ctx
    for (const n of result.notes) {
      const label =
        n.level === 'unsupported'
          ? ce.yellow('unsupported')
          : n.level === 'changed'
            ? ce.cyan('changed')
            : ce.dim('info')
      ctx.err(`${label} ${ce.bold(n.where)}: ${n.message}`)
    }
    const groups = Object.keys(result.config.groups)
    if (flags.output !== undefined)
      ctx.err(
        `wrote ${flags.output}: ${groups.length} group${groups.length === 1 ? '' : 's'} (${groups.join(', ')})`,
      )
  }
  if (problems) {
    const { ce } = ctx
    ctx.err(`${ce.red('error:')} the converted config is not valid yet ${ce.dim(`(${problems.code})`)}`)
    for (const p of problems.problems)
      ctx.err(`  ${ce.bold(p.path || '(root)')}: ${p.message}${ce.dim(valueNote(p))}`)
    return EXIT.failure
  }
  return EXIT.ok
}

export const registerImport: RegisterCommand = (program, ctx, done) => {
  const command = program
    .command('import')
    .description("convert another autoscaler's configuration into a Tide config")
  command
    .command('do-scaler <dir>')
    .description(
      'convert do-scaler.cfg and conf.d/*.cfg (with their policies, droplet templates and actions)',
    )
    .option('-o, --output <file>', 'write the config here instead of stdout')
    .option('--force', 'overwrite --output when it exists')
    .option('--json', 'machine-readable output on stdout: { ok, config, notes, files, problems? }')
    .action(async (dir: string, flags: { output?: string; force?: boolean; json?: boolean }) =>
      done(await importDoScaler(ctx, dir, flags)),
    )
}
