import { Batcher } from '../lib/batcher'
import type { Batch } from '../lib/bucket'
import { Capturer } from '../lib/capture'
import { createRoutes } from '../lib/route'
import { FakeClock } from './helpers/fake-clock'
import { person } from './helpers/setup'

const { profiles } = createRoutes('/web/projects/pk_test')
const capturer = new Capturer(() => Date.UTC(2026, 10, 26), 32 * 1024)
const microtasks = async (): Promise<void> => { for (let i = 0; i < 3; i++) await Promise.resolve() }

function setup (maxBuckets = 100): { batcher: Batcher, batches: Batch[], errors: Array<[unknown, string]>, clock: FakeClock } {
  const batches: Batch[] = []
  const errors: Array<[unknown, string]> = []
  const clock = new FakeClock()
  const batcher = new Batcher({ flushAt: 30, maxBuckets, flushIntervalMs: 10_000 }, clock, (b) => batches.push(b), (err, where) => errors.push([err, where]))
  return { batcher, batches, errors, clock }
}

const body = (b: Batch): { profile_id?: string, events?: Array<{ event: string, message_id: string }> } => JSON.parse(String(b.body))

describe('Batcher: a full bucket', () => {
  test('is taken out by the call that fills it, and its body is built after that call returns, within the same tick', async () => {
    const { batcher, batches } = setup()
    const pid = person()
    for (let i = 0; i < 30; i++) batcher.add(profiles, capturer.track({ profile_id: pid, event: `e${i}` }))
    // Taken: the bucket is empty and the items are no longer counted as in buckets, but not handed over yet.
    expect(batcher.items).toBe(0)
    expect(batcher.building).toBe(1)
    expect(batches).toHaveLength(0)

    await microtasks()
    expect(batcher.building).toBe(0)
    expect(batches).toHaveLength(1)
    expect(batches[0]).toMatchObject({ items: 30, attempts: 0, settled: false })
    const sent = body(batches[0])
    expect(sent.profile_id).toBe(pid)
    expect(sent.events?.map(e => e.event)).toEqual(Array.from({ length: 30 }, (_, i) => `e${i}`))
    expect(new Set(sent.events?.map(e => e.message_id)).size).toBe(30)
  })

  test('batches sealed in one stretch are handed over in the order they were sealed, with one microtask', async () => {
    const { batcher, batches } = setup(2)
    const [a, b, c] = [person(), person(), person()]
    batcher.add(profiles, capturer.track({ profile_id: a, event: 'a' }))
    batcher.add(profiles, capturer.track({ profile_id: b, event: 'b' }))
    // A third person evicts a (the least recently used); then b fills up.
    batcher.add(profiles, capturer.track({ profile_id: c, event: 'c' }))
    for (let i = 1; i < 30; i++) batcher.add(profiles, capturer.track({ profile_id: b, event: 'b' }))
    expect(batcher.building).toBe(2)
    await microtasks()
    expect(batches.map(x => body(x).profile_id)).toEqual([a, b])
    expect(batches.map(x => x.items)).toEqual([1, 30])
  })

  test('a bucket pushed out of the LRU is sealed after the call that pushed it (its memory has gone cold), and before any later seal', async () => {
    const { batcher, batches } = setup(2)
    const [a, b, c, d] = [person(), person(), person(), person()]
    batcher.add(profiles, capturer.track({ profile_id: a, event: 'a' }))
    batcher.add(profiles, capturer.track({ profile_id: b, event: 'b' }))
    batcher.add(profiles, capturer.track({ profile_id: c, event: 'c' })) // pushes a out
    // Not taken yet: its item still counts as held, but a is no longer one of the LRU's buckets.
    expect(batcher.building).toBe(0)
    expect(batcher.items).toBe(3)
    expect(batcher.buckets(profiles)).toBe(2)
    await microtasks()
    expect(batches.map(x => body(x).profile_id)).toEqual([a])
    expect(batcher.items).toBe(2)
    expect(batcher.buckets(profiles)).toBe(2)

    // In one stretch: d pushes b out, then c fills up; b was closed first, so its batch goes first.
    batcher.add(profiles, capturer.track({ profile_id: d, event: 'd' }))
    for (let i = 1; i < 30; i++) batcher.add(profiles, capturer.track({ profile_id: c, event: 'c' }))
    expect(batcher.building).toBe(2)
    expect(batcher.items).toBe(1)
    await microtasks()
    expect(batches.map(x => body(x).profile_id)).toEqual([a, b, c])
    expect(batches.map(x => x.items)).toEqual([1, 1, 30])

    // And sealAll() (flush, close, the timer) takes one pushed out in the same tick.
    batcher.add(profiles, capturer.track({ profile_id: a, event: 'a' })) // pushes d out (c was used after it)
    batcher.add(profiles, capturer.track({ profile_id: b, event: 'b' })) // pushes c's bucket out, empty since it was sealed
    batcher.sealAll()
    expect(batcher.items).toBe(0)
    expect(batches.slice(3).map(x => body(x).profile_id).sort()).toEqual([a, b, d].sort())
  })

  test('sealAll() hands over everything at once, the batches still being built included', () => {
    const { batcher, batches } = setup()
    const [a, b] = [person(), person()]
    for (let i = 0; i < 30; i++) batcher.add(profiles, capturer.track({ profile_id: a, event: 'full' }))
    batcher.add(profiles, capturer.track({ profile_id: b, event: 'one' }))
    batcher.sealAll()
    expect(batches.map(x => [body(x).profile_id, x.items])).toEqual([[a, 30], [b, 1]])
    expect(batcher.building).toBe(0)
  })

  test('a failure while handing a batch over is reported, never thrown into the host from the microtask, and the other batches still go', async () => {
    const errors: Array<[unknown, string]> = []
    const handed: number[] = []
    const boom = new Error('boom')
    let calls = 0
    const onBatch = (b: Batch): void => { if (calls++ === 0) throw boom; handed.push(b.items) }
    const batcher = new Batcher({ flushAt: 30, maxBuckets: 100, flushIntervalMs: 10_000 }, new FakeClock(), onBatch, (err, where) => errors.push([err, where]))
    for (const pid of [person(), person()]) for (let i = 0; i < 30; i++) batcher.add(profiles, capturer.track({ profile_id: pid, event: 'e' }))
    await microtasks()
    expect(errors).toEqual([[boom, 'building a request']])
    expect(handed).toEqual([30])
  })
})

describe('Bucket lists', () => {
  test('one item, two and three in the three lists build one body in call order, and the bucket fills again after', () => {
    const { batcher, batches } = setup()
    const pid = person()
    const email = 'ada@example.com'
    batcher.add(profiles, capturer.track({ profile_id: pid, event: 'only' }))
    batcher.add(profiles, capturer.identify({ profile_id: pid, email, traits: { n: 1 } }))
    batcher.add(profiles, capturer.identify({ profile_id: pid, traits: { n: 2 } }))
    for (let i = 0; i < 3; i++) batcher.add(profiles, capturer.page({ profile_id: pid, name: `p${i}` }))
    batcher.sealAll()
    batcher.add(profiles, capturer.page({ profile_id: pid, name: 'again' }))
    batcher.sealAll()

    expect(batches.map(b => b.items)).toEqual([6, 1])
    const first = JSON.parse(String(batches[0].body))
    expect(Object.keys(first)).toEqual(['profile_id', 'email', 'events', 'identifies', 'page_views'])
    expect(first).toMatchObject({ profile_id: pid, email })
    expect(first.events.map((e: { event: string }) => e.event)).toEqual(['only'])
    expect(first.identifies.map((e: { traits: { n: number } }) => e.traits.n)).toEqual([1, 2])
    expect(first.page_views.map((e: { name: string }) => e.name)).toEqual(['p0', 'p1', 'p2'])
    // Taken out with its lists: the second batch holds only the new call, under no email.
    const second = JSON.parse(String(batches[1].body))
    expect(second).toEqual({ profile_id: pid, page_views: [expect.objectContaining({ name: 'again' })] })
  })
})

test('Capturer: each item names its own event, whichever names came before it', () => {
  const fresh = new Capturer(() => Date.UTC(2026, 10, 26), 32 * 1024)
  const names = ['Signed Up', 'Signed Up', 'Viewed "Pricing"\n', 'Signed Up', 'Viewed Pricing', 'Signed Up']
  const got = names.map((event) => JSON.parse('{' + fresh.track({ profile_id: person(), event }).json.slice(1)).event)
  expect(got).toEqual(names)
  // A refused name leaves the next call's untouched.
  expect(() => fresh.track({ profile_id: person(), event: 42 as unknown as string })).toThrow(expect.objectContaining({ field: 'event' }))
  expect(JSON.parse('{' + fresh.track({ profile_id: person(), event: 'Signed Up' }).json.slice(1)).event).toBe('Signed Up')
})

describe('Capturer: a profile_id seen on the call before', () => {
  const ids = (c: { key: string, primary?: string, secondary?: string }): unknown[] => [c.key, c.primary, c.secondary]

  test('keys the next call alone the same way, and never lets a call without one through', () => {
    const fresh = new Capturer(() => Date.UTC(2026, 10, 26), 32 * 1024)
    const upper = person().toUpperCase()
    const lower = upper.toLowerCase()
    const noId = (): unknown => fresh.track({ event: 'no id' })
    expect(noId).toThrow(expect.objectContaining({ code: 'KOALA_ERR_INVALID_INPUT', field: 'profile_id or email' }))
    expect(ids(fresh.track({ profile_id: upper, event: 'a' }))).toEqual([lower, lower, undefined])
    expect(ids(fresh.track({ profile_id: upper, event: 'b' }))).toEqual([lower, lower, undefined])
    expect(noId).toThrow(expect.objectContaining({ code: 'KOALA_ERR_INVALID_INPUT', field: 'profile_id or email' }))
    expect(ids(fresh.page({ profile_id: upper, email: 'ada@example.com' }))).toEqual([lower, lower, 'ada@example.com'])
    expect(ids(fresh.track({ profile_id: upper, event: 'c' }))).toEqual([lower, lower, undefined])
  })

  test('is checked again when it was refused, whatever came before', () => {
    const fresh = new Capturer(() => Date.UTC(2026, 10, 26), 32 * 1024)
    const good = person()
    fresh.track({ profile_id: good, event: 'a' })
    for (let i = 0; i < 2; i++) {
      expect(() => fresh.track({ profile_id: 'not-a-uuid', event: 'b' })).toThrow(expect.objectContaining({ field: 'profile_id' }))
    }
    expect(ids(fresh.track({ profile_id: `${good}`, event: 'c' }))).toEqual([good, good, undefined])
  })
})
