/**
 * A group at zero whose pods cannot start, woken by a request through Tide's router: the real
 * daemon, router and kubernetes target (through @kubernetes/client-node) against the Kubernetes
 * API emulator. The held requests must get 503 + Retry-After (E_ROUTER_WAKE_FAILED) as soon as
 * the pod is seen failing, not after `ready_timeout` or `queue.timeout` (both 60 s here), the
 * way the process target answers them when a wake crash-loops. Once the pod recovers, requests
 * are served.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { stringify } from 'yaml'
import {
  EXIT_CODE_ANNOTATION,
  type KubernetesEmulator,
  startKubernetesEmulator,
} from '../../../test/emulators/kubernetes/index.js'
import { requireKubernetesSpecs } from '../../../test/emulators/kubernetes/openapi.js'
import { startTestDaemon, type TestDaemon, waitFor } from '../../../test/support/daemon.js'

const skip = requireKubernetesSpecs()

/** Generous, not tight: the point is "not 60 s", on a slow shared machine. */
const AT_ONCE_MS = 15_000

interface Answer {
  status: number
  retryAfter: string | null
  code?: string
  message?: string
  body: string
  ms: number
}

describe(
  'kubernetes: a wake from zero whose pods cannot start answers the held requests at once',
  { skip },
  () => {
    let k8s: KubernetesEmulator
    let tide: TestDaemon
    let dir: string
    const get = async (group: string, path = '/'): Promise<Answer> => {
      const t0 = performance.now()
      const res = await fetch(`http://${tide.routes[group]}${path}`)
      const body = await res.text()
      const answer: Answer = {
        status: res.status,
        retryAfter: res.headers.get('retry-after'),
        body,
        ms: performance.now() - t0,
      }
      if (body.startsWith('{')) Object.assign(answer, JSON.parse(body) as { code: string; message: string })
      return answer
    }
    const assertAnsweredAtOnce = (answers: Answer[], group: string, reason: RegExp) => {
      for (const a of answers) {
        assert.equal(a.status, 503, a.body)
        assert.equal(a.code, 'E_ROUTER_WAKE_FAILED', a.body)
        assert.equal(a.retryAfter, '5')
        assert.match(a.message ?? '', new RegExp(`^group ${group} could not be woken from zero: `))
        assert.match(a.message ?? '', reason)
        assert.ok(a.ms < AT_ONCE_MS, `answered after ${Math.round(a.ms)}ms: that is a timeout, not at once`)
      }
    }

    before(async () => {
      k8s = await startKubernetesEmulator({
        kubelet: { startDelay: 50, readyDelay: 100, backoff: 200, maxBackoff: 1000 },
      })
      await k8s.createDeployment('crashy', {
        replicas: 0,
        port: 18310,
        annotations: { [EXIT_CODE_ANNOTATION]: '1' },
      })
      await k8s.createDeployment('badimage', {
        replicas: 0,
        port: 18311,
        image: 'registry.example.invalid/app:1',
      })
      dir = mkdtempSync(join(tmpdir(), 'tide-k8s-wake-'))
      const kubeconfig = k8s.writeKubeconfig(dir)
      const group = (workload: string) => ({
        min: 0,
        max: 2,
        interval: '1s',
        target: { kind: 'kubernetes', workload, kubeconfig, ready_timeout: '60s' },
        // Long on purpose: an answer that came from a timeout would take 60 s.
        route: { listen: '127.0.0.1:0', workers: 1, queue: { timeout: '60s' } },
        policies: [{ kind: 'idle', after: '10m' }],
      })
      const file = join(dir, 'in.yaml')
      writeFileSync(
        file,
        stringify({
          groups: { crashy: group('deployment/crashy'), badimage: group('deployment/badimage') },
        }),
      )
      tide = await startTestDaemon(file)
    })
    after(async () => {
      await tide?.stop()
      await k8s?.close()
      if (dir) rmSync(dir, { recursive: true, force: true })
      assert.deepEqual(k8s?.api.schemaProblems ?? [], [], 'every response followed the API definitions')
    })

    test('a crash-looping pod: every held request gets 503 + Retry-After at once; the wake is recorded failed', async () => {
      assert.equal(tide.controller.getGroup('crashy').desired, 0)
      const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => get('crashy', `/r${i}`)))
      assertAnsweredAtOnce(
        answers,
        'crashy',
        /crashy-\w+-\w+ (Error: exited with exit code 1|CrashLoopBackOff)/,
      )
      await waitFor('the wake to end', AT_ONCE_MS, () =>
        tide.controller
          .decisions('crashy', { limit: 20 })
          .some((d) => d.from === 0 && d.outcome === 'failed'),
      )
      const wake = tide.controller.decisions('crashy', { limit: 20 }).find((d) => d.from === 0 && d.to === 1)!
      assert.equal(wake.outcome, 'failed')
      assert.match(wake.error ?? '', /0 of 1 pods ready and the others cannot start/)
      // Between two crashes the restarted container is running (starting); in its back-off, failed.
      await waitFor('the pod shown failed in CrashLoopBackOff', AT_ONCE_MS, () => {
        const status = tide.controller.getGroup('crashy')
        const pod = status.instances[0]
        return status.ready === 0 && pod?.state === 'failed' && /^CrashLoopBackOff: /.test(pod.detail ?? '')
      })
    })

    test('an image that cannot be pulled: the same, with ErrImagePull / ImagePullBackOff in the answer', async () => {
      const answers = await Promise.all(Array.from({ length: 3 }, () => get('badimage')))
      assertAnsweredAtOnce(answers, 'badimage', /badimage-\w+-\w+ (ErrImagePull|ImagePullBackOff): /)
      const status = tide.controller.getGroup('badimage')
      assert.equal(status.instances[0]?.state, 'failed')
      assert.match(status.instances[0]?.detail ?? '', /registry\.example\.invalid/)
    })

    test('a later request while the pod still cannot start: answered at once too, not after queue.timeout', async () => {
      // The wake is over and failed; the pod stays in ImagePullBackOff, so nothing new fails.
      await waitFor('the badimage wake to end', AT_ONCE_MS, () =>
        tide.controller
          .decisions('badimage', { limit: 20 })
          .some((d) => d.from === 0 && d.outcome === 'failed'),
      )
      const answers = await Promise.all(Array.from({ length: 2 }, () => get('badimage', '/later')))
      assertAnsweredAtOnce(answers, 'badimage', /badimage-\w+-\w+ (ErrImagePull|ImagePullBackOff): /)
      const again = await get('badimage', '/again')
      assertAnsweredAtOnce([again], 'badimage', /ImagePullBackOff|ErrImagePull/)
    })

    test('the crash-looping pod recovers: the group serves again', async () => {
      const name = tide.controller.getGroup('crashy').instances[0]!.id
      const pod = k8s.store.get('pods', 'default', name)!
      delete pod.metadata.annotations![EXIT_CODE_ANNOTATION]
      k8s.store.update('pods', pod)
      await waitFor('the pod to be ready', 30_000, () => tide.controller.getGroup('crashy').ready === 1)
      const answer = await get('crashy', '/after')
      assert.equal(answer.status, 200, answer.body)
      assert.equal(JSON.parse(answer.body).pod, name)
    })
  },
)
