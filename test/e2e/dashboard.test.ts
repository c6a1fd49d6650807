/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core) against a real
 * daemon: real engine, store, process target and router. What a person relies on: the group's
 * numbers are right, Up really adds an instance that turns ready, the decision list says why,
 * a token is asked for once, and the page runs without a console error or a failed request.
 *
 * Set TIDE_DASHBOARD_SCREENSHOT=/some/file.png to keep a screenshot of the scaled group.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type Browser, chromium, type Locator, type Page } from 'playwright-core'
import { startTestDaemon, type TestDaemon, waitFor } from '../support/daemon.js'
import { CHROMIUM_PATH, requireChromium } from '../support/requires.js'

const TOKEN = 'dashboard-e2e-token-0123456789'
const WAIT = 20_000

/**
 * Everything that went wrong in the page: console errors and warnings, uncaught exceptions,
 * failed requests and HTTP errors. `allowed` names the ones a test provokes on purpose.
 */
function watch(page: Page, allowed: { console?: RegExp; status?: number[] } = {}): string[] {
  const problems: string[] = []
  page.on('console', (m) => {
    if (m.type() !== 'error' && m.type() !== 'warning') return
    if (allowed.console?.test(m.text())) return
    problems.push(`console ${m.type()}: ${m.text()}`)
  })
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} (${r.failure()?.errorText})`))
  page.on('response', (r) => {
    if (r.status() >= 400 && !allowed.status?.includes(r.status()))
      problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`)
  })
  return problems
}

/** The heights (y) a step path of the chart visits: one per instance count it shows. */
function levels(d: string | null): Set<number> {
  const ys = new Set<number>()
  for (const m of (d ?? '').matchAll(/([MV])(-?[\d.]+)(?:,(-?[\d.]+))?/g))
    ys.add(Number(m[1] === 'M' ? m[3] : m[2]))
  return ys
}

async function text(locator: Locator): Promise<string> {
  return ((await locator.textContent()) ?? '').trim()
}

/** Clicks a card's button and returns the JSON of the POST it caused (after any token prompt). */
async function clickAndRead(
  page: Page,
  button: Locator,
  route: string,
): Promise<{ status: number; body: { to: number; reason: string; outcome: string } }> {
  const response = page.waitForResponse(
    (r) => r.request().method() === 'POST' && new URL(r.url()).pathname === route && r.status() !== 401,
  )
  await button.click()
  const res = await response
  return { status: res.status(), body: await res.json() }
}

describe('dashboard in Chromium', { skip: requireChromium() }, () => {
  let browser: Browser
  before(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    })
  })
  after(async () => {
    await browser?.close()
  })

  test('shows the group, Up adds an instance that turns ready, and the decision says why', async () => {
    const tide: TestDaemon = await startTestDaemon('test/fixtures/manual.yaml')
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    page.setDefaultTimeout(WAIT)
    try {
      const problems = watch(page)
      await waitFor('the first instance', WAIT, () => tide.controller.getGroup('app').ready === 1)
      await page.goto(`${tide.apiUrl}/`)
      const card = page.locator('section[data-group="app"]')
      await card.waitFor()
      assert.equal(await text(card.locator('h2')), 'app')
      await waitFor(
        'one ready tile',
        WAIT,
        async () => (await card.locator('.tile[data-state="ready"]').count()) === 1,
      )
      assert.equal(await text(card.locator('[data-stat="min"] .value')), '1')
      assert.equal(await text(card.locator('[data-stat="max"] .value')), '4')
      assert.equal(await text(card.locator('[data-stat="desired"] .value')), '1')
      assert.equal(await card.locator('.slot').count(), 3, 'room for 3 more up to max 4')
      assert.match(await text(card.locator('.router')), /route 127\.0\.0\.1:\d+/)
      assert.match(await text(card.locator('.badge.kind')), /process/)

      const { status, body } = await clickAndRead(
        page,
        card.locator('button[data-action="up"]'),
        '/v1/groups/app/scale',
      )
      assert.equal(status, 200, JSON.stringify(body))
      assert.equal(body.to, 2)
      assert.match(body.reason, /^scale up 1 → 2: manual request \(dashboard\)/)

      await waitFor('a second tile', WAIT, async () => (await card.locator('.tile').count()) === 2)
      await waitFor(
        'both tiles ready',
        WAIT,
        async () => (await card.locator('.tile[data-state="ready"]').count()) === 2,
      )
      assert.equal(tide.controller.getGroup('app').ready, 2, 'the daemon really has two ready instances')
      await waitFor(
        'desired 2',
        WAIT,
        async () => (await text(card.locator('[data-stat="desired"] .value'))) === '2',
      )
      await waitFor('the reason in the decision list', WAIT, async () =>
        (await card.locator('.decisions .reason').allTextContents()).includes(body.reason),
      )
      const first = card.locator('.decisions .decision').first()
      assert.match(await text(first.locator('.outcome')), /applied|pending/)
      assert.match(await text(first.locator('.trigger')), /manual/)
      // The chart drew both series from the page's own history.
      assert.notEqual(await card.locator('svg.chart path.desired-line').getAttribute('d'), '')
      assert.ok((await card.locator('.spark-box').count()) >= 2, 'metric charts for the router numbers')

      if (process.env.TIDE_DASHBOARD_SCREENSHOT)
        await page.screenshot({ path: process.env.TIDE_DASHBOARD_SCREENSHOT, fullPage: true })

      // Phone width: everything reflows, nothing scrolls sideways.
      await page.setViewportSize({ width: 390, height: 844 })
      await page.waitForTimeout(1500) // a poll redraws the charts at the new width
      // A string: the test's tsconfig has no DOM types.
      const overflow = (await page.evaluate(
        'document.documentElement.scrollWidth - document.documentElement.clientWidth',
      )) as number
      assert.ok(overflow <= 0, `the page is ${overflow}px wider than a phone`)

      assert.deepEqual(problems, [])
    } finally {
      await page.close()
      await tide.stop()
    }
  })

  test('a page opened after the group grew shows that in its chart at once (recorded history)', async () => {
    const tide = await startTestDaemon('test/fixtures/manual.yaml')
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    page.setDefaultTimeout(WAIT)
    try {
      const problems = watch(page)
      const recorded = (metric: string) =>
        (tide.controller.history('app', { since: Date.now() - 60_000 }).series[metric] ?? []).map(
          ([, v]) => v,
        )
      await waitFor('ready 1 recorded', WAIT, () => recorded('ready').includes(1))
      const grown = await tide.controller.scale('app', { to: 2, wait: true, reason: 'before the page' })
      assert.equal(grown.outcome, 'applied', grown.reason)
      await waitFor('ready 2 recorded', WAIT, () => recorded('ready').includes(2))

      // The page only ever polls a group of 2 ready instances: a chart that shows 1 as well
      // drew the time before it opened, from the history route.
      const history = page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/groups/app/history')
      await page.goto(`${tide.apiUrl}/`)
      const res = await history
      assert.equal(res.status(), 200)
      const card = page.locator('section[data-group="app"]')
      await card.waitFor()
      const ready = card.locator('svg.chart path.ready-line')
      const desired = card.locator('svg.chart path.desired-line')
      // Levels: 2 now, 1 before, and 0 when the first evaluation ran before the instance started.
      await waitFor(
        'the chart to show ready 1 and then 2',
        WAIT,
        async () => levels(await ready.getAttribute('d')).size >= 2,
      ).catch(async (err: Error) => {
        throw new Error(`${err.message}; the ready line: ${await ready.getAttribute('d')}`)
      })
      assert.ok(levels(await desired.getAttribute('d')).size >= 2, 'desired too went 1 → 2')
      const steps = ((await ready.getAttribute('d')) ?? '').split('H').length - 1
      assert.ok(steps >= 2, `the chart has more than a poll or two of points: ${steps} steps`)
      assert.deepEqual(problems, [])
    } finally {
      await page.close()
      await tide.stop()
    }
  })

  test('against a Tide without the history route, the chart starts empty and fills from the polls', async () => {
    const tide = await startTestDaemon('test/fixtures/manual.yaml')
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    page.setDefaultTimeout(WAIT)
    try {
      // An older Tide answers 404 E_NOT_FOUND for a route it does not know.
      let asked = 0
      await page.route('**/v1/groups/*/history*', (route) => {
        asked++
        return route.fulfill({
          status: 404,
          contentType: 'application/json',
          body: JSON.stringify({ code: 'E_NOT_FOUND', message: 'no route GET /v1/groups/app/history' }),
        })
      })
      const problems = watch(page, { console: /status of 404/, status: [404] })
      await waitFor('the first instance', WAIT, () => tide.controller.getGroup('app').ready === 1)
      await page.goto(`${tide.apiUrl}/`)
      const card = page.locator('section[data-group="app"]')
      await waitFor(
        'ready 1 on the card',
        WAIT,
        async () => (await text(card.locator('[data-stat="ready"] .value'))) === '1',
      )
      const ready = card.locator('svg.chart path.ready-line')
      await waitFor(
        'the chart drawn from the polls',
        WAIT,
        async () => levels(await ready.getAttribute('d')).size === 1,
      )
      assert.equal(asked, 1, 'the history was asked for once')
      assert.equal(await card.locator('.error').isVisible(), false, 'no error shown for the missing route')
      assert.deepEqual(problems, [])
    } finally {
      await page.close()
      await tide.stop()
    }
  })

  test('with api.token: Up asks for the token once, then works; a refused token is shown', async () => {
    const tide = await startTestDaemon('test/fixtures/manual.yaml', (raw) => {
      raw.api = { ...raw.api, token: TOKEN } as never
    })
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    page.setDefaultTimeout(WAIT)
    try {
      // The 401s are the point of this test; Chromium logs each one as a console error.
      const problems = watch(page, { console: /status of 401/, status: [401] })
      await waitFor('the first instance', WAIT, () => tide.controller.getGroup('app').ready === 1)
      await page.goto(`${tide.apiUrl}/`)
      const card = page.locator('section[data-group="app"]')
      const up = card.locator('button[data-action="up"]')
      const dialog = page.locator('#token-dialog')
      await waitFor(
        'desired 1',
        WAIT,
        async () => (await text(card.locator('[data-stat="desired"] .value'))) === '1',
      )

      // First change: 401 → the dialog → the token → the same call again, now allowed.
      const answered = page.waitForResponse((r) => r.url().endsWith('/scale') && r.status() !== 401)
      await up.click()
      await dialog.waitFor({ state: 'visible' })
      assert.equal(tide.controller.getGroup('app').desired, 1, 'nothing changed without the token')
      await page.locator('#token-input').fill(TOKEN)
      await page.locator('#token-form button[type="submit"]').click()
      const res = await answered
      assert.equal(res.status(), 200)
      assert.equal(res.request().headers().authorization, `Bearer ${TOKEN}`)
      await waitFor('desired 2', WAIT, () => tide.controller.getGroup('app').desired === 2)
      assert.equal(await dialog.isVisible(), false)

      // Second change: the token is kept for the tab, no question asked.
      const statuses: number[] = []
      page.on('response', (r) => {
        if (r.request().method() === 'POST') statuses.push(r.status())
      })
      await waitFor('Up enabled again', WAIT, () => up.isEnabled())
      const second = await clickAndRead(page, up, '/v1/groups/app/scale')
      assert.equal(second.status, 200, JSON.stringify(second.body))
      assert.equal(second.body.to, 3)
      assert.deepEqual(statuses, [200], 'one call, no 401 first')
      assert.equal(await dialog.isVisible(), false)

      // A wrong token: the error is shown with its code, and the group is untouched.
      await page.locator('#forget-token').click()
      await waitFor('Up enabled again', WAIT, () => up.isEnabled())
      await up.click()
      await dialog.waitFor({ state: 'visible' })
      await page.locator('#token-input').fill('not-the-token-at-all')
      await page.locator('#token-form button[type="submit"]').click()
      const error = card.locator('.error')
      await error.waitFor({ state: 'visible' })
      assert.equal(await text(error.locator('.code')), 'E_UNAUTHORIZED')
      assert.match(await text(error), /token was refused/)
      assert.equal(tide.controller.getGroup('app').desired, 3)
      assert.equal(
        await page.evaluate("sessionStorage.getItem('tide.token')"),
        null,
        'a refused token is forgotten',
      )

      assert.deepEqual(problems, [])
    } finally {
      await page.close()
      await tide.stop()
    }
  })
})
