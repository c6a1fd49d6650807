/**
 * Docker Scaler's node scaling (`/v1/scale-nodes`, seeds.md §3.4) as one call: change a named
 * Auto Scaling group by N up or down within bounds, with Docker Scaler's messages. The receiver
 * (and `tide docker-scaler`) resolves `by`, `min` and `max` from the query, labels and defaults,
 * then calls this; waiting for the Swarm nodes to join is the caller's business.
 *
 * Differences from Docker Scaler, on purpose:
 * - the group is described by name, all pages (it listed every group and read the first page);
 * - MinSize/MaxSize are written only with `setBounds` (it overwrote them on every call);
 * - the size never moves against the asked direction: an `up` on a group above `max` (or a
 *   `down` below `min`) changes nothing and says so (it scaled such a group the other way).
 */
import type { AsgApi } from './client.js'
import { AsgBoundsError } from './errors.js'

export interface NodeScaleRequest {
  /** The Auto Scaling group's name (AWS_MANAGER_ASG or AWS_WORKER_ASG). */
  asg: string
  /** Which nodes the group holds; only used in messages ("worker nodes …"). */
  type: 'manager' | 'worker'
  direction: 'up' | 'down'
  /** How many nodes to add or remove; a whole number ≥ 1. */
  by: number
  /** The bounds Tide keeps the group within (labels or defaults in Docker Scaler). */
  min: number
  max: number
  /**
   * Also write `min`/`max` to the group's MinSize/MaxSize, as Docker Scaler did on every call.
   * Without it a size outside the group's own MinSize/MaxSize is refused with E_ASG_BOUNDS.
   * @default false
   */
  setBounds?: boolean
}

/**
 * Removes instances itself to reach `to` (Tide picks, drains and terminates them) instead of
 * lowering the desired capacity and letting AWS pick. Used for scale-downs only.
 */
export type NodeScaleIn = (to: number, bounds: { min: number; max: number } | undefined) => Promise<void>

export interface NodeScaleResult {
  /** The group's desired capacity before and after. */
  from: number
  to: number
  /** Whether the desired capacity changed. */
  changed: boolean
  /** Docker Scaler's sentence: "Changing the number of worker nodes on aws from 1 to 2". */
  message: string
}

/**
 * Reads the group's desired capacity, applies `by` in `direction`, clamps to `[min, max]` and
 * sets the result (a scale-down through `scaleIn` when given: Tide picks and drains the nodes). At a bound it changes nothing and returns Docker Scaler's bound message.
 * Throws E_ASG_NOT_FOUND, E_ASG_BOUNDS, or E_TARGET for an AWS failure.
 */
export async function scaleNodes(
  api: AsgApi,
  request: NodeScaleRequest,
  signal: AbortSignal,
  scaleIn?: NodeScaleIn,
): Promise<NodeScaleResult> {
  const { asg, type, direction, by, min, max } = request
  if (!Number.isInteger(by) || by < 1) throw new RangeError(`by must be a whole number ≥ 1, not ${by}`)
  if (!Number.isInteger(min) || !Number.isInteger(max) || min < 0 || max < min) {
    throw new RangeError(`min and max must be whole numbers with 0 ≤ min ≤ max, not ${min} and ${max}`)
  }
  const group = await api.describe(asg, signal)
  const from = group.DesiredCapacity ?? 0
  const wanted = Math.min(max, Math.max(min, from + (direction === 'up' ? by : -by)))
  const to = direction === 'up' ? Math.max(from, wanted) : Math.min(from, wanted)
  if (to === from) {
    return {
      from,
      to,
      changed: false,
      message:
        direction === 'up'
          ? `${type} nodes are already scaled to the maximum number of ${max} nodes`
          : `${type} nodes are already descaled to the minimum number of ${min} nodes`,
    }
  }
  if (direction === 'down' && scaleIn) {
    // Tide's own scale-in (drain first); it writes the bounds when asked and checks them otherwise.
    await scaleIn(to, request.setBounds ? { min, max } : undefined)
  } else if (request.setBounds) {
    await api.update(asg, { desired: to, min, max }, signal)
  } else {
    const asgMin = group.MinSize ?? 0
    const asgMax = group.MaxSize ?? 0
    if (to < asgMin || to > asgMax) throw new AsgBoundsError(asg, to, asgMin, asgMax)
    await api.setDesired(asg, to, signal)
  }
  return {
    from,
    to,
    changed: true,
    message: `Changing the number of ${type} nodes on aws from ${from} to ${to}`,
  }
}
