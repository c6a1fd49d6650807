/**
 * bench/router: Tide's router against nginx, measured in the same run, with wrk on loopback.
 *
 *   node --import tsx bench/router/index.ts [--duration 10s] [--rounds 3] [--connections 64]
 *                                           [--threads 2] [--workers N] [--single false]
 *
 * One upstream (bench/router/upstream.ts: a keep-alive Node HTTP server answering 39 bytes of
 * JSON, in one process, as a Node instance runs) is measured through:
 *   direct       wrk → upstream
 *   router       wrk → Tide's router, `route.workers` = cores (the default) or --workers → upstream
 *   nginx        wrk → nginx, `worker_processes auto` (= cores) or --workers, upstream keepalive 64,
 *                HTTP/1.1, Connection "" → upstream
 *   router-1     the router with `workers: 1` (in this process)    } like for like on small
 *   nginx-1      nginx with `worker_processes 1`                   } machines (--single false: off)
 * Both proxies do the same work per request: keep-alive to the upstream, strip hop-by-hop
 * headers, add X-Forwarded-For/Proto/Host, pass the client's Host. Each nginx runs from its own
 * prefix and config in a temp dir (daemon off, error_log to a file) and is stopped by its pid.
 * Rounds run every target once, in an order that rotates so none always follows another.
 * Printed: requests/s, p50 and p99 per target (median of the rounds), and router/nginx ratios of
 * those medians and (steadier on a shared machine) the median of the per-round ratios.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process'
import cluster from 'node:cluster'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { availableParallelism, tmpdir } from 'node:os'
import { extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { parseDuration } from '../../src/core/duration.js'
import { createRouter, routeSchema } from '../../src/router/index.js'

interface Result {
  rps: number
  p50: number
  p99: number
  errors: number
  /** CPU time (user + system) of the target's processes per request, µs; NaN where unknown. */
  cpu: number
}

/** CPU ms used so far by these processes (Linux /proc; USER_HZ is 100 on every mainstream arch). */
function cpuMs(pids: number[]): number {
  let ticks = 0
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      ticks += Number(fields[11]) + Number(fields[12])
    } catch {
      return Number.NaN
    }
  }
  return ticks * 10
}

/** Children of a process (nginx's workers). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number)
  } catch {
    return []
  }
}

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '10s' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '64' },
    threads: { type: 'string', default: '2' },
    workers: { type: 'string' },
    warmup: { type: 'string', default: '2s' },
    single: { type: 'string', default: 'true' },
    floor: { type: 'string', default: 'true' },
  },
})
const durationS = Math.max(1, Math.round((parseDuration(args.duration) ?? 10_000) / 1000))
const warmupS = Math.max(1, Math.round((parseDuration(args.warmup) ?? 2000) / 1000))
const rounds = Math.max(1, Number(args.rounds))
const connections = Number(args.connections)
const threads = Number(args.threads)
const cores = availableParallelism()
const workers = args.workers === undefined ? cores : Number(args.workers)
const floor = args.floor !== 'false'
const single = args.single !== 'false' && workers > 1

function which(command: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin', '/sbin']
  for (const dir of dirs) {
    if (dir !== '' && existsSync(join(dir, command))) return join(dir, command)
  }
  return undefined
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const a = server.address()
      server.close(() => resolve(a !== null && typeof a === 'object' ? a.port : 0))
    })
  })
}

async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs
  while (Date.now() < until) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port }, () => {
        socket.destroy()
        resolve(true)
      })
      socket.once('error', () => resolve(false))
    })
    if (ok) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`)
}

/** wrk's latency figures carry units: "812.00us", "2.09ms", "1.02s". */
function toMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim())
  if (!m) return Number.NaN
  const n = Number(m[1])
  return m[2] === 'us' ? n / 1000 : m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000
}

function runWrk(wrk: string, url: string, seconds: number, pids: number[] = []): Promise<Result> {
  const cpuBefore = cpuMs(pids)
  return new Promise((resolve, reject) => {
    const child = spawn(wrk, [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--latency', url], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString()
    })
    child.on('error', reject)
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`wrk exited with ${code}:\n${out}`))
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1])
      const p50 = toMs(/^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? '')
      const p99 = toMs(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? '')
      const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0)
      const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
      const socketErrors = socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0
      const requests = Number(/(\d+) requests in/.exec(out)?.[1])
      const cpu = pids.length > 0 ? ((cpuMs(pids) - cpuBefore) * 1000) / requests : Number.NaN
      resolve({ rps, p50, p99, errors: non2xx + socketErrors, cpu })
    })
  })
}

function nginxConfig(prefix: string, port: number, upstreamPort: number, processes: string): string {
  return `worker_processes ${processes};
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  upstream app {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
    }
  }
}
`
}

function stop(child: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  return new Promise((resolve) => {
    if (
      child === undefined ||
      child.pid === undefined ||
      child.exitCode !== null ||
      child.signalCode !== null
    ) {
      return resolve()
    }
    child.once('exit', () => resolve())
    process.kill(child.pid, signal)
  })
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a')

interface Target {
  name: string
  url: string
  /** The processes doing the target's work (the proxy's, or the upstream for direct). */
  pids: () => number[]
}

async function startNginx(
  nginx: string,
  upstreamPort: number,
  processes: string,
): Promise<{ child: ChildProcess; prefix: string; port: number }> {
  const prefix = mkdtempSync(join(tmpdir(), 'tide-bench-nginx-'))
  const port = await freePort()
  writeFileSync(join(prefix, 'nginx.conf'), nginxConfig(prefix, port, upstreamPort, processes))
  const child = spawn(nginx, ['-p', prefix, '-c', join(prefix, 'nginx.conf')], { stdio: 'ignore' })
  await waitForPort(port)
  return { child, prefix, port }
}

function ratioLine(results: Map<string, Result[]>, router: string, nginx: string, aims = true): void {
  const r = results.get(router)
  const n = results.get(nginx)
  if (r === undefined || n === undefined) return
  const rps = (xs: Result[]) => median(xs.map((x) => x.rps))
  const p50 = (xs: Result[]) => median(xs.map((x) => x.p50))
  const p99 = (xs: Result[]) => median(xs.map((x) => x.p99))
  const paired = (f: (x: Result) => number) => median(r.map((x, i) => f(x) / f(n[i]!)))
  const perRound = r.map((x, i) => fmt(x.rps / n[i]!.rps)).join(', ')
  const cpu = (xs: Result[]) => median(xs.map((x) => x.cpu))
  console.log(
    `${router}/${nginx}: throughput ${fmt(rps(r) / rps(n))} (per round ${perRound}; median ${fmt(paired((x) => x.rps))}${aims ? '; aim ≥ 1.00' : ''}), ` +
      `p50 ${fmt(p50(r) / p50(n))}, p99 ${fmt(p99(r) / p99(n))} (median per round ${fmt(paired((x) => x.p99))}${aims ? '; aim ≤ 1.50' : ''}), ` +
      `cpu per request ${fmt(cpu(r) / cpu(n))}`,
  )
}

async function main(): Promise<void> {
  const wrk = which('wrk')
  if (wrk === undefined) {
    console.log('wrk not installed: skipped (Debian: apt-get install wrk)')
    return
  }
  const nginx = which('nginx')
  const here = fileURLToPath(import.meta.url)
  const upstreamFile = fileURLToPath(new URL(`./upstream${extname(here)}`, import.meta.url))
  const pipeFile = fileURLToPath(new URL(`./pipe${extname(here)}`, import.meta.url))
  let upstream: ChildProcess | undefined
  let pipe: ChildProcess | undefined
  const nginxes: Array<{ child: ChildProcess; prefix: string }> = []
  const routers = [createRouter('bench', routeSchema.parse({ listen: '127.0.0.1:0', workers }))]
  if (single) routers.push(createRouter('bench', routeSchema.parse({ listen: '127.0.0.1:0', workers: 1 })))
  try {
    upstream = fork(upstreamFile, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    const upstreamPort = await new Promise<number>((resolve, reject) => {
      upstream!.once('message', (m: { port: number }) => resolve(m.port))
      upstream!.once('exit', (code) => reject(new Error(`upstream exited with ${code}`)))
    })
    const upstreamPid = upstream.pid!
    const targets: Target[] = [
      { name: 'direct', url: `http://127.0.0.1:${upstreamPort}/`, pids: () => [upstreamPid] },
    ]
    for (const [i, router] of routers.entries()) {
      await router.start()
      router.setBackends([{ id: 'upstream', address: `127.0.0.1:${upstreamPort}` }])
      // Workers are this process's cluster workers; a one-process router runs in this process,
      // which otherwise only waits for wrk.
      const pids =
        workers > 1 && i === 0
          ? () => [process.pid, ...Object.values(cluster.workers ?? {}).map((w) => w!.process.pid!)]
          : () => [process.pid]
      targets.push({ name: i === 0 ? 'router' : 'router-1', url: `http://${router.address}/`, pids })
    }
    if (floor) {
      pipe = fork(pipeFile, [String(upstreamPort)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
      const pipePort = await new Promise<number>((resolve, reject) => {
        pipe!.once('message', (m: { port: number }) => resolve(m.port))
        pipe!.once('exit', (code) => reject(new Error(`pipe exited with ${code}`)))
      })
      const pipePid = pipe.pid!
      targets.push({ name: 'pipe-1', url: `http://127.0.0.1:${pipePort}/`, pids: () => [pipePid] })
    }
    if (nginx === undefined) console.log('nginx not installed: skipped (Debian: apt-get install nginx-light)')
    else {
      const processes = args.workers === undefined ? ['auto'] : [String(workers)]
      if (single) processes.push('1')
      for (const [i, p] of processes.entries()) {
        const started = await startNginx(nginx, upstreamPort, p)
        nginxes.push(started)
        const master = started.child.pid!
        targets.push({
          name: i === 0 ? 'nginx' : 'nginx-1',
          url: `http://127.0.0.1:${started.port}/`,
          pids: () => [master, ...childrenOf(master)],
        })
      }
    }

    console.log(
      `wrk -t${threads} -c${connections} -d${durationS}s --latency, ${rounds} round(s); cores: ${cores}; ` +
        `router workers: ${workers}; nginx worker_processes: ${args.workers ?? 'auto'}; ` +
        `upstream: 1 Node process (node ${process.version})`,
    )
    for (const t of targets) await runWrk(wrk, t.url, warmupS)

    const results = new Map<string, Result[]>(targets.map((t) => [t.name, []]))
    for (let round = 0; round < rounds; round++) {
      const order = targets.map((_, i) => targets[(i + round) % targets.length]!)
      const line: string[] = []
      for (const t of order) {
        const r = await runWrk(wrk, t.url, durationS, t.pids())
        results.get(t.name)!.push(r)
        line.push(`${t.name} ${fmt(r.rps, 0)}/s p99 ${fmt(r.p99)}ms`)
      }
      console.log(`round ${round + 1}: ${line.join(' | ')}`)
    }

    console.log('\ntarget      requests/s      p50 ms    p99 ms    errors   cpu µs/req')
    for (const t of targets) {
      const rs = results.get(t.name)!
      const errors = rs.reduce((sum, r) => sum + r.errors, 0)
      console.log(
        `${t.name.padEnd(10)} ${fmt(median(rs.map((r) => r.rps)), 0).padStart(12)} ` +
          `${fmt(median(rs.map((r) => r.p50))).padStart(11)} ${fmt(median(rs.map((r) => r.p99))).padStart(9)} ` +
          `${String(errors).padStart(9)} ${fmt(median(rs.map((r) => r.cpu)), 1).padStart(12)}`,
      )
    }
    console.log('')
    const d = median(results.get('direct')!.map((r) => r.rps))
    console.log(`router/direct throughput: ${fmt(median(results.get('router')!.map((r) => r.rps)) / d)}`)
    ratioLine(results, 'router', 'nginx')
    ratioLine(results, 'router-1', 'nginx-1')
    if (floor) {
      ratioLine(results, 'pipe-1', 'nginx-1', false)
      ratioLine(results, 'router-1', 'pipe-1', false)
    }
    const stats = routers[0]!.stats({ windowMs: 5000 })
    console.log(`router counted ${stats.requests} requests, ${stats.errors} errors`)
  } finally {
    for (const router of routers) await router.close()
    for (const { child, prefix } of nginxes) {
      await stop(child, 'SIGQUIT')
      const log = readFileSync(join(prefix, 'error.log'), 'utf8').trim()
      if (log !== '') console.log(`nginx error.log:\n${log}`)
      rmSync(prefix, { recursive: true, force: true })
    }
    await stop(pipe)
    await stop(upstream)
  }
}

await main()
