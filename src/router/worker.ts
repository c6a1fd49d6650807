/**
 * A router worker process (`route.workers` > 1): runs the data path (proxy.ts) on the shared port
 * and talks to the primary over IPC. Started by cluster.ts with node:cluster, which hands each
 * worker its share of the connections accepted on the port.
 */
import { errorMessage } from '../core/errors.js'
import type { FromWorker, ToWorker, WorkerInit } from './ipc.js'
import { WORKER_ENV } from './ipc.js'
import { ProxyServer, type RouterLogger } from './proxy.js'

function send(message: FromWorker): void {
  if (process.connected) process.send?.(message)
}

function logVia(level: 'info' | 'warn' | 'error') {
  return (obj: object, msg = '') => {
    const plain: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(obj)) plain[k] = v instanceof Error ? errorMessage(v) : v
    send({ t: 'log', level, obj: plain, msg })
  }
}

const logger: RouterLogger = { info: logVia('info'), warn: logVia('warn'), error: logVia('error') }
const init = JSON.parse(process.env[WORKER_ENV] ?? 'null') as WorkerInit | null
if (init === null)
  throw new Error(`${WORKER_ENV} is not set: this file is started by the router, not by hand`)

const waits = { served: [] as number[], failed: [] as number[] }
let waitsQueued = false
function flushWaits(): void {
  waitsQueued = false
  if (waits.served.length === 0 && waits.failed.length === 0) return
  send({ t: 'waits', served: waits.served.splice(0), failed: waits.failed.splice(0) })
}

const proxy = new ProxyServer({
  group: init.group,
  p2c: init.config.balance === 'p2c',
  queueDepth: init.queueDepth,
  queueTimeoutMs: init.config.queue.timeout,
  maxBody: init.config.queue.max_body,
  upstreamTimeoutMs: init.config.upstream_timeout,
  since: init.since,
  onDemand: () => send({ t: 'demand' }),
  onWait: (ms, served) => {
    ;(served ? waits.served : waits.failed).push(ms)
    // A burst released at once is one message, sent after the burst.
    if (!waitsQueued) {
      waitsQueued = true
      setImmediate(flushWaits)
    }
  },
  logger,
})

// Counters go to the primary a few times a second when something changed (and every 5 s anyway);
// the primary carries in-flight integrals forward between reports, so this is not a sampling rate.
let last = { requests: -1, errors: -1, inFlight: -1, queued: -1, at: 0 }
let changed = true
function report(force = false): void {
  const now = Date.now()
  if (
    !force &&
    !changed &&
    proxy.requests === last.requests &&
    proxy.errors === last.errors &&
    proxy.inFlight === last.inFlight &&
    proxy.queued === last.queued &&
    now - last.at < 5000
  ) {
    return
  }
  changed = false
  last = {
    requests: proxy.requests,
    errors: proxy.errors,
    inFlight: proxy.inFlight,
    queued: proxy.queued,
    at: now,
  }
  send({ t: 'counters', counters: proxy.counters() })
}
const reporter = setInterval(report, 250)

process.on('message', (message: ToWorker) => {
  switch (message.t) {
    case 'backends':
      proxy.setBackends(message.backends)
      // Only marks them draining: their drain (and its timeout) is the one the 'drain' message started.
      for (const id of message.draining) void proxy.drain(id, 0, false)
      changed = true
      break
    case 'drain':
      changed = true
      void proxy.drain(message.id, message.timeoutMs).then((result) => {
        report(true)
        send({ t: 'drained', seq: message.seq, ...result })
      })
      break
    case 'undrain':
      proxy.undrain(message.id)
      changed = true
      break
    case 'wakeFailed':
      proxy.failQueue('E_ROUTER_WAKE_FAILED', message.message)
      changed = true
      break
    case 'close':
      clearInterval(reporter)
      void proxy.close(message.timeoutMs).then(() => {
        report(true)
        process.disconnect()
        process.exit(0)
      })
      break
  }
})
// The primary went away (Tide stopped or crashed): nobody to report to.
process.on('disconnect', () => process.exit(0))

proxy.listen(init.host, init.port).then(
  (address) => send({ t: 'listening', address }),
  (err: unknown) => {
    send({ t: 'error', message: errorMessage(err) })
    setTimeout(() => process.exit(1), 100)
  },
)
