// The app bench/coldstart starts, alone and through Tide: a minimal HTTP server that says, in
// every response, when its process began (performance.timeOrigin) and when it started listening,
// both as epoch milliseconds with sub-millisecond precision. The bench subtracts the app's own
// start (process start → listening) from each run, so the machine's noise in booting Node does
// not hide what Tide adds.
import { createServer } from 'node:http'

const origin = performance.timeOrigin
let listeningAt = 0
const server = createServer((req, res) => {
  res.setHeader('x-time-origin', origin.toFixed(3))
  res.setHeader('x-listening-at', listeningAt.toFixed(3))
  res.end(req.url === '/healthz' ? 'ok\n' : 'hello\n')
})
server.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1', () => {
  listeningAt = performance.timeOrigin + performance.now()
})
process.on('SIGTERM', () => server.close(() => process.exit(0)))
