/**
 * `tide import do-scaler DIR`: seed 002's configuration (reference/seeds.md §2.3) as a Tide
 * config. Each `conf.d/*.cfg` becomes a group named after the file; its JSON policies become
 * `threshold` policies over a `scrape` source reading each droplet's do-agent; the built-in
 * actions become the `digitalocean` target's settings and the group's bounds (the JSON droplet
 * template becomes the target's `template`, so new droplets are made as do-scaler made them);
 * custom actions
 * become `exec` actions (src/notify/exec.ts). Everything that does not carry over is a note
 * naming the file, the section and the key.
 *
 * Pure apart from reading DIR: `convertDoScaler` returns the config object and the notes; the
 * command (src/cli/commands/import.ts) prints, writes and validates.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { basename, join, relative, resolve } from 'node:path'
import { TideError } from '../../core/errors.js'
import { parseNamePattern } from '../../targets/digitalocean/names.js'
import { Ini, IniError } from './ini.js'

export interface ImportNote {
  /** `unsupported`: dropped; `changed`: converted with a different behaviour; `info`: for the record. */
  level: 'unsupported' | 'changed' | 'info'
  /** File relative to DIR, with `[section] key` where there is one. */
  where: string
  message: string
}

export interface ImportResult {
  /** A Tide config (as written in YAML: durations as text). */
  config: { groups: Record<string, Record<string, unknown>> }
  notes: ImportNote[]
  /** The files read, relative to DIR. */
  files: string[]
}

export class ImportError extends TideError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('E_IMPORT', message, { status: 400, ...options })
  }
}

const BUILTIN = {
  create: 'digitalocean_create_droplet',
  destroy: 'digitalocean_destroy_droplet',
  health: 'health_check_tcp',
} as const
const BUILTINS = new Set<string>(Object.values(BUILTIN))

/** Keys each section may have (seeds.md §2.3); anything else is reported. */
const KNOWN_KEYS: Record<string, string[]> = {
  scaler: ['do_token', 'tag_name', 'policy_files', 'policy_dir', 'action_dir'],
  'scaler.metrics': ['address', 'port'],
  [BUILTIN.create]: ['do_token', 'max', 'droplet', 'droplet_dir'],
  [BUILTIN.destroy]: ['do_token', 'min'],
  [BUILTIN.health]: ['address', 'ports', 'timeout', 'interval', 'max_tries'],
}

/** do-agent address attributes (python-digitalocean Droplet fields) and the README's spelling. */
const ADDRESSES: Record<string, 'private' | 'public' | 'ipv6'> = {
  private_ip_address: 'private',
  ip_address: 'public',
  public_ip_address: 'public',
  ip_v6_address: 'ipv6',
}

/** do-agent families with one series: selecting by name alone picks what do-scaler picked. */
const SINGLE_SERIES = /^(node_load(1|5|15)|node_memory_[A-Za-z_]+_bytes)$/

const METRIC_NAME = /^[A-Za-z_:][A-Za-z0-9_:.]*$/
const GROUP_NAME = /^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$/

interface Sample {
  family?: unknown
  name?: unknown
}
interface SeedCondition {
  name?: unknown
  samples?: unknown
  reducer?: unknown
  operator?: unknown
  threshold?: unknown
  function?: unknown
}
interface SeedPolicy {
  name?: unknown
  actions?: unknown
  match?: unknown
  conditions?: unknown
}

const OPERATORS = new Set(['<', '<=', '>', '>=', '=='])
const FUNCTIONS = new Set(['min', 'max', 'median', 'mean'])
const REDUCERS = new Set(['+', '-', '*', '/'])

function readText(path: string, dir: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new ImportError(
      `cannot read ${relative(dir, path) || path}: ${code === 'ENOENT' ? 'no such file' : String(err)}`,
    )
  }
}

function parseIniFile(path: string, dir: string): Ini {
  try {
    return Ini.parse(readText(path, dir), relative(dir, path))
  } catch (err) {
    if (err instanceof IniError) throw new ImportError(err.message, { cause: err })
    throw err
  }
}

/** Finds do-scaler.cfg: DIR itself, or the install layout's DIR/do-scaler/. */
function findBaseConfig(dir: string): string | undefined {
  for (const candidate of [join(dir, 'do-scaler.cfg'), join(dir, 'do-scaler', 'do-scaler.cfg')]) {
    if (existsSync(candidate)) return candidate
  }
  return undefined
}

/** A group name from a file name: `Web Servers.cfg` → `web-servers`. */
export function groupNameFor(file: string): string {
  const name = basename(file, '.cfg')
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^[-_]+|[-_]+$/g, '')
    .slice(0, 63)
  return GROUP_NAME.test(name) ? name : `group-${name || 'unnamed'}`.slice(0, 63)
}

function num(text: string | undefined): number | undefined {
  if (text === undefined || text.trim() === '') return undefined
  const n = Number(text.trim())
  return Number.isFinite(n) ? n : undefined
}

function int(text: string | undefined): number | undefined {
  const n = num(text)
  return n !== undefined && Number.isInteger(n) ? n : undefined
}

/** Converts DIR; throws ImportError when there is nothing to convert or a file cannot be read. */
export function convertDoScaler(dirArg: string): ImportResult {
  const dir = resolve(dirArg)
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new ImportError(`${dirArg} is not a directory`)
  const notes: ImportNote[] = []
  const files: string[] = []
  const note = (level: ImportNote['level'], where: string, message: string) =>
    notes.push({ level, where, message })

  // ─── do-scaler.cfg: [scheduler] interval, confd_dir ───
  let interval = 120
  let confd = join(dir, 'conf.d')
  const basePath = findBaseConfig(dir)
  if (basePath === undefined) {
    note('changed', 'do-scaler.cfg', 'not found: every group gets interval 120s (do-scaler had no default)')
  } else {
    const baseRel = relative(dir, basePath)
    files.push(baseRel)
    const base = parseIniFile(basePath, dir)
    const got = base.get('scheduler', 'interval')
    const seconds = num(got)
    if (got === undefined) {
      note('changed', `${baseRel} [scheduler] interval`, 'missing (do-scaler would crash): using 120s')
    } else if (seconds === undefined || seconds <= 0) {
      note(
        'changed',
        `${baseRel} [scheduler] interval`,
        `${JSON.stringify(got)} is not a number of seconds: using 120s`,
      )
    } else interval = seconds
    const confdDir = base.get('scheduler', 'confd_dir')
    if (confdDir) confd = resolve(join(basePath, '..'), confdDir)
    else if (!existsSync(confd)) confd = join(basePath, '..', 'conf.d')
    for (const section of base.sectionNames()) {
      for (const key of base.ownKeys(section)) {
        if (section === 'scheduler' && (key === 'interval' || key === 'confd_dir')) continue
        note('unsupported', `${baseRel} [${section}] ${key}`, 'unknown setting: ignored')
      }
    }
  }

  if (!existsSync(confd) || !statSync(confd).isDirectory()) {
    throw new ImportError(`no conf.d directory at ${relative(dir, confd) || confd}: nothing to import`)
  }
  const names = readdirSync(confd).sort()
  const cfgs = names.filter((n) => n.endsWith('.cfg'))
  if (cfgs.length === 0) {
    const examples = names.filter((n) => n.endsWith('.cfg.example'))
    throw new ImportError(
      `no scaler configs (*.cfg) in ${relative(dir, confd) || confd}` +
        (examples.length > 0
          ? `; do-scaler ignores ${examples.join(', ')} too: copy one to a .cfg name to use it`
          : ''),
    )
  }

  const groups: Record<string, Record<string, unknown>> = {}
  const tokens = new Map<string, string>()
  for (const file of cfgs) {
    const path = join(confd, file)
    const rel = relative(dir, path)
    files.push(rel)
    const name = groupNameFor(file)
    if (groups[name]) {
      note('unsupported', rel, `group name "${name}" is already taken by another file: skipped`)
      continue
    }
    const group = convertScaler(parseIniFile(path, dir), { dir, confd, rel, interval, files, note })
    if (group === undefined) continue
    if (group.token !== undefined) tokens.set(name, group.token)
    groups[name] = group.config
  }
  if (Object.keys(groups).length === 0)
    throw new ImportError('no scaler config could be converted (see the notes)')

  // Tokens are secrets: never copied into the YAML. One token for all → DIGITALOCEAN_TOKEN.
  const distinct = new Set(tokens.values())
  if (distinct.size > 1) {
    for (const name of tokens.keys()) {
      const variable = `DIGITALOCEAN_TOKEN_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`
      const target = groups[name]!.target as Record<string, unknown>
      target.token = `\${${variable}}`
      note('info', `groups.${name}.target.token`, `the do_token was not copied: set ${variable}`)
    }
  } else if (distinct.size === 1) {
    note('info', 'do_token', 'the token was not copied into the config: set DIGITALOCEAN_TOKEN')
  }
  return { config: { groups }, notes, files }
}

interface ScalerContext {
  dir: string
  confd: string
  rel: string
  interval: number
  files: string[]
  note: (level: ImportNote['level'], where: string, message: string) => void
}

/** One conf.d/*.cfg → one group (undefined when it cannot be converted at all). */
function convertScaler(
  ini: Ini,
  ctx: ScalerContext,
): { config: Record<string, unknown>; token?: string } | undefined {
  const { rel, note } = ctx
  const at = (section: string, key?: string) => `${rel} [${section}]${key ? ` ${key}` : ''}`

  if (!ini.hasSection('scaler')) {
    note('unsupported', rel, 'no [scaler] section (do-scaler would crash): file skipped')
    return undefined
  }
  const tag = ini.get('scaler', 'tag_name')?.trim()
  if (!tag) {
    note('unsupported', at('scaler', 'tag_name'), 'missing: the group of droplets is unknown, file skipped')
    return undefined
  }
  const token =
    ini.get('scaler', 'do_token')?.trim() || ini.get(BUILTIN.create, 'do_token')?.trim() || undefined

  // Unknown keys in known sections; sections no policy uses are listed after the policies are read.
  for (const section of ini.sectionNames()) {
    const known = KNOWN_KEYS[section]
    if (!known) continue
    for (const key of ini.ownKeys(section)) {
      if (!known.includes(key)) note('unsupported', at(section, key), 'unknown setting: ignored')
    }
  }

  // ─── Policies ───
  const policyDir = resolve(ctx.confd, ini.get('scaler', 'policy_dir') ?? 'policies')
  const policyFiles = (ini.get('scaler', 'policy_files') ?? '').split(/\s+/).filter((s) => s !== '')
  if (policyFiles.length === 0)
    note('unsupported', at('scaler', 'policy_files'), 'no policy files: the group never scales')
  const metrics = new Map<string, { key: string; definition: Record<string, unknown> }>()
  const policies: Array<Record<string, unknown>> = []
  const usedActions = new Map<string, 'up' | 'down'>()
  for (const policyFile of policyFiles) {
    const path = resolve(policyDir, policyFile)
    const prel = relative(ctx.dir, path)
    let policy: SeedPolicy
    try {
      policy = JSON.parse(readText(path, ctx.dir)) as SeedPolicy
    } catch (err) {
      const why = err instanceof ImportError ? err.message : `not JSON: ${(err as Error).message}`
      note('unsupported', prel, `${why}: policy skipped`)
      continue
    }
    ctx.files.push(prel)
    const converted = convertPolicy(policy, prel, metrics, note)
    if (converted === undefined) continue
    policies.push(converted.policy)
    for (const action of converted.actions) usedActions.set(action, converted.direction)
  }

  // ─── Policies acted on their own in do-scaler ───
  // do-scaler ran each policy by itself. In Tide a threshold policy with one rule only has no
  // opinion while its rule does not hold (it abstains), so up-only and down-only policies still
  // fire independently; the one difference is when an up and a down policy hold in the same tick.
  const downPolicies = policies.filter((p) => p.down !== undefined && p.up === undefined)
  const upOnly = policies.filter((p) => p.up !== undefined && p.down === undefined)
  if (downPolicies.length > 0 && upOnly.length > 0) {
    note(
      'changed',
      at('scaler', 'policy_files'),
      `when an up policy (${upOnly.map((p) => p.name).join(', ')}) and a down policy (${downPolicies.map((p) => p.name).join(', ')}) hold in the same evaluation, do-scaler created and destroyed a droplet; Tide adds one (the largest recommendation wins)`,
    )
  }

  // ─── Target: the droplet template, bounds, removal order ───
  const target: Record<string, unknown> = { kind: 'digitalocean', tag }
  const config: Record<string, unknown> = {}
  const createUsed = usedActions.has(BUILTIN.create)
  if (ini.hasSection(BUILTIN.create)) {
    const max = int(ini.get(BUILTIN.create, 'max'))
    if (max === undefined || max < 1) {
      note(
        'changed',
        at(BUILTIN.create, 'max'),
        `${JSON.stringify(ini.get(BUILTIN.create, 'max'))} is not a whole number ≥ 1: using 1`,
      )
    }
    config.max = max !== undefined && max >= 1 ? max : 1
    const dropletFile = ini.get(BUILTIN.create, 'droplet')?.trim()
    const dropletDir = resolve(ctx.confd, ini.get(BUILTIN.create, 'droplet_dir') ?? 'droplets')
    if (dropletFile) {
      const path = resolve(dropletDir, dropletFile)
      const drel = relative(ctx.dir, path)
      try {
        const template = JSON.parse(readText(path, ctx.dir)) as unknown
        if (template === null || typeof template !== 'object' || Array.isArray(template))
          throw new ImportError('not a JSON object of droplet settings')
        ctx.files.push(drel)
        applyTemplate(template as Record<string, unknown>, tag, target, drel, note)
      } catch (err) {
        const why = err instanceof ImportError ? err.message : `not JSON: ${(err as Error).message}`
        note('unsupported', drel, `${why}: the target has no droplet template; add one by hand`)
      }
    } else note('unsupported', at(BUILTIN.create, 'droplet'), 'missing: the target has no droplet template')
  } else {
    if (createUsed)
      note(
        'unsupported',
        rel,
        `a policy runs ${BUILTIN.create} but there is no [${BUILTIN.create}] section (do-scaler would crash)`,
      )
    config.max = 1
    note('info', `groups.${groupNameFor(rel)}.max`, `no [${BUILTIN.create}] section: max is 1`)
  }
  if (target.template === undefined) {
    // Without a template there is nothing to create droplets from: the other way the target
    // has is to clone a droplet of the group, which only the user can name.
    const suffix = groupNameFor(rel)
      .toUpperCase()
      .replace(/[^A-Z0-9]/g, '_')
    target.base_droplet = `\${TIDE_BASE_DROPLET_${suffix}}`
    target.snapshot = `\${TIDE_SNAPSHOT_${suffix}}`
    note(
      'changed',
      `groups.${groupNameFor(rel)}.target`,
      `no droplet template: set TIDE_BASE_DROPLET_${suffix} and TIDE_SNAPSHOT_${suffix} (the droplet new ones are cloned from, and its snapshot), or write a \`template\` (docs/targets/digitalocean.md)`,
    )
  }
  const min = ini.hasSection(BUILTIN.destroy) ? int(ini.get(BUILTIN.destroy, 'min')) : undefined
  if (ini.hasSection(BUILTIN.destroy) && (min === undefined || min < 0)) {
    note(
      'changed',
      at(BUILTIN.destroy, 'min'),
      `${JSON.stringify(ini.get(BUILTIN.destroy, 'min'))} is not a whole number ≥ 0: using 1`,
    )
  }
  config.min = min !== undefined && min >= 0 ? Math.min(min, config.max as number) : 1
  if (config.min === 0) {
    // At 0 the scrape source has no droplet to read: nothing would ever bring the group back.
    config.min = 1
    note(
      'changed',
      at(BUILTIN.destroy, 'min'),
      'min 0: do-scaler crashed once the last droplet was gone ("No droplets found for tag_name"), and with no droplet there are no metrics to scale up on: using 1 (a Tide route in front of the group can wake it from 0: set min: 0 then)',
    )
  }
  if (min !== undefined && min > (config.max as number)) {
    note(
      'changed',
      at(BUILTIN.destroy, 'min'),
      `min ${min} is above max ${String(config.max)}: using ${String(config.max)}`,
    )
  }
  if (usedActions.has(BUILTIN.destroy)) {
    target.remove = 'oldest'
    note(
      'changed',
      'target.remove',
      'do-scaler destroyed the first droplet the API listed (usually the oldest): kept as `oldest`; Tide also detaches it from a load balancer and drains it first',
    )
  }

  // ─── Metrics endpoint ───
  const address = ini.get('scaler.metrics', 'address')?.trim() || 'private_ip_address'
  const kind = ADDRESSES[address]
  if (kind === undefined) {
    note(
      'unsupported',
      at('scaler.metrics', 'address'),
      `${JSON.stringify(address)} is not one of ${Object.keys(ADDRESSES).join(', ')}: using the private address`,
    )
    target.address = 'private'
  } else if (kind === 'ipv6') {
    note(
      'unsupported',
      at('scaler.metrics', 'address'),
      'IPv6 scraping is not supported: using the private IPv4 address',
    )
    target.address = 'private'
  } else {
    target.address = kind
    if (address === 'public_ip_address') {
      note(
        'changed',
        at('scaler.metrics', 'address'),
        'public_ip_address (from the README) crashed do-scaler; it means the public address',
      )
    }
  }
  const port = int(ini.get('scaler.metrics', 'port')) ?? 9110
  if (
    ini.get('scaler.metrics', 'port') !== undefined &&
    int(ini.get('scaler.metrics', 'port')) === undefined
  ) {
    note('changed', at('scaler.metrics', 'port'), 'not a port number: using 9110')
  }

  // ─── health_check_tcp ───
  if (ini.hasSection(BUILTIN.health) || usedActions.has(BUILTIN.health)) {
    const ports = (ini.get(BUILTIN.health, 'ports') ?? '').split(/\s+/).filter((p) => p !== '')
    const timeout = num(ini.get(BUILTIN.health, 'timeout')) ?? 10
    const wait = num(ini.get(BUILTIN.health, 'interval')) ?? 10
    const tries = int(ini.get(BUILTIN.health, 'max_tries')) ?? 12
    if (ports.length > 0) {
      const bad = ports.filter((p) => int(p) === undefined || int(p)! < 1 || int(p)! > 65535)
      if (bad.length > 0)
        note('unsupported', at(BUILTIN.health, 'ports'), `not port numbers: ${bad.join(', ')}`)
      const good = ports
        .map((p) => int(p))
        .filter((p): p is number => p !== undefined && p >= 1 && p <= 65535)
      if (good.length > 0) {
        const within = Math.ceil(tries * (timeout + wait))
        target.boot_timeout = `${within}s`
        note(
          'unsupported',
          at(BUILTIN.health),
          `the TCP check of ports ${good.join(', ')} is not carried over: Tide waits until a new droplet is active with an address, within boot_timeout ${within}s (max_tries × (timeout + interval)), and deletes one that does not come up, where do-scaler crashed and left it`,
        )
      }
    }
  }

  // ─── Custom actions → exec ───
  const actionDir = resolve(ctx.confd, ini.get('scaler', 'action_dir') ?? 'actions')
  const notify: Array<Record<string, unknown>> = []
  for (const [action, direction] of usedActions) {
    if (BUILTINS.has(action)) continue
    const env: Record<string, string> = {}
    for (const key of ini.hasSection(action) ? ini.ownKeys(action) : []) {
      const variable = key.toUpperCase().replace(/[^A-Z0-9_]/g, '_')
      if (key === 'do_token') {
        note(
          'info',
          at(action, key),
          'the token was not copied: the action gets DIGITALOCEAN_TOKEN from the environment Tide runs in',
        )
        continue
      }
      env[/^[A-Z_]/.test(variable) ? variable : `_${variable}`] = ini.get(action, key) ?? ''
    }
    const command = join(actionDir, action, 'run')
    notify.push({ kind: 'exec', command, direction, on: ['applied'], env, timeout: '5m' })
    note(
      'changed',
      `${relative(ctx.dir, join(actionDir, action))}`,
      `custom action "${action}" becomes an exec action after each applied scale-${direction}: write the executable ${relative(ctx.dir, command)} (docs/actions.md shows one that calls the Python Action class); its [${action}] settings are passed as environment variables, and the created and deleted droplets of run(initial, created, deleted) as TIDE_ADDED and TIDE_REMOVED (comma-separated droplet ids)`,
    )
  }
  for (const section of ini.sectionNames()) {
    if (
      section === 'scaler' ||
      section === 'scaler.metrics' ||
      BUILTINS.has(section) ||
      usedActions.has(section)
    )
      continue
    note('unsupported', at(section), 'no policy runs this action: ignored')
  }

  if (policies.length === 0) {
    note('unsupported', rel, 'no policy could be converted: the group only holds its bounds')
    policies.push({ kind: 'threshold', name: 'never', up: { conditions: ['never_scales > 0'] } })
    metrics.set('never_scales', { key: 'never_scales', definition: { family: 'tide_import_placeholder' } })
  }

  const sourceMetrics: Record<string, unknown> = {}
  for (const { key, definition } of metrics.values()) sourceMetrics[key] = definition
  return {
    config: {
      min: config.min,
      max: config.max,
      interval: `${ctx.interval}s`,
      // do-scaler had no cooldown and no stabilization: the next run could act again.
      cooldown: `${ctx.interval}s`,
      scale_down: { stabilization: '0s' },
      target,
      sources: [{ kind: 'scrape', port, path: '/', timeout: '5s', metrics: sourceMetrics }],
      policies,
      ...(notify.length > 0 ? { notify } : {}),
    },
    ...(token !== undefined ? { token } : {}),
  }
}

/**
 * A python-digitalocean Droplet(**template) (seeds.md §2.3) → the target's `template`: new
 * droplets are created from it as do-scaler created them, with Tide's names, the group's tag
 * always, and monitoring on.
 */
function applyTemplate(
  template: Record<string, unknown>,
  tag: string,
  target: Record<string, unknown>,
  where: string,
  note: ScalerContext['note'],
): void {
  const out: Record<string, unknown> = {}
  const bool = (key: string, value: unknown) => {
    if (typeof value === 'boolean') out[key] = value
    else note('unsupported', `${where} ${key}`, `${JSON.stringify(value)} is not true or false: ignored`)
  }
  for (const [key, value] of Object.entries(template)) {
    switch (key) {
      case 'name':
        out.name = templateName(String(value), `${where} name`, note)
        break
      case 'size_slug':
      case 'size':
        // python-digitalocean sends size_slug; `size` is what the API calls it.
        if (key === 'size_slug' || template.size_slug === undefined) out.size = value
        break
      case 'region':
      case 'image':
        out[key] = value
        break
      case 'ssh_keys':
        if (Array.isArray(value)) out.ssh_keys = value
        else note('unsupported', `${where} ssh_keys`, 'not a list: ignored')
        break
      case 'tags': {
        const tags = Array.isArray(value) ? value.map(String) : []
        const extra = tags.filter((t) => t !== tag)
        if (extra.length > 0) out.tags = extra
        if (!tags.includes(tag)) {
          note(
            'changed',
            `${where} tags`,
            `the template's tags lack tag_name "${tag}", so do-scaler's new droplets were not part of the group; Tide always gives new droplets the group's tag`,
          )
        }
        break
      }
      case 'user_data':
        out.user_data = String(value)
        break
      case 'monitoring':
      case 'backups':
      case 'ipv6':
        bool(key, value)
        break
      case 'vpc_uuid':
        out.vpc_uuid = String(value)
        note(
          'changed',
          `${where} vpc_uuid`,
          'python-digitalocean 1.15 did not send vpc_uuid (new droplets went to the default VPC); Tide does',
        )
        break
      case 'private_networking':
        note(
          'info',
          `${where} private_networking`,
          'deprecated by the API: every droplet gets a private address in its region’s default VPC, or in template.vpc_uuid',
        )
        break
      case 'token':
        note('info', `${where} token`, 'not copied (a secret)')
        break
      default:
        note('unsupported', `${where} ${key}`, 'not a droplet setting Tide supports: ignored')
    }
  }
  if (out.monitoring === undefined) {
    note(
      'info',
      `${where} monitoring`,
      'not set (python-digitalocean created droplets without the DigitalOcean agent): Tide turns it on (template.monitoring: true), so do-agent is installed on new droplets',
    )
  }
  for (const key of ['image', 'size', 'region']) {
    if (out[key] === undefined) {
      note(
        'unsupported',
        `${where} ${key === 'size' ? 'size_slug' : key}`,
        `missing: set target.template.${key} (the API needs it to create a droplet)`,
      )
    }
  }
  target.template = out
}

/**
 * do-scaler filled the name with Python's `name.format(count + 1)`: `web-{}` or `web-{0}`, and
 * `{:03d}` for padding. Tide's pattern takes `{}` and `{:0Nd}` (src/targets/digitalocean/names.ts).
 */
function templateName(name: string, where: string, note: ScalerContext['note']): string | undefined {
  let pattern = name.replace(/\{0?\}/g, '{}').replace(/\{0?:(0\d{1,2}d)\}/g, '{:$1}')
  if (!/\{(:0\d{1,2}d)?\}/.test(pattern)) {
    pattern = `${pattern}-{}`
    note(
      'changed',
      where,
      `"${name}" has no {} for a number, so every droplet got the same name: Tide names them ${pattern}`,
    )
  }
  const parsed = parseNamePattern(pattern)
  if (typeof parsed === 'string') {
    note('unsupported', where, `"${name}" ${parsed}: not copied; new droplets are named <tag>-{}`)
    return undefined
  }
  note(
    'changed',
    where,
    `do-scaler put the droplet count + 1 in "${name}", which repeated names after deletions; Tide puts one more than the highest number among the group's droplets named ${pattern}, skipping names in use (existing ones, like ${pattern.replace(/\{[^}]*\}/, '1')}, are adopted)`,
  )
  return pattern
}

/** One policy JSON → one threshold policy, or undefined with a note. */
function convertPolicy(
  policy: SeedPolicy,
  where: string,
  metrics: Map<string, { key: string; definition: Record<string, unknown> }>,
  note: ScalerContext['note'],
): { policy: Record<string, unknown>; actions: string[]; direction: 'up' | 'down' } | undefined {
  const name = typeof policy.name === 'string' && policy.name !== '' ? policy.name : basename(where, '.json')
  const actions = Array.isArray(policy.actions)
    ? policy.actions.filter((a): a is string => typeof a === 'string')
    : []
  const up = actions.includes(BUILTIN.create)
  const down = actions.includes(BUILTIN.destroy)
  if (up && down) {
    note('unsupported', `${where} actions`, 'both creates and destroys droplets: policy skipped')
    return undefined
  }
  if (!up && !down) {
    note(
      'unsupported',
      `${where} actions`,
      `runs neither ${BUILTIN.create} nor ${BUILTIN.destroy} (${actions.join(', ') || 'no actions'}): Tide runs actions on scale events, not on conditions alone; policy skipped`,
    )
    return undefined
  }
  const direction = up ? 'up' : 'down'
  const match = policy.match === 'all' ? 'all' : 'any'
  if (policy.match !== 'all' && policy.match !== 'any') {
    note(
      'changed',
      `${where} match`,
      `${JSON.stringify(policy.match)} is neither "any" nor "all": do-scaler treated it as "any"`,
    )
  }
  const conditions: string[] = []
  const list = Array.isArray(policy.conditions) ? (policy.conditions as SeedCondition[]) : []
  list.forEach((c, i) => {
    const cwhere = `${where} conditions[${i}]`
    const condition = convertCondition(c, cwhere, metrics, note)
    if (condition !== undefined) conditions.push(condition)
  })
  if (conditions.length === 0) {
    note('unsupported', `${where} conditions`, 'no usable condition: policy skipped')
    return undefined
  }
  if (conditions.length < list.length && match === 'all') {
    note(
      'changed',
      `${where} conditions`,
      'some conditions were dropped, so this "all" policy fires more easily than before: review it',
    )
  }
  return {
    policy: { kind: 'threshold', name, [direction]: { match, step: 1, conditions } },
    actions,
    direction,
  }
}

function convertCondition(
  c: SeedCondition,
  where: string,
  metrics: Map<string, { key: string; definition: Record<string, unknown> }>,
  note: ScalerContext['note'],
): string | undefined {
  const samples = Array.isArray(c.samples) ? (c.samples as Sample[]) : []
  const names = samples.map((s) =>
    typeof s.name === 'string' ? s.name : typeof s.family === 'string' ? s.family : '',
  )
  if (names.length === 0 || names.some((n) => !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(n))) {
    note('unsupported', `${where} samples`, 'needs samples with Prometheus metric names: condition skipped')
    return undefined
  }
  const op = String(c.operator ?? '')
  if (!OPERATORS.has(op)) {
    note(
      'unsupported',
      `${where} operator`,
      `${JSON.stringify(c.operator)} is not one of < <= > >= ==: condition skipped`,
    )
    return undefined
  }
  const threshold = Number(c.threshold)
  if (
    c.threshold === undefined ||
    c.threshold === null ||
    c.threshold === '' ||
    !Number.isFinite(threshold)
  ) {
    note(
      'unsupported',
      `${where} threshold`,
      `${JSON.stringify(c.threshold)} is not a number: condition skipped`,
    )
    return undefined
  }
  const fn = String(c.function ?? '')
  if (!FUNCTIONS.has(fn)) {
    note(
      'unsupported',
      `${where} function`,
      `${JSON.stringify(c.function)} is not one of min, max, median, mean: condition skipped`,
    )
    return undefined
  }
  let reducer = '+'
  if (names.length > 1) {
    if (typeof c.reducer === 'string' && REDUCERS.has(c.reducer)) reducer = c.reducer
    else
      note(
        'changed',
        `${where} reducer`,
        `${JSON.stringify(c.reducer)} is not one of + - * / (do-scaler would crash with several samples): using +`,
      )
  }
  const definition: Record<string, unknown> =
    names.length === 1 ? { family: names[0] } : { samples: names, reducer }
  const counters = names.filter((n) => /_(total|sum|count|bucket)$/.test(n))
  if (counters.length > 0) {
    // do-scaler compared the raw counter value; Tide would take its rate by default.
    definition.rate = false
    note(
      'changed',
      `${where} samples`,
      `${counters.join(', ')} compared as raw counter values as do-scaler did (rate: false); a per-second rate is usually what is meant`,
    )
  }
  for (const n of names) {
    if (!SINGLE_SERIES.test(n)) {
      note(
        'changed',
        `${where} samples`,
        `do-scaler took the first series of ${n}; Tide adds up every series of it: add \`labels\` to pick one`,
      )
    }
  }
  const wanted = typeof c.name === 'string' && c.name !== '' ? c.name : names.join('_')
  let key = wanted.replace(/[^A-Za-z0-9_:.]/g, '_')
  if (!METRIC_NAME.test(key)) key = `m_${key}`
  const signature = JSON.stringify(definition)
  const existing = metrics.get(signature)
  if (existing) key = existing.key
  else {
    const taken = new Set([...metrics.values()].map((m) => m.key))
    let unique = key
    for (let i = 2; taken.has(unique); i++) unique = `${key}_${i}`
    key = unique
    metrics.set(signature, { key, definition })
  }
  return `${fn}(${key}) ${op} ${threshold}`
}
