/**
 * The floor for bench/router: the cheapest data path a Node proxy can have on this machine. Each
 * client connection gets its own upstream connection, and bytes are copied both ways as they
 * arrive: no HTTP parsing, no balancing, no pool, no counters — so it is not a usable proxy (it
 * cannot drain, queue, retry or rewrite anything), only a measure of what Node's sockets cost. It
 * reads the way the router does (one shared buffer through `onread`, accepted sockets re-wrapped by
 * the router's own `adopt`) and writes the way the router does (a latin1 string per small piece).
 * One process. Started by bench/router/index.ts with `fork` and the upstream's port as argv[2];
 * reports its own port over IPC.
 */
import { connect, createServer, type Socket } from 'node:net'
import { adopt, copyOut, READ_BUFFER, send } from '../../src/router/io.js'

const upstreamPort = Number(process.argv[2])

const server = createServer({ noDelay: true, pauseOnConnect: true }, (accepted) => {
  let up: Socket | null = null
  const client = adopt(accepted, (n, buf) => {
    send(up!, copyOut(buf as Buffer, 0, n))
    return true
  })
  up = connect({
    host: '127.0.0.1',
    port: upstreamPort,
    noDelay: true,
    onread: {
      buffer: READ_BUFFER,
      callback: (n, buf) => {
        send(client, copyOut(buf as Buffer, 0, n))
        return true
      },
    },
  })
  // wrk writes only after the connection is up; the upstream's connect finishes first on loopback,
  // and writes made before it are queued by the socket anyway.
  const close = () => {
    client.destroy()
    up?.destroy()
  }
  client.on('error', close).on('close', close)
  up.on('error', close).on('close', close)
})
server.listen(0, '127.0.0.1', () => {
  const address = server.address()
  if (address && typeof address === 'object') process.send?.({ port: address.port })
})
process.on('disconnect', () => process.exit(0))
