import { Bucket, type Batch } from './bucket'
import { BucketCache } from './bucket-cache'
import type { Captured } from './capture'
import type { Clock, TimerHandle } from './clock'
import { conflicts } from './identity'
import type { Route } from './route'

export interface BatcherOptions {
  flushAt: number
  maxBuckets: number
  flushIntervalMs: number
}

/**
 * Groups accepted items into one bucket per person (or account) and hands a
 * bucket to `onBatch` when one of its arrays is full, when it is pushed out of
 * the LRU, or when the single flush timer fires. It never drops anything.
 *
 * A sealed bucket stays in the LRU, empty, and is filled again by the person's
 * next call. Deleting it instead costs far more than the call itself: lru-cache
 * clears its whole arrays (O(maxBuckets)) when its last key is deleted, which
 * is every 30 calls for a process that tracks one person at a time.
 */
export class Batcher {
  readonly #opts: BatcherOptions
  readonly #clock: Clock
  readonly #onBatch: (batch: Batch) => void
  readonly #onTimerError: (error: unknown) => void
  readonly #caches = new Map<Route, BucketCache<Bucket>>()
  #items = 0
  #timer: TimerHandle | undefined

  constructor (opts: BatcherOptions, clock: Clock, onBatch: (batch: Batch) => void, onTimerError: (error: unknown) => void) {
    this.#opts = opts
    this.#clock = clock
    this.#onBatch = onBatch
    this.#onTimerError = onTimerError
  }

  /** Items sitting in buckets (not yet sealed). */
  get items (): number { return this.#items }

  /** Buckets holding at least one item. */
  buckets (route: Route): number {
    return this.#caches.get(route)?.open ?? 0
  }

  add (route: Route, c: Captured): void {
    const cache = this.#cache(route)
    let bucket = cache.get(c.key)
    if (bucket === undefined) {
      bucket = new Bucket(route, c.key, c.primary, c.secondary)
      cache.set(c.key, bucket)
    } else if (conflicts(bucket.secondary, c.secondary)) {
      // A second, different email for this profile_id: send what the bucket
      // holds under the first one, so no request names two people.
      this.#seal(bucket)
    }
    if (bucket.secondary === undefined) bucket.secondary = c.secondary
    if (bucket.items === 0) cache.open++
    this.#items++
    if (bucket.add(c) >= this.#opts.flushAt) {
      this.#seal(bucket)
    } else if (this.#timer === undefined) {
      this.#timer = this.#clock.setTimeout(() => this.#onTimer(), this.#opts.flushIntervalMs)
    }
  }

  /** Seals every bucket now (flush, close, timer). */
  sealAll (): void {
    this.#stopTimer()
    const all: Bucket[] = []
    for (const cache of this.#caches.values()) {
      for (const b of cache.values()) if (b.items > 0) all.push(b)
      cache.clear()
    }
    for (const b of all) this.#seal(b)
  }

  stop (): void {
    this.#stopTimer()
  }

  #cache (route: Route): BucketCache<Bucket> {
    let cache = this.#caches.get(route)
    if (cache === undefined) {
      // An evicted bucket is sent, never dropped.
      cache = new BucketCache<Bucket>(this.#opts.maxBuckets, (bucket) => this.#seal(bucket))
      this.#caches.set(route, cache)
    }
    return cache
  }

  #seal (bucket: Bucket): void {
    if (bucket.items === 0) return
    const cache = this.#caches.get(bucket.route) as BucketCache<Bucket>
    cache.open--
    this.#items -= bucket.items
    if (this.#items === 0) this.#stopTimer()
    this.#onBatch(bucket.seal())
  }

  #onTimer (): void {
    this.#timer = undefined
    try {
      this.sealAll()
    } catch (err) {
      this.#onTimerError(err)
    }
  }

  #stopTimer (): void {
    if (this.#timer !== undefined) {
      this.#clock.clearTimeout(this.#timer)
      this.#timer = undefined
    }
  }
}
