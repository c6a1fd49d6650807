/**
 * From pod status to instance state: pods that cannot start are `failed` with Kubernetes' reason,
 * pods that are merely slow are `starting`, and a pod that recovers is `ready` again. The pods are
 * status objects as the kubelet writes them (shapes from real `kubectl get pod -o json` output).
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { InstanceState } from '../../core/types.js'
import { FAILING_REASONS, podFailure, RESTARTS_FAILING } from './failing.js'
import { podInstance } from './instances.js'

const T0 = '2025-03-01T10:00:00Z'
const T1 = '2025-03-01T10:00:40Z'

/* eslint-disable @typescript-eslint/no-explicit-any */
type Json = Record<string, any>
/* eslint-enable @typescript-eslint/no-explicit-any */

function pod(status: Json, metadata: Json = {}): Json {
  return {
    metadata: { name: 'web-abc-1', creationTimestamp: T0, ...metadata },
    spec: { containers: [{ name: 'app', image: 'example/app:1', ports: [{ containerPort: 8080 }] }] },
    status,
  }
}

const conditions = (ready: boolean) => [
  { type: 'PodScheduled', status: 'True', lastTransitionTime: T0 },
  { type: 'Initialized', status: 'True', lastTransitionTime: T0 },
  { type: 'ContainersReady', status: ready ? 'True' : 'False', lastTransitionTime: T1 },
  { type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: T1 },
]

function container(state: Json, extra: Json = {}): Json {
  return { name: 'app', image: 'example/app:1', imageID: '', ready: false, restartCount: 0, state, ...extra }
}

const crashed = { exitCode: 1, reason: 'Error', startedAt: T0, finishedAt: T1, containerID: 'containerd://1' }

function waitingPod(reason: string, message?: string, extra: Json = {}): Json {
  return pod({
    phase: 'Pending',
    podIP: '10.0.0.7',
    conditions: conditions(false),
    containerStatuses: [container({ waiting: { reason, ...(message ? { message } : {}) } }, extra)],
  })
}

describe('pod status → instance state', () => {
  const cases: Array<[string, Json, InstanceState, RegExp]> = [
    [
      'ErrImagePull',
      waitingPod('ErrImagePull', 'Failed to pull image "example/nope:1": not found'),
      'failed',
      /^ErrImagePull: Failed to pull image "example\/nope:1": not found \(container app\)$/,
    ],
    [
      'ImagePullBackOff',
      waitingPod('ImagePullBackOff', 'Back-off pulling image "example/nope:1"'),
      'failed',
      /^ImagePullBackOff: Back-off pulling image/,
    ],
    [
      'InvalidImageName',
      waitingPod('InvalidImageName', 'Failed to apply default image tag "Bad:1"'),
      'failed',
      /^InvalidImageName: /,
    ],
    [
      'CreateContainerConfigError',
      waitingPod('CreateContainerConfigError', 'configmap "cfg" not found'),
      'failed',
      /^CreateContainerConfigError: configmap "cfg" not found/,
    ],
    [
      'CrashLoopBackOff, with restarts and the last exit',
      pod({
        phase: 'Running',
        podIP: '10.0.0.7',
        conditions: conditions(false),
        containerStatuses: [
          container(
            {
              waiting: {
                reason: 'CrashLoopBackOff',
                message: 'back-off 40s restarting failed container=app',
              },
            },
            { restartCount: 5, lastState: { terminated: crashed } },
          ),
        ],
      }),
      'failed',
      /^CrashLoopBackOff: back-off 40s restarting failed container=app \(container app, 5 restarts, last exit code 1 \(Error\) at 2025-03-01T10:00:40Z\)$/,
    ],
    [
      'a container that has just exited (before the kubelet restarts it)',
      pod({
        phase: 'Running',
        podIP: '10.0.0.7',
        conditions: conditions(false),
        containerStatuses: [container({ terminated: { ...crashed, exitCode: 137, reason: 'OOMKilled' } })],
      }),
      'failed',
      /^OOMKilled: exited with exit code 137 \(OOMKilled\) \(container app\)$/,
    ],
    [
      `running again after ${RESTARTS_FAILING} restarts, not ready: still crash-looping`,
      pod({
        phase: 'Running',
        podIP: '10.0.0.7',
        conditions: conditions(false),
        containerStatuses: [
          container(
            { running: { startedAt: T1 } },
            { restartCount: RESTARTS_FAILING, lastState: { terminated: crashed } },
          ),
        ],
      }),
      'failed',
      /^CrashLoopBackOff: running again after a crash, not ready \(container app, 3 restarts/,
    ],
    [
      'running again after one restart, not ready: starting (it may come up this time)',
      pod({
        phase: 'Running',
        podIP: '10.0.0.7',
        conditions: conditions(false),
        containerStatuses: [
          container({ running: { startedAt: T1 } }, { restartCount: 1, lastState: { terminated: crashed } }),
        ],
      }),
      'starting',
      /readiness probe not passing yet/,
    ],
    [
      'an init container in CrashLoopBackOff',
      pod({
        phase: 'Pending',
        podIP: '10.0.0.7',
        conditions: conditions(false),
        initContainerStatuses: [
          {
            ...container(
              { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 10s' } },
              { restartCount: 2, lastState: { terminated: crashed } },
            ),
            name: 'migrate',
          },
        ],
        containerStatuses: [container({ waiting: { reason: 'PodInitializing' } })],
      }),
      'failed',
      /^Init:CrashLoopBackOff: back-off 10s \(init container migrate, 2 restarts/,
    ],
    [
      'an init container that completed, app container creating: starting',
      pod({
        phase: 'Pending',
        conditions: conditions(false),
        initContainerStatuses: [
          {
            ...container({ terminated: { exitCode: 0, reason: 'Completed', finishedAt: T0 } }),
            name: 'migrate',
          },
        ],
        containerStatuses: [container({ waiting: { reason: 'ContainerCreating' } })],
      }),
      'starting',
      /^Pending: ContainerCreating$/,
    ],
    [
      'an init container still running: starting',
      pod({
        phase: 'Pending',
        conditions: conditions(false),
        initContainerStatuses: [{ ...container({ running: { startedAt: T0 } }), name: 'migrate' }],
        containerStatuses: [container({ waiting: { reason: 'PodInitializing' } })],
      }),
      'starting',
      /^Pending: PodInitializing$/,
    ],
    [
      'ContainerCreating: starting',
      waitingPod('ContainerCreating'),
      'starting',
      /^Pending: ContainerCreating$/,
    ],
    ['PodInitializing: starting', waitingPod('PodInitializing'), 'starting', /^Pending: PodInitializing$/],
    [
      'phase Failed (evicted)',
      pod({
        phase: 'Failed',
        reason: 'Evicted',
        message: 'The node was low on resource: memory.',
        containerStatuses: [container({ terminated: { exitCode: 137, reason: 'Error', finishedAt: T1 } })],
      }),
      'failed',
      /^Failed: Evicted \(The node was low on resource: memory\.\)$/,
    ],
    [
      'recovered after a crash loop: running and ready is ready, the restarts in its detail',
      pod({
        phase: 'Running',
        podIP: '10.0.0.7',
        conditions: conditions(true),
        containerStatuses: [
          container(
            { running: { startedAt: T1 } },
            { ready: true, restartCount: 7, lastState: { terminated: crashed } },
          ),
        ],
      }),
      'ready',
      /^ready on 10\.0\.0\.7:8080; container app: 7 restarts, last exit code 1 \(Error\)$/,
    ],
    [
      'being deleted while crash-looping: stopping',
      {
        ...waitingPod('CrashLoopBackOff'),
        metadata: { name: 'web-abc-1', creationTimestamp: T0, deletionTimestamp: T1 },
      },
      'stopping',
      /^terminating/,
    ],
  ]

  for (const [name, input, state, detail] of cases) {
    test(name, () => {
      const instance = podInstance(input, undefined)
      assert.equal(instance.state, state, instance.detail)
      assert.match(instance.detail ?? '', detail)
      if (state === 'failed') assert.ok(podFailure(input) || input.status.phase === 'Failed')
      if (state !== 'ready') assert.equal(instance.readyAt, undefined)
    })
  }

  test('every failing reason is failed; a reason not in the list is starting', () => {
    for (const reason of FAILING_REASONS) {
      assert.equal(podInstance(waitingPod(reason), undefined).state, 'failed', reason)
    }
    assert.equal(podInstance(waitingPod('SomethingNew'), undefined).state, 'starting')
  })

  test('a pod that recovers goes failed → ready, and its address is served again', () => {
    const looping = pod({
      phase: 'Running',
      podIP: '10.0.0.7',
      conditions: conditions(false),
      containerStatuses: [
        container(
          { waiting: { reason: 'CrashLoopBackOff' } },
          { restartCount: 4, lastState: { terminated: crashed } },
        ),
      ],
    })
    const before = podInstance(looping, 8080)
    assert.equal(before.state, 'failed')
    const recovered = structuredClone(looping)
    recovered.status.conditions = conditions(true)
    recovered.status.containerStatuses[0].state = { running: { startedAt: T1 } }
    recovered.status.containerStatuses[0].ready = true
    recovered.status.containerStatuses[0].restartCount = 5
    const after = podInstance(recovered, 8080)
    assert.equal(after.state, 'ready')
    assert.equal(after.address, '10.0.0.7:8080')
    assert.equal(after.readyAt, Date.parse(T1))
  })
})
