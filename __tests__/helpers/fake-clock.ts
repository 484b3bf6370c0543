import type { Clock, TimerHandle } from '../../lib/shared/clock'

interface Timer { id: number, at: number, fn: () => void, ms: number, keepAlive: boolean }

/**
 * A manual clock: time moves only when a test calls advance()/next().
 * Records every delay asked for, so tests can assert on waits.
 */
export class FakeClock implements Clock {
  #now: number
  #seq = 0
  readonly #timers = new Map<number, Timer>()
  /** Every setTimeout delay requested, in order. */
  readonly requested: Array<{ ms: number, keepAlive: boolean }> = []

  constructor (start = Date.UTC(2026, 10, 26, 12, 0, 0)) {
    this.#now = start
  }

  now (): number { return this.#now }

  setTimeout (fn: () => void, ms: number, keepAlive = false): TimerHandle {
    const id = ++this.#seq
    this.#timers.set(id, { id, at: this.#now + Math.max(0, ms), fn, ms, keepAlive })
    this.requested.push({ ms, keepAlive })
    return id
  }

  clearTimeout (handle: TimerHandle): void {
    this.#timers.delete(handle as number)
  }

  /** Timers not yet fired, soonest first. */
  pending (): Array<{ inMs: number, ms: number, keepAlive: boolean }> {
    return [...this.#timers.values()].sort((a, b) => a.at - b.at || a.id - b.id)
      .map(t => ({ inMs: t.at - this.#now, ms: t.ms, keepAlive: t.keepAlive }))
  }

  /** Moves time forward by ms, firing due timers in order. */
  advance (ms: number): void {
    const end = this.#now + ms
    for (;;) {
      const t = this.#soonest()
      if (t === undefined || t.at > end) break
      this.#timers.delete(t.id)
      this.#now = t.at
      t.fn()
    }
    this.#now = end
  }

  /** Jumps to the soonest timer (optionally only background ones) and fires it; returns the jump in ms, or undefined. */
  next (filter?: (t: { ms: number, keepAlive: boolean }) => boolean): number | undefined {
    const t = this.#soonest(filter)
    if (t === undefined) return undefined
    const jump = t.at - this.#now
    this.#timers.delete(t.id)
    this.#now = t.at
    t.fn()
    return jump
  }

  #soonest (filter?: (t: Timer) => boolean): Timer | undefined {
    let best: Timer | undefined
    for (const t of this.#timers.values()) {
      if (filter !== undefined && !filter(t)) continue
      if (best === undefined || t.at < best.at || (t.at === best.at && t.id < best.id)) best = t
    }
    return best
  }
}
