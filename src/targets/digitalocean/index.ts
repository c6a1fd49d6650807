/**
 * The `digitalocean` target: a group of droplets found by a tag, behind an optional load
 * balancer (see target.ts for what each operation does and why). New droplets come one of two
 * ways:
 *
 * - seed 000 (droplet-autoscale): clones of a base droplet made by hand, booted from a snapshot
 *   of it (`base_droplet` + `snapshot`; the base is never removed);
 * - seed 002 (do-scaler): created from a droplet template (`template`: image, size, region, …;
 *   no base droplet, so the group may go to 0).
 *
 * ```yaml
 * target:
 *   kind: digitalocean
 *   token: ${DIGITALOCEAN_TOKEN}      # optional; default env DIGITALOCEAN_TOKEN
 *   api_url: https://api.digitalocean.com   # default env DIGITALOCEAN_API_URL, else the public API
 *   tag: web-cluster                  # the group = droplets carrying this tag
 *   base_droplet: web-base            # by name; never removed; counts toward max
 *   snapshot: web-snapshot            # by name (private images, every page)
 *   clone_prefix: web-                # names web-001, web-002, …; never collide
 *   # or, instead of base_droplet + snapshot (+ clone_prefix, ssh_keys, user_data):
 *   # template: { image: ubuntu-24-04-x64, size: s-1vcpu-1gb, region: nyc3, name: "web-{}" }
 *   load_balancer: web-lb             # name or id; optional; tag-based LBs need nothing
 *   boot_timeout: 5m
 *   drain: 30s
 *   remove: newest                    # newest | oldest | least-busy
 * ```
 */
import { z } from 'zod'
import type { Clock } from '../../core/clock.js'
import { duration, portNumber } from '../../core/schema.js'
import { createDigitalOceanClient, type ClientLogger } from './client.js'
import { parseNamePattern } from './names.js'
import { DigitalOceanTarget, type DropletTemplate } from './target.js'

export {
  createDigitalOceanClient,
  DEFAULT_API_URL,
  DigitalOceanApiError,
  DigitalOceanClient,
  DigitalOceanUnreachableError,
  dropletIPv4,
} from './client.js'
export type { Droplet, DropletCreateRequest, LoadBalancer, MetricsResponse } from './client.js'
export {
  type Cluster,
  DigitalOceanTarget,
  type DigitalOceanSettings,
  type DropletClusterDescription,
  type DropletGroup,
  type DropletTemplate,
} from './target.js'
export { formatName, type NamePattern, nameRegExp, parseNamePattern } from './names.js'

/** A droplet name: letters, digits, `.` and `-` (the API's pattern for names). */
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9.-]*$/
/** A tag name (components.schemas.tags.name). */
const TAG = /^[a-zA-Z0-9_\-:]+$/

/** A public image's slug (`ubuntu-24-04-x64`, `docker-20-04`). */
const IMAGE_SLUG = /^[a-z0-9][a-z0-9._-]*$/
const VPC_UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/
/** components.schemas.droplet_create.user_data: "may not exceed 64 KiB". */
const USER_DATA_MAX = 64 * 1024

const positive = (what: string) =>
  [(ms: number) => ms > 0, { message: `${what} must be longer than 0` }] as const

/**
 * What `POST /v2/droplets` gets for each new droplet in template mode
 * (components.schemas.droplet_create in the API definition), as do-scaler's JSON droplet
 * template had it. `name` is the one addition: a pattern with a counter.
 */
export const dropletTemplateSchema = z
  .object({
    image: z
      .union([z.number(), z.string()])
      .transform((value, ctx) => {
        // A whole-value ${IMAGE_ID} may arrive as text; the API reads a string as a slug.
        const v = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value
        if (typeof v === 'number') {
          if (Number.isSafeInteger(v) && v > 0) return v
        } else if (IMAGE_SLUG.test(v)) return v
        ctx.addIssue({
          code: 'custom',
          message: `must be a public image's slug (like "ubuntu-24-04-x64") or an image id (a number; a snapshot or custom image is given by its id), not ${JSON.stringify(value)}`,
        })
        return z.NEVER
      })
      .describe(
        "The image new droplets boot: a public image's slug (`ubuntu-24-04-x64`) or the id of any image the account can use, public or private (a snapshot, a custom image).",
      ),
    size: z
      .string()
      .min(1)
      .regex(IMAGE_SLUG, 'must be a size slug like "s-1vcpu-1gb"')
      .describe('Size slug of new droplets, e.g. `s-1vcpu-1gb`.'),
    region: z
      .string()
      .min(1)
      .regex(/^[a-z0-9]+$/, 'must be a region slug like "nyc3"')
      .describe('Region slug of new droplets, e.g. `nyc3` (the load balancer’s region, when there is one).'),
    name: z
      .string()
      .min(1)
      .superRefine((pattern, ctx) => {
        const p = parseNamePattern(pattern)
        if (typeof p === 'string') ctx.addIssue({ code: 'custom', message: p })
      })
      .optional()
      .describe(
        'Name pattern of new droplets, with `{}` where a number goes (`web-{}` → `web-1`, `web-2`, as do-scaler named them) or `{:03d}` for zero-padded numbers (`web-007`). The number is one more than the highest among the group’s droplets named by the pattern, skipping any name a droplet in the account already has, so names never repeat. Default: `<tag>-{}`.',
      ),
    ssh_keys: z
      .array(z.union([z.number().int().positive(), z.string().min(1)]))
      .default([])
      .describe('SSH key ids or fingerprints to put in new droplets’ root account.'),
    vpc_uuid: z
      .string()
      .regex(VPC_UUID, 'must be a VPC’s UUID')
      .optional()
      .describe("The VPC of new droplets. Default: the account's default VPC in the region."),
    tags: z
      .array(z.string().max(255).regex(TAG, 'must be a DigitalOcean tag: letters, digits, _, - and :'))
      .default([])
      .describe(
        'Tags for new droplets besides the group’s `tag` (always added), e.g. the tags a firewall selects.',
      ),
    user_data: z
      .string()
      .max(USER_DATA_MAX, 'may not exceed 64 KiB (the API’s limit)')
      .optional()
      .describe('Cloud-init user data for new droplets (a cloud-config file or a script), at most 64 KiB.'),
    monitoring: z
      .boolean()
      .default(true)
      .describe(
        'Install the DigitalOcean agent (do-agent): the Monitoring API has no data for a droplet without it, and the `scrape` source reads it.',
      ),
    ipv6: z.boolean().default(false).describe('Give new droplets an IPv6 address.'),
    backups: z.boolean().default(false).describe('Turn on automated backups for new droplets.'),
  })
  .strict()

export type DropletTemplateConfig = z.output<typeof dropletTemplateSchema>

export const digitaloceanTargetSchema = z
  .object({
    kind: z
      .literal('digitalocean')
      .describe(
        'A DigitalOcean droplet group: clones of a base droplet (`base_droplet` + `snapshot`), or droplets created from a `template`.',
      ),
    token: z
      .string()
      .min(1)
      .optional()
      .describe(
        'API token with read and write scope. Default: the DIGITALOCEAN_TOKEN environment variable. Write `${DIGITALOCEAN_TOKEN}` rather than the token itself.',
      ),
    api_url: z
      .url({ protocol: /^https?$/, message: 'must be an http(s) URL' })
      .optional()
      .describe(
        'The API endpoint. Default: the DIGITALOCEAN_API_URL environment variable, else https://api.digitalocean.com (the emulator in the demo sets another).',
      ),
    tag: z
      .string()
      .max(255)
      .regex(TAG, 'must be a DigitalOcean tag: letters, digits, _, - and :')
      .describe(
        'The group is the droplets carrying this tag (base and clones, or those made from the template).',
      ),
    base_droplet: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Name of the base droplet (it must carry `tag`). Never removed or changed; counts toward `max`; clones copy its region, size, VPC and tags. With `snapshot`; or give `template` instead of both.',
      ),
    snapshot: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Name of the snapshot (a private image) clones boot from. The newest of that name is used. With `base_droplet`.',
      ),
    template: dropletTemplateSchema
      .optional()
      .describe(
        'Create new droplets from this template (do-scaler’s JSON droplet template) instead of cloning a base droplet: no base droplet, nothing protected, `min` may be 0. Instead of `base_droplet` + `snapshot`.',
      ),
    clone_prefix: z
      .string()
      .max(60)
      .regex(NAME, 'must start a droplet name: letters, digits, . and -')
      .optional()
      .describe(
        'Clones are named `<prefix>001`, `<prefix>002`, …, skipping any name a droplet already has. Default: `<tag>-`. With `template`, use `template.name`.',
      ),
    load_balancer: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Name or id of the load balancer clones join when ready and leave before they are deleted. Not needed for a load balancer that selects droplets by tag.',
      ),
    user_data: z
      .string()
      .max(USER_DATA_MAX, 'may not exceed 64 KiB (the API’s limit)')
      .optional()
      .describe('Cloud-init user data for new clones. With `template`, use `template.user_data`.'),
    ssh_keys: z
      .array(z.union([z.number().int().positive(), z.string().min(1)]))
      .default([])
      .describe(
        'SSH key ids or fingerprints for new clones. The API does not tell a droplet’s keys, so the base droplet’s cannot be copied; the snapshot already holds its authorized_keys. With `template`, use `template.ssh_keys`.',
      ),
    address: z
      .enum(['private', 'public'])
      .default('private')
      .describe(
        'Which IPv4 is an instance’s address (what the `scrape` source and a route connect to). `private` falls back to public for a droplet without one.',
      ),
    port: portNumber()
      .optional()
      .describe(
        'Appended to the address (`ip:port`) for a route in front of the droplets. Default: no port (the `scrape` source sets its own).',
      ),
    boot_timeout: duration('5m')
      .refine(...positive('boot_timeout'))
      .describe(
        'A new clone must be `active` with an address this long after its creation, or it is deleted and the failure reported.',
      ),
    poll: duration('5s')
      .refine(...positive('poll'))
      .describe('How often a booting clone is checked.'),
    drain: duration('30s').describe(
      'Wait between taking a clone out of the load balancer and deleting it, so its open connections finish.',
    ),
    remove: z
      .enum(['newest', 'oldest', 'least-busy'])
      .default('newest')
      .describe(
        'Which droplet goes first when the group shrinks: the newest (seed 000), the oldest (seed 002), or the one with the lowest mean `load_1` over the last 5 minutes (Monitoring API). Booting droplets always go first; the base never does.',
      ),
    timeout: duration('30s')
      .refine(...positive('timeout'))
      .describe('How long one API request may take before it is retried.'),
  })
  .strict()
  .superRefine((c, ctx) => {
    // Exactly one way to make droplets; each problem names the fields to change.
    const base = c.base_droplet !== undefined || c.snapshot !== undefined
    if (c.template !== undefined && base) {
      const given = [c.base_droplet !== undefined && 'base_droplet', c.snapshot !== undefined && 'snapshot']
        .filter(Boolean)
        .join(' and ')
      ctx.addIssue({
        code: 'custom',
        path: ['template'],
        message: `cannot go with ${given}: droplets are either created from \`template\` or cloned from \`base_droplet\` with \`snapshot\`; remove one`,
      })
    } else if (c.template === undefined && !base) {
      ctx.addIssue({
        code: 'custom',
        path: ['template'],
        message:
          'is required, or `base_droplet` with `snapshot`: say how new droplets are made — from a `template` (image, size, region, …) or as clones of a base droplet',
      })
    } else if (c.template === undefined && (c.base_droplet === undefined || c.snapshot === undefined)) {
      const missing = c.base_droplet === undefined ? 'base_droplet' : 'snapshot'
      ctx.addIssue({
        code: 'custom',
        path: [missing],
        message: `is required with ${missing === 'snapshot' ? 'base_droplet' : 'snapshot'}: clones boot from the snapshot of the base droplet (or give \`template\` instead of both)`,
      })
    }
    if (c.template !== undefined && c.template.name === undefined) {
      const problem = parseNamePattern(`${c.tag}-{}`)
      if (typeof problem === 'string') {
        ctx.addIssue({
          code: 'custom',
          path: ['template', 'name'],
          message: `is required: the default "${c.tag}-{}" (from the tag) ${problem}`,
        })
      }
    }
    if (c.template !== undefined) {
      // The base-mode keys that template mode has inside the template.
      const moved: Array<[keyof typeof c, string, boolean]> = [
        ['clone_prefix', 'template.name (e.g. "web-{}")', c.clone_prefix !== undefined],
        ['ssh_keys', 'template.ssh_keys', c.ssh_keys.length > 0],
        ['user_data', 'template.user_data', c.user_data !== undefined],
      ]
      for (const [key, instead, given] of moved) {
        if (given) {
          ctx.addIssue({
            code: 'custom',
            path: [key],
            message: `is for clones of a base droplet; with \`template\`, use ${instead}`,
          })
        }
      }
    }
  })

export type DigitalOceanTargetConfig = z.output<typeof digitaloceanTargetSchema>

export interface DigitalOceanTargetDeps {
  logger?: ClientLogger & { error?(obj: object, msg: string): void }
  clock?: Clock
}

export function createDigitalOceanTarget(
  group: string,
  config: DigitalOceanTargetConfig,
  deps: DigitalOceanTargetDeps = {},
): DigitalOceanTarget {
  const client = createDigitalOceanClient({
    token: config.token,
    apiUrl: config.api_url,
    timeout: config.timeout,
    logger: deps.logger,
  })
  const t = config.template
  const template: DropletTemplate | undefined = t && {
    image: t.image,
    size: t.size,
    region: t.region,
    name: t.name ?? `${config.tag}-{}`,
    sshKeys: t.ssh_keys,
    vpcUuid: t.vpc_uuid,
    tags: t.tags,
    userData: t.user_data,
    monitoring: t.monitoring,
    ipv6: t.ipv6,
    backups: t.backups,
  }
  return new DigitalOceanTarget(
    group,
    {
      tag: config.tag,
      baseDroplet: config.base_droplet,
      snapshot: config.snapshot,
      template,
      clonePrefix: config.clone_prefix ?? `${config.tag}-`,
      loadBalancer: config.load_balancer,
      userData: config.user_data,
      sshKeys: config.ssh_keys,
      address: config.address,
      port: config.port,
      bootTimeout: config.boot_timeout,
      poll: config.poll,
      drain: config.drain,
      remove: config.remove,
    },
    client,
    deps.logger,
  )
}
