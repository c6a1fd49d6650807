/**
 * A separate Tide-like process for crash tests: scales a `digitalocean` target to argv[3]
 * against the API at argv[2] (token from DIGITALOCEAN_TOKEN), printing progress lines.
 * The test kills it with SIGKILL mid-operation.
 * Usage: node --import tsx scale-child.ts <api_url> <to> [config JSON]
 * (config JSON with a `template` scales a template group: no base droplet or snapshot)
 */
import {
  createDigitalOceanTarget,
  digitaloceanTargetSchema,
} from '../../../src/targets/digitalocean/index.js'

const [apiUrl, to, extra] = process.argv.slice(2)
const overrides = extra ? (JSON.parse(extra) as Record<string, unknown>) : {}
// A `template` in the overrides replaces the base-droplet settings (one way to make droplets).
const base =
  'template' in overrides ? {} : { base_droplet: 'web-base', snapshot: 'web-snapshot', clone_prefix: 'web-' }
const config = digitaloceanTargetSchema.parse({
  kind: 'digitalocean',
  api_url: apiUrl,
  tag: 'web',
  ...base,
  load_balancer: 'web-lb',
  poll: '50ms',
  drain: '0s',
  ...overrides,
})
const target = createDigitalOceanTarget('web', config)
const controller = new AbortController()
target
  .scale(Number(to), { reason: 'crash test', progress: (m) => console.log(m) }, controller.signal)
  .then((r) => console.log(`done ${JSON.stringify(r)}`))
  .catch((err: Error) => {
    console.log(`failed ${err.message}`)
    process.exitCode = 1
  })
