/**
 * A real Docker Swarm for tests: Debian's `dockerd`, run as root with its own data, exec and
 * socket paths and no networking of its own (`--bridge=none --iptables=false`), so it touches
 * nothing else on the machine. Nothing can be pulled here, so the one image, `tide-busybox:test`,
 * is imported from a tarball holding Debian's static busybox (`sh`, `sleep`, `httpd`, …).
 *
 * One manager per test run, started lazily by the first test file that asks and shared by the
 * others (test files run in separate processes): a lock directory guards `state.json`, and each
 * process using the swarm leaves a file named by its pid under `users/`. The last one to
 * `release()` stops dockerd by its pid. A process that dies without releasing is noticed (its pid
 * is gone) by the next one. Workers (`startWorker`) are one more dockerd each, joined for one test
 * and removed again.
 *
 * A suite that adds nodes for an Auto Scaling group takes `acquireSwarmNodes()` instead: the node
 * lock, the swarm and a moto, given back together. `seedAlerts` reads the alerts the receiver's
 * events become, as Docker Scaler's (seeds.md §3.6).
 *
 * @example
 * const skip = requireSwarm()
 * describe('swarm', { skip }, () => {
 *   let swarm: Swarm
 *   before(async () => (swarm = await acquireSwarm()))
 *   after(() => swarm?.release())
 *   test('scales', async () => {
 *     const name = await swarm.createService({ replicas: 2 })
 *     await swarm.waitForTasks(name, 2)
 *   })
 * })
 */
import { spawn, spawnSync } from 'node:child_process'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  copyFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Docker from 'dockerode'
import { type ReceiverInput, receiverSchema } from '../../src/alertmanager/config.js'
import { Receiver } from '../../src/alertmanager/receiver.js'
import type { ScaleEvent } from '../../src/core/types.js'
import { silentLogger } from '../../src/engine/log.js'
import { ALERTMANAGER_EVENTS, eventAlert } from '../../src/notify/alertmanager.js'
import { AsgApi, Ec2Api } from '../../src/targets/aws-asg/index.js'
import type { SwarmApi } from '../../src/targets/docker-swarm/index.js'
import { type Moto, startMoto } from './moto.js'
import { freePort } from './prometheus.js'
import { findCommand, isRoot, requireComponent } from './requires.js'

export const TEST_IMAGE = 'tide-busybox:test'
const BUSYBOX = '/bin/busybox'
const BASE = join(tmpdir(), 'tide-test-swarm')
const LOCK = join(BASE, 'lock')
const STATE = join(BASE, 'state.json')
const USERS = join(BASE, 'users')
const NODES_LOCK = join(BASE, 'nodes-lock')

/** Skip message (or false) for suites that need the real Swarm; throws under CI=true when missing. */
export function requireSwarm(): string | false {
  if (!isRoot()) return requireComponent(false, 'a real Docker Swarm', 'dockerd needs root')
  if (!findCommand('dockerd'))
    return requireComponent(false, 'a real Docker Swarm', 'apt-get install docker.io')
  return requireComponent(existsSync(BUSYBOX), 'busybox for the test image', 'apt-get install busybox-static')
}

interface State {
  pid: number
  socket: string
  dir: string
  swarmPort: number
}

export interface Swarm {
  /** `unix:///…/docker.sock`, for DOCKER_HOST. */
  host: string
  socket: string
  docker: Docker
  /** The image every node has: busybox's `sleep`, `sh`, `httpd`. */
  image: string
  /** `127.0.0.1:<port>`: where workers join. */
  managerAddr: string
  /**
   * Creates a replicated service running `sleep` (or `command`), with labels; a unique name per call
   * unless given. Removed by `release()` if the test does not remove it.
   */
  createService(options: ServiceOptions): Promise<string>
  /** Running tasks of a service (desired state running, current state running). */
  runningTasks(name: string): Promise<Array<{ ID: string; NodeID?: string }>>
  /** Waits until exactly `count` tasks of the service run; throws after `ms` (default 60 s). */
  waitForTasks(name: string, count: number, ms?: number): Promise<void>
  release(): Promise<void>
}

export interface ServiceOptions {
  name?: string
  replicas?: number
  global?: boolean
  labels?: Record<string, string>
  command?: string[]
  /** Placement constraints (`node.id==…`, `node.hostname==…`). */
  constraints?: string[]
}

export interface WorkerOptions {
  /**
   * The node's hostname (`Description.Hostname`): dockerd runs in its own UTS namespace
   * (`unshare --uts`) with this name, as an EC2 instance's `ip-10-0-1-17.ec2.internal`.
   */
  hostname?: string
  /** Engine labels (dockerd `--label k=v`), as user-data would set them. */
  engineLabels?: Record<string, string>
  /** Join as a manager; `remove()` demotes it before it leaves, so the swarm keeps its quorum. */
  role?: 'worker' | 'manager'
}

export interface Worker {
  nodeId: string
  socket: string
  docker: Docker
  /** Leaves the swarm, stops the worker's dockerd and removes the node from the manager. */
  remove(): Promise<void>
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  // A zombie (exited, not yet reaped by whoever adopted it) still answers kill(0).
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return !/^\d+ \(.*\) Z/.test(stat)
  } catch {
    return true
  }
}

/** Takes a lock directory (taking over one left by a dead process); resolves to its release. */
async function takeLock(dir: string, waitMs: number): Promise<() => void> {
  mkdirSync(BASE, { recursive: true })
  const end = Date.now() + waitMs
  for (;;) {
    try {
      mkdirSync(dir)
      writeFileSync(join(dir, 'pid'), String(process.pid))
      break
    } catch {
      // A lock left by a process that died is taken over.
      let holder = 0
      try {
        holder = Number(readFileSync(join(dir, 'pid'), 'utf8'))
      } catch {}
      if (holder && !alive(holder)) rmSync(dir, { recursive: true, force: true })
      if (Date.now() > end) throw new Error(`could not take the lock ${dir} (held by pid ${holder})`)
      await sleep(200)
    }
  }
  return () => rmSync(dir, { recursive: true, force: true })
}

async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  const release = await takeLock(LOCK, 180_000)
  try {
    return await fn()
  } finally {
    release()
  }
}

/**
 * The swarm's set of nodes for this test file alone: test files that add nodes (`startWorker`) or
 * count them (the node waiter) take it in `before()` and give it back in `after()`, so one file's
 * workers never satisfy (or confuse) another file's count. Waits up to 15 minutes for another
 * file to finish; a holder that died is taken over.
 */
export async function lockNodes(): Promise<() => void> {
  const release = await takeLock(NODES_LOCK, 15 * 60_000)
  let released = false
  const once = () => {
    if (released) return
    released = true
    release()
  }
  process.once('exit', once)
  return once
}

interface Dockerd {
  pid: number
  socket: string
  docker: Docker
}

/** Starts a dockerd in `dir` (data, exec root, socket, pidfile, log), detached so it can outlive this process. */
async function startDockerd(dir: string, options: WorkerOptions = {}): Promise<Dockerd> {
  mkdirSync(join(dir, 'data'), { recursive: true })
  mkdirSync(join(dir, 'exec'), { recursive: true })
  const socket = join(dir, 'docker.sock')
  const log = openSync(join(dir, 'dockerd.log'), 'a')
  const args = [
    `--data-root=${join(dir, 'data')}`,
    `--exec-root=${join(dir, 'exec')}`,
    `--host=unix://${socket}`,
    `--pidfile=${join(dir, 'docker.pid')}`,
    '--bridge=none',
    '--iptables=false',
    '--ip6tables=false',
    ...Object.entries(options.engineLabels ?? {}).map(([k, v]) => `--label=${k}=${v}`),
    ...(process.env.TIDE_TEST_DOCKERD_ARGS?.split(' ').filter(Boolean) ?? []),
  ]
  // unshare execs sh, which execs dockerd: the pid stays dockerd's.
  const child = options.hostname
    ? spawn(
        'unshare',
        ['--uts', 'sh', '-c', 'hostname "$0" && exec dockerd "$@"', options.hostname, ...args],
        { detached: true, stdio: ['ignore', log, log] },
      )
    : spawn('dockerd', args, { detached: true, stdio: ['ignore', log, log] })
  child.unref()
  const pid = child.pid!
  const docker = new Docker({ socketPath: socket, timeout: 30_000 })
  const end = Date.now() + 60_000
  while (Date.now() < end) {
    if (!alive(pid)) break
    try {
      await docker.ping()
      return { pid, socket, docker }
    } catch {}
    await sleep(200)
  }
  const tail = readFileSync(join(dir, 'dockerd.log'), 'utf8').split('\n').slice(-20).join('\n')
  await stopPid(pid)
  throw new Error(`dockerd in ${dir} did not start:\n${tail}`)
}

/** SIGTERM, then SIGKILL after 30s; resolves when the process is gone. */
async function stopPid(pid: number): Promise<void> {
  if (!alive(pid)) return
  try {
    process.kill(pid, 'SIGTERM')
  } catch {}
  const end = Date.now() + 30_000
  while (alive(pid) && Date.now() < end) await sleep(200)
  if (alive(pid)) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {}
    while (alive(pid)) await sleep(100)
  }
}

/** The busybox image: a tarball of /bin/busybox and the applets tests use, imported. */
async function importImage(docker: Docker, dir: string): Promise<void> {
  const root = join(dir, 'image')
  mkdirSync(join(root, 'bin'), { recursive: true })
  if (!existsSync(join(root, 'bin', 'busybox'))) {
    copyFileSync(BUSYBOX, join(root, 'bin', 'busybox'))
    for (const applet of ['sh', 'sleep', 'httpd', 'echo', 'cat', 'env', 'wget', 'true'])
      symlinkSync('busybox', join(root, 'bin', applet))
  }
  const tar = join(dir, 'image.tar')
  const made = spawnSync('tar', ['-C', root, '-cf', tar, '.'], { encoding: 'utf8' })
  if (made.status !== 0) throw new Error(`tar failed: ${made.stderr}`)
  const [repo, tag] = TEST_IMAGE.split(':')
  const stream = await docker.importImage(tar, { repo, tag })
  await new Promise((resolve, reject) =>
    docker.modem.followProgress(stream, (err) => (err ? reject(err) : resolve(undefined))),
  )
}

async function healthy(state: State): Promise<boolean> {
  if (!alive(state.pid)) return false
  try {
    const docker = new Docker({ socketPath: state.socket, timeout: 5000 })
    const info = (await docker.info()) as { Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean } }
    return info.Swarm?.LocalNodeState === 'active' && info.Swarm.ControlAvailable === true
  } catch {
    return false
  }
}

function readState(): State | undefined {
  try {
    return JSON.parse(readFileSync(STATE, 'utf8')) as State
  } catch {
    return undefined
  }
}

function liveUsers(): number[] {
  mkdirSync(USERS, { recursive: true })
  const pids: number[] = []
  for (const name of readdirSync(USERS)) {
    const pid = Number(name)
    if (pid && alive(pid)) pids.push(pid)
    else rmSync(join(USERS, name), { force: true })
  }
  return pids
}

async function teardown(state: State | undefined): Promise<void> {
  if (state) {
    await stopPid(state.pid)
    rmSync(state.dir, { recursive: true, force: true })
  }
  rmSync(STATE, { force: true })
}

async function startManager(): Promise<State> {
  const dir = mkdtempSync(join(BASE, 'manager-'))
  const dockerd = await startDockerd(dir)
  try {
    const swarmPort = await freePort()
    await dockerd.docker.swarmInit({
      ListenAddr: `127.0.0.1:${swarmPort}`,
      AdvertiseAddr: `127.0.0.1:${swarmPort}`,
    })
    await importImage(dockerd.docker, dir)
    const state: State = { pid: dockerd.pid, socket: dockerd.socket, dir, swarmPort }
    writeFileSync(STATE, JSON.stringify(state))
    return state
  } catch (err) {
    await stopPid(dockerd.pid)
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
}

let exitHookInstalled = false

/** The run's shared swarm manager, started if no healthy one is running. */
export async function acquireSwarm(): Promise<Swarm> {
  const state = await withLock(async () => {
    let current = readState()
    if (!current || !(await healthy(current))) {
      await teardown(current)
      current = await startManager()
    }
    mkdirSync(USERS, { recursive: true })
    writeFileSync(join(USERS, String(process.pid)), '')
    return current
  })
  if (!exitHookInstalled) {
    exitHookInstalled = true
    // A test process that ends without release() (a failed before()) still gives its place up;
    // the next acquire or release stops a dockerd nobody uses.
    process.once('exit', () => rmSync(join(USERS, String(process.pid)), { force: true }))
  }
  const docker = new Docker({ socketPath: state.socket, timeout: 60_000 })
  const created: string[] = []
  let released = false
  const runningTasks = async (name: string) => {
    const tasks = (await docker.listTasks({
      filters: { service: [name], 'desired-state': ['running'] },
    })) as Array<{ ID: string; NodeID?: string; Status?: { State?: string } }>
    return tasks.filter((t) => t.Status?.State === 'running')
  }
  return {
    host: `unix://${state.socket}`,
    socket: state.socket,
    docker,
    image: TEST_IMAGE,
    managerAddr: `127.0.0.1:${state.swarmPort}`,
    async createService(options) {
      const name = options.name ?? `t${process.pid}-${Math.random().toString(36).slice(2, 8)}`
      await docker.createService({
        Name: name,
        Labels: options.labels ?? {},
        TaskTemplate: {
          // Busybox as pid 1 ignores SIGTERM; with an init it stops at once rather than after the grace period.
          ContainerSpec: {
            Image: TEST_IMAGE,
            Command: options.command ?? ['sleep', '100000'],
            Init: true,
            StopGracePeriod: 1_000_000_000,
          },
          RestartPolicy: { Condition: 'any', Delay: 100_000_000 },
          ...(options.constraints ? { Placement: { Constraints: options.constraints } } : {}),
        },
        Mode: options.global ? { Global: {} } : { Replicated: { Replicas: options.replicas ?? 1 } },
        UpdateConfig: { Parallelism: 0, Order: 'stop-first' },
      })
      created.push(name)
      return name
    },
    runningTasks,
    async waitForTasks(name, count, ms = 60_000) {
      await eventually(
        `${count} running task${count === 1 ? '' : 's'} of ${name}`,
        ms,
        async () => (await runningTasks(name)).length === count,
      )
    },
    async release() {
      if (released) return
      released = true
      for (const name of created)
        await docker
          .getService(name)
          .remove()
          .catch(() => undefined)
      await withLock(async () => {
        rmSync(join(USERS, String(process.pid)), { force: true })
        if (liveUsers().length === 0) await teardown(readState())
      })
    },
  }
}

/** One more dockerd joined to `swarm` as a worker (or manager), with the test image; `remove()` undoes it. */
export async function startWorker(swarm: Swarm, options: WorkerOptions = {}): Promise<Worker> {
  mkdirSync(BASE, { recursive: true })
  const dir = mkdtempSync(join(BASE, 'worker-'))
  const dockerd = await startDockerd(dir, options)
  let nodeId = ''
  const remove = async () => {
    // A manager leaves as a worker: two managers need both for a quorum, and the shared
    // manager must never be left without one.
    if (nodeId && options.role === 'manager') await demote(swarm, nodeId).catch(() => undefined)
    await dockerd.docker.swarmLeave({ force: true }).catch(() => undefined)
    await stopPid(dockerd.pid)
    rmSync(dir, { recursive: true, force: true })
    if (nodeId)
      await swarm.docker
        .getNode(nodeId)
        .remove({ force: true })
        .catch(() => undefined)
  }
  try {
    await importImage(dockerd.docker, dir)
    const info = (await swarm.docker.swarmInspect()) as { JoinTokens: { Worker: string; Manager: string } }
    const port = await freePort()
    await dockerd.docker.swarmJoin({
      ListenAddr: `127.0.0.1:${port}`,
      AdvertiseAddr: `127.0.0.1:${port}`,
      RemoteAddrs: [swarm.managerAddr],
      JoinToken: options.role === 'manager' ? info.JoinTokens.Manager : info.JoinTokens.Worker,
    })
    const own = (await dockerd.docker.info()) as { Swarm: { NodeID: string } }
    nodeId = own.Swarm.NodeID
  } catch (err) {
    await remove()
    throw err
  }
  return { nodeId, socket: dockerd.socket, docker: dockerd.docker, remove }
}

/** Makes a manager node a worker (through the shared manager) and waits until it is one. */
async function demote(swarm: Swarm, nodeId: string): Promise<void> {
  const node = (await swarm.docker.getNode(nodeId).inspect()) as {
    Version: { Index: number }
    Spec: Record<string, unknown> & { Role?: string }
    ManagerStatus?: unknown
  }
  if (node.Spec.Role === 'manager') {
    await swarm.docker.getNode(nodeId).update({
      _query: { version: node.Version.Index },
      _body: { ...node.Spec, Role: 'worker' },
    })
  }
  await eventually(`node ${nodeId} demoted`, 60_000, async () => {
    const now = (await swarm.docker.getNode(nodeId).inspect()) as { ManagerStatus?: unknown }
    return !now.ManagerStatus
  })
}

/** Polls until `check` is true, or throws after `ms` naming `what`. */
export async function eventually(
  what: string,
  ms: number,
  check: () => boolean | Promise<boolean>,
  every = 250,
): Promise<void> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await check()) return
    await sleep(every)
  }
  throw new Error(`timed out after ${ms}ms waiting for ${what}`)
}

/**
 * What a suite that adds Swarm nodes for an Auto Scaling group holds: the node lock (`lockNodes`,
 * taken first, so no other file's workers join its count), the shared swarm, and a moto playing
 * AWS. `close()` removes the workers it added, stops moto, releases the swarm and gives the lock
 * back last; a start that fails half-way gives back what it took.
 */
export interface SwarmNodes {
  swarm: Swarm
  moto: Moto
  /** `startWorker` on this swarm; the worker is removed by `close()` if the test does not. */
  addWorker(options?: WorkerOptions): Promise<Worker>
  close(): Promise<void>
}

export async function acquireSwarmNodes(): Promise<SwarmNodes> {
  const unlockNodes = await lockNodes()
  let swarm: Swarm | undefined
  let moto: Moto | undefined
  const workers: Worker[] = []
  const close = async () => {
    try {
      for (const w of workers) await w.remove().catch(() => undefined)
      await moto?.close()
    } finally {
      try {
        await swarm?.release()
      } finally {
        unlockNodes()
      }
    }
  }
  try {
    swarm = await acquireSwarm()
    moto = await startMoto()
  } catch (err) {
    await close()
    throw err
  }
  const on = swarm
  return {
    swarm,
    moto,
    async addWorker(options) {
      const worker = await startWorker(on, options)
      workers.push(worker)
      return worker
    },
    close,
  }
}

/**
 * The alerts the alertmanager notifier (on by default) sends for `events`, as seeds.md §3.6 lists
 * Docker Scaler's: [alertname, service, status, request, summary].
 */
export function seedAlerts(events: ScaleEvent[]): string[][] {
  return events
    .filter((e) => (ALERTMANAGER_EVENTS as readonly string[]).includes(e.kind))
    .map((e) => eventAlert(e))
    .map((a) => [
      a.labels.alertname!,
      a.labels.service!,
      a.labels.status!,
      a.annotations.request!,
      a.annotations.summary!,
    ])
}

/**
 * A receiver scaling nodes through moto's Auto Scaling groups (and finding nodes through its EC2
 * with `ec2: true`), talking to the swarm through `api`, and the events it sends. `input` is the
 * receiver's config; `host` and `nodes.region` and `nodes.endpoint` default to the swarm's and
 * moto's. `close()` closes the receiver and its AWS clients.
 */
export function nodeReceiver(
  lab: SwarmNodes,
  api: SwarmApi,
  input: ReceiverInput,
  options: { ec2?: boolean } = {},
): { receiver: Receiver; events: ScaleEvent[]; close(): Promise<void> } {
  const { moto } = lab
  const config = receiverSchema.parse({
    host: lab.swarm.host,
    ...input,
    nodes: { region: moto.region, endpoint: moto.endpoint, ...input.nodes },
  })
  const connection = { region: moto.region, endpoint: moto.endpoint, envFile: moto.envFile() }
  const asg = new AsgApi(connection)
  const ec2 = options.ec2 ? new Ec2Api(connection) : undefined
  const events: ScaleEvent[] = []
  const receiver = new Receiver(config, {
    logger: silentLogger(),
    swarm: api,
    asg,
    ...(ec2 ? { ec2 } : {}),
    events: (e) => events.push(e),
  })
  return {
    receiver,
    events,
    async close() {
      await receiver.close()
      asg.close()
      ec2?.close()
    },
  }
}
