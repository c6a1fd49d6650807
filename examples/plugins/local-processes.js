// An example Tide target plugin: runs each instance as a local process of a Node app.
// A smaller cousin of the built-in `process` target, written against `tide/plugin` only,
// to show everything a plugin does: options checked in createTarget, instances with
// addresses (so Tide's router can send them requests), readiness, drain before stop,
// `watch` so the router hears about a ready instance at once, and `close`.
//
//   target:
//     kind: plugin
//     module: ./plugins/local-processes.js
//     options: { script: app/server.js, env: { WORK_MS: "5" } }
//
// Plain JavaScript with JSDoc types: `tsc --checkJs` (or your editor) checks it against
// Tide's own Target interface through the `tide/plugin` types entry.
import { spawn } from 'node:child_process'
import { request } from 'node:http'
import { createServer } from 'node:net'
import { resolve } from 'node:path'

/** @typedef {import('tide/plugin').Instance} Instance */
/** @typedef {import('tide/plugin').GroupStatus} GroupStatus */

/** @type {import('tide/plugin').PluginFactory} */
export function createTarget(options, context) {
  const { script, env = {}, health = '/healthz' } = options
  if (typeof script !== 'string' || script === '')
    throw new Error(`options.script must be the path of a Node script, got ${JSON.stringify(script)}`)
  if (typeof env !== 'object' || env === null || Array.isArray(env))
    throw new Error(`options.env must be a map of variables, got ${JSON.stringify(env)}`)
  if (typeof health !== 'string' || !health.startsWith('/'))
    throw new Error(`options.health must be a path starting with /, got ${JSON.stringify(health)}`)
  const extraEnv = /** @type {Record<string, string>} */ (env)
  const healthPath = health
  const path = resolve(context.configDir, script)
  let next = 1
  /** @type {Map<string, { instance: Instance, child: import('node:child_process').ChildProcess }>} */
  const running = new Map()
  /** @type {Set<(status: GroupStatus) => void>} */
  const listeners = new Set()

  /** @returns {GroupStatus} */
  const snapshot = () => {
    const instances = [...running.values()].map((r) => ({ ...r.instance }))
    return {
      desired: instances.length,
      instances,
      ready: instances.filter((i) => i.state === 'ready').length,
    }
  }
  const changed = () => {
    const status = snapshot()
    for (const listener of listeners) listener(status)
  }

  async function add() {
    const port = await freePort()
    const id = `${context.group}-${next++}`
    const child = spawn(process.execPath, [path], {
      env: { ...process.env, ...extraEnv, PORT: String(port), HOST: '127.0.0.1', TIDE_INSTANCE: id },
      stdio: 'ignore',
    })
    /** @type {Instance} */
    const instance = {
      id,
      state: 'starting',
      address: `127.0.0.1:${port}`,
      createdAt: Date.now(),
      pid: child.pid,
    }
    running.set(id, { instance, child })
    child.on('exit', (code, signal) => {
      if (!running.has(id)) return
      running.delete(id)
      context.logger.warn({ instance: id }, `${id} exited (${signal ?? code})`)
      changed()
    })
    changed()
    // Poll at a fine grain: every millisecond saved here is saved on a cold start.
    const deadline = Date.now() + 30_000
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`${id} exited before it was ready`)
      if (await healthy(port, healthPath)) {
        instance.state = 'ready'
        instance.readyAt = Date.now()
        changed()
        return id
      }
      await new Promise((r) => setTimeout(r, 5))
    }
    child.kill('SIGKILL')
    throw new Error(`${id} was not ready within 30s`)
  }

  /** @param {string} id @param {import('tide/plugin').ScalePlan} plan */
  async function remove(id, plan) {
    const entry = running.get(id)
    if (!entry) return
    entry.instance.state = 'draining'
    changed()
    await plan.drain?.(entry.instance) // the router finishes the requests in flight first
    running.delete(id)
    changed()
    const exited = new Promise((r) => entry.child.once('exit', r))
    entry.child.kill('SIGTERM')
    await exited
  }

  return {
    kind: 'local-processes',
    async status() {
      return snapshot()
    },
    async scale(to, plan) {
      const from = running.size
      const added = []
      const removed = []
      if (to > from) added.push(...(await Promise.all(Array.from({ length: to - from }, add))))
      // Newest first, as Tide's own targets remove them.
      const victims = [...running.keys()].reverse().slice(0, Math.max(0, from - to))
      for (const id of victims) {
        await remove(id, plan)
        removed.push(id)
      }
      plan.progress?.(`now at ${running.size}`)
      return { from, to, added, removed }
    },
    watch(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    async close(closeOptions) {
      listeners.clear()
      if (!closeOptions?.stopInstances) return
      await Promise.all(
        [...running.values()].map(({ child }) => {
          const exited = new Promise((r) => child.once('exit', r))
          child.kill('SIGTERM')
          return exited
        }),
      )
      running.clear()
    },
  }
}

/** @returns {Promise<number>} a free port on 127.0.0.1 */
function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolvePort(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

/** @param {number} port @param {string} path @returns {Promise<boolean>} */
function healthy(port, path) {
  return new Promise((done) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: 1000 }, (res) => {
      res.resume()
      done((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300)
    })
    req.on('error', () => done(false))
    req.on('timeout', () => {
      req.destroy()
      done(false)
    })
    req.end()
  })
}
