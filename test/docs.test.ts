/**
 * The docs must not drift from the code (Fastify's rule): every error code the code can
 * produce is in docs/errors.md and every code documented there exists; docs/config.md's
 * reference is exactly what the schema generates.
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { renderDoc } from '../scripts/gen-config-docs.js'

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) sourceFiles(path, out)
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) out.push(path)
  }
  return out
}

describe('docs', () => {
  test('docs/errors.md lists exactly the error codes the code uses', () => {
    const inCode = new Set<string>()
    for (const file of sourceFiles('src')) {
      for (const m of readFileSync(file, 'utf8').matchAll(/['"`](E_[A-Z0-9_]+)['"`]/g)) inCode.add(m[1]!)
    }
    const doc = readFileSync('docs/errors.md', 'utf8')
    const inDocs = new Set([...doc.matchAll(/^\|\s*`(E_[A-Z0-9_]+)`/gm)].map((m) => m[1]!))
    const undocumented = [...inCode].filter((c) => !inDocs.has(c)).sort()
    const stale = [...inDocs].filter((c) => !inCode.has(c)).sort()
    assert.deepEqual(undocumented, [], 'codes used in src/ but missing from docs/errors.md')
    assert.deepEqual(stale, [], 'codes in docs/errors.md that no code uses')
  })

  test('docs/config.md reference matches the schema (regenerate with scripts/gen-config-docs.ts)', () => {
    const current = readFileSync('docs/config.md', 'utf8')
    assert.equal(renderDoc(current), current)
  })
})
