/**
 * Time is an argument, never a global (Knative's rule): pure code takes `now`, and code with
 * timers takes a Clock so tests can move time by hand.
 */
export interface Clock {
  now(): number
}

export const systemClock: Clock = { now: () => Date.now() }

/** A clock that only moves when a test says so. */
export class ManualClock implements Clock {
  constructor(private t = 0) {}
  now(): number {
    return this.t
  }
  advance(ms: number): number {
    this.t += ms
    return this.t
  }
  set(t: number): void {
    this.t = t
  }
}
