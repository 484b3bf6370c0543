import type { Clock, TimerHandle } from '../shared/clock'

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
 * Waits, until a deadline, for the batches that were unsettled when it began:
 * those numbered up to `upTo` (see Sender.watch). One backs each flush() call
 * and close(). It holds counts, never the batches, so a flush that times out
 * during an outage leaves nothing behind. Its deadline timer keeps the process
 * alive on purpose: someone is awaiting it.
 */
export class Completion {
  readonly promise: Promise<FlushResult>
  /** The highest batch number it waits for. */
  upTo = 0
  #resolve!: (r: FlushResult) => void
  #batches = 0
  #pendingItems = 0
  #delivered = 0
  #failed = 0
  #done = false
  /** Still taking the batches sealed for it (see Sender.watch). */
  #collecting = false
  #onDone: (() => void) | undefined
  readonly #clock: Clock
  readonly #timer: TimerHandle

  constructor (clock: Clock, timeoutMs: number) {
    this.#clock = clock
    this.promise = new Promise(resolve => { this.#resolve = resolve })
    this.#timer = clock.setTimeout(() => this.#finish(true), timeoutMs, true)
  }

  get done (): boolean { return this.#done }

  /**
   * Starts waiting for `batches` unsettled batches (`items` items), numbered up to `upTo`; while
   * `collecting`, each batch added later is waited for too.
   */
  begin (upTo: number, batches: number, items: number, onDone: () => void, collecting: boolean): void {
    this.upTo = upTo
    this.#batches = batches
    this.#pendingItems = items
    this.#onDone = onDone
    this.#collecting = collecting
    if (batches === 0 && !collecting) this.#finish(false)
  }

  /** A batch enqueued while collecting, numbered `seq`. */
  add (seq: number, items: number): void {
    if (this.#done) return
    this.upTo = seq
    this.#batches++
    this.#pendingItems += items
  }

  /** No more batches are added: it finishes once those it has settle. */
  stopCollecting (): void {
    this.#collecting = false
    if (this.#batches === 0) this.#finish(false)
  }

  /** One of its batches settled. */
  settle (items: number, delivered: boolean): void {
    if (this.#done) return
    this.#batches--
    this.#pendingItems -= items
    if (delivered) this.#delivered += items
    else this.#failed += items
    if (this.#batches === 0 && !this.#collecting) this.#finish(false)
  }

  #finish (timedOut: boolean): void {
    if (this.#done) return
    this.#done = true
    this.#clock.clearTimeout(this.#timer)
    this.#onDone?.()
    this.#onDone = undefined
    this.#resolve({ delivered: this.#delivered, failed: this.#failed, pending: this.#pendingItems, timedOut })
  }
}
