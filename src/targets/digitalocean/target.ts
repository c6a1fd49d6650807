/**
 * The `digitalocean` target: a group is the droplets carrying `tag`. New droplets are made one
 * of two ways (the config has exactly one):
 * - base mode (seed 000): one base droplet (found by name, made by hand) and clones booted
 *   from a snapshot of it, named `<prefix>NNN`;
 * - template mode (seed 002's JSON droplet template): each new droplet is created from the
 *   template (image, size, region, SSH keys, VPC, tags, user data), named by its pattern
 *   (`web-{}`). There is no base droplet: the group may go to 0.
 * Both are "clones" below: the droplets Tide made and may remove, found again by name.
 *
 * A clone's life:
 *
 *   create (name check) ─▶ re-list by name ─▶ new ──(active + IPv4)──▶ attach to LB ─▶ ready
 *        │ a racing create of the same name has the lower id: ours is deleted (never two)
 *        └ not active within boot_timeout: deleted, the failure reported
 *
 *   scale down: ready ─▶ detach from LB ─▶ plan.drain ─▶ wait `drain` ─▶ delete
 *
 * Rules written down where they are enforced:
 * - The base droplet is never removed or changed (seed 000 keeps its cooldown tag on it; that is
 *   the drop-in mode's business, not this target's). Droplets with the tag that are neither the
 *   base nor named `<prefix>NNN` (template mode: by the name pattern) are counted and never
 *   removed either: they are not ours.
 * - Nothing is orphaned: a clone is found again by its tag and name after a crash at any point.
 *   `start()` adopts every clone, attaches the active ones a crash left out of the load balancer,
 *   and waits for (or, past boot_timeout, deletes) the ones still booting.
 * - No name is used twice: a name is checked free (any droplet in the account) before the
 *   create, and the create is re-listed by name after it; of two droplets with one name the
 *   higher id is deleted by whoever sees both (seed 000 bug 5: duplicate names).
 * - Clones copy the base droplet's region, size, VPC and tags, not droplets[0]'s (seed 000 bug
 *   6), with monitoring on so the Monitoring API has data. Template droplets get the template's
 *   settings and the group's tag whatever the template's `tags` say (do-scaler's droplets left
 *   the group when the template forgot `tag_name`).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { errorMessage, NoChangeError, TargetError, TideError } from '../../core/errors.js'
import type { GroupStatus, Instance, ScalePlan, ScaleResult, Target } from '../../core/types.js'
import {
  type ClientLogger,
  CREATE_MARKER,
  type DigitalOceanClient,
  type Droplet,
  dropletIPv4,
  type Image,
  type DropletCreateRequest,
  type LoadBalancer,
} from './client.js'
import { formatName, type NamePattern, nameRegExp, parseNamePattern, showPattern } from './names.js'

/** Template mode: what each new droplet is created with (components.schemas.droplet_create). */
export interface DropletTemplate {
  /** A public image's slug or any image's id. */
  image: number | string
  size: string
  region: string
  /** Name pattern with one counter placeholder (names.ts): `web-{}`, `web-{:03d}`. */
  name: string
  sshKeys: Array<number | string>
  vpcUuid?: string
  /** Besides the group's tag, which every droplet gets. */
  tags: string[]
  userData?: string
  monitoring: boolean
  ipv6: boolean
  backups: boolean
}

export interface DigitalOceanSettings {
  tag: string
  /** Base mode: the base droplet's name; with `snapshot`. */
  baseDroplet?: string
  /** Base mode: the snapshot's name. */
  snapshot?: string
  /** Template mode, instead of `baseDroplet` + `snapshot`. */
  template?: DropletTemplate
  /** Base mode: clones are `<clonePrefix>NNN`. */
  clonePrefix: string
  /** Name or id. */
  loadBalancer?: string
  userData?: string
  sshKeys: Array<number | string>
  address: 'private' | 'public'
  port?: number
  /** ms */
  bootTimeout: number
  poll: number
  drain: number
  remove: 'newest' | 'oldest' | 'least-busy'
}

/** What discovery finds, in either mode. */
export interface DropletGroup {
  /** Every droplet with the tag, in API order. */
  droplets: Droplet[]
  /** Base mode only. */
  base?: Droplet
  /** Droplets named `<prefix>NNN` (template mode: by the name pattern; not the base), oldest first. */
  clones: Droplet[]
  /** Tagged droplets that are neither: counted, never touched. */
  others: Droplet[]
  /** Base mode only. */
  snapshot?: Image
  loadBalancer?: LoadBalancer
}

/** A base-mode group: everything seed 000's `info` reports, found correctly. */
export interface Cluster extends DropletGroup {
  base: Droplet
  snapshot: Image
}

/**
 * What `describe()` reports: the settings and what discovery last found, in the terms seed 000's
 * `info` uses (the API objects of the droplets, the base's region and size, the snapshot's image
 * id, the load balancer's id). Empty strings and nulls until the API has been read once.
 */
export interface DropletClusterDescription {
  [key: string]: unknown
  /** `base`: clones of a base droplet; `template`: droplets created from `template`. */
  mode: 'base' | 'template'
  tag: string
  /** Empty in template mode. */
  baseDroplet: string
  /** Empty in template mode. */
  snapshot: string
  /** The clones' name prefix (template mode: the name pattern's part before the number). */
  clonePrefix: string
  /**
   * Template mode: the template as configured, with `user_data` shown as its size only (it
   * often carries secrets, and this is served by the API).
   */
  template?: Omit<DropletTemplate, 'userData'> & { userData?: string }
  /** As configured (name or id); empty when the group has none. */
  loadBalancer: string
  /** Every droplet with the tag, as the API returned them. */
  droplets: Droplet[]
  base: Droplet | null
  /** The base droplet's region and size slug (seed 000 took droplets[0]'s, bug 6); template mode: the template's. */
  region: string
  size: string
  snapshotImageId: number
  loadBalancerId: string
  /** Epoch ms of the reading; 0 before the first. */
  readAt: number
}

type Logger = ClientLogger & { error?(obj: object, msg: string): void }

const noLogger: Logger = { info() {}, warn() {} }

export class DigitalOceanTarget implements Target {
  readonly kind = 'digitalocean'
  /** Clones being removed (by droplet id): shown as draining/stopping, not counted. */
  private readonly removing = new Map<number, 'draining' | 'stopping'>()
  /** The recovery start() began: clones a previous run left booting or out of the LB. */
  private recovery?: Promise<void>
  private started = false
  private readonly cloneName: RegExp
  /** How clones are named: `<clonePrefix>NNN`, or the template's pattern. */
  private readonly names: NamePattern
  /** What discovery and status() last read, for describe(). */
  private known: Partial<DropletGroup> & { readAt: number } = { readAt: 0 }

  constructor(
    readonly group: string,
    readonly settings: DigitalOceanSettings,
    readonly client: DigitalOceanClient,
    private readonly logger: Logger = noLogger,
  ) {
    const base = settings.baseDroplet !== undefined && settings.snapshot !== undefined
    if (base === (settings.template !== undefined)) {
      throw new TypeError(
        'digitalocean target: give either template, or baseDroplet with snapshot (the config schema checks this)',
      )
    }
    if (settings.template) {
      const p = parseNamePattern(settings.template.name)
      if (typeof p === 'string') throw new TypeError(`digitalocean target: template name ${p}`)
      this.names = p
    } else this.names = { prefix: settings.clonePrefix, suffix: '', width: 3 }
    this.cloneName = nameRegExp(this.names)
  }

  /**
   * Adopts the clones that exist and finishes what a previous run left half done (see the
   * header). Never rejects: an API that is down at start-up is reported by status() instead.
   */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.started) return
    this.started = true
    try {
      const cluster = await this.readGroup(signal)
      this.logger.info(
        {
          group: this.group,
          base: cluster.base?.id,
          clones: cluster.clones.map((c) => c.name),
          snapshot: cluster.snapshot?.id,
          loadBalancer: cluster.loadBalancer?.id,
        },
        cluster.base
          ? `droplet cluster: base ${cluster.base.name} and ${cluster.clones.length} clone(s) adopted`
          : `droplet group: ${cluster.clones.length} droplet(s) named ${showPattern(this.names)} adopted`,
      )
      this.recovery = this.finishPending(cluster, { wait: true, signal }).then(
        () => undefined,
        (err: unknown) => {
          this.logger.warn(
            { group: this.group, err },
            `finishing adopted clones failed: ${errorMessage(err)}`,
          )
        },
      )
    } catch (err) {
      this.logger.warn(
        { group: this.group, err },
        `cannot read the droplet cluster yet: ${errorMessage(err)}`,
      )
    }
  }

  async status(signal?: AbortSignal): Promise<GroupStatus> {
    const droplets = await this.client.listDroplets({ tagName: this.settings.tag }, { signal })
    const base =
      this.settings.baseDroplet === undefined
        ? undefined
        : droplets.find((d) => d.name === this.settings.baseDroplet)
    this.known = { ...this.known, droplets, base, readAt: Date.now() }
    const instances = droplets
      .map((d) => this.instance(d, base))
      .sort((a, b) => a.createdAt - b.createdAt || Number(a.id) - Number(b.id))
    const counted = instances.filter((i) => i.state !== 'draining' && i.state !== 'stopping')
    return {
      desired: counted.length,
      instances,
      ready: instances.filter((i) => i.state === 'ready').length,
      ...(base || this.settings.template
        ? {}
        : {
            message: `can't find base droplet named ${this.settings.baseDroplet} among the droplets tagged ${this.settings.tag}`,
          }),
    }
  }

  async scale(to: number, plan: ScalePlan, signal: AbortSignal): Promise<ScaleResult> {
    if (!Number.isInteger(to) || to < 0) {
      throw new TargetError(`cannot scale group ${this.group} to ${to}: must be a whole number ≥ 0`)
    }
    if (!this.started) await this.start(signal)
    await this.recovery
    const cluster = await this.readGroup(signal)
    const from = cluster.droplets.length - this.countRemoving(cluster)
    // The base droplet is never removed: in base mode the group's floor is 1. A template
    // group has no base and goes to 0.
    const wanted = Math.max(cluster.base ? 1 : 0, to)
    if (wanted === from) {
      throw new NoChangeError(
        to < 1 && cluster.base
          ? `only the base droplet ${cluster.base.name} is left, and it is never removed`
          : `the ${cluster.base ? 'cluster' : 'group'} already has ${from} droplet(s)`,
      )
    }
    return wanted > from
      ? this.scaleUp(cluster, from, wanted, plan, signal)
      : this.scaleDown(cluster, from, wanted, plan, signal)
  }

  // ─── Discovery ───────────────────────────────────────────────────────────

  /**
   * The base-mode cluster (the drop-in's `info`, seed 000): readGroup() with the base and the
   * snapshot found. A template-mode target has neither: a TargetError says so.
   */
  async discover(signal?: AbortSignal): Promise<Cluster> {
    const group = await this.readGroup(signal)
    if (!group.base || !group.snapshot) {
      throw new TargetError(
        `group ${this.group} creates droplets from a template: it has no base droplet or snapshot`,
      )
    }
    return group as Cluster
  }

  /**
   * Lists the tagged droplets, the load balancers and, in base mode, the private images (every
   * page of each, seed 000 bug 3) and finds the base, the snapshot and the load balancer.
   * Throws a TargetError naming what is missing (E_DO_NOT_FOUND).
   */
  async readGroup(signal?: AbortSignal): Promise<DropletGroup> {
    const s = this.settings
    const baseMode = s.template === undefined
    const [droplets, images, balancers] = await Promise.all([
      this.client.listDroplets({ tagName: s.tag }, { signal }),
      baseMode ? this.client.listImages({ private: true }, { signal }) : Promise.resolve([]),
      s.loadBalancer ? this.client.listLoadBalancers({ signal }) : Promise.resolve([]),
    ])
    let base: Droplet | undefined
    let snapshot: Image | undefined
    if (baseMode) {
      base = droplets.find((d) => d.name === s.baseDroplet)
      if (!base) {
        throw new TargetError(
          `can't find base droplet named ${s.baseDroplet} among the ${droplets.length} droplet(s) tagged ${s.tag}`,
          { code: 'E_DO_NOT_FOUND' },
        )
      }
      snapshot = images
        .filter((i) => i.name === s.snapshot)
        .sort((a, b) => Date.parse(b.created_at ?? '') - Date.parse(a.created_at ?? '') || b.id - a.id)[0]
      if (!snapshot) {
        throw new TargetError(
          `no snapshot with name ${s.snapshot} among the account's ${images.length} private image(s)`,
          { code: 'E_DO_NOT_FOUND' },
        )
      }
    }
    let loadBalancer: LoadBalancer | undefined
    if (s.loadBalancer) {
      loadBalancer =
        balancers.find((lb) => lb.id === s.loadBalancer) ?? balancers.find((lb) => lb.name === s.loadBalancer)
      if (!loadBalancer) {
        throw new TargetError(`no load balancer with name or id ${s.loadBalancer}`, {
          code: 'E_DO_NOT_FOUND',
        })
      }
    }
    const clones = droplets
      .filter((d) => d.id !== base?.id && this.cloneName.test(d.name))
      .sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at) || a.id - b.id)
    const others = droplets.filter((d) => d.id !== base?.id && !this.cloneName.test(d.name))
    const cluster: DropletGroup = { droplets, base, clones, others, snapshot, loadBalancer }
    this.known = { ...cluster, readAt: Date.now() }
    return cluster
  }

  /** The settings and what the API last showed (no I/O): the group's `details`, seed 000's `info`. */
  describe(): DropletClusterDescription {
    const s = this.settings
    const { droplets = [], base, snapshot, loadBalancer, readAt } = this.known
    const t = s.template
    return {
      mode: t ? 'template' : 'base',
      tag: s.tag,
      baseDroplet: s.baseDroplet ?? '',
      snapshot: s.snapshot ?? '',
      clonePrefix: this.names.prefix,
      ...(t
        ? {
            template: {
              ...t,
              userData: t.userData === undefined ? undefined : `(${Buffer.byteLength(t.userData)} bytes)`,
            },
          }
        : {}),
      loadBalancer: s.loadBalancer ?? '',
      droplets,
      base: base ?? null,
      region: t ? t.region : (base?.region.slug ?? ''),
      size: t ? t.size : base ? (base.size_slug ?? base.size.slug) : '',
      snapshotImageId: snapshot?.id ?? 0,
      loadBalancerId: loadBalancer?.id ?? '',
      readAt,
    }
  }

  // ─── Scale up ────────────────────────────────────────────────────────────

  private async scaleUp(
    cluster: DropletGroup,
    from: number,
    to: number,
    plan: ScalePlan,
    signal: AbortSignal,
  ): Promise<ScaleResult> {
    const count = to - from
    const names = await this.freeNames(cluster, count, signal)
    const t = this.settings.template
    plan.progress?.(
      cluster.base
        ? `creating ${count} clone(s) of ${cluster.base.name}: ${names.join(', ')}`
        : `creating ${count} droplet(s) from the template (${t?.size} in ${t?.region}, image ${t?.image}): ${names.join(', ')}`,
    )
    const results = await Promise.allSettled(
      names.map((name) => this.addClone(cluster, name, to, plan, signal)),
    )
    const added = results.flatMap((r) => (r.status === 'fulfilled' && r.value ? [String(r.value.id)] : []))
    const failures = results.flatMap((r, i) =>
      r.status === 'rejected' ? [`${names[i]}: ${errorMessage(r.reason)}`] : [],
    )
    if (failures.length > 0) {
      throw new TargetError(
        `${failures.length} of ${count} new ${cluster.base ? 'clone' : 'droplet'}(s) failed${added.length ? ` (${added.length} added)` : ''}: ${failures.join('; ')}`,
        { code: failures.every((f) => f.includes('never became active')) ? 'E_DO_BOOT_TIMEOUT' : 'E_TARGET' },
      )
    }
    if (added.length === 0) throw new NoChangeError('another operation brought the cluster to the size first')
    return { from, to: from + added.length, added, removed: [] }
  }

  /**
   * `count` names `<prefix>NNN` (template mode: by the pattern) above the highest clone number
   * in the group that no droplet in the account has (one `GET /v2/droplets?name=` per candidate).
   */
  private async freeNames(cluster: DropletGroup, count: number, signal: AbortSignal): Promise<string[]> {
    let n = 0
    for (const d of cluster.droplets) {
      const m = this.cloneName.exec(d.name)
      if (m) n = Math.max(n, Number(m[1]))
    }
    const names: string[] = []
    while (names.length < count) {
      n++
      const name = formatName(this.names, n)
      const taken = await this.client.listDroplets({ name }, { signal })
      if (taken.length === 0) names.push(name)
    }
    return names
  }

  /** What `POST /v2/droplets` gets for a new droplet named `name`. */
  private createRequest(cluster: DropletGroup, name: string): DropletCreateRequest {
    const s = this.settings
    const t = s.template
    if (t) {
      // The group's tag first: a template without it made droplets outside the group (seed 002).
      return {
        name,
        region: t.region,
        size: t.size,
        image: t.image,
        ...(t.vpcUuid ? { vpc_uuid: t.vpcUuid } : {}),
        ...(t.sshKeys.length > 0 ? { ssh_keys: t.sshKeys } : {}),
        ...(t.userData !== undefined ? { user_data: t.userData } : {}),
        monitoring: t.monitoring,
        ...(t.ipv6 ? { ipv6: true } : {}),
        ...(t.backups ? { backups: true } : {}),
        tags: [...new Set([s.tag, ...t.tags])],
      }
    }
    const base = cluster.base!
    // The base's tags, without seed 000's cooldown marker (`scaling-<prefix>-<time>`) and the
    // drop-in's lock claims (`scaling-…`), plus the group's.
    const tags = [
      ...new Set([
        s.tag,
        ...base.tags.filter((t) => !t.startsWith('scaling-') && !t.startsWith(CREATE_MARKER)),
      ]),
    ]
    return {
      name,
      region: base.region.slug,
      size: base.size_slug ?? base.size.slug,
      image: cluster.snapshot!.id,
      ...(base.vpc_uuid ? { vpc_uuid: base.vpc_uuid } : {}),
      ...(s.sshKeys.length > 0 ? { ssh_keys: s.sshKeys } : {}),
      ...(s.userData !== undefined ? { user_data: s.userData } : {}),
      monitoring: true,
      tags,
    }
  }

  /** Creates one clone, waits for it, attaches it. Resolves to undefined when a racing operation made it surplus (deleted again). */
  private async addClone(
    cluster: DropletGroup,
    name: string,
    to: number,
    plan: ScalePlan,
    signal: AbortSignal,
  ): Promise<Droplet | undefined> {
    const s = this.settings
    let droplet = await this.client.createDroplet(this.createRequest(cluster, name), { signal })
    // Re-list the group: a racing Tide (or drop-in invocation) may have created droplets too.
    // The higher id yields, whoever looks: ours goes if an older droplet has its name, or if
    // more than `to` droplets are older than or equal to it. Each create is followed by its
    // own check, so the later check sees both creates and the two processes agree.
    const group = (await this.client.listDroplets({ tagName: s.tag }, { signal })).filter(
      (d) => !this.removing.has(d.id),
    )
    const twin = group.find((d) => d.name === name && d.id < droplet.id)
    const rank = group.filter((d) => d.id <= droplet.id).length
    if (twin || rank > to) {
      this.logger.warn(
        { group: this.group, droplet: droplet.id, name },
        twin
          ? `another operation created ${name} at the same time (droplet ${twin.id}); deleting ours`
          : `another operation grew the group at the same time (${group.length} droplets for ${to} wanted); deleting ${name}`,
      )
      await this.client.deleteDroplet(droplet.id, signal)
      return undefined
    }
    plan.progress?.(`${name} (droplet ${droplet.id}) created, waiting for it to boot`)
    droplet = await this.waitActive(droplet, signal)
    try {
      await this.attach(cluster.loadBalancer, droplet, signal)
    } catch (err) {
      // Seed 000's wording. The clone is kept: finishPending() attaches it on the next run.
      if (signal.aborted) throw err
      throw new TargetError(
        `could not add droplet ${name} (${droplet.id}) to load balancer ${cluster.loadBalancer?.name}: ${errorMessage(err)}; it is kept and the next run adds it`,
        { code: err instanceof TideError ? err.code : 'E_TARGET', cause: err },
      )
    }
    plan.progress?.(
      `${name} ready at ${this.addressOf(droplet)}${cluster.loadBalancer && !cluster.loadBalancer.tag ? `, in load balancer ${cluster.loadBalancer.name}` : ''}`,
    )
    return droplet
  }

  /**
   * Polls until the droplet is `active` with an IPv4, or deletes it once boot_timeout has
   * passed since its creation (seed 000 bug 4: its wait could not time out).
   */
  private async waitActive(droplet: Droplet, signal?: AbortSignal, now?: number): Promise<Droplet> {
    // `now` (a caller's clock, for the drop-in's tests) shifts the deadline; the waiting is real.
    const skew = now === undefined ? 0 : now - Date.now()
    const deadline = Date.parse(droplet.created_at) + this.settings.bootTimeout - skew
    const limit = Number.isFinite(deadline) ? deadline : Date.now() + this.settings.bootTimeout
    let current: Droplet | undefined = droplet
    // The droplet passed in may be an old listing: look again before deleting it.
    let fresh = false
    for (;;) {
      if (current && current.status === 'active' && this.addressOf(current)) return current
      if (!current) throw new TargetError(`droplet ${droplet.name} (${droplet.id}) disappeared while booting`)
      if (Date.now() >= limit && !fresh) {
        current = await this.client.getDroplet(droplet.id, signal)
        fresh = true
        continue
      }
      if (Date.now() >= limit) {
        await this.client.deleteDroplet(droplet.id, signal)
        throw new TargetError(
          `${droplet.name} (droplet ${droplet.id}) never became active with an address within ${Math.round(this.settings.bootTimeout / 1000)}s; it was deleted`,
          { code: 'E_DO_BOOT_TIMEOUT' },
        )
      }
      await sleep(Math.min(this.settings.poll, Math.max(1, limit - Date.now())), undefined, { signal })
      current = await this.client.getDroplet(droplet.id, signal)
      fresh = true
    }
  }

  private async attach(lb: LoadBalancer | undefined, droplet: Droplet, signal?: AbortSignal): Promise<void> {
    // A tag-based load balancer takes every droplet with its tag: nothing to do.
    if (!lb || lb.tag) return
    await this.client.addDropletsToLoadBalancer(lb.id, [droplet.id], signal)
  }

  // ─── Scale down ──────────────────────────────────────────────────────────

  private async scaleDown(
    cluster: DropletGroup,
    from: number,
    to: number,
    plan: ScalePlan,
    signal: AbortSignal,
  ): Promise<ScaleResult> {
    const candidates = cluster.clones.filter((c) => !this.removing.has(c.id))
    if (candidates.length === 0) {
      const others = cluster.others.length
        ? `${cluster.others.length} tagged droplet(s) are not named ${showPattern(this.names)}`
        : ''
      throw new NoChangeError(
        cluster.base
          ? `no clone to remove: ${cluster.base.name} is the base${others ? ` and ${others}` : ''}`
          : `no droplet to remove: ${others || 'none is left'}`,
      )
    }
    const ordered = await this.order(candidates, plan.victims ?? [], signal)
    const victims = ordered.slice(0, Math.min(from - to, ordered.length))
    plan.progress?.(`removing ${victims.map((v) => v.name).join(', ')}`)
    const results = await Promise.allSettled(victims.map((v) => this.removeClone(cluster, v, plan, signal)))
    const removed = victims.filter((_, i) => results[i]!.status === 'fulfilled').map((v) => String(v.id))
    const failures = results.flatMap((r, i) =>
      r.status === 'rejected' ? [`${victims[i]!.name}: ${errorMessage(r.reason)}`] : [],
    )
    if (failures.length > 0) {
      throw new TargetError(`removing ${failures.length} clone(s) failed: ${failures.join('; ')}`)
    }
    return { from, to: from - removed.length, added: [], removed }
  }

  /** Victims first: those the engine named, then booting clones (no traffic yet), then by `remove`. */
  private async order(candidates: Droplet[], named: string[], signal: AbortSignal): Promise<Droplet[]> {
    let load = new Map<number, number>()
    if (this.settings.remove === 'least-busy') load = await this.recentLoad(candidates, signal)
    const rank = (d: Droplet): number[] => {
      const namedAt = named.indexOf(String(d.id))
      const created = Date.parse(d.created_at)
      const byRule =
        this.settings.remove === 'oldest'
          ? created
          : this.settings.remove === 'newest'
            ? -created
            : (load.get(d.id) ?? Number.POSITIVE_INFINITY)
      return [
        namedAt === -1 ? 1 : 0,
        namedAt,
        d.status === 'active' ? 1 : 0,
        byRule,
        this.settings.remove === 'oldest' ? d.id : -d.id,
      ]
    }
    return [...candidates].sort((a, b) => {
      const ra = rank(a)
      const rb = rank(b)
      for (let i = 0; i < ra.length; i++) if (ra[i] !== rb[i]) return ra[i]! < rb[i]! ? -1 : 1
      return 0
    })
  }

  /** Mean load_1 over the last 5 minutes per droplet (Monitoring API); a droplet without data ranks last. */
  private async recentLoad(droplets: Droplet[], signal: AbortSignal): Promise<Map<number, number>> {
    const end = Math.floor(Date.now() / 1000)
    const out = new Map<number, number>()
    await Promise.all(
      droplets.map(async (d) => {
        try {
          const res = await this.client.getDropletMetric(
            'load_1',
            { hostId: d.id, start: end - 300, end },
            signal,
          )
          const values = res.data.result[0]?.values.map(([, v]) => Number(v)).filter(Number.isFinite) ?? []
          if (values.length > 0) out.set(d.id, values.reduce((a, b) => a + b, 0) / values.length)
        } catch {}
      }),
    )
    return out
  }

  private async removeClone(
    cluster: DropletGroup,
    droplet: Droplet,
    plan: ScalePlan,
    signal: AbortSignal,
  ): Promise<void> {
    this.removing.set(droplet.id, 'draining')
    try {
      const lb = cluster.loadBalancer
      if (lb && !lb.tag) await this.client.removeDropletsFromLoadBalancer(lb.id, [droplet.id], signal)
      const instance = this.instance(droplet, cluster.base)
      await plan.drain?.(instance)
      if (this.settings.drain > 0) {
        plan.progress?.(
          `${droplet.name} out of the load balancer; deleting it in ${Math.round(this.settings.drain / 1000)}s`,
        )
        await sleep(this.settings.drain, undefined, { signal })
      }
      this.removing.set(droplet.id, 'stopping')
      await this.client.deleteDroplet(droplet.id, signal)
      plan.progress?.(`${droplet.name} (droplet ${droplet.id}) deleted`)
    } finally {
      this.removing.delete(droplet.id)
    }
  }

  // ─── Recovery ────────────────────────────────────────────────────────────

  /**
   * Finishes what an earlier run (this process before a crash, another Tide, a drop-in
   * invocation that handed over at its deadline) left half done, and says what it did:
   * - an active clone missing from the load balancer is attached;
   * - a clone still booting past boot_timeout (counted from its creation) is deleted;
   * - a clone still booting within it is waited for and attached when `wait` is true (the
   *   daemon's start-up), or left for a later run when false (a stateless invocation with a
   *   deadline);
   * - a create marker tag (`tide-create-…`, see the client) a crash left on a clone is deleted.
   * `cluster` is updated to match (deleted clones dropped, attached ones added to the load
   * balancer's ids). Failures of one clone are logged and do not stop the others.
   */
  async finishPending(
    cluster: DropletGroup,
    options: { wait?: boolean; now?: number; signal?: AbortSignal } = {},
  ): Promise<string[]> {
    const { signal } = options
    const lb = cluster.loadBalancer
    const members = new Set(lb?.droplet_ids ?? [])
    const done: string[] = []
    const gone = new Set<number>()
    const finish = async (clone: Droplet) => {
      for (const marker of clone.tags.filter((t) => t.startsWith(CREATE_MARKER))) {
        await this.client.deleteTag(marker, signal)
        clone.tags = clone.tags.filter((t) => t !== marker)
      }
      let ready: Droplet | undefined = clone.status === 'active' && this.addressOf(clone) ? clone : undefined
      if (!ready) {
        const now = options.now ?? Date.now()
        if (clone.status !== 'new') return // off or archived: counted, never touched here
        if (!options.wait && Date.parse(clone.created_at) + this.settings.bootTimeout > now) return
        try {
          ready = await this.waitActive(clone, signal, options.now)
        } catch (err) {
          if (err instanceof TargetError && err.code === 'E_DO_BOOT_TIMEOUT') {
            gone.add(clone.id)
            done.push(
              `${clone.name} never became active within ${Math.round(this.settings.bootTimeout / 1000)}s: deleted`,
            )
            return
          }
          throw err
        }
      }
      if (lb && !lb.tag && !members.has(ready.id)) {
        await this.attach(lb, ready, signal)
        members.add(ready.id)
        done.push(
          `${ready.name} was not in load balancer ${lb.name} (an earlier run stopped before attaching it): attached`,
        )
      }
    }
    await Promise.all(
      cluster.clones.map(async (clone) => {
        try {
          await finish(clone)
        } catch (err) {
          if (signal?.aborted) return
          this.logger.warn(
            { group: this.group, droplet: clone.id, err },
            `adopted clone ${clone.name}: ${errorMessage(err)}`,
          )
        }
      }),
    )
    if (lb && !lb.tag) lb.droplet_ids = [...members]
    cluster.droplets = cluster.droplets.filter((d) => !gone.has(d.id))
    cluster.clones = cluster.clones.filter((d) => !gone.has(d.id))
    for (const line of done) this.logger.info({ group: this.group }, line)
    return done
  }

  // ─── Helpers ─────────────────────────────────────────────────────────────

  private instance(d: Droplet, base: Droplet | undefined): Instance {
    const address = this.addressOf(d)
    const removing = this.removing.get(d.id)
    const isBase = base !== undefined && d.id === base.id
    const isClone = !isBase && this.cloneName.test(d.name)
    const state =
      removing ?? (d.status === 'active' && address ? 'ready' : d.status === 'new' ? 'starting' : 'failed')
    const instance: Instance = {
      id: String(d.id),
      state,
      createdAt: Date.parse(d.created_at),
      ...(address ? { address: this.settings.port ? `${address}:${this.settings.port}` : address } : {}),
      detail: `${d.name}${isBase ? ' (base droplet, never removed)' : isClone ? '' : ` (not named ${showPattern(this.names)}: never removed)`}${state === 'failed' ? ` status ${d.status}` : ''}`,
    }
    if (!isClone) instance.protected = true
    return instance
  }

  private addressOf(d: Droplet): string | undefined {
    const other = this.settings.address === 'private' ? 'public' : 'private'
    return (
      dropletIPv4(d, this.settings.address) ??
      (this.settings.address === 'private' ? dropletIPv4(d, other) : undefined)
    )
  }

  private countRemoving(cluster: Pick<DropletGroup, 'droplets'>): number {
    return cluster.droplets.filter((d) => this.removing.has(d.id)).length
  }
}
