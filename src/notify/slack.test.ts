/**
 * The slack notifier against a local HTTP server standing in for hooks.slack.com: the JSON it
 * receives, colours by outcome, Slack's 429 with Retry-After, and errors without the secret.
 */
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import type { ScaleEvent } from '../core/types.js'
import { createSlackNotifier, SLACK_COLORS, slackNotifierSchema } from './slack.js'

const event = (kind: ScaleEvent['kind'], extra: Partial<ScaleEvent> = {}): ScaleEvent => ({
  kind,
  group: 'web',
  decision: 42,
  trigger: 'auto',
  from: 2,
  to: 3,
  direction: 'up',
  reason: 'scale up 2 → 3: mean load 0.91 > 0.35 (2 of 2 instances reporting)',
  at: Date.UTC(2026, 0, 1, 12, 0, 0),
  target: 'process',
  ...extra,
})

interface Got {
  path: string
  type: string
  body: Record<string, unknown>
}

describe('slack notifier', () => {
  let server: Server
  let base: string
  const got: Got[] = []
  let answer: (req: IncomingMessage, res: ServerResponse, n: number) => void = (_q, res) => res.end('ok')

  before(async () => {
    server = createServer((req, res) => {
      let data = ''
      req.on('data', (c) => (data += c))
      req.on('end', () => {
        got.push({ path: req.url ?? '', type: req.headers['content-type'] ?? '', body: JSON.parse(data) })
        answer(req, res, got.length)
      })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  after(() => new Promise<void>((r) => server.close(() => r())))

  const notifier = (extra: object = {}) =>
    createSlackNotifier(
      slackNotifierSchema.parse({ kind: 'slack', url: `${base}/services/T000/B000/SECRET`, ...extra }),
    )

  test('an applied event: text, a green attachment with title, reason and fields', async () => {
    got.length = 0
    await notifier({ channel: '#ops', username: 'Tide' }).notify(
      event('applied', { durationMs: 1500 }),
      AbortSignal.timeout(5000),
    )
    assert.equal(got.length, 1)
    assert.equal(got[0]!.path, '/services/T000/B000/SECRET')
    assert.match(got[0]!.type, /application\/json/)
    const body = got[0]!.body as {
      text: string
      channel: string
      username: string
      attachments: Array<{
        color: string
        title: string
        text: string
        ts: number
        fields: Array<{ title: string; value: string }>
      }>
    }
    assert.equal(body.text, 'web: scaled up 2 → 3 in 1500ms')
    assert.equal(body.channel, '#ops')
    assert.equal(body.username, 'Tide')
    const a = body.attachments[0]!
    assert.equal(a.color, 'good')
    assert.equal(a.title, 'web: scaled 2 → 3')
    assert.match(a.text, /mean load 0\.91 > 0\.35/)
    assert.equal(a.ts, Date.UTC(2026, 0, 1, 12, 0, 0) / 1000)
    assert.deepEqual(
      a.fields.map((f) => [f.title, f.value]),
      [
        ['Group', 'web'],
        ['Change', '2 → 3 (up)'],
        ['Trigger', 'auto'],
        ['Target', 'process'],
        ['Took', '1.5s'],
      ],
    )
  })

  test('colour by outcome: failed is danger with the error, in progress blue, nothing changed grey', async () => {
    got.length = 0
    const n = notifier()
    for (const kind of ['started', 'progress', 'failed', 'unchanged', 'shadow'] as const) {
      await n.notify(
        event(kind, { message: kind === 'failed' ? 'API refused: quota' : 'i-1 ready' }),
        AbortSignal.timeout(5000),
      )
    }
    const colors = got.map((g) => (g.body.attachments as Array<{ color: string }>)[0]!.color)
    assert.deepEqual(colors, ['#439FE0', '#439FE0', 'danger', '#9E9E9E', '#9E9E9E'])
    assert.deepEqual(Object.keys(SLACK_COLORS).sort(), [
      'applied',
      'failed',
      'progress',
      'shadow',
      'started',
      'unchanged',
    ])
    const failed = (got[2]!.body.attachments as Array<{ text: string }>)[0]!
    assert.match(failed.text, /^API refused: quota\n_scale up/)
  })

  test('Slack’s 429 is retried after Retry-After', async () => {
    got.length = 0
    answer = (_q, res, n) => {
      if (n === 1) {
        res.writeHead(429, { 'retry-after': '0' })
        res.end('rate_limited')
      } else res.end('ok')
    }
    await notifier().notify(event('applied'), AbortSignal.timeout(5000))
    assert.equal(got.length, 2)
    answer = (_q, res) => res.end('ok')
  })

  test('a refusal is E_NOTIFY with Slack’s answer and without the webhook’s secret path', async () => {
    answer = (_q, res) => {
      res.writeHead(404)
      res.end('no_service')
    }
    await assert.rejects(
      notifier().notify(event('applied'), AbortSignal.timeout(5000)),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'E_NOTIFY')
        assert.equal(err.message, `slack webhook ${base}/… answered 404: no_service`)
        assert.doesNotMatch(err.message, /SECRET/)
        return true
      },
    )
    answer = (_q, res) => res.end('ok')
  })

  test('config: bad values named', () => {
    const r = slackNotifierSchema.safeParse({
      kind: 'slack',
      url: 'hooks.slack.com',
      icon_emoji: 'chart',
      on: ['done'],
    })
    assert.deepEqual(r.error?.issues.map((i) => i.path.join('.')).sort(), ['icon_emoji', 'on.0', 'url'])
  })
})
