/**
 * The drop-in's only state, kept where seed 000 keeps it: tags on the base droplet, so that
 * separate invocations (a schedule, a person calling `op=up`) share it (reference/seeds.md §1.7).
 *
 * Cooldown: `scaling-<prefix>-<unix seconds>`, as the seed writes it. Fixed (§1.12 item 7):
 * - the tag is matched against the exact prefix, so a prefix may contain `-`;
 * - an old cooldown tag is untagged from the base, and deleted only when nothing else carries
 *   it: the seed's `DELETE /v2/tags/<tag>` removed it from every resource in the account;
 * - the new tag is set before the old one goes, so there is never a moment without a cooldown;
 * - reading the cooldown changes nothing (the seed deleted expired tags even for `op=status`).
 *
 * Lock (the seed had none, so a schedule and a manual call could both scale): before changing
 * anything an invocation puts a claim tag `scaling-<prefix>-lock-<unix seconds>-<random>` on the base
 * droplet, then reads the base's tags again. It goes ahead only if its claim is the only live
 * one; otherwise it removes its claim and backs off. Two invocations can both back off, never both
 * go ahead: whichever reads second sees the other's claim, because each reads after its own claim
 * is in place. A claim older than LOCK_LEASE_S (a killed invocation) is ignored and cleared.
 */
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { TideError } from '../../core/errors.js'
import {
  type DigitalOceanClient,
  DigitalOceanApiError,
  type Droplet,
  type TagResource,
} from '../../targets/digitalocean/client.js'

/** A claim older than this is from an invocation that died; longer than any operation may take. */
export const LOCK_LEASE_S = 30 * 60

export const cooldownPrefix = (clonePrefix: string) => `scaling-${clonePrefix}-`
/**
 * Starts with `scaling-` so the target does not copy a claim onto new clones (it copies the
 * base's tags except seed 000's `scaling-…` markers); never mistaken for a cooldown tag, whose
 * rest is digits only.
 */
const lockPrefix = (clonePrefix: string) => `scaling-${clonePrefix}-lock-`

/** The unix seconds of a cooldown tag of this prefix, or undefined for any other tag. */
export function cooldownStamp(tag: string, clonePrefix: string): number | undefined {
  const start = cooldownPrefix(clonePrefix)
  if (!tag.startsWith(start)) return undefined
  const rest = tag.slice(start.length)
  return /^\d{1,12}$/.test(rest) ? Number(rest) : undefined
}

/** The unix seconds of a claim tag of this prefix, or undefined for any other tag. */
export function lockStamp(tag: string, clonePrefix: string): number | undefined {
  const start = lockPrefix(clonePrefix)
  if (!tag.startsWith(start)) return undefined
  const m = /^(\d{1,12})-[0-9a-f]{8,}$/.exec(tag.slice(start.length))
  return m ? Number(m[1]) : undefined
}

export interface Cooldown {
  /** Unix seconds of the last change. */
  since: number
  /** Seconds left; 0 when it is over. */
  left: number
  tag: string
}

/** The newest cooldown tag on the base droplet, or undefined when there is none. */
export function readCooldown(
  base: Droplet,
  clonePrefix: string,
  intervalS: number,
  nowS: number,
): Cooldown | undefined {
  let found: Cooldown | undefined
  for (const tag of base.tags) {
    const since = cooldownStamp(tag, clonePrefix)
    if (since === undefined || (found && found.since >= since)) continue
    // A stamp in the future (clock skew) counts from now, never forever.
    found = { since, tag, left: Math.max(0, Math.min(intervalS, since + intervalS - nowS)) }
  }
  return found
}

const droplet = (base: Droplet): TagResource[] => [{ resource_id: String(base.id), resource_type: 'droplet' }]

/** Untags the base, then deletes the tag when no other resource carries it. */
async function dropTag(client: DigitalOceanClient, name: string, base: Droplet, signal?: AbortSignal) {
  await client.untagResources(name, droplet(base), signal).catch((err: unknown) => {
    if (!(err instanceof DigitalOceanApiError && err.httpStatus === 404)) throw err
  })
  const tag = await client.getTag(name, signal)
  if (tag && (tag.resources?.count ?? 0) === 0) await client.deleteTag(name, signal)
}

/**
 * Starts a cooldown: the new tag on the base, then the old ones off it. Seed 000 does this before
 * every add or remove, manual ones included, so a failing operation cannot loop fast.
 * Errors keep the seed's wording: "couldn't mark cluster: …".
 */
export async function markCooldown(
  client: DigitalOceanClient,
  base: Droplet,
  clonePrefix: string,
  nowS: number,
  signal?: AbortSignal,
): Promise<string> {
  const name = `${cooldownPrefix(clonePrefix)}${Math.floor(nowS)}`
  try {
    await client.createTag(name, signal)
    await client.tagResources(name, droplet(base), signal)
    for (const old of base.tags) {
      if (old !== name && cooldownStamp(old, clonePrefix) !== undefined)
        await dropTag(client, old, base, signal)
    }
  } catch (err) {
    throw new TideError(
      err instanceof TideError ? err.code : 'E_TARGET',
      `couldn't mark cluster: ${err instanceof Error ? err.message : String(err)}`,
      { status: 502, cause: err },
    )
  }
  base.tags = [...base.tags.filter((t) => cooldownStamp(t, clonePrefix) === undefined), name]
  return name
}

export interface Lock {
  tag: string
  release(): Promise<void>
}

/** Another invocation holds the cluster: this one changed nothing. */
export class ClusterBusyError extends TideError {
  constructor(message: string) {
    super('E_BUSY', message, { status: 409 })
  }
}

/**
 * Claims the cluster (see the top of the file). Two invocations that claim at the same moment
 * may both see each other and both back off; each then tries again after a random pause, up to
 * `attempts` times, so one of them gets through. Resolves to the lock and the base droplet with
 * fresh tags, or throws ClusterBusyError when another live claim stays.
 */
export async function acquireLock(
  client: DigitalOceanClient,
  base: Droplet,
  clonePrefix: string,
  nowS: number,
  signal?: AbortSignal,
  attempts = 3,
): Promise<{ lock: Lock; base: Droplet }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await claim(client, base, clonePrefix, nowS, signal)
    } catch (err) {
      if (!(err instanceof ClusterBusyError) || attempt >= attempts) throw err
      await sleep(100 + Math.floor(Math.random() * 500), undefined, { signal })
    }
  }
}

async function claim(
  client: DigitalOceanClient,
  base: Droplet,
  clonePrefix: string,
  nowS: number,
  signal?: AbortSignal,
): Promise<{ lock: Lock; base: Droplet }> {
  const tag = `${lockPrefix(clonePrefix)}${Math.floor(nowS)}-${randomBytes(6).toString('hex')}`
  const release = async () => {
    // Never leave a claim behind, even when the operation was aborted: use no signal here.
    await dropTag(client, tag, base)
  }
  await client.createTag(tag, signal)
  try {
    await client.tagResources(tag, droplet(base), signal)
    const fresh = await client.getDroplet(base.id, signal)
    if (fresh === undefined)
      throw new TideError('E_DO_NOT_FOUND', `the base droplet ${base.name} was deleted`, { status: 404 })
    const others: string[] = []
    for (const t of fresh.tags) {
      const stamp = lockStamp(t, clonePrefix)
      if (stamp === undefined || t === tag) continue
      if (nowS - stamp > LOCK_LEASE_S) await dropTag(client, t, fresh, signal).catch(() => undefined)
      else others.push(t)
    }
    if (others.length > 0) {
      throw new ClusterBusyError(
        `another invocation is scaling the cluster (claim ${others.join(', ')} on ${base.name}); nothing was changed`,
      )
    }
    return { lock: { tag, release }, base: fresh }
  } catch (err) {
    await release().catch(() => undefined)
    throw err
  }
}
