import type { Batch } from './bucket'

/** Batches waiting for their retry time, earliest first (a binary heap on `tries.retryAt`). */
export class RetryQueue {
  readonly #heap: Batch[] = []

  get size (): number { return this.#heap.length }

  /** When the earliest may go; undefined when empty. */
  get nextAt (): number | undefined { return this.#heap.length === 0 ? undefined : at(this.#heap[0]) }

  push (batch: Batch): void {
    const h = this.#heap
    h.push(batch)
    let i = h.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (at(h[parent]) <= at(h[i])) break
      ;[h[parent], h[i]] = [h[i], h[parent]]
      i = parent
    }
  }

  /** Takes the earliest. */
  pop (): Batch | undefined {
    const h = this.#heap
    const top = h[0]
    const last = h.pop()
    if (h.length === 0 || last === undefined) return top
    h[0] = last
    for (let i = 0; ;) {
      const l = 2 * i + 1
      const r = l + 1
      let min = i
      if (l < h.length && at(h[l]) < at(h[min])) min = l
      if (r < h.length && at(h[r]) < at(h[min])) min = r
      if (min === i) break
      ;[h[min], h[i]] = [h[i], h[min]]
      i = min
    }
    return top
  }

  /** Empties it, returning what it held. */
  drain (): Batch[] {
    return this.#heap.splice(0)
  }
}

const at = (b: Batch): number => b.tries?.retryAt ?? 0
