import type { LRUCache } from 'lru-cache'

/**
 * Keys held in a plain Map before lru-cache is loaded. Requiring lru-cache
 * costs several milliseconds of a cold start (its module, perf_hooks,
 * diagnostics_channel), and most processes hold few buckets at first.
 */
export const SMALL_CACHE_KEYS = 64

/**
 * A least-recently-used map of buckets bounded by `max`, backed by lru-cache.
 * `onEvict` runs while lru-cache is evicting: it must not use this cache.
 * While it holds few keys it is a Map kept in recency order (a hit moves its
 * key to the end), so nothing changes when it moves into an LRUCache: the
 * entries go over oldest first and the same key is evicted either way.
 */
export class BucketCache<V extends {}> {
  /** Values the owner counts as open (it keeps this up to date). */
  open = 0
  readonly #max: number
  readonly #onEvict: (value: V) => void
  readonly #onLoadError: (error: unknown) => void
  /** lru-cache could not be loaded: the Map stays, evicting its oldest key itself. */
  #mapOnly = false
  #small: Map<string, V> | undefined = new Map()
  /** The most recently used key of #small: a hit on it needs no move. */
  #last: string | undefined
  #lru: LRUCache<string, V> | undefined
  /**
   * Without lru-cache: the Map's keys from the oldest, kept across evictions. A fresh
   * iterator per eviction would step over every key deleted before it (~4.7 µs a call at
   * 10,000 keys); this one resumes where it stopped, and a key moved to the end is met again there.
   */
  #oldest: IterableIterator<string> | undefined

  /** `onLoadError` hears once that lru-cache could not be loaded (a broken install or bundle). */
  constructor (max: number, onEvict: (value: V) => void, onLoadError: (error: unknown) => void = () => {}) {
    this.#max = max
    this.#onEvict = onEvict
    this.#onLoadError = onLoadError
  }

  get size (): number {
    return this.#small !== undefined ? this.#small.size : (this.#lru as LRUCache<string, V>).size
  }

  get (key: string): V | undefined {
    const small = this.#small
    if (small === undefined) return (this.#lru as LRUCache<string, V>).get(key)
    const value = small.get(key)
    if (value !== undefined && key !== this.#last) {
      small.delete(key)
      small.set(key, value)
      this.#last = key
    }
    return value
  }

  /** Adds a key that is not held; when full, the least recently used value is evicted first. */
  set (key: string, value: V): void {
    const small = this.#small
    if (small !== undefined && small.size < SMALL_CACHE_KEYS && small.size < this.#max) {
      small.set(key, value)
      this.#last = key
      return
    }
    const lru = this.#large()
    if (lru !== undefined) return void lru.set(key, value)
    const map = small as Map<string, V>
    if (map.size >= this.#max) {
      // Recency order: the first key is the least recently used.
      this.#oldest ??= map.keys()
      let next = this.#oldest.next()
      if (next.done === true) next = (this.#oldest = map.keys()).next()
      const oldest = next.value as string
      const evicted = map.get(oldest) as V
      map.delete(oldest)
      this.#onEvict(evicted)
    }
    map.set(key, value)
    this.#last = key
  }

  values (): IterableIterator<V> {
    return this.#small !== undefined ? this.#small.values() : (this.#lru as LRUCache<string, V>).values()
  }

  clear (): void {
    if (this.#small !== undefined) {
      this.#small.clear()
      this.#last = undefined
      this.#oldest = undefined
    } else {
      (this.#lru as LRUCache<string, V>).clear()
    }
  }

  #large (): LRUCache<string, V> | undefined {
    if (this.#lru === undefined && !this.#mapOnly) {
      let LRUCache: typeof import('lru-cache').LRUCache
      try {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        LRUCache = (require('lru-cache') as typeof import('lru-cache')).LRUCache
      } catch (err) {
        // A bundle or install without lru-cache must not cost the calls: the Map does the same job.
        this.#mapOnly = true
        this.#onLoadError(err)
        return undefined
      }
      this.#lru = new LRUCache<string, V>({
        max: this.#max,
        // dispose, not disposeAfter (which queues and costs twice as much per eviction):
        // onEvict only takes the bucket's items and never touches this cache.
        dispose: (value, _key, reason) => { if (reason === 'evict') this.#onEvict(value) }
      })
      for (const [k, v] of this.#small as Map<string, V>) this.#lru.set(k, v)
      this.#small = undefined
      this.#last = undefined
    }
    return this.#lru
  }
}
