/**
 * The policy registry: one alphabetical table, kind → { schema, build, metrics } (KEDA's scaler
 * table). A new kind (step, schedule, idle, alert, predictive) is one file plus one line here.
 */
import { z } from 'zod'
import type { Policy } from '../core/types.js'
import { buildIdle, idleMetrics, idleSchema } from './idle.js'
import { buildPredictive, predictiveMetrics, predictiveSchema } from './predictive.js'
import { buildTarget, targetMetrics, targetSchema } from './target.js'
import { buildThreshold, thresholdMetrics, thresholdSchema } from './threshold.js'

/** What a policy kind provides. `C` is its validated config. */
interface PolicyKind<C> {
  schema: z.ZodType<C>
  build(config: C): Policy
  /** Metric names the policy reads, so config validation can check a source provides them. */
  metrics(config: C): string[]
}

function kind<S extends z.ZodType>(
  schema: S,
  build: (config: z.output<S>) => Policy,
  metrics: (config: z.output<S>) => string[],
) {
  return { schema, build, metrics }
}

// Alphabetical. The key must equal the schema's `kind` literal.
const KINDS = {
  idle: kind(idleSchema, buildIdle, idleMetrics),
  predictive: kind(predictiveSchema, buildPredictive, predictiveMetrics),
  target: kind(targetSchema, buildTarget, targetMetrics),
  threshold: kind(thresholdSchema, buildThreshold, thresholdMetrics),
}

type Kinds = typeof KINDS
type Schemas = Kinds[keyof Kinds]['schema']

/** Any policy's config, validated: a union discriminated on `kind`. */
export const policySchema = z
  .discriminatedUnion('kind', Object.values(KINDS).map((k) => k.schema) as [Schemas, ...Schemas[]])
  .describe('A policy: how to turn metrics into a recommended size.')

export type PolicyConfig = z.output<typeof policySchema>
/** A policy's config as written (before defaults and parsing). */
export type PolicyConfigInput = z.input<typeof policySchema>
export type PolicyKindName = PolicyConfig['kind']

/** The policy kinds, alphabetical. */
export const policyKinds = Object.keys(KINDS) as PolicyKindName[]

function entry<C extends PolicyConfig>(config: C): PolicyKind<C> {
  // The table is keyed by the same literal the schema checked, so the lookup matches the config.
  return KINDS[config.kind] as unknown as PolicyKind<C>
}

/** Builds the pure policy function from a validated config. */
export function buildPolicy(config: PolicyConfig): Policy {
  return entry(config).build(config)
}

/** The policy's name in decisions: its `name`, or `<kind>[<index>]` (its place in the group's list). */
export function policyName(config: PolicyConfig, index: number): string {
  return config.name ?? `${config.kind}[${index}]`
}

/** Metric names the policy reads, without duplicates. */
export function policyMetrics(config: PolicyConfig): string[] {
  return [...new Set(entry(config).metrics(config))]
}
