/**
 * The memory cap: items and bytes held from acceptance until Koala answers
 * (in buckets, waiting for a slot or a retry, or in flight). A call that does
 * not fit is refused; nothing already accepted is pushed out for it. Refusals
 * happen only when Koala is slow or failing: past half the cap, buckets are
 * sent before their deadline (see Batcher.sealOldestIfPressed).
 */
export class Budget {
  items = 0
  bytes = 0
  readonly #maxItems: number
  readonly #maxBytes: number

  constructor (maxItems: number, maxBytes: number) {
    this.#maxItems = maxItems
    this.#maxBytes = maxBytes
  }

  tryTake (bytes: number): boolean {
    if (this.items >= this.#maxItems || this.bytes + bytes > this.#maxBytes) return false
    this.items++
    this.bytes += bytes
    return true
  }

  /** Takes room whatever the bounds: for what is already read from a shared store (bounded by what one read takes). */
  take (bytes: number): void {
    this.items++
    this.bytes += bytes
  }

  /** Past half of either bound: the oldest buckets are sent before their deadline to make room. */
  get high (): boolean {
    return this.items * 2 >= this.#maxItems || this.bytes * 2 >= this.#maxBytes
  }

  release (items: number, bytes: number): void {
    this.items -= items
    this.bytes -= bytes
  }
}
