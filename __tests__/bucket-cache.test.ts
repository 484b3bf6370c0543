import { BucketCache, SMALL_CACHE_KEYS } from '../lib/bucket-cache'

interface Item { id: string }

function cache (max: number): { c: BucketCache<Item>, evicted: string[] } {
  const evicted: string[] = []
  return { c: new BucketCache<Item>(max, (v) => evicted.push(v.id)), evicted }
}
const put = (c: BucketCache<Item>, id: string): void => c.set(id, { id })
const ids = (c: BucketCache<Item>): string[] => [...c.values()].map(v => v.id)

test('holds at most max values and evicts the least recently used one', () => {
  const { c, evicted } = cache(3)
  for (const id of ['a', 'b', 'c']) put(c, id)
  expect(c.get('a')).toEqual({ id: 'a' }) // a is now the most recent
  put(c, 'd')
  expect(evicted).toEqual(['b'])
  expect(c.size).toBe(3)
  expect(c.get('b')).toBeUndefined()
  put(c, 'e')
  expect(evicted).toEqual(['b', 'c'])
  expect(ids(c).sort()).toEqual(['a', 'd', 'e'])
})

test(`keeps recency when it moves from a Map into lru-cache past ${SMALL_CACHE_KEYS} keys`, () => {
  const max = SMALL_CACHE_KEYS + 2
  const { c, evicted } = cache(max)
  for (let i = 0; i < SMALL_CACHE_KEYS; i++) put(c, `k${i}`)
  c.get('k0') // k1 is now the least recently used
  c.get('k0') // a hit on the most recent key changes nothing
  for (let i = SMALL_CACHE_KEYS; i < max; i++) put(c, `k${i}`)
  expect(c.size).toBe(max)
  expect(evicted).toEqual([])
  put(c, 'x')
  put(c, 'y')
  expect(evicted).toEqual(['k1', 'k2'])
  expect(c.get('k0')).toEqual({ id: 'k0' })
  expect(c.size).toBe(max)
})

test('clear() empties it without evicting, before and after the move', () => {
  for (const n of [3, SMALL_CACHE_KEYS + 5]) {
    const { c, evicted } = cache(1_000)
    for (let i = 0; i < n; i++) put(c, `k${i}`)
    c.clear()
    expect([n, c.size, ids(c), evicted]).toEqual([n, 0, [], []])
    put(c, 'again')
    expect(c.get('again')).toEqual({ id: 'again' })
  }
})

test('without lru-cache it stays a Map past the first keys: same eviction order, one report', () => {
  let Cache: typeof BucketCache | undefined
  jest.isolateModules(() => {
    jest.doMock('lru-cache', () => { throw new Error("Cannot find module 'lru-cache'") })
    Cache = (jest.requireActual('../lib/bucket-cache') as { BucketCache: typeof BucketCache }).BucketCache
  })
  const evicted: string[] = []
  const loadErrors: unknown[] = []
  const max = SMALL_CACHE_KEYS + 2
  const c = new (Cache as typeof BucketCache)<Item>(max, (v) => evicted.push(v.id), (err) => loadErrors.push(err))
  for (let i = 0; i < max; i++) put(c, `k${i}`)
  c.get('k0') // k1 is now the least recently used
  put(c, 'x')
  put(c, 'y')
  expect(evicted).toEqual(['k1', 'k2'])
  expect(c.size).toBe(max)
  expect(c.get('k0')).toEqual({ id: 'k0' })
  expect(ids(c).slice(-3)).toEqual(['x', 'y', 'k0'])
  expect(loadErrors).toEqual([expect.objectContaining({ message: "Cannot find module 'lru-cache'" })])
  c.clear()
  expect(c.size).toBe(0)
})

test('without lru-cache, any mix of hits and inserts evicts exactly what a least-recently-used list would', () => {
  let Cache: typeof BucketCache | undefined
  jest.isolateModules(() => {
    jest.doMock('lru-cache', () => { throw new Error("Cannot find module 'lru-cache'") })
    Cache = (jest.requireActual('../lib/bucket-cache') as { BucketCache: typeof BucketCache }).BucketCache
  })
  const max = SMALL_CACHE_KEYS + 36
  const evicted: string[] = []
  const c = new (Cache as typeof BucketCache)<Item>(max, (v) => evicted.push(v.id))
  // The reference: keys from least to most recently used.
  const order: string[] = []
  const expected: string[] = []
  let seed = 7
  const rand = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 8) % n }
  for (let i = 0; i < 20_000; i++) {
    const key = `k${rand(300)}`
    if (c.get(key) !== undefined) {
      order.splice(order.indexOf(key), 1)
      order.push(key)
    } else {
      if (order.length >= max) expected.push(order.shift() as string)
      put(c, key)
      order.push(key)
    }
    if (i % 5_000 === 4_999) { // clear() now and then, as sealAll() does
      c.clear()
      order.length = 0
    }
  }
  expect(evicted.length).toBeGreaterThan(1_000)
  expect(evicted).toEqual(expected)
  expect(ids(c)).toEqual(order)
})
