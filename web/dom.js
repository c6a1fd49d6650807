// @ts-check

/**
 * DOM and text helpers. Every piece of API data reaches the page as text (textContent, text
 * nodes, attribute values), never as markup: the dashboard never parses HTML it did not write.
 */

/**
 * An HTML element with a class, text, attributes and children (strings become text nodes).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {{ class?: string, text?: string, attrs?: Record<string, string> }} [options]
 * @param {(Node | string)[]} [children]
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, options = {}, children = []) {
  const node = document.createElement(tag)
  if (options.class) node.className = options.class
  if (options.text !== undefined) node.textContent = options.text
  for (const [name, value] of Object.entries(options.attrs ?? {})) node.setAttribute(name, value)
  node.append(...children)
  return node
}

const SVG_NS = 'http://www.w3.org/2000/svg'

/**
 * An SVG element with attributes (numbers are written as they are).
 * @param {string} tag
 * @param {Record<string, string | number>} [attrs]
 * @returns {SVGElement}
 */
export function s(tag, attrs = {}) {
  const node = /** @type {SVGElement} */ (document.createElementNS(SVG_NS, tag))
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value))
  return node
}

/**
 * Sets an element's text only when it changed (keeps selection and screen readers calm).
 * @param {Element} node
 * @param {string} text
 */
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text
}

/**
 * A number for people: few digits, no trailing zeros; `–` when there is none.
 * @param {number | undefined | null} value
 */
export function num(value) {
  if (value === undefined || value === null || !Number.isFinite(value)) return '–'
  const abs = Math.abs(value)
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US')
  if (abs >= 100) return value.toFixed(0)
  if (abs >= 10) return trim(value.toFixed(1))
  if (abs === 0) return '0'
  return trim(value.toFixed(2))
}

/** @param {string} text */
function trim(text) {
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text
}

/**
 * Local wall-clock time, HH:MM:SS.
 * @param {number} ms epoch milliseconds
 */
export function clock(ms) {
  const d = new Date(ms)
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':')
}

/**
 * A duration for people: `850ms`, `4.2s`, `3m 05s`.
 * @param {number} ms
 */
export function span(ms) {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`
  if (ms < 60_000) return `${trim((ms / 1000).toFixed(1))}s`
  const m = Math.floor(ms / 60_000)
  const sec = Math.floor((ms % 60_000) / 1000)
  return `${m}m ${String(sec).padStart(2, '0')}s`
}

/**
 * How the dashboard names the metrics it knows; others are shown by their own name.
 * Units only where the metric's name fixes them (the router's; the process source's memory).
 * @type {Record<string, { label: string, unit?: string, order: number }>}
 */
export const METRICS = {
  request_rate: { label: 'requests/s', order: 0 },
  concurrency: { label: 'in flight', order: 1 },
  latency_p99: { label: 'p99 latency', unit: 'ms', order: 2 },
  latency_p90: { label: 'p90 latency', unit: 'ms', order: 3 },
  latency_p50: { label: 'p50 latency', unit: 'ms', order: 4 },
  cpu: { label: 'cpu', order: 5 },
  memory: { label: 'memory', unit: 'MB', order: 6 },
}

/**
 * The metric's label and its value with the unit.
 * @param {string} name
 * @param {number | undefined} value
 */
export function metricText(name, value) {
  const info = METRICS[name]
  const unit = info?.unit && value !== undefined ? ` ${info.unit}` : ''
  return { label: info?.label ?? name.replaceAll('_', ' '), value: `${num(value)}${unit}` }
}
