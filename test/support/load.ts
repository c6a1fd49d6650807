/** Runs examples/load.js (the user-facing load generator) as a separate process. */
import { spawn } from 'node:child_process'

export interface LoadSummary {
  ok: number
  failed: number
  statuses: Record<string, number>
  errors: Record<string, number>
  rps: number
  p50: number
  p99: number
}

export function runLoad(
  url: string,
  clients: number,
  duration: string,
  extra: string[] = [],
): Promise<LoadSummary> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        'examples/load.js',
        '--url',
        url,
        '--clients',
        String(clients),
        '--duration',
        duration,
        '--json',
        ...extra,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    let out = ''
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString()
    })
    child.on('error', reject)
    child.on('close', () => {
      try {
        resolve(JSON.parse(out.trim().split('\n').at(-1)!) as LoadSummary)
      } catch {
        reject(new Error(`load generator printed no summary: ${out}`))
      }
    })
  })
}
