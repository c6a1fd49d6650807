#!/usr/bin/env node
// Bundles Tide's droplet-autoscale drop-in (src/dropin/droplet-autoscale/function.ts and what it
// imports: the DigitalOcean client and target, the threshold policy, the governor, zod) into one
// CommonJS file per function, which is all DigitalOcean Functions needs: no node_modules, no
// build on the platform. Run it from anywhere before `doctl serverless deploy`:
//
//   node deploy/digitalocean-functions/build.mjs [--outdir DIR]
//
// Writes DIR/packages/autoscale/{scale,auto}/index.js (DIR defaults to this folder).
// esbuild: a dev dependency of the repository (~0.28.2, the version tsx brings along).
import { mkdirSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const here = dirname(fileURLToPath(import.meta.url))
const root = resolve(here, '../..')
const at = process.argv.indexOf('--outdir')
const outdir = at > 0 ? resolve(process.argv[at + 1]) : here

for (const fn of ['scale', 'auto']) {
  const dir = join(outdir, 'packages', 'autoscale', fn)
  mkdirSync(dir, { recursive: true })
  const outfile = join(dir, 'index.js')
  await build({
    entryPoints: [join(root, 'src/dropin/droplet-autoscale/function.ts')],
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    outfile,
    legalComments: 'none',
    logLevel: 'warning',
  })
  console.log(`${outfile}: ${Math.round(statSync(outfile).size / 1024)} KiB`)
}
