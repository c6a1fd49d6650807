/**
 * A fake target and source for engine tests: in memory, controlled by the test, and
 * recording every call. The real targets are tested against real processes and emulators.
 */
import type {
  CollectContext,
  GroupStatus,
  Instance,
  Metrics,
  ScalePlan,
  ScaleResult,
  Source,
  Target,
} from '../../src/core/types.js'

export class FakeTarget implements Target {
  readonly kind = 'fake'
  instances: Instance[] = []
  next = 1
  calls: Array<{ to: number; reason: string }> = []
  drained: string[] = []
  /** Makes the next scale() throw this. */
  failWith?: Error
  /** Resolves scale() only when the test calls release(). */
  hold = false
  private releases: Array<() => void> = []
  private listeners = new Set<(s: GroupStatus) => void>()

  constructor(initial = 0) {
    for (let i = 0; i < initial; i++) this.add()
  }

  private add(): void {
    const id = `fake-${this.next++}`
    this.instances.push({ id, state: 'ready', address: `127.0.0.1:${10000 + this.next}`, createdAt: 0 })
  }

  async status(): Promise<GroupStatus> {
    return this.snapshot()
  }

  snapshot(): GroupStatus {
    const instances = this.instances.map((i) => ({ ...i }))
    return {
      desired: instances.length,
      instances,
      ready: instances.filter((i) => i.state === 'ready').length,
    }
  }

  async scale(to: number, plan: ScalePlan): Promise<ScaleResult> {
    this.calls.push({ to, reason: plan.reason })
    if (this.failWith) {
      const err = this.failWith
      this.failWith = undefined
      throw err
    }
    if (this.hold) await new Promise<void>((resolve) => this.releases.push(resolve))
    const from = this.instances.length
    const added: string[] = []
    const removed: string[] = []
    while (this.instances.length < to) {
      this.add()
      added.push(this.instances.at(-1)!.id)
    }
    while (this.instances.length > to) {
      const victim = this.instances.at(-1)!
      await plan.drain?.(victim)
      this.drained.push(victim.id)
      this.instances.pop()
      removed.push(victim.id)
    }
    this.emit()
    return { from, to, added, removed }
  }

  release(): void {
    for (const r of this.releases.splice(0)) r()
  }

  watch(listener: (s: GroupStatus) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  emit(): void {
    const s = this.snapshot()
    for (const l of this.listeners) l(s)
  }
}

/** A source whose readings the test sets: `value` per instance, or nothing (missing). */
export class FakeSource implements Source {
  readonly kind = 'fake'
  perInstance?: number
  total?: number
  metric = 'load'

  async collect(ctx: CollectContext): Promise<Metrics> {
    const perInstance: Record<string, number> = {}
    const missing: string[] = []
    for (const i of ctx.instances) {
      if (this.perInstance === undefined) missing.push(i.id)
      else perInstance[i.id] = this.perInstance
    }
    const reading: Metrics[string] = { at: ctx.now, perInstance, missing }
    if (this.total !== undefined) reading.total = this.total
    return { [this.metric]: reading }
  }
}
