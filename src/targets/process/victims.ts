/**
 * Which instances go when a process group shrinks. Pure.
 *
 * Order: the ids the engine named (`plan.victims`) first, in its order; then the cheapest to
 * lose, following Kubernetes' ReplicaSet scale-down ranking (pkg/controller/controller_utils.go,
 * ActivePodsWithRanks: not-ready before ready, newer before older):
 *   1. `failed` instances waiting for their replacement: nothing is running, only a timer;
 *   2. `starting` instances, newest first: no traffic yet, and the newest has made least progress;
 *   3. `ready` instances, newest first by default (`remove_order: oldest` reverses this tier).
 * Removing a ready instance while a starting one stays would cut serving capacity now for
 * capacity that may never come, so starting instances always go before ready ones.
 */
import type { Instance } from '../../core/types.js'

export type RemoveOrder = 'newest' | 'oldest'

/**
 * @param instances the group's removable instances (starting, ready, failed), oldest first
 * @returns `count` ids (fewer only when there are fewer instances)
 */
export function chooseVictims(
  instances: readonly Pick<Instance, 'id' | 'state'>[],
  count: number,
  named: readonly string[] = [],
  order: RemoveOrder = 'newest',
): string[] {
  const chosen: string[] = []
  const take = (id: string) => {
    if (chosen.length < count && !chosen.includes(id)) chosen.push(id)
  }
  const known = new Set(instances.map((i) => i.id))
  for (const id of named) if (known.has(id)) take(id)
  const newestFirst = [...instances].reverse()
  for (const i of newestFirst) if (i.state === 'failed') take(i.id)
  for (const i of newestFirst) if (i.state === 'starting') take(i.id)
  const ready = order === 'newest' ? newestFirst : instances
  for (const i of ready) if (i.state === 'ready') take(i.id)
  return chosen
}
