/**
 * The Kubernetes API emulator behaves as the API server does for the calls Tide makes, and its
 * responses follow the official definitions (../shared/apis/kubernetes-*.json): every response
 * and watch event of these tests is checked against them (`schemaProblems` must stay empty).
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { waitFor } from '../../support/daemon.js'
import { isReady, type KubernetesEmulator, startKubernetesEmulator } from './index.js'
import { check, checkResponse, requireKubernetesSpecs } from './openapi.js'

const skip = requireKubernetesSpecs()

type Json = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

describe('kubernetes emulator', { skip }, () => {
  let k8s: KubernetesEmulator
  const call = async (method: string, path: string, body?: unknown, type = 'application/json') => {
    const res = await fetch(k8s.url + path, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': type },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    return { status: res.status, body: (await res.json()) as Json }
  }
  const scalePath = '/apis/apps/v1/namespaces/default/deployments/web/scale'

  before(async () => {
    k8s = await startKubernetesEmulator({ kubelet: { startDelay: 10, readyDelay: 20 } })
  })
  after(async () => {
    await k8s.close()
  })

  test('the schema checker finds what is wrong (it can fail)', () => {
    const problems = checkResponse('GET', '/api/v1/namespaces/default/pods/x', 200, {
      kind: 'Pod',
      metadata: { name: 'x', creationTimestamp: 'yesterday', labels: { a: 1 } },
      spec: { containers: [{ image: 'x' }] },
      status: { phase: 'Running', bogus: true },
    })
    assert.ok(problems)
    assert.ok(
      problems.some((p) => p.includes('creationTimestamp: not an RFC 3339 time')),
      problems.join('\n'),
    )
    assert.ok(
      problems.some((p) => p.includes('labels.a: not a string')),
      problems.join('\n'),
    )
    assert.ok(
      problems.some((p) => p.includes('containers[0].name: required')),
      problems.join('\n'),
    )
    assert.ok(
      problems.some((p) => p.includes('status.bogus: not a property')),
      problems.join('\n'),
    )
    assert.deepEqual(
      check({ paths: {}, components: { schemas: {} } }, { type: 'integer', format: 'int32' }, 3),
      [],
    )
  })

  test('discovery lists the groups and resources Tide uses', async () => {
    const api = await call('GET', '/api')
    assert.deepEqual(api.body.versions, ['v1'])
    const groups = await call('GET', '/apis')
    assert.deepEqual(
      groups.body.groups.map((g: Json) => g.name),
      ['apps', 'discovery.k8s.io'],
    )
    const apps = await call('GET', '/apis/apps/v1')
    const names = apps.body.resources.map((r: Json) => r.name)
    for (const n of ['deployments', 'deployments/scale', 'statefulsets', 'statefulsets/scale'])
      assert.ok(names.includes(n), n)
    const core = await call('GET', '/api/v1/')
    assert.deepEqual(
      core.body.resources.map((r: Json) => r.name),
      ['pods', 'services', 'endpoints'],
    )
    assert.equal((await call('GET', '/apis/discovery.k8s.io/v1')).body.resources[0].name, 'endpointslices')
  })

  test('scale subresource: GET, PUT with a precondition, PATCH in three content types, errors as Status', async () => {
    await call('POST', '/apis/apps/v1/namespaces/default/deployments', {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web' },
      spec: {
        replicas: 0,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: { containers: [{ name: 'app', ports: [{ containerPort: 18081 }] }] },
        },
      },
    })
    const scale = await call('GET', scalePath)
    assert.equal(scale.status, 200)
    assert.equal(scale.body.kind, 'Scale')
    assert.equal(scale.body.apiVersion, 'autoscaling/v1')
    assert.equal(scale.body.spec.replicas, 0)
    assert.equal(scale.body.status.selector, 'app=web')

    const put = await call('PUT', scalePath, { ...scale.body, spec: { replicas: 1 } })
    assert.equal(put.status, 200)
    assert.equal(put.body.spec.replicas, 1)
    // The version read before that write is stale now.
    const stale = await call('PUT', scalePath, { ...scale.body, spec: { replicas: 3 } })
    assert.equal(stale.status, 409)
    assert.equal(stale.body.kind, 'Status')
    assert.equal(stale.body.reason, 'Conflict')
    assert.match(stale.body.message, /the object has been modified/)

    for (const [type, body, want] of [
      ['application/merge-patch+json', { spec: { replicas: 2 } }, 2],
      ['application/strategic-merge-patch+json', { spec: { replicas: 3 } }, 3],
      ['application/json-patch+json', [{ op: 'replace', path: '/spec/replicas', value: 0 }], 0],
    ] as const) {
      const res = await call('PATCH', scalePath, body, type)
      assert.equal(res.status, 200, `${type}: ${JSON.stringify(res.body)}`)
      assert.equal(res.body.spec.replicas, want, type)
    }
    const deployment = await call('GET', '/apis/apps/v1/namespaces/default/deployments/web')
    assert.equal(deployment.body.spec.replicas, 0)

    const negative = await call(
      'PATCH',
      scalePath,
      { spec: { replicas: -1 } },
      'application/merge-patch+json',
    )
    assert.equal(negative.status, 422)
    assert.equal(negative.body.reason, 'Invalid')
    assert.equal((await call('PATCH', scalePath, { spec: { replicas: 1 } }, 'text/plain')).status, 415)
    // Strategic merge is emulated for maps only: a list or a directive is refused, not misapplied.
    const listPatch = await call(
      'PATCH',
      '/apis/apps/v1/namespaces/default/deployments/web',
      { spec: { template: { spec: { containers: [{ name: 'app', image: 'x' }] } } } },
      'application/strategic-merge-patch+json',
    )
    assert.equal(listPatch.status, 422)
    assert.match(listPatch.body.message, /maps only .* a list at spec\.template\.spec\.containers/)
    const missing = await call('GET', '/apis/apps/v1/namespaces/default/deployments/nope/scale')
    assert.equal(missing.status, 404)
    assert.equal(missing.body.reason, 'NotFound')
    assert.equal(missing.body.message, 'deployments.apps "nope" not found')
    assert.deepEqual(k8s.api.schemaProblems, [])
  })

  test('list and watch: resume from a resourceVersion, 410 Expired on a compacted one', async () => {
    const list = await call('GET', '/apis/apps/v1/namespaces/default/deployments')
    assert.equal(list.body.kind, 'DeploymentList')
    const rv = list.body.metadata.resourceVersion
    const events: Json[] = []
    const controller = new AbortController()
    const res = await fetch(
      `${k8s.url}/apis/apps/v1/namespaces/default/deployments?watch=true&resourceVersion=${rv}`,
      {
        signal: controller.signal,
      },
    )
    const reading = (async () => {
      const decoder = new TextDecoder()
      let buffer = ''
      for await (const chunk of res.body!) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true })
        let i
        while ((i = buffer.indexOf('\n')) >= 0) {
          events.push(JSON.parse(buffer.slice(0, i)))
          buffer = buffer.slice(i + 1)
        }
      }
    })().catch(() => {})
    await call('PATCH', scalePath, { spec: { replicas: 1 } }, 'application/merge-patch+json')
    await waitFor('a MODIFIED event', 5000, () =>
      events.some((e) => e.type === 'MODIFIED' && e.object.spec.replicas === 1),
    )
    assert.ok(Number(events.at(-1)!.object.metadata.resourceVersion) > Number(rv))
    controller.abort()
    await reading

    k8s.store.compact()
    const old = await fetch(
      `${k8s.url}/apis/apps/v1/watch/namespaces/default/deployments?resourceVersion=${rv}`,
    )
    const lines = (await old.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Json)
    assert.equal(lines.length, 1)
    assert.equal(lines[0]!.type, 'ERROR')
    assert.equal(lines[0]!.object.code, 410)
    assert.equal(lines[0]!.object.reason, 'Expired')
    assert.deepEqual(k8s.api.schemaProblems, [])
  })

  test('fake kubelet: replicas become Ready pods with real sockets, endpoints follow, deletion cost steers removal', async () => {
    await call('POST', '/api/v1/namespaces/default/services', {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web' },
      spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 18081 }] },
    })
    await call('PATCH', scalePath, { spec: { replicas: 3 } }, 'application/merge-patch+json')
    const live = () =>
      k8s
        .pods()
        .filter((p) => isReady(p) && !p.metadata.deletionTimestamp && p.metadata.name.startsWith('web-'))
    await waitFor('3 ready pods', 10_000, () => live().length === 3)
    for (const pod of live()) {
      const res = await fetch(`http://${pod.status.podIP}:18081/x`)
      assert.equal(res.headers.get('x-pod'), pod.metadata.name)
    }
    const deployment = (await call('GET', '/apis/apps/v1/namespaces/default/deployments/web')).body
    await waitFor('status.readyReplicas 3', 5000, async () => {
      const d = (await call('GET', '/apis/apps/v1/namespaces/default/deployments/web')).body
      return d.status.readyReplicas === 3
    })
    assert.equal(deployment.spec.replicas, 3)
    await waitFor('3 ready endpoints', 5000, async () => {
      const e = (await call('GET', '/api/v1/namespaces/default/endpoints/web')).body
      return e.subsets?.[0]?.addresses?.length === 3
    })
    const slices = (
      await call(
        'GET',
        '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io/service-name%3Dweb',
      )
    ).body
    assert.equal(slices.items.length, 1)
    assert.equal(slices.items[0].endpoints.filter((e: Json) => e.conditions.ready).length, 3)
    assert.equal(slices.items[0].ports[0].port, 18081)

    // The oldest pod has the lowest deletion cost: the ReplicaSet must remove it, not the newest.
    const oldest = live().sort((a, b) =>
      a.metadata.creationTimestamp!.localeCompare(b.metadata.creationTimestamp!),
    )[0]!
    const patched = await call(
      'PATCH',
      `/api/v1/namespaces/default/pods/${oldest.metadata.name}`,
      { metadata: { annotations: { 'controller.kubernetes.io/pod-deletion-cost': '-100' } } },
      'application/merge-patch+json',
    )
    assert.equal(patched.status, 200)
    await call('PATCH', scalePath, { spec: { replicas: 2 } }, 'application/merge-patch+json')
    await waitFor(
      'the steered pod to go',
      10_000,
      () => !k8s.pods().some((p) => p.metadata.name === oldest.metadata.name),
    )
    assert.equal(live().length, 2)
    assert.deepEqual(k8s.api.schemaProblems, [])
  })

  test('StatefulSet with OrderedReady creates ordinals in order and removes the highest first', async () => {
    await k8s.createStatefulSet('db', { replicas: 2, port: 18082 })
    await waitFor(
      'db-0 and db-1 ready',
      10_000,
      () => k8s.pods().filter((p) => p.metadata.name.startsWith('db-') && isReady(p)).length === 2,
    )
    const pods = k8s.pods().filter((p) => p.metadata.name.startsWith('db-'))
    const [zero, one] = [
      pods.find((p) => p.metadata.name === 'db-0')!,
      pods.find((p) => p.metadata.name === 'db-1')!,
    ]
    assert.ok(zero.metadata.creationTimestamp! <= one.metadata.creationTimestamp!)
    const ready0 = zero.status.conditions.find((c: Json) => c.type === 'Ready').lastTransitionTime
    assert.ok(ready0 <= one.metadata.creationTimestamp!, 'db-1 is created only once db-0 is ready')
    await call(
      'PATCH',
      '/apis/apps/v1/namespaces/default/statefulsets/db/scale',
      { spec: { replicas: 1 } },
      'application/merge-patch+json',
    )
    await waitFor('db-1 to go', 10_000, () => !k8s.pods().some((p) => p.metadata.name === 'db-1'))
    assert.ok(k8s.pods().some((p) => p.metadata.name === 'db-0'))
  })

  test("RBAC: a call outside the rules is 403 with the API server's message; a token is required when set", async () => {
    const locked = await startKubernetesEmulator({
      kubelet: false,
      token: 'abc',
      rbac: [{ apiGroups: ['apps'], resources: ['deployments/scale'], verbs: ['get'] }],
    })
    try {
      await locked.createDeployment('web', { replicas: 0 })
      const headers = { Authorization: 'Bearer abc' }
      assert.equal((await fetch(`${locked.url}${scalePath}`)).status, 401)
      assert.equal((await fetch(`${locked.url}${scalePath}`, { headers })).status, 200)
      const res = await fetch(`${locked.url}${scalePath}`, {
        method: 'PUT',
        headers: { ...headers, 'Content-Type': 'application/json' },
        body: JSON.stringify({ spec: { replicas: 1 } }),
      })
      assert.equal(res.status, 403)
      const body = (await res.json()) as Json
      assert.equal(body.reason, 'Forbidden')
      assert.match(
        body.message,
        /cannot update resource "deployments\/scale" in API group "apps" in the namespace "default"/,
      )
      assert.deepEqual(
        locked.api.requests.map((r) => `${r.verb} ${r.resource} ${r.code}`),
        ['get deployments/scale 200', 'update deployments/scale 403'], // the 401 never reaches authorization
      )
      assert.deepEqual(locked.api.schemaProblems, [])
    } finally {
      await locked.close()
    }
  })
})
