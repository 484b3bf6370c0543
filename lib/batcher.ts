import { LRUCache } from 'lru-cache'
import { Bucket, type Batch } from './bucket'
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
 */
export class Batcher {
  readonly #opts: BatcherOptions
  readonly #clock: Clock
  readonly #onBatch: (batch: Batch) => void
  readonly #onTimerError: (error: unknown) => void
  readonly #caches = new Map<Route, LRUCache<string, Bucket>>()
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

  buckets (route: Route): number {
    return this.#caches.get(route)?.size ?? 0
  }

  add (route: Route, c: Captured): void {
    const cache = this.#cache(route)
    let bucket = cache.get(c.key)
    if (bucket !== undefined && conflicts(bucket.secondary, c.secondary)) {
      // A second, different email for this profile_id: send what the bucket
      // holds under the first one, so no request names two people.
      this.#seal(bucket, true)
      bucket = undefined
    }
    if (bucket === undefined) {
      bucket = new Bucket(route, c.key, c.primary, c.secondary)
      cache.set(c.key, bucket)
    } else if (bucket.secondary === undefined && c.secondary !== undefined) {
      bucket.secondary = c.secondary
    }
    this.#items++
    if (bucket.add(c) >= this.#opts.flushAt) {
      this.#seal(bucket, true)
    } else if (this.#timer === undefined) {
      this.#timer = this.#clock.setTimeout(() => this.#onTimer(), this.#opts.flushIntervalMs)
    }
  }

  /** Seals every bucket now (flush, close, timer). */
  sealAll (): void {
    this.#stopTimer()
    const all: Bucket[] = []
    for (const cache of this.#caches.values()) {
      for (const b of cache.values()) all.push(b)
      cache.clear()
    }
    for (const b of all) this.#seal(b, false)
  }

  stop (): void {
    this.#stopTimer()
  }

  #cache (route: Route): LRUCache<string, Bucket> {
    let cache = this.#caches.get(route)
    if (cache === undefined) {
      cache = new LRUCache<string, Bucket>({
        max: this.#opts.maxBuckets,
        // disposeAfter runs once the cache is consistent again; an evicted bucket is sent, never dropped.
        disposeAfter: (bucket, _key, reason) => { if (reason === 'evict') this.#seal(bucket, false) }
      })
      this.#caches.set(route, cache)
    }
    return cache
  }

  #seal (bucket: Bucket, remove: boolean): void {
    if (remove) this.#caches.get(bucket.route)?.delete(bucket.key)
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
