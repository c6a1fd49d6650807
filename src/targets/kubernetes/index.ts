/**
 * The `kubernetes` target: a Deployment or StatefulSet scaled through its scale subresource,
 * its pods as the group's instances (docs/targets/kubernetes.md).
 *
 * ```yaml
 * target:
 *   kind: kubernetes
 *   workload: deployment/hello       # or statefulset/<name>
 *   namespace: apps                  # default: TIDE_NAMESPACE, the service account's, "default"
 *   port: http                       # container port (number or name); default: the first declared
 *   readiness: pods                  # or endpointslices (with service: <name>)
 * ```
 */
import { z } from 'zod'
import { duration, portNumber } from '../../core/schema.js'
import type { Environment } from './credentials.js'
import { type KubernetesLogger, KubernetesTarget } from './target.js'

export { KubernetesError } from './errors.js'
export { KubernetesTarget } from './target.js'

/** RFC 1123 names, as Kubernetes requires for namespaces and most objects. */
const DNS_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/
const KINDS: Record<string, 'deployment' | 'statefulset'> = {
  deployment: 'deployment',
  deployments: 'deployment',
  deploy: 'deployment',
  statefulset: 'statefulset',
  statefulsets: 'statefulset',
  sts: 'statefulset',
}

const workloadSchema = z
  .string()
  .transform((text, ctx) => {
    const m = /^([A-Za-z]+)\/(.+)$/.exec(text)
    const kind = m ? KINDS[m[1]!.toLowerCase()] : undefined
    if (!m || !kind) {
      ctx.addIssue({
        code: 'custom',
        message: `must be "deployment/<name>" or "statefulset/<name>", not ${JSON.stringify(text)}`,
      })
      return z.NEVER
    }
    if (!DNS_NAME.test(m[2]!)) {
      ctx.addIssue({
        code: 'custom',
        message: `${JSON.stringify(m[2])} is not a Kubernetes object name (lowercase letters, digits, "-" and ".")`,
      })
      return z.NEVER
    }
    return { kind, name: m[2]! }
  })
  .describe(
    'The workload whose replicas Tide sets: `deployment/<name>` or `statefulset/<name>` (as kubectl writes it).',
  )

export const kubernetesTargetSchema = z
  .object({
    kind: z
      .literal('kubernetes')
      .describe('A Kubernetes Deployment or StatefulSet, scaled through its scale subresource.'),
    workload: workloadSchema,
    namespace: z
      .string()
      .regex(DNS_NAME, 'must be a Kubernetes namespace name (lowercase letters, digits and "-")')
      .optional()
      .describe(
        "The workload's namespace. Default: TIDE_NAMESPACE, then the namespace of the pod's service account (/var/run/secrets/kubernetes.io/serviceaccount/namespace), then `default`.",
      ),
    kubeconfig: z
      .string()
      .min(1)
      .optional()
      .describe(
        'A kubeconfig file. Default: KUBECONFIG, then ~/.kube/config, then the in-cluster service account (Tide running in a pod).',
      ),
    context: z
      .string()
      .min(1)
      .optional()
      .describe("The kubeconfig context to use. Default: the file's current context."),
    port: z
      .union([portNumber(), z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a port name')])
      .optional()
      .describe(
        "The pods' port Tide's router sends requests to: a number, or a container port's name. Default: the first container port the pod declares.",
      ),
    readiness: z
      .enum(['pods', 'endpointslices'])
      .default('pods')
      .describe(
        "Where Tide learns that a pod is ready: `pods` (the pods' Ready condition, watched by label selector) or `endpointslices` (the Service's EndpointSlices, as kube-proxy sees them; needs `service`).",
      ),
    service: z
      .string()
      .regex(DNS_NAME, 'must be a Kubernetes service name')
      .optional()
      .describe('The Service whose EndpointSlices give readiness, with `readiness: endpointslices`.'),
    ready_timeout: duration('5m').describe(
      'How long a scale-up waits for the new pods to be Ready before it fails with E_K8S_NOT_READY (the pods keep starting). Pods that cannot start (CrashLoopBackOff, ImagePullBackOff…) fail it sooner, with E_K8S_POD_FAILED.',
    ),
    request_timeout: duration('10s').describe('The longest one call to the Kubernetes API may take.'),
    deletion_cost: z
      .boolean()
      .default(true)
      .describe(
        'Deployments: before a scale-down, mark the pods Tide chose to remove with a low `controller.kubernetes.io/pod-deletion-cost`, so the ReplicaSet removes those (the ones Tide drained) rather than others. Needs `patch` on pods.',
      ),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.readiness === 'endpointslices' && !c.service) {
      ctx.addIssue({
        code: 'custom',
        path: ['service'],
        message: 'is required with readiness: endpointslices',
      })
    }
    if (c.readiness === 'pods' && c.service) {
      ctx.addIssue({
        code: 'custom',
        path: ['service'],
        message: "is only used with readiness: endpointslices (pods are found by the workload's selector)",
      })
    }
  })

export type KubernetesTargetConfig = z.output<typeof kubernetesTargetSchema>

export interface KubernetesTargetDeps {
  logger?: KubernetesLogger
  /** Environment variables, service-account root and home directory (tests). */
  environment?: Environment
}

export function createKubernetesTarget(
  group: string,
  config: KubernetesTargetConfig,
  deps: KubernetesTargetDeps = {},
): KubernetesTarget {
  return new KubernetesTarget(
    group,
    {
      workload: config.workload,
      namespace: config.namespace,
      kubeconfig: config.kubeconfig,
      context: config.context,
      port: config.port,
      readiness: config.readiness,
      service: config.service,
      ready_timeout: config.ready_timeout,
      request_timeout: config.request_timeout,
      deletion_cost: config.deletion_cost,
    },
    deps.logger,
    deps.environment,
  )
}
