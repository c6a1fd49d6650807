/**
 * A group's `route`: Tide's own HTTP/1.1 reverse proxy in front of its ready instances.
 *
 * ```yaml
 * route:
 *   listen: 0.0.0.0:8080
 *   workers: 2                 # processes sharing the port; 1 = inside Tide's process
 *   balance: least-outstanding
 *   queue: { depth: 1000, timeout: 30s, max_body: 1048576 }
 *   drain_timeout: 30s
 *   upstream_timeout: 60s
 * ```
 */
import { z } from 'zod'
import { duration, listenAddress } from '../core/schema.js'

export const routeSchema = z
  .object({
    listen: listenAddress().describe(
      'Where the router listens, e.g. "0.0.0.0:8080" (port 0: any free port).',
    ),
    workers: z
      .number()
      .int()
      .min(1)
      .max(64)
      .optional()
      .describe(
        'How many processes serve the port (they share it, as nginx workers do). `1` runs the router inside ' +
          "Tide's own process. Default: one fewer than the number of cores, at least 1: the group's instances " +
          'usually run on the same machine and need cores too.',
      ),
    balance: z
      .enum(['least-outstanding', 'p2c'])
      .default('least-outstanding')
      .describe(
        'How a backend is chosen: `least-outstanding` (fewest requests in flight, ties in turn) or `p2c` ' +
          '(the less busy of two picked at random, as Knative’s activator does when concurrency is unlimited).',
      ),
    queue: z
      .object({
        depth: z
          .number()
          .int()
          .min(0)
          .default(1000)
          .describe(
            'Requests held while no instance is ready (scale from zero); one more is answered 503. ' +
              'Shared out evenly between workers.',
          ),
        timeout: duration('30s').describe('How long a held request may wait for an instance before a 503.'),
        max_body: z
          .number()
          .int()
          .min(0)
          .default(1024 * 1024)
          .describe(
            'Bytes of request body held per waiting request; past it the client is paused (TCP back-pressure) ' +
              'until an instance is ready. Bodies this small are also kept so a failed connection can be retried.',
          ),
      })
      .strict()
      .prefault({})
      .describe('The bounded queue of requests that arrive while the group has no ready instance.'),
    drain_timeout: duration('30s').describe(
      'How long a drained instance (or the router at shutdown) may take to finish its requests in flight.',
    ),
    upstream_timeout: duration('60s').describe(
      'The longest an instance may stay silent while a request is in flight (no response byte); then 504.',
    ),
  })
  .strict()

/** The parsed `route` (durations in milliseconds). */
export type RouteConfig = z.output<typeof routeSchema>
