/**
 * The upstream for bench/router: a minimal keep-alive Node HTTP server answering a small body,
 * the kind of instance Tide fronts. One process (one core): that is what a Node instance gets.
 * Started by bench/router/index.ts with `fork`; reports its port over IPC.
 */
import { createServer } from 'node:http'

const BODY = Buffer.from('{"ok":true,"service":"bench-upstream"}\n')

const server = createServer((_req, res) => {
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': BODY.length })
  res.end(BODY)
})
// Longer than the proxies' idle pools (Tide: 4s, nginx: 60s) so neither races a closing socket.
server.keepAliveTimeout = 75_000
server.listen(0, '127.0.0.1', () => {
  const address = server.address()
  if (address && typeof address === 'object') process.send?.({ port: address.port })
})
process.on('disconnect', () => process.exit(0))
