/**
 * `tide run -c FILE`: starts the daemon, says where everything is, and stops it cleanly on
 * Ctrl-C or SIGTERM (systemd, docker stop). A second signal while stopping leaves at once.
 * SIGHUP reloads the config file (as Prometheus, Alertmanager and nginx do): the daemon logs
 * one line with what changed or why nothing did, and keeps running either way.
 */
import type { Daemon } from '../engine/daemon.js'
import { errorMessage } from '../core/errors.js'
import type { Context } from './context.js'
import { EXIT } from './io.js'

/**
 * Waits for Ctrl-C or SIGTERM: `stop` resolves on the first; a second one while stopping leaves
 * at once (exit code 130). `off` stops listening. Shared by `tide run` and `tide docker-scaler`.
 */
export function untilSignalled(ctx: Context): { stop: Promise<void>; off: () => void } {
  const { io } = ctx
  let signalled: (() => void) | undefined
  let stopping = false
  const stop = new Promise<void>((resolve) => {
    signalled = resolve
  })
  const off = io.onSignal((signal) => {
    if (stopping) {
      ctx.err(`${signal} again: leaving without waiting`)
      io.exit(EXIT.interrupted)
      return
    }
    stopping = true
    signalled?.()
  })
  return { stop, off }
}

export interface RunFlags {
  config: string
  listen?: string
  logLevel?: string
  json?: boolean
}

/**
 * Reloads on SIGHUP until the returned function is called. Installed before the daemon starts:
 * a SIGHUP's default action ends the process, and a reload during start-up has nothing to do
 * (the file is being read anyway). The daemon's reload logs its own line, success or failure.
 */
function reloadOnHangup(ctx: Context, daemon: () => Daemon | undefined): () => void {
  const onHangup = () => {
    const running = daemon()
    if (!running) {
      ctx.err('SIGHUP while starting: ignored (the config file is being read now)')
      return
    }
    running.reload('SIGHUP').catch((err: unknown) => {
      // Logged by the daemon; a reload that cannot even be attempted must not end the process.
      running.logger.debug({ err: errorMessage(err) }, 'SIGHUP reload did not apply')
    })
  }
  process.on('SIGHUP', onHangup)
  return () => process.off('SIGHUP', onHangup)
}

export async function runCommand(ctx: Context, flags: RunFlags): Promise<number> {
  const { io, c } = ctx
  // Listen before starting, so a signal during a slow start still stops what was started.
  const { stop, off } = untilSignalled(ctx)
  let started: Daemon | undefined
  const offHangup = reloadOnHangup(ctx, () => started)
  try {
    const daemon = await io.startDaemon({
      configPath: flags.config,
      listen: flags.listen,
      logLevel: flags.logLevel,
    })
    started = daemon
    const groups = daemon.controller.listGroups()
    if (flags.json) {
      ctx.json({
        api: daemon.apiUrl,
        groups: groups.map((g) => ({ name: g.name, target: g.target, route: daemon.routes[g.name] ?? null })),
      })
    } else {
      const line = (label: string, value: string) => ctx.out(`  ${c.dim(label.padEnd(10))} ${value}`)
      ctx.out(`${c.bold(c.cyan('tide'))} is running`)
      line('api', `${daemon.apiUrl}/v1/groups`)
      line('dashboard', `${daemon.apiUrl}/`)
      line('metrics', `${daemon.apiUrl}/metrics`)
      for (const g of groups) {
        const route = daemon.routes[g.name]
        const where = route ? `http://${route}` : c.dim('(no route)')
        line(
          g.name,
          `${where}  ${c.dim(`${g.target}, ${g.min}–${g.max} instances${g.shadow ? ', shadow' : ''}`)}`,
        )
      }
      ctx.out(c.dim('Ctrl-C stops it; SIGHUP or `tide reload` reloads the config file.'))
    }
    await stop
    if (!flags.json) ctx.err('stopping…')
    await daemon.close()
    if (!flags.json) ctx.err('stopped')
    return EXIT.ok
  } finally {
    off()
    offHangup()
  }
}
