/**
 * The router's numbers. Each process keeps cumulative counters: requests, errors, a latency
 * histogram with fixed buckets, and the time integral of its in-flight and queued counts
 * (request·milliseconds). Counters from several workers add up, and the difference of two
 * readings divided by the time between them is the exact time-weighted average concurrency over
 * that interval, which is what an autoscaler needs (Knative averages concurrency over its window
 * rather than sampling it; anchors.md §2). All functions here are pure.
 */

/**
 * Upper bounds of the latency buckets in ms: four per doubling from 1/16 ms to 2^17 ms (131 s),
 * so an interpolated percentile is within about 9 % of the truth; the last bucket is open.
 */
export const LATENCY_BUCKETS_MS: readonly number[] = Array.from({ length: 85 }, (_, i) => 2 ** (i / 4 - 4))
const BUCKETS = LATENCY_BUCKETS_MS.length + 1

/** 2^(k/4) for k = 1..3: the quarter-octave steps inside one doubling. */
const Q1 = 2 ** 0.25
const Q2 = 2 ** 0.5
const Q3 = 2 ** 0.75

/**
 * The bucket of a latency: the first whose upper bound is ≥ ms. Computed from the octave
 * (Math.clz32) and three comparisons rather than Math.log2: this runs once per request.
 */
export function latencyBucket(ms: number): number {
  const x = ms * 16 // in 1/16 ms: bucket i has upper bound 2^(i/4) in these units
  if (!(x > 1)) return 0
  if (x >= 2 ** 30) return BUCKETS - 1
  const e = 31 - Math.clz32(x) // floor(log2(x)) for x ≥ 1
  const v = x / (1 << e) // in [1, 2); a shift, not Math.pow (e ≤ 29)
  // Smallest k with 2^((4e + k)/4) ≥ x.
  const k = v === 1 ? 0 : v <= Q1 ? 1 : v <= Q2 ? 2 : v <= Q3 ? 3 : 4
  let i = 4 * e + k
  // The constants are rounded; settle exact-bound cases against the table itself.
  if (i > 0 && i <= LATENCY_BUCKETS_MS.length && LATENCY_BUCKETS_MS[i - 1]! >= ms) i--
  else if (i < LATENCY_BUCKETS_MS.length && LATENCY_BUCKETS_MS[i]! < ms) i++
  return i < BUCKETS ? i : BUCKETS - 1
}

export function emptyHistogram(): number[] {
  return new Array<number>(BUCKETS).fill(0)
}

/** The q-quantile (0..1) of a bucket histogram, interpolated inside its bucket; undefined when empty. */
export function percentile(counts: ArrayLike<number>, q: number): number | undefined {
  let total = 0
  for (let i = 0; i < counts.length; i++) total += counts[i]!
  if (total <= 0) return undefined
  const rank = q * total
  let seen = 0
  for (let i = 0; i < counts.length; i++) {
    const n = counts[i]!
    if (n > 0 && seen + n >= rank) {
      const lower = i === 0 ? 0 : LATENCY_BUCKETS_MS[i - 1]!
      if (i >= LATENCY_BUCKETS_MS.length) return lower
      const upper = LATENCY_BUCKETS_MS[i]!
      return lower + ((upper - lower) * Math.max(0, rank - seen)) / n
    }
    seen += n
  }
  return LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.length - 1]
}

/** One backend's cumulative counters in one process (or merged). */
export interface BackendCounters {
  /** Which incarnation of the id these counters belong to (a re-added id starts again at zero). */
  gen: number
  inFlight: number
  requests: number
  errors: number
  /** ∫ in-flight dt, request·ms. */
  busy: number
  draining: boolean
}

/** Cumulative counters of a router, as of `at`. Differences of two readings give a window. */
export interface RouterCounters {
  /** Epoch ms the integrals run to. */
  at: number
  /** Epoch ms the router started; readings from different starts do not subtract. */
  since: number
  inFlight: number
  queued: number
  requests: number
  errors: number
  /** ∫ in-flight dt over all backends, request·ms. */
  busy: number
  /** ∫ queued dt, request·ms. */
  queueBusy: number
  backends: Record<string, BackendCounters>
  /** Latency histogram, counts per LATENCY_BUCKETS_MS bucket (and the open one). */
  latency: number[]
}

/** Figures over an interval. */
export interface RouterWindow {
  /** The interval's length in ms. */
  ms: number
  /** Average requests in flight plus queued: the demand, also at zero instances. */
  concurrency: number
  /** Average requests queued. */
  queued: number
  /** Average requests in flight per backend id. */
  perBackend: Record<string, number>
  /** Requests finished per second. */
  requestRate: number
  perBackendRate: Record<string, number>
  /** Latency of the requests finished in the interval (arrival to last byte, queueing included), ms. */
  latency?: { p50: number; p90: number; p99: number }
}

export function emptyCounters(since: number): RouterCounters {
  return {
    at: since,
    since,
    inFlight: 0,
    queued: 0,
    requests: 0,
    errors: 0,
    busy: 0,
    queueBusy: 0,
    backends: {},
    latency: emptyHistogram(),
  }
}

/**
 * Adds counters from several processes, each carried forward to `at` with the in-flight count it
 * last reported (a worker reports a few times a second, not at every change).
 */
export function mergeCounters(parts: RouterCounters[], at: number, since: number): RouterCounters {
  const out = emptyCounters(since)
  out.at = at
  for (const part of parts) {
    const dt = Math.max(0, at - part.at)
    out.inFlight += part.inFlight
    out.queued += part.queued
    out.requests += part.requests
    out.errors += part.errors
    out.busy += part.busy + part.inFlight * dt
    out.queueBusy += part.queueBusy + part.queued * dt
    for (let i = 0; i < out.latency.length; i++) out.latency[i]! += part.latency[i] ?? 0
    for (const [id, b] of Object.entries(part.backends)) {
      const into = out.backends[id]
      const busy = b.busy + b.inFlight * dt
      if (into === undefined || into.gen < b.gen) {
        out.backends[id] = { ...b, busy }
      } else if (into.gen === b.gen) {
        into.inFlight += b.inFlight
        into.requests += b.requests
        into.errors += b.errors
        into.busy += busy
        into.draining ||= b.draining
      }
    }
  }
  return out
}

/** The figures between two readings of the same router (`from` absent: since it started). */
export function windowOf(from: RouterCounters | undefined, to: RouterCounters): RouterWindow {
  const base = from !== undefined && from.since === to.since && from.at <= to.at ? from : undefined
  const ms = to.at - (base?.at ?? to.since)
  const span = ms > 0 ? ms : 1
  const perBackend: Record<string, number> = {}
  const perBackendRate: Record<string, number> = {}
  for (const [id, b] of Object.entries(to.backends)) {
    const before = base?.backends[id]
    const same = before !== undefined && before.gen === b.gen
    perBackend[id] = Math.max(0, b.busy - (same ? before.busy : 0)) / span
    perBackendRate[id] = (Math.max(0, b.requests - (same ? before.requests : 0)) * 1000) / span
  }
  const latency = to.latency.map((n, i) => Math.max(0, n - (base?.latency[i] ?? 0)))
  const p50 = percentile(latency, 0.5)
  const window: RouterWindow = {
    ms,
    concurrency: Math.max(0, to.busy + to.queueBusy - (base ? base.busy + base.queueBusy : 0)) / span,
    queued: Math.max(0, to.queueBusy - (base?.queueBusy ?? 0)) / span,
    perBackend,
    requestRate: (Math.max(0, to.requests - (base?.requests ?? 0)) * 1000) / span,
    perBackendRate,
  }
  if (p50 !== undefined) {
    window.latency = { p50, p90: percentile(latency, 0.9)!, p99: percentile(latency, 0.99)! }
  }
  return window
}

/** What `Router.stats()` returns. */
export interface RouterStats {
  /** Epoch ms of this reading. */
  at: number
  /** Requests in flight to backends now. */
  inFlight: number
  /** In flight now per backend id (draining ones and removed ones still finishing included). */
  perBackend: Record<string, number>
  /** Requests held now because no backend is ready. */
  queued: number
  /** Requests finished since the router started (router errors included). */
  requests: number
  /** Requests the router answered with its own error (502, 503, 504, 4xx) or cut short. */
  errors: number
  /** Figures over the last `windowMs` (default 10 s; since start when younger). */
  window: RouterWindow
  /** Cumulative counters: subtract an earlier reading with `windowOf` for an exact interval. */
  counters: RouterCounters
}

/**
 * Readings kept once a second so `stats()` can answer for a trailing window without remembering
 * who asked last (several readers — the source, the API, the dashboard — do not disturb each other).
 */
export class CounterHistory {
  private readonly ring: RouterCounters[] = []
  constructor(private readonly keep = 900) {}

  push(counters: RouterCounters): void {
    if (this.ring.length >= this.keep) this.ring.shift()
    this.ring.push(counters)
  }

  /** The newest reading at or before `at`, else the oldest kept. */
  at(at: number): RouterCounters | undefined {
    for (let i = this.ring.length - 1; i >= 0; i--) if (this.ring[i]!.at <= at) return this.ring[i]
    return this.ring[0]
  }
}

export function statsFrom(counters: RouterCounters, history: CounterHistory, windowMs: number): RouterStats {
  const perBackend: Record<string, number> = {}
  for (const [id, b] of Object.entries(counters.backends)) perBackend[id] = b.inFlight
  const from = history.at(counters.at - windowMs)
  return {
    at: counters.at,
    inFlight: counters.inFlight,
    perBackend,
    queued: counters.queued,
    requests: counters.requests,
    errors: counters.errors,
    window: windowOf(from, counters),
    counters,
  }
}
