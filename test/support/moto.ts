/**
 * moto_server (moto 5, a stateful AWS fake) for tests: started on a free loopback port per test
 * file, stopped by its PID (and killed if the test process exits first), with helpers that
 * create a launch configuration and an Auto Scaling group through the real AWS SDK.
 *
 * moto differs from AWS in two ways tests must know: instances are InService the moment they
 * are launched, and SetDesiredCapacity outside MinSize/MaxSize is accepted (AWS answers
 * ValidationError), so bound checks must be Tide's own.
 *
 * @example
 * const skip = requireMoto()
 * describe('aws-asg', { skip }, () => {
 *   let moto: Moto
 *   before(async () => { moto = await startMoto() })
 *   after(() => moto?.close())
 * })
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  AutoScalingClient,
  CreateAutoScalingGroupCommand,
  CreateLaunchConfigurationCommand,
  DescribeAutoScalingGroupsCommand,
  type AutoScalingGroup,
} from '@aws-sdk/client-auto-scaling'
import { requireCommand } from './requires.js'

export const MOTO_REGION = 'us-east-1'
/** moto accepts any credentials; these are what the helpers and env files use. */
export const MOTO_CREDENTIALS = { accessKeyId: 'AKIDTIDETEST', secretAccessKey: 'tide-test-secret' }

/** `false` when moto_server is on PATH, else a skip message (an error under CI=true). */
export function requireMoto(): string | false {
  return requireCommand('moto_server', 'moto_server (AWS fake)', 'pip install "moto[server]==5.2.1"')
}

export interface GroupSpec {
  min: number
  max: number
  desired: number
  /** Instances launched from now on are protected from scale-in. */
  protect?: boolean
}

export interface Moto {
  /** `http://127.0.0.1:<port>` */
  endpoint: string
  region: string
  pid: number
  /** An SDK client for the test's own checks (not the one under test). */
  client: AutoScalingClient
  /** Creates a launch configuration (once) and the group. */
  createGroup(name: string, spec: GroupSpec): Promise<AutoScalingGroup>
  describe(name: string): Promise<AutoScalingGroup>
  /** Writes a seed-003-style credentials file (`export K=V`) and returns its path. */
  envFile(extra?: Record<string, string>): string
  /** Wipes every resource (moto's reset API), for a clean slate between tests. */
  reset(): Promise<void>
  close(): Promise<void>
}

/** Starts moto_server on 127.0.0.1 with port 0 and waits for its "Running on" line. */
export async function startMoto(): Promise<Moto> {
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const killOnExit = () => child.kill('SIGKILL')
  process.once('exit', killOnExit)
  let port: number
  try {
    port = await waitForPort(child, 30_000)
  } catch (err) {
    child.kill('SIGKILL')
    process.off('exit', killOnExit)
    throw err
  }
  const endpoint = `http://127.0.0.1:${port}`
  const client = new AutoScalingClient({ endpoint, region: MOTO_REGION, credentials: MOTO_CREDENTIALS })
  const dir = mkdtempSync(join(tmpdir(), 'tide-moto-'))
  async function describe(name: string): Promise<AutoScalingGroup> {
    const out = await client.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] }))
    const group = out.AutoScalingGroups?.find((g) => g.AutoScalingGroupName === name)
    if (!group) throw new Error(`moto has no Auto Scaling group ${name}`)
    return group
  }
  let launchConfig = false
  let files = 0

  return {
    endpoint,
    region: MOTO_REGION,
    pid: child.pid!,
    client,
    async createGroup(name, spec) {
      if (!launchConfig) {
        await client.send(
          new CreateLaunchConfigurationCommand({
            LaunchConfigurationName: 'tide-test',
            ImageId: 'ami-12c6146b',
            InstanceType: 't2.micro',
          }),
        )
        launchConfig = true
      }
      await client.send(
        new CreateAutoScalingGroupCommand({
          AutoScalingGroupName: name,
          LaunchConfigurationName: 'tide-test',
          MinSize: spec.min,
          MaxSize: spec.max,
          DesiredCapacity: spec.desired,
          AvailabilityZones: [`${MOTO_REGION}a`],
          NewInstancesProtectedFromScaleIn: spec.protect ?? false,
        }),
      )
      return describe(name)
    },
    describe,
    envFile(extra = {}) {
      const path = join(dir, `aws-${++files}.env`)
      const lines = Object.entries({
        AWS_ACCESS_KEY_ID: MOTO_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: MOTO_CREDENTIALS.secretAccessKey,
        ...extra,
      }).map(([k, v]) => `export ${k}=${v}`)
      writeFileSync(path, `# written by test/support/moto.ts\n${lines.join('\n')}\n`)
      return path
    },
    async reset() {
      const res = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' })
      if (!res.ok) throw new Error(`moto reset answered ${res.status}`)
      launchConfig = false
    },
    async close() {
      client.destroy()
      process.off('exit', killOnExit)
      rmSync(dir, { recursive: true, force: true })
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    },
  }
}

function waitForPort(child: ChildProcess, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let output = ''
    let done = false
    const timer = setTimeout(
      () => reject(new Error(`moto_server did not start within ${timeoutMs}ms; output:\n${output}`)),
      timeoutMs,
    )
    // Stays attached after start-up, so the server's request log keeps draining (a full pipe
    // would block it), but stops collecting.
    const onData = (chunk: Buffer) => {
      if (done) return
      output += chunk.toString()
      const m = /Running on http:\/\/127\.0\.0\.1:(\d+)/.exec(output)
      if (m) {
        done = true
        clearTimeout(timer)
        resolve(Number(m[1]))
      }
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    child.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    child.once('exit', (code) => {
      if (done) return
      clearTimeout(timer)
      reject(new Error(`moto_server exited with code ${code} before it was ready; output:\n${output}`))
    })
  })
}
