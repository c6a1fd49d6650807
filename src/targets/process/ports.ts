/**
 * Ports for new instances. Tide binds port 0 on the instance's host, reads the port the kernel
 * chose, closes the socket and hands the number to the process in `PORT`. Another program can
 * take the port in between (time-of-check to time-of-use), so a process that dies before its
 * health check passes is checked with `portTaken` and restarted on another port (see target.ts).
 */
import { createServer } from 'node:net'

/** Binds `port` on `host` and closes it again; resolves to the bound port. Rejects with the bind error. */
function bindOnce(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    // exclusive: never share a handle with cluster workers; the check must be a real bind.
    server.listen({ host, port, exclusive: true }, () => {
      const address = server.address()
      const bound = typeof address === 'object' && address !== null ? address.port : port
      server.close(() => resolve(bound))
    })
  })
}

/**
 * A port that is free on `host` now and not in `avoid` (ports given to instances that may not
 * have bound them yet: the kernel does not know they are spoken for).
 */
export async function freePort(host: string, avoid: ReadonlySet<number> = new Set()): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await bindOnce(host, 0)
    if (!avoid.has(port)) return port
  }
  throw new Error(`no free port on ${host} outside the ${avoid.size} already given out`)
}

/** True when something else holds `port` on `host` (binding it fails with EADDRINUSE). */
export async function portTaken(host: string, port: number): Promise<boolean> {
  try {
    await bindOnce(host, port)
    return false
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EADDRINUSE'
  }
}
