// Quick probe: router-1 with pipeline N in this process, wrk for 5s, count batch sizes.
import { spawn, fork } from 'node:child_process'
import { createRouter, routeSchema } from '../../src/router/index.js'
const N = Number(process.argv[2] ?? 8)
const up = fork('/work/main/bench/router/upstream.ts', [], { execArgv: ['--import', 'tsx'] })
const port: number = await new Promise((r) => up.once('message', (m: any) => r(m.port)))
const router = createRouter('p', routeSchema.parse({ listen: '127.0.0.1:0', workers: 1 }))
await router.start()
router.setBackends([{ id: 'a', address: `127.0.0.1:${port}`, gen: 1 }] as any)
const addr = (router as any).address ?? (router as any).listenAddress
console.log('addr', addr)
import { readFileSync } from 'node:fs'
const ticks = (pid: number) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8'); const a = f.slice(f.lastIndexOf(')') + 2).split(' '); return (Number(a[11]) + Number(a[12])) * 10 }
const u0 = ticks(up.pid!)
const t0 = process.cpuUsage()
const w = spawn('wrk', ['-t2', '-c64', '-d5s', '--latency', `http://${addr}/`], { stdio: 'inherit' })
await new Promise((r) => w.on('exit', r))
const cu = process.cpuUsage(t0)
console.log('upstream cpu ms', ticks(up.pid!) - u0); console.log('cpu ms', (cu.user + cu.system) / 1000, 'stats', JSON.stringify((globalThis as any).__tideStats))
up.kill(); await router.close?.(1000); process.exit(0)
