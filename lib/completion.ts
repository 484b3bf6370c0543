import type { Batch } from './bucket'
import type { Clock, TimerHandle } from './clock'

export interface FlushResult {
  /** Items from this flush that Koala accepted. */
  delivered: number
  /** Items from this flush dropped for good (rejected, retries spent, ingest disabled). */
  failed: number
  /** Items still being delivered when the deadline passed (they carry on in the background). */
  pending: number
  /** Whether the deadline passed before every batch was settled. */
  timedOut: boolean
}

/**
 * Waits for a set of batches to settle, or for a deadline. One instance backs
 * each flush() (shared by overlapping calls) and close(). Its deadline timer
 * keeps the process alive on purpose: someone is awaiting it.
 */
export class Completion {
  readonly promise: Promise<FlushResult>
  #resolve!: (r: FlushResult) => void
  #batches = 0
  #pendingItems = 0
  #delivered = 0
  #failed = 0
  #done = false
  readonly #clock: Clock
  readonly #timer: TimerHandle

  constructor (clock: Clock, timeoutMs: number) {
    this.#clock = clock
    this.promise = new Promise(resolve => { this.#resolve = resolve })
    this.#timer = clock.setTimeout(() => this.#finish(true), timeoutMs, true)
  }

  get done (): boolean { return this.#done }

  add (batch: Batch): void {
    if (this.#done || batch.settled) return
    const waiters = batch.waiters
    if (waiters === undefined) batch.waiters = this
    else if (waiters === this || (Array.isArray(waiters) && waiters.includes(this))) return
    else if (Array.isArray(waiters)) waiters.push(this)
    else batch.waiters = [waiters, this]
    this.#batches++
    this.#pendingItems += batch.items
  }

  /** Resolves now if nothing it waits for is left. */
  check (): void {
    if (!this.#done && this.#batches === 0) this.#finish(false)
  }

  settle (batch: Batch, delivered: boolean): void {
    if (this.#done) return
    this.#batches--
    this.#pendingItems -= batch.items
    if (delivered) this.#delivered += batch.items
    else this.#failed += batch.items
    this.check()
  }

  #finish (timedOut: boolean): void {
    if (this.#done) return
    this.#done = true
    this.#clock.clearTimeout(this.#timer)
    this.#resolve({ delivered: this.#delivered, failed: this.#failed, pending: this.#pendingItems, timedOut })
  }
}
