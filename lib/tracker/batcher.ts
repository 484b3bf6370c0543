import { LRUCache } from 'lru-cache'
import type { Clock, TimerHandle } from '../shared/clock'
import { Bucket, type Batch } from './bucket'
import type { Budget } from './budget'
import type { Captured } from './capture'
import { conflicts } from './identity'
import type { Route } from './route'

export interface BatcherOptions {
  flushAt: number
  maxBuckets: number
  flushIntervalMs: number
}

/**
 * Entries of the deadline queue looked at per turn of the event loop when many
 * buckets are due at once (a flush(), close(), or a burst's deadlines): sealing
 * one is a few hundred nanoseconds, so a turn stays well under a millisecond.
 */
const SEAL_SLICE = 1000
/** Stale entries dropped from the front of the queue per opening: more than one, so the queue shrinks. */
const STALE_DROPPED_PER_OPENING = 4

/**
 * Groups accepted items into one bucket per person (or account) and hands a
 * bucket over as a Batch when one of its arrays is full, when it is pushed out of
 * the LRU (maxBuckets), or when its own deadline comes: flushIntervalMs after its
 * first unsent item. Deadlines are per bucket (like a Kafka producer's linger),
 * so under steady load sends spread out instead of piling up into one tick.
 *
 * Buckets open in time order, so a queue of openings is also a queue of
 * deadlines: one timer, armed for the oldest. Work that finds many buckets due
 * (a flush of 10,000 people, say) is done SEAL_SLICE entries per turn of the
 * event loop. Sealing only takes a bucket's items: the request body is built by
 * the Sender when a request slot is free.
 *
 * A sealed bucket stays in the LRU, empty, for the person's next call: deleting
 * the last key makes lru-cache clear all its arrays, O(maxBuckets).
 */
export class Batcher {
  readonly #opts: BatcherOptions
  readonly #clock: Clock
  readonly #budget: Budget
  readonly #onBatch: (batch: Batch) => void
  readonly #onError: (error: unknown, where: string) => void
  readonly #caches = new Map<Route, LRUCache<string, Bucket>>()
  readonly #openByRoute = new Map<Route, number>()
  /** Openings in time order: the bucket and which of its openings (an entry whose bucket was sealed since is stale). */
  #due: Bucket[] = []
  #dueOpening: number[] = []
  #head = 0
  /** Entries dropped from the front of the arrays so far: an entry's absolute position is #dropped + its index. */
  #dropped = 0
  /** Every entry before this absolute position is sealed whatever its deadline (flush, close). */
  #sealThrough = 0
  /** Callers of sealAll() waiting for the sweep to pass their position. */
  #waiters: Array<{ through: number, done: () => void }> = []
  #timer: TimerHandle | undefined
  #immediate: NodeJS.Immediate | undefined
  #stopped = false

  constructor (opts: BatcherOptions, clock: Clock, budget: Budget, onBatch: (batch: Batch) => void,
    onError: (error: unknown, where: string) => void) {
    this.#opts = opts
    this.#clock = clock
    this.#budget = budget
    this.#onBatch = onBatch
    this.#onError = onError
  }

  /** Buckets of a route holding at least one item. */
  buckets (route: Route): number { return this.#openByRoute.get(route) ?? 0 }

  /** Holds the item, or throws before it holds anything (the caller gives its room back). */
  add (route: Route, c: Captured): void {
    const cache = this.#cache(route)
    let bucket = cache.get(c.key)
    if (bucket === undefined) {
      bucket = new Bucket(route, c.primary, c.secondary)
      // May push the least recently used bucket out: it is sealed (see #cache), never dropped.
      cache.set(c.key, bucket)
    } else if (conflicts(bucket.secondary, c.secondary, route.caselessSecondary)) {
      // A second, different email for this profile_id: send what the bucket
      // holds under the first one, so no request names two people.
      this.#seal(bucket)
    }
    if (bucket.items === 0) this.#open(bucket)
    if (bucket.secondary === undefined) bucket.secondary = c.secondary
    if (bucket.add(c) >= this.#opts.flushAt) this.#seal(bucket)
  }

  /**
   * Seals every bucket open now, SEAL_SLICE per turn, and calls `done` once they
   * are all handed over (at once when there are few).
   */
  sealAll (done: () => void = () => {}): void {
    const through = this.#dropped + this.#due.length
    this.#sealThrough = Math.max(this.#sealThrough, through)
    this.#waiters.push({ through, done })
    this.#sweep()
  }

  /**
   * Seals the oldest open bucket before its deadline, when what is held is near
   * its bounds (see Budget.high): room is made by sending. Returns whether it did.
   */
  sealOldestIfPressed (): boolean {
    if (!this.#budget.high) return false
    while (this.#head < this.#due.length) {
      const bucket = this.#due[this.#head]
      const live = this.#live(this.#head)
      this.#head++
      if (live) {
        this.#seal(bucket)
        return true
      }
    }
    return false
  }

  /** No more deadlines: close() has sealed everything. */
  stop (): void {
    this.#stopped = true
    this.#unschedule()
  }

  #cache (route: Route): LRUCache<string, Bucket> {
    let cache = this.#caches.get(route)
    if (cache === undefined) {
      cache = new LRUCache<string, Bucket>({
        max: this.#opts.maxBuckets,
        // dispose runs while lru-cache evicts: sealing only takes the bucket's items and never touches the cache.
        dispose: (bucket, _key, reason) => { if (reason === 'evict') this.#seal(bucket) }
      })
      this.#caches.set(route, cache)
    }
    return cache
  }

  #open (bucket: Bucket): void {
    bucket.openedAt = this.#clock.now()
    bucket.opening++
    this.#due.push(bucket)
    this.#dueOpening.push(bucket.opening)
    // Entries at the front whose buckets were sealed since (full, pushed out) are dropped as new ones come:
    // otherwise a queue of them, and their buckets, would wait for their old deadlines (more than buckets are held).
    // (Not the entry just pushed: its bucket takes its first item after this.)
    for (let n = 0; n < STALE_DROPPED_PER_OPENING && this.#head < this.#due.length - 1 && !this.#live(this.#head); n++) this.#head++
    this.#compact()
    this.#openByRoute.set(bucket.route, this.buckets(bucket.route) + 1)
    if (this.#timer === undefined && this.#immediate === undefined && !this.#stopped) {
      this.#timer = this.#clock.setTimeout(() => this.#onTimer(), this.#opts.flushIntervalMs)
    }
  }

  #seal (bucket: Bucket): void {
    if (bucket.items === 0) return
    this.#openByRoute.set(bucket.route, this.buckets(bucket.route) - 1)
    this.#onBatch(bucket.seal())
  }

  #onTimer (): void {
    this.#timer = undefined
    this.#sweep()
  }

  /** Seals what is due or asked for, one slice; schedules the rest, or the timer for the next deadline. */
  #sweep (): void {
    this.#unschedule()
    try {
      const now = this.#clock.now()
      const due = this.#due
      const end = Math.min(due.length, this.#head + SEAL_SLICE)
      while (this.#head < end) {
        const bucket = due[this.#head]
        const live = this.#live(this.#head)
        if (live && this.#dropped + this.#head >= this.#sealThrough && bucket.openedAt + this.#opts.flushIntervalMs > now) break
        this.#head++
        if (live) {
          try {
            this.#seal(bucket)
          } catch (err) {
            // One batch that cannot be handed over must not take the others with it.
            this.#onError(err, 'sealing a bucket')
          }
        }
      }
      // Entries of buckets sealed since (full, pushed out, sent early) set no deadline: past them, a flush()
      // waiting for them may be done.
      let skipped = 0
      while (this.#head < due.length && !this.#live(this.#head) && skipped++ < SEAL_SLICE) this.#head++
      this.#compact()
      this.#release()
    } catch (err) {
      this.#onError(err, 'the flush timer')
    }
    this.#schedule()
  }

  /** What is left: the rest of a sweep on the next turn, or a timer for the next deadline. */
  #schedule (): void {
    if (this.#stopped || this.#head === this.#due.length) return
    const waitMs = !this.#live(this.#head) || this.#dropped + this.#head < this.#sealThrough
      ? 0
      : this.#due[this.#head].openedAt + this.#opts.flushIntervalMs - this.#clock.now()
    if (waitMs <= 0) {
      // Ref'd, though it is the tracker's own work: it lasts only while entries are due, and an unref'd
      // Immediate lets libuv's poll block until the next timer, so each slice would wait for it.
      this.#immediate = setImmediate(() => {
        this.#immediate = undefined
        this.#sweep()
      })
    } else {
      this.#timer = this.#clock.setTimeout(() => this.#onTimer(), waitMs)
    }
  }

  /** Whether the entry at `i` is its bucket's current opening, items unsent. */
  #live (i: number): boolean {
    const bucket = this.#due[i]
    return bucket.opening === this.#dueOpening[i] && bucket.items !== 0
  }

  #unschedule (): void {
    if (this.#timer !== undefined) {
      this.#clock.clearTimeout(this.#timer)
      this.#timer = undefined
    }
    if (this.#immediate !== undefined) {
      clearImmediate(this.#immediate)
      this.#immediate = undefined
    }
  }

  /** Calls the sealAll() callers whose buckets are all handed over. */
  #release (): void {
    const position = this.#dropped + this.#head
    while (this.#waiters.length !== 0 && this.#waiters[0].through <= position) {
      const { done } = this.#waiters.shift() as { done: () => void }
      try {
        done()
      } catch (err) {
        this.#onError(err, 'flush()')
      }
    }
  }

  /** Drops the entries already passed, once they are most of the arrays. */
  #compact (): void {
    if (this.#head < 1024 || this.#head * 2 < this.#due.length) return
    this.#due = this.#due.slice(this.#head)
    this.#dueOpening = this.#dueOpening.slice(this.#head)
    this.#dropped += this.#head
    this.#head = 0
  }
}
