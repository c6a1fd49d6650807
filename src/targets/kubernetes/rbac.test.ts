/**
 * deploy/kubernetes/ is what a user applies. Its Role must allow exactly what the kubernetes
 * target does: the target runs against the API emulator with the Role's rules enforced, through
 * a whole life (start, status, scale up, scale down), and the calls it made must be exactly the
 * rules' verbs and resources: nothing refused, no rule unused.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { parse, parseAllDocuments } from 'yaml'
import { startKubernetesEmulator, type PolicyRule } from '../../../test/emulators/kubernetes/index.js'
import { requireKubernetesSpecs } from '../../../test/emulators/kubernetes/openapi.js'
import { configSchema } from '../../config/schema.js'
import { createKubernetesTarget, kubernetesTargetSchema } from './index.js'

const DEPLOY = 'deploy/kubernetes'

/* eslint-disable @typescript-eslint/no-explicit-any -- manifests are free-form YAML */
type Manifest = {
  apiVersion: string
  kind: string
  metadata: { name: string; namespace?: string }
  [k: string]: any
}
/* eslint-enable @typescript-eslint/no-explicit-any */

function manifests(): Manifest[] {
  return readdirSync(DEPLOY)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => parseAllDocuments(readFileSync(join(DEPLOY, f), 'utf8')).map((d) => d.toJS() as Manifest))
}

const find = (kind: string, name: string) => {
  const found = manifests().find((m) => m.kind === kind && m.metadata.name === name)
  assert.ok(found, `${kind} ${name} in ${DEPLOY}`)
  return found
}

describe('deploy/kubernetes manifests', () => {
  test('every object has apiVersion, kind, name and the same namespace', () => {
    const all = manifests()
    assert.ok(all.length >= 7)
    for (const m of all) {
      assert.ok(m.apiVersion && m.kind && m.metadata?.name, JSON.stringify(m).slice(0, 80))
      assert.equal(m.metadata.namespace, 'default', `${m.kind} ${m.metadata.name}`)
    }
  })

  test("the pieces fit: service account bound to the Role, config mounted, Service to Tide's router", () => {
    const deployment = find('Deployment', 'tide')
    const pod = deployment.spec.template.spec
    const binding = find('RoleBinding', 'tide')
    assert.equal(binding.roleRef.name, find('Role', 'tide').metadata.name)
    assert.deepEqual(binding.subjects, [
      { kind: 'ServiceAccount', name: pod.serviceAccountName, namespace: 'default' },
    ])
    find('ServiceAccount', pod.serviceAccountName)
    const configVolume = pod.volumes.find((v: { configMap?: { name: string } }) => v.configMap)
    find('ConfigMap', configVolume.configMap.name)
    const service = find('Service', 'hello')
    assert.deepEqual(service.spec.selector, deployment.spec.template.metadata.labels)
    assert.equal(service.spec.ports[0].targetPort, pod.containers[0].ports[0].name)
    assert.equal(
      pod.containers[0].env.find((e: { name: string }) => e.name === 'TIDE_NAMESPACE').valueFrom.fieldRef
        .fieldPath,
      'metadata.namespace',
    )
  })

  test('the ConfigMap holds a valid tide.yaml whose route is the port the Service targets', () => {
    const config = configSchema.parse(parse(find('ConfigMap', 'tide').data['tide.yaml']))
    const group = config.groups.hello!
    assert.equal(group.target.kind, 'kubernetes')
    assert.equal(group.route?.listen, '0.0.0.0:8080')
    assert.equal(find('Deployment', 'tide').spec.template.spec.containers[0].ports[0].containerPort, 8080)
  })
})

describe(
  'the Role allows exactly what the kubernetes target does',
  { skip: requireKubernetesSpecs() },
  () => {
    test('start, status, scale 0 → 2 → 1: no call refused, every rule used', async () => {
      const rules = find('Role', 'tide').rules as PolicyRule[]
      const k8s = await startKubernetesEmulator({ rbac: rules, kubelet: { startDelay: 10, readyDelay: 20 } })
      const dir = mkdtempSync(join(tmpdir(), 'tide-rbac-'))
      const signal = new AbortController().signal
      const raw = parse(find('ConfigMap', 'tide').data['tide.yaml']).groups.hello.target
      const config = kubernetesTargetSchema.parse({ ...raw, kubeconfig: k8s.writeKubeconfig(dir) })
      const target = createKubernetesTarget('hello', config, {
        environment: { env: {}, root: dir, home: dir },
      })
      try {
        await k8s.createDeployment('hello', { replicas: 0, port: 18095, portName: 'http' })
        await target.start(signal)
        await target.status(signal)
        await target.scale(2, { reason: 'up' }, signal)
        await target.scale(1, { reason: 'down', drain: async () => {} }, signal)
        await target.status(signal)
      } finally {
        await target.close()
        await k8s.close()
        rmSync(dir, { recursive: true, force: true })
      }
      const refused = k8s.api.requests.filter((r) => r.code === 403)
      assert.deepEqual(refused, [], 'no call was refused')
      const used = new Set(k8s.api.requests.map((r) => `${r.group}|${r.resource}|${r.verb}`))
      const granted = new Set(
        rules.flatMap((r) =>
          r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}|${res}|${v}`))),
        ),
      )
      assert.deepEqual([...used].sort(), [...granted].sort(), 'the calls made are exactly the rules')
      assert.deepEqual(
        rules.find((r) => r.resources.includes('deployments/scale'))?.resourceNames,
        [config.workload.name],
        'the scale rule is limited to the workload in the config',
      )
    })
  },
)
