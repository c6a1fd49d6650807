/**
 * The `digitalocean` target: a droplet cluster as seed 000 (droplet-autoscale) has it — a base
 * droplet made by hand, clones booted from a snapshot of it, all carrying one tag, behind a
 * load balancer — done right (see target.ts for what each operation does and why).
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
import { DigitalOceanTarget } from './target.js'

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
} from './target.js'

/** A droplet name: letters, digits, `.` and `-` (the API's pattern for names). */
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9.-]*$/
/** A tag name (components.schemas.tags.name). */
const TAG = /^[a-zA-Z0-9_\-:]+$/

const positive = (what: string) =>
  [(ms: number) => ms > 0, { message: `${what} must be longer than 0` }] as const

export const digitaloceanTargetSchema = z
  .object({
    kind: z
      .literal('digitalocean')
      .describe('A DigitalOcean droplet cluster: a base droplet and its clones.'),
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
      .describe('The group is the droplets carrying this tag (base and clones).'),
    base_droplet: z
      .string()
      .min(1)
      .describe(
        'Name of the base droplet (it must carry `tag`). Never removed or changed; counts toward `max`; clones copy its region, size, VPC and tags.',
      ),
    snapshot: z
      .string()
      .min(1)
      .describe('Name of the snapshot (a private image) clones boot from. The newest of that name is used.'),
    clone_prefix: z
      .string()
      .max(60)
      .regex(NAME, 'must start a droplet name: letters, digits, . and -')
      .optional()
      .describe(
        'Clones are named `<prefix>001`, `<prefix>002`, …, skipping any name a droplet already has. Default: `<tag>-`.',
      ),
    load_balancer: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Name or id of the load balancer clones join when ready and leave before they are deleted. Not needed for a load balancer that selects droplets by tag.',
      ),
    user_data: z.string().optional().describe('Cloud-init user data for new clones.'),
    ssh_keys: z
      .array(z.union([z.number().int().positive(), z.string().min(1)]))
      .default([])
      .describe(
        'SSH key ids or fingerprints for new clones. The API does not tell a droplet’s keys, so the base droplet’s cannot be copied; the snapshot already holds its authorized_keys.',
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
        'Which clone goes first when the group shrinks: the newest (seed 000), the oldest (seed 002), or the one with the lowest mean `load_1` over the last 5 minutes (Monitoring API). Booting clones always go first; the base never does.',
      ),
    timeout: duration('30s')
      .refine(...positive('timeout'))
      .describe('How long one API request may take before it is retried.'),
  })
  .strict()

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
  return new DigitalOceanTarget(
    group,
    {
      tag: config.tag,
      baseDroplet: config.base_droplet,
      snapshot: config.snapshot,
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
