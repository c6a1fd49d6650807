/**
 * The names of the environment variables that configs loaded in this process refer to with
 * `${NAME}`: what Tide was given as configuration, often secrets (API tokens, webhook URLs).
 * The process target withholds them from the instances it starts (src/targets/process/env.ts).
 *
 * Process-wide and only ever growing: a name read once stays listed, so a reloaded config never
 * hands out what an earlier one treated as input. Imports nothing, so any module can read it.
 */
const names = new Set<string>()

/** Called by the loader for every `${NAME}` (with or without a default) it replaces. */
export function noteInterpolated(name: string): void {
  names.add(name)
}

/** Every name noted so far. */
export function interpolatedNames(): ReadonlySet<string> {
  return names
}
