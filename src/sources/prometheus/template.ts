/**
 * The PromQL query template: `{{group}}`, `{{window}}`, `{{instances}}` and `{{addresses}}`
 * (spaces inside the braces allowed). Pure.
 */

export const PLACEHOLDERS = ['group', 'window', 'instances', 'addresses'] as const
export type Placeholder = (typeof PLACEHOLDERS)[number]

const PATTERN = /\{\{\s*([^{}]*?)\s*\}\}/g

/** Placeholders in `template` that are not known, for a config error. */
export function unknownPlaceholders(template: string): string[] {
  const out: string[] = []
  for (const m of template.matchAll(PATTERN)) {
    if (!(PLACEHOLDERS as readonly string[]).includes(m[1]!)) out.push(m[0])
  }
  return out
}

export interface TemplateValues {
  group: string
  /** Milliseconds. */
  window: number
  /** Ready instances' ids and addresses. */
  ids: string[]
  addresses: string[]
}

/**
 * The query for this evaluation. `{{group}}` is the group's name and `{{window}}` a PromQL
 * duration (`1m`, `90s`), both as they are; `{{instances}}`/`{{addresses}}` are an RE2
 * alternation (`a|b`, regex-escaped), escaped for use inside a double-quoted PromQL string:
 * `instance=~"{{addresses}}"`.
 */
export function renderQuery(template: string, values: TemplateValues): string {
  return template.replace(PATTERN, (whole, name: string) => {
    switch (name) {
      case 'group':
        return values.group
      case 'window':
        return promDuration(values.window)
      case 'instances':
        return alternation(values.ids)
      case 'addresses':
        return alternation(values.addresses)
      default:
        return whole
    }
  })
}

/** Milliseconds as a PromQL duration, in the largest unit that divides it: `1h`, `5m`, `90s`, `1500ms`. */
export function promDuration(ms: number): string {
  const units: Array<[string, number]> = [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ]
  for (const [unit, size] of units) if (ms >= size && ms % size === 0) return `${ms / size}${unit}`
  return `${Math.round(ms)}ms`
}

function alternation(values: string[]): string {
  const regex = values.map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')
  // Inside "…" in PromQL, a backslash and a double quote must be escaped themselves.
  return regex.replace(/\\/g, '\\\\').replace(/"/g, '\\"')
}
