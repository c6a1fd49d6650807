/**
 * Tide's one exception type. Every failure a user can see has a stable `code`
 * (documented in docs/errors.md, checked by a test) and an HTTP status the API uses.
 */
export class TideError extends Error {
  readonly code: string
  readonly status: number
  readonly details?: unknown

  constructor(
    code: string,
    message: string,
    options: { status?: number; cause?: unknown; details?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'TideError'
    this.code = code
    this.status = options.status ?? 500
    this.details = options.details
  }

  toJSON(): { code: string; message: string; details?: unknown } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details }
  }
}

/** One problem in a config file: where it is, what is wrong, and the value that was there. */
export interface ConfigProblem {
  path: string
  message: string
  value?: unknown
}

/** A config (file, environment or request body) with one or more problems, all listed at once. */
export class ConfigError extends TideError {
  readonly problems: ConfigProblem[]
  constructor(problems: ConfigProblem[], source = 'config') {
    const lines = problems.map((p) => `  ${p.path || '(root)'}: ${p.message}${valueNote(p)}`)
    super(
      'E_CONFIG',
      `${source} has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${lines.join('\n')}`,
      {
        status: 400,
        details: problems,
      },
    )
    this.problems = problems
  }
}

/** A request to the API or CLI that names a bad parameter or value. */
export class BadRequestError extends TideError {
  constructor(message: string, details?: unknown) {
    super('E_BAD_REQUEST', message, { status: 400, details })
  }
}

export class NotFoundError extends TideError {
  constructor(what: string, name: string) {
    super('E_NOT_FOUND', `${what} '${name}' does not exist`, { status: 404 })
  }
}

/** A target could not do what was asked (spawn failed, API refused, timed out). */
export class TargetError extends TideError {
  constructor(message: string, options: { cause?: unknown; code?: string } = {}) {
    super(options.code ?? 'E_TARGET', message, { status: 502, cause: options.cause })
  }
}

/**
 * A target says "nothing happened" (Nomad's special error): the group was already at the
 * requested size, so no cooldown is started and no change is recorded.
 */
export class NoChangeError extends TideError {
  constructor(message: string) {
    super('E_NO_CHANGE', message, { status: 409 })
  }
}

/** ` (got …)`, unless the message already quotes the value. */
export function valueNote(problem: ConfigProblem): string {
  if (problem.value === undefined) return ''
  const note = showValue(problem.value)
  const quoted = typeof problem.value === 'string' ? JSON.stringify(problem.value) : String(problem.value)
  return problem.message.includes(quoted) ? '' : note
}

export function showValue(value: unknown): string {
  if (value === undefined) return ''
  let text: string
  try {
    text = typeof value === 'string' ? JSON.stringify(value) : (JSON.stringify(value) ?? String(value))
  } catch {
    text = String(value)
  }
  if (text.length > 80) text = `${text.slice(0, 77)}...`
  return ` (got ${text})`
}

/** The message of anything thrown, for logs and decision reasons. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}
