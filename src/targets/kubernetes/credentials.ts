/**
 * Where the kubernetes target's credentials and namespace come from.
 *
 * Credentials, first found wins (the order of @kubernetes/client-node's loadFromDefault, minus its
 * silent fallback to http://localhost:8080, which hides a missing config behind "connection
 * refused"):
 *   1. `target.kubeconfig` (a file path)
 *   2. the KUBECONFIG environment variable (one or more paths, `:`-separated)
 *   3. ~/.kube/config
 *   4. in-cluster: KUBERNETES_SERVICE_HOST/PORT and the pod's service account token
 *      (/var/run/secrets/kubernetes.io/serviceaccount/token, re-read as the kubelet rotates it)
 * then `target.context` picks a context of the kubeconfig.
 *
 * Namespace, first found wins (the order, as the v3io scaler's SCALER_NAMESPACE):
 * `target.namespace`, TIDE_NAMESPACE, the service account's namespace file, `default`. The
 * kubeconfig context's namespace is deliberately not used: which namespace Tide scales should
 * not change with whoever's kubectl context is current.
 */
import { existsSync, readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { KubeConfig } from '@kubernetes/client-node'
import { errorMessage } from '../../core/errors.js'
import { KubernetesError } from './errors.js'

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'

export interface Environment {
  env: Record<string, string | undefined>
  /** Prepended to SERVICE_ACCOUNT_DIR (tests point it at a temporary directory). @default '' */
  root: string
  home: string
}

export const realEnvironment = (): Environment => ({ env: process.env, root: '', home: homedir() })

export interface CredentialSettings {
  kubeconfig?: string
  context?: string
}

/** Which source gave the credentials, for the start-up log line. */
export type CredentialSource = 'target.kubeconfig' | 'KUBECONFIG' | '~/.kube/config' | 'in-cluster'

export function loadCredentials(
  settings: CredentialSettings,
  environment: Environment = realEnvironment(),
): { config: KubeConfig; source: CredentialSource } {
  const config = new KubeConfig()
  const { env, root, home } = environment
  let source: CredentialSource
  try {
    if (settings.kubeconfig) {
      source = 'target.kubeconfig'
      config.loadFromFile(settings.kubeconfig)
    } else if (env.KUBECONFIG) {
      source = 'KUBECONFIG'
      const files = env.KUBECONFIG.split(':').filter((f) => f && existsSync(f))
      if (files.length === 0) throw new Error(`KUBECONFIG=${env.KUBECONFIG}: no such file`)
      config.loadFromFile(files[0]!)
      for (const file of files.slice(1)) {
        const more = new KubeConfig()
        more.loadFromFile(file)
        config.mergeConfig(more)
      }
    } else if (existsSync(join(home, '.kube', 'config'))) {
      source = '~/.kube/config'
      config.loadFromFile(join(home, '.kube', 'config'))
    } else if (env.KUBERNETES_SERVICE_HOST && existsSync(`${root}${SERVICE_ACCOUNT_DIR}/token`)) {
      source = 'in-cluster'
      config.loadFromCluster(root)
      // loadFromCluster reads process.env; an injected environment must win.
      const cluster = config.clusters[0]
      if (cluster && env !== process.env) {
        const scheme = ['80', '8080', '8001'].includes(env.KUBERNETES_SERVICE_PORT ?? '') ? 'http' : 'https'
        const host = env.KUBERNETES_SERVICE_HOST.includes(':')
          ? `[${env.KUBERNETES_SERVICE_HOST}]`
          : env.KUBERNETES_SERVICE_HOST
        ;(cluster as { server: string }).server = `${scheme}://${host}:${env.KUBERNETES_SERVICE_PORT ?? 443}`
      }
    } else {
      throw new KubernetesError(
        'E_K8S_CREDENTIALS',
        'no Kubernetes credentials: set target.kubeconfig or KUBECONFIG, create ~/.kube/config, or run Tide in a pod with a service account (deploy/kubernetes/)',
      )
    }
  } catch (err) {
    if (err instanceof KubernetesError) throw err
    const where = settings.kubeconfig
      ? `target.kubeconfig (${JSON.stringify(settings.kubeconfig)})`
      : 'the kubeconfig'
    throw new KubernetesError('E_K8S_CREDENTIALS', `cannot load ${where}: ${errorMessage(err)}`, {
      cause: err,
    })
  }
  if (settings.context !== undefined) {
    if (!config.getContextObject(settings.context)) {
      const known = config.getContexts().map((c) => c.name)
      throw new KubernetesError(
        'E_K8S_CREDENTIALS',
        `target.context: no context ${JSON.stringify(settings.context)} in the kubeconfig from ${source} (it has: ${known.join(', ') || 'none'})`,
      )
    }
    config.setCurrentContext(settings.context)
  }
  if (!config.getCurrentCluster()) {
    throw new KubernetesError(
      'E_K8S_CREDENTIALS',
      `the kubeconfig from ${source} has no current context with a cluster (current-context: ${JSON.stringify(config.getCurrentContext())})`,
    )
  }
  return { config, source }
}

/** The namespace to scale in, and where it came from. */
export function resolveNamespace(
  configured: string | undefined,
  environment: Environment = realEnvironment(),
): { namespace: string; from: string } {
  if (configured) return { namespace: configured, from: 'target.namespace' }
  const fromEnv = environment.env.TIDE_NAMESPACE?.trim()
  if (fromEnv) return { namespace: fromEnv, from: 'TIDE_NAMESPACE' }
  const file = `${environment.root}${SERVICE_ACCOUNT_DIR}/namespace`
  try {
    const text = readFileSync(file, 'utf8').trim()
    if (text) return { namespace: text, from: file }
  } catch {
    // Not in a pod.
  }
  return { namespace: 'default', from: 'the default' }
}
