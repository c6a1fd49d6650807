/**
 * Cluster discovery for the drop-in: the `digitalocean` target's own (every page of images and
 * load balancers read, region and size from the base droplet: reference/seeds.md §1.12 items
 * 3 and 6), with seed 000's message prefix (§1.10) and the variable to check named.
 */
import { TideError } from '../../core/errors.js'
import type { Droplet } from '../../targets/digitalocean/client.js'
import type { Cluster, DigitalOceanTarget } from '../../targets/digitalocean/target.js'
import type { DropinConfig } from './env.js'

/** Seed 000's `ClusterInfo` (§1.2); region and size are the base droplet's. */
export interface ClusterInfo {
  dropletCount: number
  droplets: Droplet[]
  baseDroplet: Droplet
  region: string
  dropletSize: string
  snapshotImageID: number
  loadBalancerID: string
}

/** Which variable names the thing a discovery error says is missing. */
function hint(message: string): string {
  if (message.includes('base droplet')) return ' (check BASE_DROPLET and CLUSTER_TAG)'
  if (message.includes('snapshot')) return ' (check SNAPSHOT)'
  if (message.includes('load balancer')) return ' (check LOAD_BALANCER)'
  return ''
}

/** Discovers the cluster; errors read "can't get cluster info: …" as the seed's did. */
export async function discover(
  target: DigitalOceanTarget,
  config: DropinConfig,
  signal?: AbortSignal,
): Promise<Cluster> {
  try {
    const cluster = await target.discover(signal)
    if (cluster.loadBalancer === undefined) {
      // The target treats the load balancer as optional; seed 000 requires one.
      throw new TideError('E_DO_NOT_FOUND', `no load balancer with name ${config.loadBalancer}`, {
        status: 404,
      })
    }
    return cluster
  } catch (err) {
    if (!(err instanceof TideError) || err.name === 'AbortError') throw err
    const status = err.code === 'E_DO_NOT_FOUND' ? 404 : err.status
    throw new TideError(err.code, `can't get cluster info: ${err.message}${hint(err.message)}`, {
      status,
      cause: err,
    })
  }
}

export function clusterInfo(cluster: Cluster): ClusterInfo {
  return {
    dropletCount: cluster.droplets.length,
    droplets: cluster.droplets,
    baseDroplet: cluster.base,
    region: cluster.base.region.slug,
    dropletSize: cluster.base.size_slug ?? cluster.base.size.slug,
    snapshotImageID: cluster.snapshot.id,
    loadBalancerID: cluster.loadBalancer?.id ?? '',
  }
}
