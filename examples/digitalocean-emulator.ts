/**
 * A pretend DigitalOcean account for examples/digitalocean.yaml: the API emulator from
 * test/emulators/digitalocean with a base droplet `web-base` (tag `web`), a snapshot
 * `web-snapshot` and a load balancer `web-lb`, and load that comes and goes.
 *
 *   node --import tsx examples/digitalocean-emulator.ts            # terminal 1
 *   DIGITALOCEAN_API_URL=http://127.0.0.1:7071 DIGITALOCEAN_TOKEN=demo-token \
 *     node bin/tide.js run -c examples/digitalocean.yaml           # terminal 2
 *   npx tide status --watch                                       # terminal 3
 *
 * Demand is a total load average shared by the active droplets: high (2.4) for `--high`
 * seconds, then low (0.1) for `--low` seconds, and again. Each droplet's load_1 is its share,
 * its free memory falls as its load rises, and so does its outbound bandwidth. Every line the
 * emulator prints is one change of the cluster (created, active, in the load balancer, deleted).
 *
 * Options: --port 7071  --token demo-token  --high 90  --low 90  --boot 5 (seconds to active)
 *          --agents 9110 (serve a do-agent per droplet, for examples/digitalocean-agent.yaml)
 */
import { parseArgs } from 'node:util'
import { DigitalOceanEmulator } from '../test/emulators/digitalocean/index.js'

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '7071' },
    token: { type: 'string', default: 'demo-token' },
    high: { type: 'string', default: '90' },
    low: { type: 'string', default: '90' },
    boot: { type: 'string', default: '5' },
    agents: { type: 'string' },
  },
})

const em = new DigitalOceanEmulator({
  token: values.token,
  bootDelay: Number(values.boot) * 1000,
  validate: false,
  // With --agents PORT, each active droplet also serves a do-agent endpoint on <its 127.x address>:PORT.
  ...(values.agents ? { agents: true, agentPort: Number(values.agents) } : {}),
})
const url = await em.start(Number(values.port))
const base = em.addDroplet({ name: 'web-base', tags: ['web'], size: 's-1vcpu-2gb' })
em.addSnapshot({ name: 'web-snapshot' })
const lb = em.addLoadBalancer({ name: 'web-lb', dropletIds: [base.id] })

console.log(`DigitalOcean API emulator at ${url} (token ${values.token})`)
console.log(`  export DIGITALOCEAN_API_URL=${url} DIGITALOCEAN_TOKEN=${values.token}`)
console.log(`  base droplet web-base (${base.id}), snapshot web-snapshot, load balancer web-lb`)

const high = Number(values.high) * 1000
const low = Number(values.low) * 1000
const started = Date.now()
let seen = ''

function tick(): void {
  const phase = (Date.now() - started) % (high + low)
  const demand = phase < high ? 2.4 : 0.1
  const active = em.droplets({ tag: 'web' }).filter((d) => em.dropletStatus(d) === 'active')
  for (const d of active) {
    const load = demand / active.length
    em.setMetrics(d.id, {
      load_1: load,
      load_5: load,
      load_15: load,
      memory_total: 4e9,
      memory_free: Math.max(50e6, 3.2e9 - load * 1.2e9),
      memory_available: Math.max(100e6, 3.5e9 - load * 1.2e9),
      memory_cached: 300e6,
      cpu: Math.min(100, load * 100),
      bandwidth_public_outbound: load * 2,
      bandwidth_private_outbound: load * 0.5,
    })
  }
  const members = new Set(em.members(lb))
  const now = em
    .droplets({ tag: 'web' })
    .map((d) => `${d.name}:${em.dropletStatus(d)}${members.has(d.id) ? '+lb' : ''}`)
    .join(' ')
  if (now !== seen) {
    seen = now
    console.log(`${new Date().toTimeString().slice(0, 8)} demand ${demand.toFixed(1)}  ${now}`)
  }
}
tick()
setInterval(tick, 1000)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void em.close().then(() => process.exit(0))
  })
}
