import type { BodySlabs } from './body-slabs'
import { Bucket, toBatch, type Batch, type Taken } from './bucket'
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
 *
 * Sealing only takes the items out of the bucket; their request body is built
 * on a microtask, once the caller's code has returned (or at once by sealAll).
 * The body costs more than the call that fills a bucket, and it is not needed
 * sooner: the Sender dispatches on a microtask too. So no track() call pays for
 * a whole request, and a request handler is not slowed by the one that does.
 */
export class Batcher {
  readonly #opts: BatcherOptions
  readonly #clock: Clock
  readonly #onBatch: (batch: Batch) => void
  readonly #onError: (error: unknown, where: string) => void
  readonly #slabs: BodySlabs | undefined
  readonly #caches = new Map<Route, BucketCache<Bucket>>()
  #items = 0
  #timer: TimerHandle | undefined
  /** Sealed, their bodies not built yet. */
  #taken: Taken[] = []
  #buildQueued = false

  /** `slabs`: build bodies as bytes in them (for the built-in transport); strings without. */
  constructor (opts: BatcherOptions, clock: Clock, onBatch: (batch: Batch) => void, onError: (error: unknown, where: string) => void,
    slabs?: BodySlabs) {
    this.#opts = opts
    this.#clock = clock
    this.#onBatch = onBatch
    this.#onError = onError
    this.#slabs = slabs
  }

  /** Items sitting in buckets (not yet sealed). */
  get items (): number { return this.#items }

  /** Batches sealed whose bodies are not built yet (they are handed over within the current tick). */
  get building (): number { return this.#taken.length }

  /** Buckets holding at least one item. */
  buckets (route: Route): number {
    return this.#caches.get(route)?.open ?? 0
  }

  /** Holds the item, or throws before it holds anything (the caller gives its room back). */
  add (route: Route, c: Captured): void {
    // Armed first: a clock that throws must not leave an item held for a call reported as dropped.
    if (this.#timer === undefined) this.#timer = this.#clock.setTimeout(() => this.#onTimer(), this.#opts.flushIntervalMs)
    const cache = this.#cache(route)
    let bucket = cache.get(c.key)
    if (bucket === undefined) {
      bucket = new Bucket(c.primary, c.secondary)
      cache.set(c.key, bucket)
    } else if (conflicts(bucket.secondary, c.secondary, route.caselessSecondary)) {
      // A second, different email for this profile_id: send what the bucket
      // holds under the first one, so no request names two people.
      this.#seal(route, cache, bucket)
    }
    if (bucket.secondary === undefined) bucket.secondary = c.secondary
    if (bucket.items === 0) cache.open++
    this.#items++
    if (bucket.add(c) >= this.#opts.flushAt) this.#seal(route, cache, bucket)
    // Only this call's seals (its bucket, a conflict, an eviction) can have emptied every bucket.
    if (this.#items === 0) this.#stopTimer()
  }

  /** Seals every bucket and hands every batch over now (flush, close, timer). */
  sealAll (): void {
    this.#stopTimer()
    for (const [route, cache] of this.#caches) {
      // Sealing takes a bucket's items and never touches the cache: safe while iterating it.
      for (const b of cache.values()) this.#seal(route, cache, b)
      cache.clear()
    }
    this.#build()
  }

  stop (): void {
    this.#stopTimer()
  }

  #cache (route: Route): BucketCache<Bucket> {
    let cache = this.#caches.get(route)
    if (cache === undefined) {
      // An evicted bucket is sent, never dropped.
      const c: BucketCache<Bucket> = cache = new BucketCache<Bucket>(this.#opts.maxBuckets, (bucket) => this.#seal(route, c, bucket),
        (err) => this.#onError(err, 'loading lru-cache (buckets are kept in a Map instead)'))
      this.#caches.set(route, cache)
    }
    return cache
  }

  #seal (route: Route, cache: BucketCache<Bucket>, bucket: Bucket): void {
    if (bucket.items === 0) return
    cache.open--
    this.#items -= bucket.items
    this.#taken.push(bucket.take(route))
    if (!this.#buildQueued) {
      this.#buildQueued = true
      queueMicrotask(() => this.#build())
    }
  }

  /** Builds the bodies of the sealed batches, in the order they were sealed, and hands them over. */
  #build (): void {
    this.#buildQueued = false
    const taken = this.#taken
    if (taken.length === 0) return
    this.#taken = []
    // One batch that cannot be built or handed over must not take the others with it.
    for (const t of taken) {
      try {
        this.#onBatch(toBatch(t, this.#slabs))
      } catch (err) {
        this.#onError(err, 'building a request')
      }
    }
  }

  #onTimer (): void {
    this.#timer = undefined
    try {
      this.sealAll()
    } catch (err) {
      this.#onError(err, 'the flush timer')
    }
  }

  #stopTimer (): void {
    if (this.#timer !== undefined) {
      this.#clock.clearTimeout(this.#timer)
      this.#timer = undefined
    }
  }
}
