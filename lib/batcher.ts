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
 *
 * A bucket pushed out of the LRU is not even sealed in the call that pushes it:
 * it is remembered, and sealed on that microtask (or before any other seal, so
 * batches keep the order their buckets were closed in). Why: it was made up to
 * maxBuckets calls earlier and its memory has gone cold; reading it was ~28% of
 * a call for a new person (docs/benchmarks.md, ninth round).
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
  /** Pushed out of an LRU and not sealed yet: route, cache, bucket, ... (flat: no object per eviction). */
  #evicted: Array<Route | BucketCache<Bucket> | Bucket> = []
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

  /** Buckets holding at least one item, in the LRU (not those pushed out and waiting for the microtask). */
  buckets (route: Route): number {
    let open = this.#caches.get(route)?.open ?? 0
    const evicted = this.#evicted
    for (let i = 0; i < evicted.length; i += 3) if (evicted[i] === route && (evicted[i + 2] as Bucket).items !== 0) open--
    return open
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
    // The timer is left running when this seal empties every bucket: it then fires once with nothing to
    // do, and is armed again by the next call. Stopping it here cleared and set a timer per request in S1.
    if (bucket.add(c) >= this.#opts.flushAt) this.#seal(route, cache, bucket)
  }

  /** Seals every bucket and hands every batch over now (flush, close, timer). */
  sealAll (): void {
    this.#stopTimer()
    this.#sealEvicted()
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
      const c: BucketCache<Bucket> = cache = new BucketCache<Bucket>(this.#opts.maxBuckets, (bucket) => this.#evict(route, c, bucket),
        (err) => this.#onError(err, 'loading lru-cache (buckets are kept in a Map instead)'))
      this.#caches.set(route, cache)
    }
    return cache
  }

  /** Remembers a bucket the LRU pushed out, without reading it: it is sealed on the microtask. */
  #evict (route: Route, cache: BucketCache<Bucket>, bucket: Bucket): void {
    this.#evicted.push(route, cache, bucket)
    this.#queueBuild()
  }

  #sealEvicted (): void {
    const evicted = this.#evicted
    if (evicted.length === 0) return
    this.#evicted = []
    for (let i = 0; i < evicted.length; i += 3) {
      this.#seal(evicted[i] as Route, evicted[i + 1] as BucketCache<Bucket>, evicted[i + 2] as Bucket)
    }
  }

  #seal (route: Route, cache: BucketCache<Bucket>, bucket: Bucket): void {
    if (bucket.items === 0) return
    // Buckets pushed out earlier are older: theirs go first.
    if (this.#evicted.length !== 0) this.#sealEvicted()
    cache.open--
    this.#items -= bucket.items
    this.#taken.push(bucket.take(route))
    this.#queueBuild()
  }

  #queueBuild (): void {
    if (!this.#buildQueued) {
      this.#buildQueued = true
      queueMicrotask(() => this.#build())
    }
  }

  /** Builds the bodies of the sealed batches, in the order they were sealed, and hands them over. */
  #build (): void {
    this.#buildQueued = false
    this.#sealEvicted()
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
