// @ts-check

/**
 * Tide's dashboard (docs/dashboard.md). Polls `GET v1/groups` about once a second (not while
 * the tab is hidden), keeps each group's recent history in the page (seeded from
 * `GET v1/groups/:name/history` when the group first appears), and draws one card per
 * group: bounds and counts, instance tiles by state, router numbers, a chart of the last five
 * minutes, the last decisions with their reasons, and Up / Down / Auto buttons.
 *
 * Cards are built once and updated in place, so buttons keep focus and tiles animate only when
 * an instance appears or changes state.
 */
import { ApiError, getHistory, getJson, postJson, saveToken, savedToken } from './api.js'
import { History, SPAN_MS, drawInstances, drawSpark } from './chart.js'
import { METRICS, clock, h, metricText, num, s, setText, span } from './dom.js'

const POLL_MS = 1000
/** Decisions are re-read when the last decision changes, and at least this often. */
const DECISIONS_MS = 5000
const DECISIONS_SHOWN = 8
/** Points per series asked of the history route: every evaluation of 5 minutes at a 500ms interval. */
const HISTORY_POINTS = 600
/** Empty slots are drawn up to `max` only for groups this small; larger ones list instances. */
const MAX_SLOTS = 40

/**
 * @typedef {{ id: string, state: string, address?: string, createdAt: number, readyAt?: number,
 *   pid?: number, detail?: string, protected?: boolean }} Instance
 * @typedef {{ value?: number, perInstance: Record<string, number>, missing: string[], at: number }} MetricView
 * @typedef {{ id: number, group: string, at: number, trigger: string, outcome: string, kind: string,
 *   from: number, to: number, reason: string, steps?: string[], forced?: boolean, error?: string,
 *   durationMs?: number }} DecisionRecord
 * @typedef {{ name: string, min: number, max: number, desired: number, ready: number,
 *   instances: Instance[], metrics: Record<string, MetricView>, lastDecision?: DecisionRecord,
 *   cooldownUntil?: number, operation?: { id: number, from: number, to: number, startedAt: number, reason: string },
 *   target: string, route?: string, shadow: boolean, message?: string, cooldown?: number }} GroupView
 */

/** @param {string} id */
function byId(id) {
  const node = document.getElementById(id)
  if (!node) throw new Error(`the page has no #${id}`)
  return node
}

const groupsEl = byId('groups')
const emptyEl = byId('empty')
const connEl = byId('conn')
const forgetEl = /** @type {HTMLButtonElement} */ (byId('forget-token'))

// ─── Token prompt ─────────────────────────────────────────────────────────────

const dialog = /** @type {HTMLDialogElement} */ (byId('token-dialog'))
const tokenForm = /** @type {HTMLFormElement} */ (byId('token-form'))
const tokenInput = /** @type {HTMLInputElement} */ (byId('token-input'))
const tokenHint = byId('token-hint')
const defaultHint = tokenHint.textContent ?? ''
/** @type {Promise<string | undefined> | undefined} */
let asking

/**
 * Asks for the API token in a dialog; one dialog at a time, whoever asks meanwhile shares it.
 * @param {string} [hint]
 * @returns {Promise<string | undefined>}
 */
function askToken(hint) {
  if (asking) return asking
  asking = new Promise((resolve) => {
    tokenHint.textContent = hint ?? defaultHint
    tokenInput.value = ''
    /** @param {string | undefined} value */
    const finish = (value) => {
      tokenForm.removeEventListener('submit', onSubmit)
      dialog.removeEventListener('close', onClose)
      if (dialog.open) dialog.close()
      asking = undefined
      showTokenState()
      resolve(value)
    }
    /** @param {SubmitEvent} event */
    const onSubmit = (event) => {
      event.preventDefault()
      finish(tokenInput.value.trim() || undefined)
    }
    const onClose = () => finish(undefined)
    tokenForm.addEventListener('submit', onSubmit)
    dialog.addEventListener('close', onClose)
    dialog.showModal()
    tokenInput.focus()
  })
  return asking
}
byId('token-cancel').addEventListener('click', () => dialog.close())

function showTokenState() {
  forgetEl.hidden = savedToken() === undefined
}
forgetEl.addEventListener('click', () => {
  saveToken(undefined)
  showTokenState()
})
showTokenState()

// ─── One card per group ───────────────────────────────────────────────────────

/** @param {string} name */
const groupPath = (name) => `v1/groups/${encodeURIComponent(name)}`

class Card {
  /** @param {string} name */
  constructor(name) {
    this.name = name
    this.history = new History()
    /** @type {Map<string, HTMLElement>} */
    this.tiles = new Map()
    this.decisionsKey = ''
    this.decisionsAt = 0
    this.busy = false
    /** @type {GroupView | undefined} */
    this.view = undefined
    /** @type {Map<string, { root: HTMLElement, value: HTMLElement, svg: SVGSVGElement }>} */
    this.sparks = new Map()

    /** @param {string} key @param {string} label */
    const stat = (key, label) => {
      const value = h('span', { class: 'value', text: '–' })
      return {
        value,
        node: h('div', { class: `stat stat-${key}`, attrs: { 'data-stat': key } }, [
          value,
          h('span', { class: 'label', text: label }),
        ]),
      }
    }
    this.stats = {
      min: stat('min', 'min'),
      desired: stat('desired', 'desired'),
      ready: stat('ready', 'ready'),
      max: stat('max', 'max'),
    }
    this.kindEl = h('span', { class: 'badge kind' })
    this.modeEl = h('span', { class: 'badge mode' })
    this.coolEl = h('span', { class: 'badge cool' })
    this.opEl = h('span', { class: 'badge op' })
    this.buttons = {
      down: h('button', { class: 'btn', text: '− Down', attrs: { type: 'button', 'data-action': 'down' } }),
      up: h('button', { class: 'btn primary', text: '+ Up', attrs: { type: 'button', 'data-action': 'up' } }),
      auto: h('button', { class: 'btn', text: 'Auto', attrs: { type: 'button', 'data-action': 'auto' } }),
    }
    this.buttons.down.title = 'POST /scale {"by": -1}: one instance fewer (bounds and cooldown apply)'
    this.buttons.up.title = 'POST /scale {"by": 1}: one instance more (bounds and cooldown apply)'
    this.buttons.auto.title = 'POST /auto: evaluate the policies now, as the loop does'
    this.buttons.down.addEventListener('click', () => this.act('down'))
    this.buttons.up.addEventListener('click', () => this.act('up'))
    this.buttons.auto.addEventListener('click', () => this.act('auto'))

    this.messageEl = h('p', { class: 'message' })
    this.errorText = h('span')
    this.errorCode = h('strong', { class: 'code' })
    const dismiss = h('button', { class: 'link', text: 'dismiss', attrs: { type: 'button' } })
    dismiss.addEventListener('click', () => this.showError(undefined))
    this.errorEl = h('p', { class: 'error', attrs: { role: 'alert' } }, [
      this.errorCode,
      this.errorText,
      dismiss,
    ])
    this.noteEl = h('p', { class: 'note', attrs: { 'aria-live': 'polite' } })
    this.tilesEl = h('div', { class: 'tiles', attrs: { 'aria-label': 'instances' } })
    this.moreEl = h('span', { class: 'more' })
    this.routerEl = h('div', { class: 'router' })
    this.chartSvg = /** @type {SVGSVGElement} */ (s('svg', { class: 'chart', role: 'img' }))
    this.chartSvg.setAttribute('aria-label', `instances of ${name} over the last 5 minutes`)
    this.chartBox = h('div', { class: 'chart-box' }, [this.chartSvg])
    this.sparksEl = h('div', { class: 'sparks' })
    this.decisionsEl = h('ol', { class: 'decisions' })
    this.decisionsNote = h('p', { class: 'muted small' })

    const legend = h('div', { class: 'legend' }, [
      h('span', { class: 'key key-desired', text: 'desired' }),
      h('span', { class: 'key key-ready', text: 'ready' }),
      h('span', { class: 'key key-bound', text: 'min / max' }),
    ])
    this.root = h(
      'section',
      { class: 'group', attrs: { 'data-group': name, 'aria-label': `group ${name}` } },
      [
        h('header', { class: 'group-head' }, [
          h('h2', { text: name }),
          h('div', { class: 'badges' }, [this.kindEl, this.modeEl, this.coolEl, this.opEl]),
          h('div', { class: 'actions' }, [this.buttons.down, this.buttons.up, this.buttons.auto]),
        ]),
        this.messageEl,
        this.errorEl,
        this.noteEl,
        h('div', { class: 'group-body' }, [
          h('div', { class: 'group-main' }, [
            h(
              'div',
              { class: 'stats' },
              Object.values(this.stats).map((x) => x.node),
            ),
            h('div', { class: 'tiles-row' }, [this.tilesEl, this.moreEl]),
            this.routerEl,
            h('figure', { class: 'chart-fig' }, [this.chartBox, legend]),
            this.sparksEl,
          ]),
          h('aside', { class: 'group-side' }, [
            h('h3', { text: 'Decisions' }),
            this.decisionsEl,
            this.decisionsNote,
          ]),
        ]),
      ],
    )
    this.showError(undefined)
    this.messageEl.hidden = true
    this.noteEl.hidden = true
  }

  /**
   * @param {GroupView} group
   * @param {number} now
   */
  update(group, now) {
    this.view = group
    /** @type {Record<string, number | undefined>} */
    const metrics = {}
    for (const [name, m] of Object.entries(group.metrics)) metrics[name] = m.value
    this.history.add({ t: now, desired: group.desired, ready: group.ready, metrics })

    setText(this.stats.min.value, String(group.min))
    setText(this.stats.desired.value, String(group.desired))
    setText(this.stats.ready.value, String(group.ready))
    setText(this.stats.max.value, String(group.max))
    this.stats.ready.node.classList.toggle('short', group.ready < group.desired)

    setText(this.kindEl, group.target)
    setText(this.modeEl, group.shadow ? 'shadow: decides, never acts' : 'auto')
    this.modeEl.classList.toggle('shadow', group.shadow)
    const coolLeft = group.cooldownUntil ? group.cooldownUntil - Date.now() : 0
    this.coolEl.hidden = !(coolLeft > 0)
    if (coolLeft > 0) setText(this.coolEl, `cooling down ${span(coolLeft)}`)
    this.opEl.hidden = !group.operation
    if (group.operation) {
      const op = group.operation
      setText(this.opEl, `scaling ${op.from} → ${op.to} · ${span(Math.max(0, Date.now() - op.startedAt))}`)
    }
    this.messageEl.hidden = !group.message
    setText(this.messageEl, group.message ?? '')

    // One operation per group at a time (E_BUSY): Up and Down wait for the one in flight.
    const scaling = group.operation !== undefined
    this.buttons.up.disabled = this.busy || scaling || group.desired >= group.max
    this.buttons.down.disabled = this.busy || scaling || group.desired <= group.min
    this.buttons.auto.disabled = this.busy

    this.updateTiles(group)
    this.updateRouter(group)
    this.draw(now)
  }

  /** @param {GroupView} group */
  updateTiles(group) {
    const seen = new Set()
    /** @type {HTMLElement[]} */
    const order = []
    for (const instance of group.instances) {
      seen.add(instance.id)
      let tile = this.tiles.get(instance.id)
      if (!tile) {
        tile = h('div', { class: 'tile', attrs: { 'data-instance': instance.id } }, [
          h('span', { class: 'tile-id', text: instance.id }),
          h('span', { class: 'tile-state' }),
        ])
        this.tiles.set(instance.id, tile)
      }
      if (tile.dataset.state !== instance.state) tile.dataset.state = instance.state
      setText(/** @type {Element} */ (tile.lastElementChild), instance.state)
      const title = [
        `${instance.id}: ${instance.state}`,
        instance.detail,
        instance.address ? `address ${instance.address}` : undefined,
        instance.pid ? `pid ${instance.pid}` : undefined,
        instance.protected ? 'protected: never removed' : undefined,
      ]
      tile.title = title.filter(Boolean).join('\n')
      order.push(tile)
    }
    for (const [id, tile] of this.tiles) {
      if (!seen.has(id)) {
        tile.remove()
        this.tiles.delete(id)
      }
    }
    const slots = group.max <= MAX_SLOTS ? Math.max(0, group.max - group.instances.length) : 0
    /** @type {Element[]} */
    const empty = [...this.tilesEl.querySelectorAll('.slot')]
    while (empty.length > slots) empty.pop()?.remove()
    while (empty.length < slots) empty.push(h('div', { class: 'slot', attrs: { 'aria-hidden': 'true' } }))
    // Move nodes only where the order differs, so unchanged tiles keep their animations.
    const wanted = [...order, ...empty]
    wanted.forEach((node, i) => {
      if (this.tilesEl.children[i] !== node) this.tilesEl.insertBefore(node, this.tilesEl.children[i] ?? null)
    })
    const free = group.max - group.instances.length
    setText(this.moreEl, group.max > MAX_SLOTS && free > 0 ? `room for ${free} more` : '')
  }

  /** @param {GroupView} group */
  updateRouter(group) {
    this.routerEl.hidden = !group.route
    if (!group.route) return
    const m = group.metrics
    /** @type {[string, string, string][]} */
    const items = [['route', group.route, '']]
    items.push(['rate', num(m.request_rate?.value), 'requests/s'])
    items.push(['inflight', num(m.concurrency?.value), 'in flight'])
    if (m.latency_p99?.value !== undefined) items.push(['p99', `${num(m.latency_p99.value)} ms`, 'p99'])
    const key = JSON.stringify(items)
    if (this.routerEl.dataset.key === key) return
    this.routerEl.dataset.key = key
    this.routerEl.replaceChildren(
      ...items.map(([k, value, label]) =>
        h(
          'span',
          { class: `rnum rnum-${k}`, attrs: { 'data-router': k } },
          k === 'route'
            ? [h('span', { text: 'route ' }), h('strong', { text: value })]
            : [h('strong', { text: value }), h('span', { text: ` ${label}` })],
        ),
      ),
    )
  }

  /** @param {number} now */
  draw(now) {
    const group = this.view
    if (!group) return
    const width = Math.max(200, Math.floor(this.chartBox.clientWidth || 600))
    const { from } = this.history.window(now)
    const { gap } = this.history
    drawInstances(this.chartSvg, this.history.points, {
      max: group.max,
      min: group.min,
      from,
      now,
      width,
      gap,
    })

    // Metrics seen in the window, not only now: p99 is absent while no request finishes, and
    // its chart should stay (with a gap) rather than come and go.
    const seen = new Set(Object.keys(group.metrics))
    for (const p of this.history.points) for (const name of Object.keys(p.metrics)) seen.add(name)
    const names = [...seen]
      .filter((n) => !(n === 'latency_p50' || n === 'latency_p90'))
      .sort((a, b) => (METRICS[a]?.order ?? 99) - (METRICS[b]?.order ?? 99) || a.localeCompare(b))
      .slice(0, 6)
    for (const [name, spark] of this.sparks) {
      if (!names.includes(name)) {
        spark.root.remove()
        this.sparks.delete(name)
      }
    }
    names.forEach((name, i) => {
      let spark = this.sparks.get(name)
      if (!spark) {
        const { label } = metricText(name, undefined)
        const value = h('strong')
        const svg = /** @type {SVGSVGElement} */ (s('svg', { class: 'spark' }))
        const root = h('div', { class: 'spark-box', attrs: { 'data-metric': name } }, [
          h('div', { class: 'spark-head' }, [h('span', { class: 'muted', text: label }), value]),
          svg,
        ])
        spark = { root, value, svg }
        this.sparks.set(name, spark)
      }
      if (this.sparksEl.children[i] !== spark.root)
        this.sparksEl.insertBefore(spark.root, this.sparksEl.children[i] ?? null)
      const m = group.metrics[name]
      const missing = m && m.missing.length > 0 ? ` (${m.missing.length} missing)` : ''
      setText(spark.value, `${metricText(name, m?.value).value}${missing}`)
      const w = Math.max(80, Math.floor(spark.root.clientWidth || 160))
      drawSpark(spark.svg, this.history.points, name, { from, now, width: w, gap })
    })
  }

  /**
   * Seeds the chart with what Tide recorded of the last five minutes, once, when the card is new.
   * Any failure (an older Tide without the route, a network error) leaves the chart as it was:
   * it fills from the polls, as before.
   */
  async loadHistory() {
    try {
      const { until, series } = await getHistory(groupPath(this.name), {
        sinceMs: SPAN_MS + 5_000,
        points: HISTORY_POINTS,
      })
      const now = Date.now()
      // Tide's clock may differ from the page's: its `until` is "now" there.
      this.history.seed(series, now - until, now)
      this.draw(now)
    } catch {
      // Start empty, as a dashboard without history did.
    }
  }

  /** Whether the decision list should be read again. */
  decisionsDue() {
    const last = this.view?.lastDecision
    const key = `${last?.id ?? ''}:${last?.outcome ?? ''}:${this.view?.operation?.id ?? ''}`
    if (key !== this.decisionsKey || Date.now() - this.decisionsAt > DECISIONS_MS) {
      this.decisionsKey = key
      return true
    }
    return false
  }

  async loadDecisions() {
    this.decisionsAt = Date.now()
    try {
      const body = await getJson(`${groupPath(this.name)}/decisions?limit=${DECISIONS_SHOWN}`)
      /** @type {DecisionRecord[]} */
      const list = Array.isArray(body?.decisions) ? body.decisions : []
      this.renderDecisions(list)
      setText(this.decisionsNote, list.length === 0 ? 'No decisions yet.' : '')
    } catch (err) {
      setText(this.decisionsNote, `Could not read the decisions: ${describe(err)}`)
    }
  }

  /** @param {DecisionRecord[]} list */
  renderDecisions(list) {
    const key = JSON.stringify(list.map((d) => [d.id, d.outcome, d.at, d.error]))
    if (this.decisionsEl.dataset.key === key) return
    this.decisionsEl.dataset.key = key
    this.decisionsEl.replaceChildren(
      ...list.map((d) => {
        const meta = [
          h('time', { text: clock(d.at), attrs: { datetime: new Date(d.at).toISOString() } }),
          h('span', { class: `outcome outcome-${d.outcome}`, text: d.outcome }),
          h('span', { class: 'trigger', text: d.trigger + (d.forced ? ' · forced' : '') }),
        ]
        if (d.durationMs !== undefined) meta.push(h('span', { class: 'muted', text: span(d.durationMs) }))
        const item = h('li', { class: 'decision', attrs: { 'data-decision': String(d.id) } }, [
          h('div', { class: 'decision-meta' }, meta),
          h('p', { class: 'reason', text: d.reason }),
        ])
        if (d.error) item.append(h('p', { class: 'decision-error', text: d.error }))
        if (d.steps && d.steps.length > 0) item.title = d.steps.join('\n')
        return item
      }),
    )
  }

  /** @param {{ code: string, message: string } | undefined} err */
  showError(err) {
    this.errorEl.hidden = !err
    setText(this.errorCode, err ? err.code : '')
    setText(this.errorText, err ? ` ${err.message} ` : '')
  }

  /** @param {'up' | 'down' | 'auto'} action */
  async act(action) {
    if (this.busy) return
    this.busy = true
    for (const b of Object.values(this.buttons)) b.disabled = true
    this.showError(undefined)
    try {
      /** @type {DecisionRecord} */
      const decision =
        action === 'auto'
          ? await postJson(`${groupPath(this.name)}/auto`, {}, askToken)
          : await postJson(
              `${groupPath(this.name)}/scale`,
              { by: action === 'up' ? 1 : -1, reason: 'dashboard' },
              askToken,
            )
      this.noteEl.hidden = false
      const label = { up: 'Up', down: 'Down', auto: 'Auto' }[action]
      const outcome =
        decision.outcome === 'applied' || decision.outcome === 'pending' ? '' : ` (${decision.outcome})`
      setText(this.noteEl, `${clock(Date.now())} · ${label}${outcome}: ${decision.reason}`)
    } catch (err) {
      this.showError(err instanceof ApiError ? err : { code: 'NETWORK', message: describe(err) })
    } finally {
      this.busy = false
      this.decisionsKey = '' // read the decisions again right away
      showTokenState()
      refreshNow()
    }
  }
}

/** @param {unknown} err */
function describe(err) {
  if (err instanceof ApiError) return `${err.code}: ${err.message}`
  return err instanceof Error ? err.message : String(err)
}

// ─── Polling ──────────────────────────────────────────────────────────────────

/** @type {Map<string, Card>} */
const cards = new Map()
/** @type {ReturnType<typeof setTimeout> | undefined} */
let timer
let polling = false
let again = false

async function poll() {
  timer = undefined
  if (document.hidden) {
    setConn('paused while the tab is hidden', 'paused')
    return
  }
  polling = true
  try {
    const body = await getJson('v1/groups')
    /** @type {GroupView[]} */
    const groups = Array.isArray(body?.groups) ? body.groups : []
    render(groups)
    setConn(`live · ${clock(Date.now())}`, 'live')
    await Promise.all([...cards.values()].filter((c) => c.decisionsDue()).map((c) => c.loadDecisions()))
  } catch (err) {
    setConn(`cannot reach Tide: ${describe(err)}`, 'down')
  } finally {
    polling = false
    if (again) {
      again = false
      void poll()
    } else if (!document.hidden) {
      timer = setTimeout(poll, POLL_MS)
    }
  }
}

/** Polls now (after a button), or right after the poll under way. */
function refreshNow() {
  if (polling) {
    again = true
    return
  }
  if (timer) clearTimeout(timer)
  void poll()
}

/**
 * @param {string} text
 * @param {'live' | 'down' | 'paused'} state
 */
function setConn(text, state) {
  setText(connEl, text)
  connEl.dataset.state = state
}

/** @param {GroupView[]} groups */
function render(groups) {
  const now = Date.now()
  const names = new Set(groups.map((g) => g.name))
  for (const [name, card] of cards) {
    if (!names.has(name)) {
      card.root.remove()
      cards.delete(name)
    }
  }
  groups.forEach((group, i) => {
    let card = cards.get(group.name)
    if (!card) {
      card = new Card(group.name)
      cards.set(group.name, card)
      void card.loadHistory()
    }
    if (groupsEl.children[i] !== card.root) groupsEl.insertBefore(card.root, groupsEl.children[i] ?? null)
    card.update(group, now)
  })
  emptyEl.hidden = groups.length > 0
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && !timer && !polling) void poll()
})
// Charts are drawn to the card's width: redraw at once when the window changes size.
window.addEventListener('resize', () => {
  const now = Date.now()
  for (const card of cards.values()) card.draw(now)
})

void poll()
