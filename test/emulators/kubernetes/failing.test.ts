/**
 * The fake kubelet's failing pods (kubelet.ts' header): a missing image, an invalid image name, a
 * missing ConfigMap and a crashing container give the container statuses a real kubelet writes,
 * seen through a real watch on the API, and every event follows the official definitions.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { waitFor } from '../../support/daemon.js'
import {
  EXIT_CODE_ANNOTATION,
  isReady,
  type KubernetesEmulator,
  type Obj,
  startKubernetesEmulator,
} from './index.js'
import { requireKubernetesSpecs } from './openapi.js'

const skip = requireKubernetesSpecs()

type Json = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

/** Every pod object the API's watch sends for pods with label app=<app>, in order. */
function watchPods(k8s: KubernetesEmulator, app: string): { events: Json[]; stop: () => Promise<void> } {
  const events: Json[] = []
  const controller = new AbortController()
  const reading = (async () => {
    const res = await fetch(
      `${k8s.url}/api/v1/namespaces/default/pods?watch=true&labelSelector=app%3D${app}`,
      { signal: controller.signal },
    )
    const decoder = new TextDecoder()
    let buffer = ''
    for await (const chunk of res.body!) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true })
      let i
      while ((i = buffer.indexOf('\n')) >= 0) {
        events.push(JSON.parse(buffer.slice(0, i)).object)
        buffer = buffer.slice(i + 1)
      }
    }
  })().catch(() => {})
  return {
    events,
    stop: async () => {
      controller.abort()
      await reading
    },
  }
}

const waiting = (pod: Json, init = false): Json | undefined =>
  (init ? pod.status?.initContainerStatuses : pod.status?.containerStatuses)?.[0]?.state?.waiting

describe('fake kubelet: pods that cannot start', { skip }, () => {
  let k8s: KubernetesEmulator
  before(async () => {
    k8s = await startKubernetesEmulator({
      kubelet: { startDelay: 10, readyDelay: 20, backoff: 50, maxBackoff: 400 },
    })
  })
  after(async () => {
    await k8s.close()
    assert.deepEqual(k8s.api.schemaProblems, [], 'every pod status followed the API definitions')
  })

  test('an image that does not exist: ErrImagePull, then ImagePullBackOff, then ErrImagePull again; Pending, no restarts', async () => {
    const watch = watchPods(k8s, 'pull')
    await k8s.createDeployment('pull', { replicas: 1, image: 'no-such-registry.invalid/app:1' })
    await waitFor('ErrImagePull, ImagePullBackOff and ErrImagePull again', 10_000, () => {
      const reasons = watch.events.map((p) => waiting(p)?.reason).filter(Boolean)
      const back = reasons.indexOf('ImagePullBackOff')
      return back > 0 && reasons.indexOf('ErrImagePull') < back && reasons.lastIndexOf('ErrImagePull') > back
    })
    await watch.stop()
    const last = watch.events.at(-1)!
    assert.equal(last.status.phase, 'Pending')
    assert.equal(last.status.containerStatuses[0].restartCount, 0)
    assert.equal(isReady(last as Obj), false)
    const pull = watch.events.find((p) => waiting(p)?.reason === 'ErrImagePull')!
    assert.match(waiting(pull)!.message, /no-such-registry\.invalid.*no such host/)
    const backOff = watch.events.find((p) => waiting(p)?.reason === 'ImagePullBackOff')!
    assert.equal(waiting(backOff)!.message, 'Back-off pulling image "no-such-registry.invalid/app:1"')
    await k8s.createDeployment('named', {
      replicas: 1,
      image: 'example/does-not-exist:1',
      labels: { app: 'named' },
    })
    await waitFor('ErrImagePull for a name that does not exist', 10_000, () =>
      k8s
        .pods()
        .some((p) => p.metadata.name.startsWith('named-') && /not found/.test(waiting(p)?.message ?? '')),
    )
  })

  test('an invalid image name is InvalidImageName; a missing ConfigMap is CreateContainerConfigError; in an init container, Init: and PodInitializing', async () => {
    await k8s.createDeployment('badname', { replicas: 1, image: 'Example/App:1' })
    await k8s.createDeployment('config', {
      replicas: 1,
      container: { env: [{ name: 'DB', valueFrom: { configMapKeyRef: { name: 'app-config', key: 'db' } } }] },
    })
    await k8s.createDeployment('optional', {
      replicas: 1,
      port: 18301,
      container: {
        env: [{ name: 'DB', valueFrom: { secretKeyRef: { name: 'gone', key: 'db', optional: true } } }],
      },
    })
    await k8s.createDeployment('init', {
      replicas: 1,
      initContainers: [{ name: 'migrate', image: 'example/does-not-exist:2' }],
    })
    const pod = (app: string) => k8s.pods().find((p) => p.metadata.labels?.app === app)
    await waitFor('the pods to report', 10_000, () =>
      ['badname', 'config', 'init'].every((a) => waiting(pod(a) ?? {}, a === 'init')),
    )
    assert.equal(waiting(pod('badname')!)!.reason, 'InvalidImageName')
    assert.match(
      waiting(pod('badname')!)!.message,
      /couldn't parse image name "Example\/App:1": invalid reference format/,
    )
    assert.deepEqual(waiting(pod('config')!), {
      reason: 'CreateContainerConfigError',
      message: 'configmap "app-config" not found',
    })
    assert.match(waiting(pod('init')!, true)!.reason, /ErrImagePull|ImagePullBackOff/)
    assert.equal(waiting(pod('init')!)!.reason, 'PodInitializing')
    assert.equal(pod('init')!.status.conditions.find((c: Json) => c.type === 'Initialized').status, 'False')
    await waitFor('an optional reference to start the pod', 10_000, () => {
      const p = pod('optional')
      return p !== undefined && isReady(p)
    })
    // Through the API too (the list response is validated).
    const res = await fetch(`${k8s.url}/api/v1/namespaces/default/pods`)
    assert.equal(res.status, 200)
  })

  test('the exit-code annotation: terminated, restarted at once, then CrashLoopBackOff with a growing restartCount; removing it lets the pod recover', async () => {
    const watch = watchPods(k8s, 'crash')
    await k8s.createDeployment('crash', {
      replicas: 1,
      port: 18302,
      annotations: { [EXIT_CODE_ANNOTATION]: '3' },
    })
    await waitFor('3 restarts', 15_000, () =>
      watch.events.some((p) => (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 3),
    )
    const statuses = watch.events.map((p) => p.status?.containerStatuses?.[0]).filter(Boolean)
    const terminated = statuses.find((s) => s.state.terminated)!
    assert.equal(terminated.state.terminated.exitCode, 3)
    assert.equal(terminated.state.terminated.reason, 'Error')
    assert.ok(terminated.state.terminated.startedAt && terminated.state.terminated.finishedAt)
    const loop = statuses.find((s) => s.state.waiting?.reason === 'CrashLoopBackOff')!
    assert.match(loop.state.waiting.message, /^back-off \d+ms restarting failed container=app pod=crash-/)
    assert.equal(loop.lastState.terminated.exitCode, 3)
    const counts = statuses.map((s) => s.restartCount)
    assert.deepEqual(
      counts,
      counts.slice().sort((a, b) => a - b),
      'restartCount never goes down',
    )
    const name = watch.events[0]!.metadata.name
    assert.ok(
      watch.events.every((p) => p.metadata.name === name),
      'the same pod restarts its container (no new pod)',
    )
    // The app's dependency comes back: the next restart stays up, and the pod turns Ready.
    const pod = k8s.store.get('pods', 'default', name)!
    delete pod.metadata.annotations![EXIT_CODE_ANNOTATION]
    k8s.store.update('pods', pod)
    await waitFor('the pod to recover', 15_000, () => {
      const p = k8s.store.get('pods', 'default', name)
      return p !== undefined && isReady(p)
    })
    const recovered = k8s.store.get('pods', 'default', name)!
    assert.ok(recovered.status.containerStatuses[0].restartCount >= 3)
    assert.equal(recovered.status.containerStatuses[0].lastState.terminated.exitCode, 3)
    const res = await fetch(`http://${recovered.status.podIP}:18302/`)
    assert.equal(res.headers.get('x-pod'), name)
    await watch.stop()
  })
})

describe(
  'fake kubelet, process runtime: a command that exits crash-loops with its real exit code',
  { skip },
  () => {
    let k8s: KubernetesEmulator
    before(async () => {
      k8s = await startKubernetesEmulator({
        kubelet: { runtime: 'process', startDelay: 10, backoff: 50, maxBackoff: 200 },
      })
    })
    after(async () => {
      await k8s.close()
      assert.deepEqual(k8s.api.schemaProblems, [])
    })

    test('exit 7 is terminated with exit code 7, then CrashLoopBackOff; a missing command is StartError 128', async () => {
      await k8s.createDeployment('exits', {
        replicas: 1,
        command: [process.execPath, '-e', 'process.exit(7)'],
      })
      await k8s.createDeployment('nocommand', { replicas: 1, command: ['/nonexistent/tide-app'] })
      const status = (app: string) =>
        k8s.pods().find((p) => p.metadata.labels?.app === app)?.status?.containerStatuses?.[0]
      await waitFor('two restarts of each', 20_000, () =>
        ['exits', 'nocommand'].every((a) => (status(a)?.restartCount ?? 0) >= 2),
      )
      await waitFor('the crash recorded', 10_000, () => status('exits')?.lastState?.terminated !== undefined)
      assert.equal(status('exits')!.lastState.terminated.exitCode, 7)
      assert.equal(status('nocommand')!.lastState.terminated.exitCode, 128)
      assert.equal(status('nocommand')!.lastState.terminated.reason, 'StartError')
      assert.match(status('nocommand')!.lastState.terminated.message, /ENOENT/)
    })
  },
)
