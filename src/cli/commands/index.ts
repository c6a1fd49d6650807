/**
 * Commands beyond the daemon client, one file each under src/cli/commands/ (simulate, the
 * drop-in modes, import), registered here in alphabetical order. Each adds its command to the
 * program and reports its exit code through `done` (0 ok, 1 failure, 2 bad input).
 */
import type { Command } from 'commander'
import type { Context } from '../context.js'
import { registerDockerScaler } from './docker-scaler.js'
import { registerDropletAutoscale } from './droplet-autoscale.js'
import { registerImport } from './import.js'
import { registerReload } from './reload.js'
import { registerSimulate } from './simulate.js'

export type RegisterCommand = (program: Command, ctx: Context, done: (code: number) => void) => void

export const EXTRA_COMMANDS: RegisterCommand[] = [
  registerDockerScaler,
  registerDropletAutoscale,
  registerImport,
  registerReload,
  registerSimulate,
]
