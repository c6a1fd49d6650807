/**
 * The kubernetes target through @kubernetes/client-node against the Kubernetes API emulator
 * (test/emulators/kubernetes): real HTTP, real watches, pods with real sockets.
 */
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, afterEach, before, describe, test } from 'node:test'
import {
  EXIT_CODE_ANNOTATION,
  isReady,
  type KubernetesEmulator,
  startKubernetesEmulator,
} from '../../../test/emulators/kubernetes/index.js'
import { requireKubernetesSpecs } from '../../../test/emulators/kubernetes/openapi.js'
import { waitFor } from '../../../test/support/daemon.js'
import type { GroupStatus, Instance } from '../../core/types.js'
import { type Environment, loadCredentials, resolveNamespace, SERVICE_ACCOUNT_DIR } from './credentials.js'
import { createKubernetesTarget, type KubernetesTarget, kubernetesTargetSchema } from './index.js'

const skip = requireKubernetesSpecs()

const dir = mkdtempSync(join(tmpdir(), 'tide-k8s-'))
after(() => rmSync(dir, { recursive: true, force: true }))

const noEnv = (extra: Record<string, string> = {}, root = join(dir, 'no-root')): Environment => ({
  env: extra,
  root,
  home: join(dir, 'no-home'),
})

describe('kubernetes target config', () => {
  test('workload is kind/name as kubectl writes it', () => {
    const parsed = kubernetesTargetSchema.parse({ kind: 'kubernetes', workload: 'deploy/web' })
    assert.deepEqual(parsed.workload, { kind: 'deployment', name: 'web' })
    assert.equal(
      kubernetesTargetSchema.parse({ kind: 'kubernetes', workload: 'sts/db' }).workload.kind,
      'statefulset',
    )
    assert.equal(parsed.readiness, 'pods')
    assert.equal(parsed.ready_timeout, 300_000)
    assert.equal(parsed.deletion_cost, true)
  })

  test('bad values are errors that name the field and the value', () => {
    const cases: Array<[Record<string, unknown>, string, RegExp]> = [
      [{ workload: 'web' }, 'workload', /"deployment\/<name>" or "statefulset\/<name>", not "web"/],
      [{ workload: 'daemonset/web' }, 'workload', /not "daemonset\/web"/],
      [{ workload: 'deployment/Web_1' }, 'workload', /"Web_1" is not a Kubernetes object name/],
      [
        { workload: 'deployment/web', readiness: 'endpointslices' },
        'service',
        /required with readiness: endpointslices/,
      ],
      [{ workload: 'deployment/web', service: 'web' }, 'service', /only used with readiness: endpointslices/],
      [{ workload: 'deployment/web', namespace: 'Apps' }, 'namespace', /namespace name/],
      [{ workload: 'deployment/web', port: 0 }, 'port', /./],
      [{ workload: 'deployment/web', replicas: 3 }, '', /replicas/],
    ]
    for (const [input, path, message] of cases) {
      const result = kubernetesTargetSchema.safeParse({ kind: 'kubernetes', ...input })
      assert.equal(result.success, false, JSON.stringify(input))
      const issue = result.error!.issues[0]!
      assert.equal(issue.path.join('.'), path, JSON.stringify(input))
      assert.match(issue.message + JSON.stringify(issue), message, JSON.stringify(input))
    }
  })
})

describe('kubernetes credentials and namespace', () => {
  test('namespace: config, then TIDE_NAMESPACE, then the service account file, then default', () => {
    const root = join(dir, 'sa-root')
    mkdirSync(join(root, SERVICE_ACCOUNT_DIR), { recursive: true })
    writeFileSync(join(root, SERVICE_ACCOUNT_DIR, 'namespace'), 'from-file\n')
    const env = noEnv({ TIDE_NAMESPACE: 'from-env' }, root)
    assert.deepEqual(resolveNamespace('from-config', env), {
      namespace: 'from-config',
      from: 'target.namespace',
    })
    assert.deepEqual(resolveNamespace(undefined, env), { namespace: 'from-env', from: 'TIDE_NAMESPACE' })
    assert.equal(resolveNamespace(undefined, noEnv({}, root)).namespace, 'from-file')
    assert.deepEqual(resolveNamespace(undefined, noEnv()), { namespace: 'default', from: 'the default' })
  })

  test('in-cluster: the service account token and the API server from the environment', () => {
    const root = join(dir, 'in-cluster')
    mkdirSync(join(root, SERVICE_ACCOUNT_DIR), { recursive: true })
    writeFileSync(join(root, SERVICE_ACCOUNT_DIR, 'token'), 'sa-token')
    writeFileSync(join(root, SERVICE_ACCOUNT_DIR, 'ca.crt'), '')
    const { config, source } = loadCredentials(
      {},
      noEnv({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, root),
    )
    assert.equal(source, 'in-cluster')
    assert.equal(config.getCurrentCluster()!.server, 'https://10.96.0.1:443')
    assert.equal(
      config.getCurrentUser()!.authProvider?.config?.tokenFile,
      join(root, SERVICE_ACCOUNT_DIR, 'token'),
    )
  })

  test('no credentials, a missing file and an unknown context are E_K8S_CREDENTIALS naming what to fix', () => {
    assert.throws(() => loadCredentials({}, noEnv()), {
      code: 'E_K8S_CREDENTIALS',
      message: /no Kubernetes credentials: set target.kubeconfig/,
    })
    assert.throws(() => loadCredentials({ kubeconfig: join(dir, 'missing') }, noEnv()), {
      code: 'E_K8S_CREDENTIALS',
      message: /target\.kubeconfig \(".*missing"\)/,
    })
    const file = join(dir, 'kc.json')
    writeFileSync(
      file,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster: { server: 'https://k8s.example:6443' } }],
        users: [{ name: 'u', user: { token: 't' } }],
        contexts: [{ name: 'prod', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'prod',
      }),
    )
    assert.throws(() => loadCredentials({ kubeconfig: file, context: 'staging' }, noEnv()), {
      code: 'E_K8S_CREDENTIALS',
      message: /target\.context: no context "staging" .*\(it has: prod\)/,
    })
    assert.equal(loadCredentials({}, noEnv({ KUBECONFIG: file })).source, 'KUBECONFIG')
  })
})

describe('kubernetes target on the API emulator', { skip }, () => {
  let k8s: KubernetesEmulator
  let kubeconfig: string
  const targets: KubernetesTarget[] = []
  const signal = new AbortController().signal

  const make = (config: Record<string, unknown>): KubernetesTarget => {
    const parsed = kubernetesTargetSchema.parse({ kind: 'kubernetes', kubeconfig, ...config })
    const target = createKubernetesTarget('g', parsed, { environment: noEnv() })
    targets.push(target)
    return target
  }

  before(async () => {
    k8s = await startKubernetesEmulator({ token: 'token-123', kubelet: { startDelay: 20, readyDelay: 100 } })
    kubeconfig = k8s.writeKubeconfig(dir)
  })
  afterEach(async () => {
    await Promise.all(targets.splice(0).map((t) => t.close()))
  })
  after(async () => {
    await k8s.close()
    assert.deepEqual(k8s.api.schemaProblems, [], 'every response followed the API definitions')
  })

  test('scales a Deployment 0 → 2 and returns once both pods are Ready; 2 → 1 drains the pod it removes first', async () => {
    await k8s.createDeployment('web', { replicas: 0, port: 18090 })
    const target = make({ workload: 'deployment/web' })
    await target.start(signal)
    assert.deepEqual(await target.status(signal), { desired: 0, instances: [], ready: 0 })
    const seen: GroupStatus[] = []
    target.watch((s) => seen.push(s))
    const progress: string[] = []
    const up = await target.scale(2, { reason: 'test', progress: (m) => progress.push(m) }, signal)
    assert.equal(up.from, 0)
    assert.equal(up.added.length, 2)
    const status = await target.status(signal)
    assert.equal(status.ready, 2)
    for (const pod of k8s.pods().filter((p) => p.metadata.name.startsWith('web-')))
      assert.ok(isReady(pod), pod.metadata.name)
    // Every report before a pod's Ready condition turned True showed it as not ready.
    assert.ok(
      seen.some((s) => s.instances.some((i) => i.state === 'starting' && i.address)),
      'a pod was seen with an IP but not yet ready',
    )
    assert.ok(
      progress.some((m) => /web-\w+-\w+ ready after/.test(m)),
      progress.join('\n'),
    )
    for (const i of status.instances) {
      const res = await fetch(`http://${i.address}/`)
      assert.equal(res.headers.get('x-pod'), i.id)
    }

    const drained: Array<{ id: string; at: number }> = []
    const victim = status.instances[0]!.id // the oldest: not what the ReplicaSet would pick unsteered
    const requestsBefore = k8s.api.requests.length
    const down = await target.scale(
      1,
      {
        reason: 'test',
        victims: [victim],
        drain: async (i: Instance) => void drained.push({ id: i.id, at: k8s.api.requests.length }),
      },
      signal,
    )
    assert.deepEqual(down.removed, [victim])
    assert.deepEqual(
      drained.map((d) => d.id),
      [victim],
    )
    const calls = k8s.api.requests.slice(requestsBefore).map((r) => `${r.verb} ${r.resource}`)
    const updateAt = requestsBefore + calls.indexOf('update deployments/scale')
    assert.ok(drained[0]!.at <= updateAt, 'drained before the replicas changed')
    assert.ok(calls.includes('patch pods'), 'the victim was marked with a deletion cost')
    await waitFor('the victim to go', 10_000, () => !k8s.pods().some((p) => p.metadata.name === victim))
    await assert.rejects(target.scale(1, { reason: 'same' }, signal), { code: 'E_NO_CHANGE' })
  })

  test('a missing workload is E_K8S_NOT_FOUND at start, naming it and the namespace', async () => {
    await assert.rejects(make({ workload: 'deployment/ghost', namespace: 'apps' }).start(signal), {
      code: 'E_K8S_NOT_FOUND',
      message: /deployment apps\/ghost does not exist .*check target\.workload and the namespace \(apps\)/,
    })
  })

  test('RBAC refusal is E_K8S_FORBIDDEN naming the verb and resource to grant', async () => {
    const locked = await startKubernetesEmulator({
      kubelet: false,
      rbac: [{ apiGroups: ['apps'], resources: ['deployments/scale'], verbs: ['get'] }],
    })
    try {
      await locked.createDeployment('web', { replicas: 0 })
      const parsed = kubernetesTargetSchema.parse({
        kind: 'kubernetes',
        workload: 'deployment/web',
        kubeconfig: locked.writeKubeconfig(mkdtempSync(join(dir, 'l-'))),
      })
      const target = createKubernetesTarget('g', parsed, { environment: noEnv() })
      targets.push(target)
      await assert.rejects(target.start(signal), {
        code: 'E_K8S_FORBIDDEN',
        message: /RBAC forbids list pods in namespace default: .*Grant verb "list" on "pods"/,
      })
    } finally {
      await locked.close()
    }
  })

  test('a conflicting update is read again and retried; a conflict every time is E_K8S_CONFLICT', async () => {
    await k8s.createDeployment('busy', { replicas: 0, port: 18091 })
    const target = make({ workload: 'deployment/busy', ready_timeout: '20s' })
    k8s.api.inject({ verb: 'update', resource: 'deployments/scale', status: 409, times: 2 })
    const result = await target.scale(1, { reason: 'test' }, signal)
    assert.equal(result.to, 1)
    k8s.api.inject({ verb: 'update', resource: 'deployments/scale', status: 409, times: 5 })
    await assert.rejects(target.scale(2, { reason: 'test' }, signal), {
      code: 'E_K8S_CONFLICT',
      message: /changed under Tide 5 times in a row while setting replicas to 2/,
    })
    assert.equal(k8s.store.get('deployments', 'default', 'busy')!.spec.replicas, 1)
  })

  test("pods that never become ready are E_K8S_NOT_READY after ready_timeout, with each pod's state", async () => {
    const stuck = await startKubernetesEmulator({ kubelet: false })
    try {
      await stuck.createDeployment('web', { replicas: 0 })
      const parsed = kubernetesTargetSchema.parse({
        kind: 'kubernetes',
        workload: 'deployment/web',
        ready_timeout: '400ms',
        kubeconfig: stuck.writeKubeconfig(mkdtempSync(join(dir, 's-'))),
      })
      const target = createKubernetesTarget('g', parsed, { environment: noEnv() })
      targets.push(target)
      await assert.rejects(target.scale(1, { reason: 'test' }, signal), {
        code: 'E_K8S_NOT_READY',
        message: /0 of 1 pods ready after 400ms; no pods were created/,
      })
    } finally {
      await stuck.close()
    }
  })

  test('the watch survives a dropped connection and a compacted history (410: list again)', async () => {
    await k8s.createDeployment('resilient', { replicas: 0, port: 18092 })
    const target = make({ workload: 'deployment/resilient' })
    await target.start(signal)
    const watchesBefore = k8s.api.requests.filter((r) => r.verb === 'watch' && r.resource === 'pods').length
    const listsBefore = k8s.api.requests.filter((r) => r.verb === 'list' && r.resource === 'pods').length
    // The server goes away; while the target is not watching, the pods change and the history
    // it would resume from is compacted: resuming gets 410 Expired, and it must list again.
    k8s.api.dropWatches()
    const d = k8s.store.get('deployments', 'default', 'resilient')!
    k8s.store.update('deployments', { ...d, spec: { ...d.spec, replicas: 1 } })
    k8s.store.compact()
    await waitFor('the pod to show as ready', 10_000, async () => (await target.status(signal)).ready === 1)
    const watches = k8s.api.requests.filter((r) => r.verb === 'watch' && r.resource === 'pods').length
    const lists = k8s.api.requests.filter((r) => r.verb === 'list' && r.resource === 'pods').length
    assert.ok(watches > watchesBefore, 'watched again')
    assert.ok(lists > listsBefore, 'listed again after 410 Expired')
  })

  test('a StatefulSet scales through statefulsets/scale and loses its highest ordinal first', async () => {
    await k8s.createStatefulSet('db', { replicas: 0, port: 18093, podManagementPolicy: 'Parallel' })
    const target = make({ workload: 'statefulset/db' })
    await target.scale(2, { reason: 'test' }, signal)
    assert.deepEqual((await target.status(signal)).instances.map((i) => i.id).sort(), ['db-0', 'db-1'])
    const drained: string[] = []
    const down = await target.scale(
      1,
      { reason: 'test', drain: async (i) => void drained.push(i.id) },
      signal,
    )
    assert.deepEqual(down.removed, ['db-1'])
    assert.deepEqual(drained, ['db-1'])
  })

  test('a drained victim that Kubernetes kept is given back to the router (plan.undrain); the pod it removed is the one reported removed', async () => {
    await k8s.createDeployment('kept', { replicas: 0, port: 18095 })
    // No deletion cost: the ReplicaSet controller removes the newest pod, not Tide's choice.
    const target = make({ workload: 'deployment/kept', deletion_cost: false })
    await target.scale(2, { reason: 'test' }, signal)
    const [oldest, newest] = (await target.status(signal)).instances
    const calls: string[] = []
    const down = await target.scale(
      1,
      {
        reason: 'test',
        victims: [oldest!.id],
        drain: async (i) => void calls.push(`drain ${i.id}`),
        undrain: (i) => void calls.push(`undrain ${i.id} ${i.state}`),
      },
      signal,
    )
    assert.deepEqual(down.removed, [newest!.id])
    assert.deepEqual(calls, [`drain ${oldest!.id}`, `undrain ${oldest!.id} ready`])
    const status = await target.status(signal)
    assert.deepEqual(
      status.instances.filter((i) => i.state === 'ready').map((i) => i.id),
      [oldest!.id],
      'the kept pod is reported ready throughout (no report leaves it out)',
    )
  })

  test("readiness from the Service's EndpointSlices", async () => {
    await k8s.createDeployment('api', { replicas: 0, port: 18094, portName: 'http' })
    await k8s.createService('api', { selector: { app: 'api' }, targetPort: 'http' })
    const target = make({
      workload: 'deployment/api',
      readiness: 'endpointslices',
      service: 'api',
      port: 'http',
    })
    await target.scale(1, { reason: 'test' }, signal)
    const status = await target.status(signal)
    assert.equal(status.ready, 1)
    const pod = k8s.pods().find((p) => p.metadata.name.startsWith('api-') && !p.metadata.deletionTimestamp)!
    assert.equal(status.instances[0]!.id, pod.metadata.name)
    assert.equal(status.instances[0]!.address, `${pod.status.podIP}:18094`)
  })

  test('a Deployment with an image that does not exist: the scale-up fails at once with E_K8S_POD_FAILED, status() shows the pods failed with the reason', async () => {
    await k8s.createDeployment('badimage', {
      replicas: 0,
      port: 18096,
      image: 'example/does-not-exist:1',
    })
    // ready_timeout is long: only the failing pods can end the scale-up this soon.
    const target = make({ workload: 'deployment/badimage', ready_timeout: '10m' })
    const started = Date.now()
    await assert.rejects(target.scale(2, { reason: 'test' }, signal), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'E_K8S_POD_FAILED')
      assert.match(
        err.message,
        /^deployment default\/badimage: 0 of 2 pods ready and the others cannot start: badimage-\w+-\w+: (ErrImagePull|ImagePullBackOff): .*does-not-exist.*; badimage-\w+-\w+: .*Kubernetes keeps retrying them \(replicas stay at 2\)$/,
      )
      return true
    })
    assert.ok(Date.now() - started < 60_000, 'failed well before ready_timeout')
    assert.equal(k8s.store.get('deployments', 'default', 'badimage')!.spec.replicas, 2)
    const status = await target.status(signal)
    assert.equal(status.desired, 2)
    assert.equal(status.ready, 0)
    assert.deepEqual(
      status.instances.map((i) => i.state),
      ['failed', 'failed'],
    )
    for (const i of status.instances)
      assert.match(i.detail ?? '', /^(ErrImagePull|ImagePullBackOff): .*\(container app\)$/)
    assert.match(
      status.message ?? '',
      /^2 of 2 pods cannot start \(badimage-\w+-\w+: (ErrImagePull|ImagePullBackOff)/,
    )
  })

  test('a crash-looping pod is failed with its restarts and last exit; once it recovers it is ready and serves', async () => {
    await k8s.createDeployment('crashy', {
      replicas: 0,
      port: 18097,
      annotations: { [EXIT_CODE_ANNOTATION]: '2' },
    })
    const target = make({ workload: 'deployment/crashy', ready_timeout: '10m' })
    const seen: Instance[] = []
    target.watch((s) => seen.push(...s.instances))
    await assert.rejects(target.scale(1, { reason: 'test' }, signal), {
      code: 'E_K8S_POD_FAILED',
      message: /crashy-\w+-\w+: (Error: exited with exit code 2|CrashLoopBackOff: back-off)/,
    })
    await waitFor('a CrashLoopBackOff with restarts', 15_000, () =>
      seen.some(
        (i) =>
          i.state === 'failed' &&
          /^CrashLoopBackOff: .*\d+ restarts?, last exit code 2 \(Error\)/.test(i.detail ?? ''),
      ),
    )
    const name = (await target.status(signal)).instances[0]!.id
    const pod = k8s.store.get('pods', 'default', name)!
    delete pod.metadata.annotations![EXIT_CODE_ANNOTATION]
    k8s.store.update('pods', pod)
    await waitFor('the pod to be ready again', 15_000, async () => (await target.status(signal)).ready === 1)
    const [recovered] = (await target.status(signal)).instances
    assert.equal(recovered!.id, name, 'the same pod, restarted')
    assert.match(
      recovered!.detail ?? '',
      /^ready on .*; container app: \d+ restarts?, last exit code 2 \(Error\)$/,
    )
    assert.equal((await fetch(`http://${recovered!.address}/`)).headers.get('x-pod'), name)
    assert.equal((await target.status(signal)).message, undefined)
  })
})
