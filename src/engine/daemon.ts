/**
 * `tide run`: loads the config, opens the store, starts each group's target, router and
 * loop, then the API. `close()` undoes it in reverse: API, loops (operations in flight get
 * a grace period), routers, targets (local processes stop with Tide), store. `reload()` reads
 * the file again and swaps in what can change live (src/engine/reload.ts), all or nothing.
 */
import { dirname, isAbsolute, resolve } from 'node:path'
import { apiRoutes, createReceiver, type Receiver, type ReceiverHandle } from '../alertmanager/index.js'
import { createApiServer } from '../api/index.js'
import {
  type Config,
  effectiveSources,
  type GroupConfig,
  type LoadedConfig,
  loadConfigFile,
} from '../config/index.js'
import { errorMessage } from '../core/errors.js'
import { systemClock } from '../core/clock.js'
import { buildPolicy, policyName } from '../policies/index.js'
import { createNotifier, Dispatcher } from '../notify/index.js'
import { createRouter, type Router } from '../router/index.js'
import { createSource } from '../sources/index.js'
import { createTarget, type TargetConfig } from '../targets/index.js'
import type { Controller, ReloadSummary } from './controller.js'
import { Engine } from './engine.js'
import { GroupRunner, type GroupParts, type GroupSettings } from './group.js'
import { createLogger, type Logger } from './log.js'
import { planReload, ReloadRefusedError, summarize } from './reload.js'
import { Store } from './store.js'
import { Telemetry } from './telemetry.js'

export interface DaemonOptions {
  configPath: string
  /** Overrides api.listen from the config. */
  listen?: string
  /** Overrides the config's log level. */
  logLevel?: string
  /** Use this logger instead of one built from the config (tests). */
  logger?: Logger
}

export interface Daemon {
  controller: Controller
  /** The API's actual address (port 0 resolved). */
  apiUrl: string
  /** Each routed group's actual listen address (port 0 resolved). */
  routes: Record<string, string>
  logger: Logger
  /** The Alertmanager receiver, when the config has a `receiver` section. */
  receiver?: Receiver
  /**
   * Reads the config file again and applies what can change live, all or nothing (see
   * src/engine/reload.ts); logs one line either way. Throws ConfigError (E_CONFIG) for a bad
   * file and ReloadRefusedError (E_RELOAD_REFUSED) when a change needs a restart; in both cases
   * nothing changed. Reloads run one at a time. `via` only labels the log line.
   */
  reload(via?: string): Promise<ReloadSummary>
  /** Stops loops, routers, API; stops local processes it started. */
  close(): Promise<void>
}

/** The governor and loop settings of a group, durations in ms. */
export function groupSettings(group: GroupConfig, keepDecisions: number): GroupSettings {
  return {
    min: group.min,
    max: group.max,
    interval: group.interval,
    staleAfter: group.stale_after ?? group.interval * 3,
    shadow: group.shadow,
    drainTimeout: group.route?.drain_timeout ?? 30_000,
    keepDecisions,
    governor: {
      min: group.min,
      max: group.max,
      cooldown: group.cooldown,
      cooldownUp: group.scale_up.cooldown,
      cooldownDown: group.scale_down.cooldown,
      stabilizationUp: group.scale_up.stabilization ?? 0,
      stabilizationDown: group.scale_down.stabilization ?? 300_000,
      maxStepUp: group.scale_up.max_step,
      maxStepDown: group.scale_down.max_step,
    },
  }
}

/**
 * Relative paths in a target's config are relative to the config file's directory: a process
 * target's `cwd` (which defaults to it), an aws-asg target's `env_file`, a kubernetes target's
 * `kubeconfig` (a plugin target resolves its `module` itself).
 */
function resolveTarget(target: TargetConfig, dir: string): TargetConfig {
  const under = (path: string) => (isAbsolute(path) ? path : resolve(dir, path))
  if (target.kind === 'process') return { ...target, cwd: target.cwd === undefined ? dir : under(target.cwd) }
  if (target.kind === 'aws-asg' && target.env_file !== undefined)
    return { ...target, env_file: under(target.env_file) }
  if (target.kind === 'kubernetes' && target.kubeconfig !== undefined)
    return { ...target, kubeconfig: under(target.kubeconfig) }
  return target
}

export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  const loaded: LoadedConfig = await loadConfigFile(options.configPath)
  const { config, dir } = loaded
  const logger =
    options.logger ?? createLogger({ level: options.logLevel ?? config.log.level, format: config.log.format })
  const storePath = isAbsolute(config.store.path) ? config.store.path : resolve(dir, config.store.path)
  const store = Store.open(storePath)
  const dataDir = dirname(storePath)
  const routers: Router[] = []
  const runners: GroupRunner[] = []
  const targets: Array<{ close?: (o?: { stopInstances?: boolean }) => Promise<void> }> = []
  const dispatchers: Dispatcher[] = []
  /** Dispatchers a reload replaced, closing once their group's operation in flight is done. */
  const retiring: Array<Promise<void>> = []
  let receiver: ReceiverHandle | undefined
  const cleanup = async () => {
    await receiver?.close()
    await Promise.allSettled(retiring)
    await Promise.allSettled(dispatchers.map((d) => d.close()))
    await Promise.allSettled(routers.map((r) => r.close()))
    await Promise.allSettled(targets.map((t) => t.close?.({ stopInstances: true })))
    store.close()
  }

  /** What a reload may swap in each running group. */
  const live = new Map<
    string,
    { runner: GroupRunner; dispatcher: Dispatcher; policies: GroupParts['policies']; logger: Logger }
  >()
  const telemetry = new Telemetry(() => runners.map((r) => r.view()))
  const makePolicies = (group: GroupConfig): GroupParts['policies'] =>
    group.policies.map((p, i) => ({ name: policyName(p, i), decide: buildPolicy(p) }))
  const makeDispatcher = (name: string, group: GroupConfig, groupLogger: Logger): Dispatcher =>
    new Dispatcher(
      group.notify.map((n) => ({
        notifier: createNotifier(n, { logger: groupLogger, dir }),
        on: n.on,
        timeout: n.timeout,
      })),
      groupLogger,
      { delivered: (kind, result) => telemetry.notifications.inc({ group: name, notifier: kind, result }) },
    )
  const listener = (dispatcher: Dispatcher): GroupParts['events'] =>
    dispatcher.size > 0 ? (event) => dispatcher.emit(event) : undefined

  try {
    for (const [name, group] of Object.entries(config.groups)) {
      const groupLogger = logger.child({ group: name })
      let router: Router | undefined
      if (group.route) {
        router = createRouter(name, group.route, { logger: groupLogger })
        await router.start()
        routers.push(router)
      }
      // The target names its group in its own log lines.
      const target = createTarget(name, resolveTarget(group.target, dir), {
        logger,
        clock: systemClock,
        dataDir,
        configDir: dir,
      })
      targets.push(target)
      const sources = effectiveSources(group).map((s) =>
        createSource(s, { logger: groupLogger, router: () => router }),
      )
      const policies = makePolicies(group)
      const dispatcher = makeDispatcher(name, group, groupLogger)
      dispatchers.push(dispatcher)
      const runner = new GroupRunner({
        name,
        settings: groupSettings(group, config.store.decisions),
        target,
        sources,
        policies,
        router,
        store,
        clock: systemClock,
        logger,
        telemetry,
        events: listener(dispatcher),
      })
      runners.push(runner)
      live.set(name, { runner, dispatcher, policies, logger: groupLogger })
    }

    // ─── reload ──────────────────────────────────────────────────────────────
    let running: Config = config
    let closing: Promise<void> | undefined
    const reloadNow = async (): Promise<ReloadSummary> => {
      if (closing) throw new ReloadRefusedError([], 'Tide is stopping')
      // The same loading and validation as at start: a bad file throws ConfigError here, before
      // anything is touched.
      const next = (await loadConfigFile(options.configPath)).config
      const plan = planReload(running, next)
      if (plan.refused.length > 0) throw new ReloadRefusedError(plan.refused)
      // Build every new part first: if one cannot be built, nothing is swapped in.
      const swaps: Array<{ name: string; policies: GroupParts['policies']; dispatcher?: Dispatcher }> = []
      try {
        for (const [name, change] of plan.groups) {
          const group = next.groups[name]!
          const current = live.get(name)!
          swaps.push({
            name,
            policies: change.policies ? makePolicies(group) : current.policies,
            dispatcher: change.notify ? makeDispatcher(name, group, current.logger) : undefined,
          })
        }
      } catch (err) {
        await Promise.allSettled(swaps.map((s) => s.dispatcher?.close()))
        throw err
      }
      await Promise.all(
        swaps.map(async ({ name, policies, dispatcher }) => {
          const current = live.get(name)!
          const old = current.dispatcher
          const now = dispatcher ?? old
          await current.runner.reconfigure({
            settings: groupSettings(next.groups[name]!, next.store.decisions),
            policies,
            events: listener(now),
          })
          live.set(name, { ...current, policies, dispatcher: now })
          if (dispatcher) {
            dispatchers.splice(dispatchers.indexOf(old), 1, dispatcher)
            // The operation in flight still reports to the old notifiers: close them after it.
            retiring.push(current.runner.settled().then(() => old.close()))
          }
        }),
      )
      running = next
      return summarize(plan, resolve(options.configPath))
    }
    let reloads: Promise<unknown> = Promise.resolve()
    const reload = (via = 'api'): Promise<ReloadSummary> => {
      const run = reloads.then(reloadNow).then(
        (summary) => {
          logger.info({ via, groups: summary.groups }, `config reloaded: ${summary.message}`)
          return summary
        },
        (err: unknown) => {
          logger.warn(
            { via, code: (err as { code?: string }).code },
            `config reload failed: ${errorMessage(err)}`,
          )
          throw err
        },
      )
      reloads = run.catch(() => {})
      return run
    }

    const engine = new Engine(runners, telemetry, {
      reload: () => reload('api'),
      history: { store, keep: config.store.history },
    })
    await engine.start()
    // The receiver counts in the daemon's /metrics and keeps alert-group cooldowns in the store.
    receiver = config.receiver
      ? createReceiver(config.receiver, { logger, dir, registry: telemetry.registry, cooldowns: store })
      : undefined
    const api = createApiServer(engine, {
      listen: options.listen ?? config.api.listen,
      token: config.api.token ?? process.env.TIDE_TOKEN,
      logger,
      routes: receiver ? apiRoutes(receiver.receiver) : undefined,
    })
    const apiUrl = await api.start()
    const pruner = setInterval(() => store.pruneMetrics(Date.now() - config.store.history), 60_000)
    pruner.unref()
    const routes: Record<string, string> = {}
    runners.forEach((r) => {
      const view = r.view()
      if (view.route) routes[r.name] = view.route
    })
    logger.info({ api: apiUrl, routes, store: storePath }, 'tide is running')
    return {
      controller: engine,
      reload,
      receiver: receiver?.receiver,
      apiUrl,
      routes,
      logger,
      close() {
        closing ??= (async () => {
          clearInterval(pruner)
          await api.close()
          await engine.stop()
          await cleanup()
          logger.info('tide stopped')
        })()
        return closing
      },
    }
  } catch (err) {
    await Promise.allSettled(runners.map((r) => r.stop()))
    await cleanup()
    throw err
  }
}
