/**
 * Tide in front of a Kubernetes Deployment that sleeps at zero (Knative's proxy mode): the real
 * daemon, its router and the kubernetes target, against the Kubernetes API emulator whose fake
 * kubelet runs every pod as a real listening socket. A pod is listening for a while before it is
 * Ready (`readyDelay`), and the kubelet records for every request whether the pod was Ready when
 * it arrived: a target or router that released held requests on "pod has an IP" or "pod is
 * Running" rather than "pod is Ready" fails here.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { stringify } from 'yaml'
import { isReady, type KubernetesEmulator, startKubernetesEmulator } from '../emulators/kubernetes/index.js'
import { requireKubernetesSpecs } from '../emulators/kubernetes/openapi.js'
import { startTestDaemon, type TestDaemon, waitFor } from '../support/daemon.js'

const skip = requireKubernetesSpecs()
const READY_DELAY = 600

describe('kubernetes target behind the router: 0 → n → 0', { skip }, () => {
  let k8s: KubernetesEmulator
  let tide: TestDaemon
  let dir: string
  const group = () => tide.controller.getGroup('hello')
  const get = async (path: string) => {
    const res = await fetch(`http://${tide.routes.hello}${path}`)
    return { status: res.status, pod: res.headers.get('x-pod'), body: await res.text() }
  }
  const livePods = () =>
    k8s.pods().filter((p) => p.metadata.name.startsWith('hello-') && !p.metadata.deletionTimestamp)

  before(async () => {
    k8s = await startKubernetesEmulator({ kubelet: { startDelay: 100, readyDelay: READY_DELAY } })
    await k8s.createDeployment('hello', { replicas: 0, port: 18180, portName: 'http', grace: 5 })
    dir = mkdtempSync(join(tmpdir(), 'tide-e2e-k8s-'))
    const file = join(dir, 'in.yaml')
    writeFileSync(
      file,
      stringify({
        groups: {
          hello: {
            min: 0,
            max: 3,
            interval: '1s',
            target: {
              kind: 'kubernetes',
              workload: 'deployment/hello',
              kubeconfig: k8s.writeKubeconfig(dir),
              port: 'http',
            },
            route: { listen: '127.0.0.1:0', workers: 1, queue: { depth: 500, timeout: '30s' } },
            policies: [{ kind: 'target', metric: 'concurrency', per_instance: 1000 }],
            cooldown: '1s',
            // The test moves the group by hand; the policy must not scale it down meanwhile.
            scale_down: { cooldown: '1h' },
          },
        },
      }),
    )
    tide = await startTestDaemon(file)
  })
  after(async () => {
    await tide?.stop()
    await k8s?.close()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  test('at zero, 60 concurrent requests wake the Deployment and all succeed, none before a pod is Ready', async () => {
    assert.equal(group().desired, 0)
    assert.equal(livePods().length, 0)
    const started = Date.now()
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => get(`/r${i}`)))
    const elapsed = Date.now() - started
    assert.deepEqual(
      results.filter((r) => r.status !== 200),
      [],
      'every held request was answered by a pod',
    )
    assert.ok(results.every((r) => r.pod?.startsWith('hello-')))
    // They were held, not refused: the cold start took at least the pod's time to Ready.
    assert.ok(elapsed >= READY_DELAY, `answered after ${elapsed}ms, before any pod could be Ready`)
    const served = k8s.kubelet!.served.filter((s) => s.path.startsWith('/r'))
    assert.equal(served.length, 60)
    assert.deepEqual(
      served.filter((s) => !s.ready),
      [],
      'no request reached a pod that Kubernetes did not call Ready',
    )
    assert.ok(k8s.store.get('deployments', 'default', 'hello')!.spec.replicas >= 1)
    const wake = tide.controller.decisions('hello', { limit: 10 }).find((d) => d.reason.includes('0 → 1'))
    assert.ok(wake, 'the wake is a recorded decision')
  })

  test('scale to 2, then back to 0 while a slow request is in flight: it completes, the pods go', async () => {
    await tide.controller.scale('hello', { to: 2, wait: true, force: true })
    assert.equal(group().ready, 2)
    assert.ok(livePods().filter(isReady).length >= 2)
    const slow = get('/slow?sleep=1500')
    await new Promise((r) => setTimeout(r, 300))
    const down = await tide.controller.scale('hello', { to: 0, wait: true, force: true })
    assert.equal(down.outcome, 'applied', JSON.stringify(down))
    const answer = await slow
    assert.equal(answer.status, 200, 'the request in flight during scale-down finished')
    assert.equal(k8s.store.get('deployments', 'default', 'hello')!.spec.replicas, 0)
    await waitFor(
      'the pods to be gone',
      15_000,
      () => k8s.pods().filter((p) => p.metadata.name.startsWith('hello-')).length === 0,
    )
    await waitFor('the group to show 0', 10_000, () => group().desired === 0 && group().ready === 0)
  })

  test('and wakes again from zero on the next request', async () => {
    const before = k8s.kubelet!.served.length
    const again = await get('/again')
    assert.equal(again.status, 200)
    const served = k8s.kubelet!.served.slice(before)
    assert.deepEqual(
      served.map((s) => [s.path, s.ready]),
      [['/again', true]],
    )
  })

  test('requests that arrive while the last pod drains are held, then served by the pod the group wakes next', async () => {
    await waitFor('one pod ready', 10_000, () => group().ready >= 1)
    const decisionsBefore = tide.controller.decisions('hello', { limit: 100 }).length
    const slow = get('/last-slow?sleep=1500')
    await new Promise((r) => setTimeout(r, 300))
    const down = tide.controller.scale('hello', { to: 0, wait: true, force: true })
    await new Promise((r) => setTimeout(r, 150))
    const during = Promise.all(Array.from({ length: 5 }, (_, i) => get(`/during-${i}`)))
    const [slowAnswer, answers, record] = await Promise.all([slow, during, down])
    assert.equal(record.outcome, 'applied', JSON.stringify(record))
    assert.equal(slowAnswer.status, 200, 'the request in flight finished on the draining pod')
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 200, 200, 200, 200],
      'no request that arrived during the drain was dropped',
    )
    const served = k8s.kubelet!.served.filter((s) => s.path.startsWith('/during-'))
    assert.equal(served.length, 5)
    assert.deepEqual(
      served.filter((s) => !s.ready),
      [],
      'each was served by a Ready pod',
    )
    // The scale-down to zero finished first; the held requests then woke the group once.
    const later = tide.controller.decisions('hello', { limit: 100 }).slice(0, -decisionsBefore || undefined)
    assert.equal(
      later.filter((d) =>
        d.reason.startsWith('scale up 0 → 1: a request arrived while the group was at zero'),
      ).length,
      1,
      later.map((d) => d.reason).join('\n'),
    )
  })
})
