/**
 * Every error code the API and CLI raise is documented (Fastify's rule: a test fails when the
 * docs table drifts from the code).
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'

const root = new URL('../../', import.meta.url).pathname

function codesIn(dir: string): Set<string> {
  const codes = new Set<string>()
  for (const name of readdirSync(join(root, dir))) {
    if (!name.endsWith('.ts') || name.endsWith('.test.ts') || name === 'fake-controller.ts') continue
    for (const m of readFileSync(join(root, dir, name), 'utf8').matchAll(/'(E_[A-Z_]+)'/g)) codes.add(m[1]!)
  }
  return codes
}

function documented(doc: string): Set<string> {
  const text = readFileSync(join(root, 'docs', doc), 'utf8')
  return new Set([...text.matchAll(/^\| `(E_[A-Z_]+)` \|/gm)].map((m) => m[1]!))
}

test('every API error code is in the table of docs/api.md', () => {
  const table = documented('api.md')
  const missing = [...codesIn('src/api')].filter((code) => !table.has(code))
  assert.deepEqual(missing, [])
})

test('every CLI error code is in the tables of docs/cli.md or docs/api.md', () => {
  const tables = new Set([...documented('api.md'), ...documented('cli.md')])
  // E_INTERRUPTED never reaches the user: commands that pass an abort signal stop quietly.
  const missing = [...codesIn('src/cli')].filter((code) => !tables.has(code) && code !== 'E_INTERRUPTED')
  assert.deepEqual(missing, [])
})
