// A test plugin: each instance is a real HTTP server inside the test's own process (port 0),
// so Tide's router reaches it over real sockets. Options inject faults:
//   failScaleUps: n        the first n scale-ups throw (a failed wake), then they work
//   failAfterMs: n         a failing scale-up throws after n ms (so a burst is held when it fails)
//   throwIn: [status, scale, watch]   these always throw (a broken plugin)
//   startupMs: n           an instance listens n ms after it is asked for
//   failScaleDowns: n      the first n scale-downs drain their victim, then throw (it keeps running)
//   keepVictims: n         the first n scale-downs drain their victim (the newest), then keep it
//                          after all (plan.undrain) and remove the oldest instead, as Kubernetes
//                          may remove another pod than the one Tide marked
//   hangScaleUps: n        the first n scale-ups never finish on their own: they end when their
//                          signal is aborted (counted in the `aborted` export)
import { createServer } from 'node:http'

/** Scale-ups that hung and were ended by their signal, by group. */
export const aborted = {}

/** @type {import('tide/plugin').PluginFactory} */
export function createTarget(options, context) {
  const throwIn = new Set(Array.isArray(options.throwIn) ? options.throwIn : [])
  let failScaleUps = Number(options.failScaleUps ?? 0)
  let failScaleDowns = Number(options.failScaleDowns ?? 0)
  let hangScaleUps = Number(options.hangScaleUps ?? 0)
  let keepVictims = Number(options.keepVictims ?? 0)
  const startupMs = Number(options.startupMs ?? 0)
  let next = 1
  const instances = [] // { instance, server }
  const listeners = new Set()
  const snapshot = () => {
    const list = instances.map((i) => ({ ...i.instance }))
    return { desired: list.length, instances: list, ready: list.filter((i) => i.state === 'ready').length }
  }
  const changed = () => {
    for (const l of listeners) l(snapshot())
  }
  const boom = (what) => {
    throw new Error(`${what} exploded (test plugin for group ${context.group})`)
  }
  return {
    kind: 'test-servers',
    async status() {
      if (throwIn.has('status')) boom('status')
      return snapshot()
    },
    async scale(to, plan, signal) {
      if (throwIn.has('scale')) boom('scale')
      const from = instances.length
      if (to > from && hangScaleUps > 0) {
        hangScaleUps--
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
        aborted[context.group] = (aborted[context.group] ?? 0) + 1
        throw signal.reason
      }
      if (to > from && failScaleUps > 0) {
        failScaleUps--
        await new Promise((r) => setTimeout(r, Number(options.failAfterMs ?? 0)))
        throw new Error('the instance could not be started (injected failure)')
      }
      const added = []
      while (instances.length < to) {
        const id = `${context.group}-${next++}`
        const server = createServer((req, res) => {
          const sleep = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('sleep') ?? 0)
          setTimeout(() => res.end(`hello from ${id}\n`), sleep)
        })
        const entry = { instance: { id, state: 'starting', createdAt: Date.now() }, server }
        instances.push(entry)
        added.push(id)
        await new Promise((r) => setTimeout(r, startupMs))
        await new Promise((r) => server.listen(0, '127.0.0.1', r))
        const address = server.address()
        entry.instance.address = `127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
        entry.instance.state = 'ready'
        entry.instance.readyAt = Date.now()
        changed()
      }
      if (to < from && failScaleDowns > 0) {
        failScaleDowns--
        await plan.drain?.(instances[instances.length - 1].instance)
        throw new Error('the instance could not be removed (injected failure)')
      }
      const removed = []
      if (to < from && keepVictims > 0) {
        keepVictims--
        const victim = instances[instances.length - 1]
        await plan.drain?.(victim.instance)
        plan.undrain?.(victim.instance)
        while (instances.length > to) {
          const entry = instances.shift()
          await new Promise((r) => entry.server.close(r))
          entry.server.closeAllConnections()
          removed.push(entry.instance.id)
        }
        changed()
        return { from, to, added, removed }
      }
      while (instances.length > to) {
        const entry = instances.pop()
        await plan.drain?.(entry.instance)
        await new Promise((r) => entry.server.close(r))
        entry.server.closeAllConnections()
        removed.push(entry.instance.id)
        changed()
      }
      return { from, to, added, removed }
    },
    watch(listener) {
      if (throwIn.has('watch')) boom('watch')
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    async close() {
      for (const { server } of instances.splice(0)) {
        server.closeAllConnections()
        server.close()
      }
    },
  }
}
