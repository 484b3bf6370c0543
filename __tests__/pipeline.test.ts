import { harness, nextEvent, person, tick, type Harness } from './helpers/setup'

let h: Harness
afterEach(async () => { await h.done() })

const profileIds = (): string[] => h.collector.received.map(r => r.body.profile_id as string)

describe('each bucket has its own deadline', () => {
  test('flushIntervalMs after its own first unsent call, so people who arrive later are sent later', async () => {
    h = await harness({ flushIntervalMs: 10_000 })
    const [early, late] = [person(), person()]
    h.tracker.track({ profile_id: early, event: 'a' })
    h.clock.advance(6_000)
    h.tracker.track({ profile_id: late, event: 'b' })
    h.tracker.track({ profile_id: early, event: 'c' })

    const first = nextEvent(h.tracker, 'sent')
    h.clock.advance(4_000)
    await first
    expect(profileIds()).toEqual([early])
    expect(h.collector.received[0].body.events).toHaveLength(2)
    expect(h.tracker.stats()).toMatchObject({ buckets: 1, bufferedItems: 1 })

    h.clock.advance(5_999)
    await tick()
    expect(h.tracker.stats().requests.sent).toBe(1)
    const second = nextEvent(h.tracker, 'sent')
    h.clock.advance(1)
    await second
    expect(profileIds()).toEqual([early, late])
    expect(h.clock.pending()).toEqual([])
  })

  test('a bucket sent when full starts a new deadline with its next call', async () => {
    h = await harness({ flushIntervalMs: 10_000 })
    const pid = person()
    const full = nextEvent(h.tracker, 'sent')
    for (let i = 0; i < 30; i++) h.tracker.track({ profile_id: pid, event: 'e' })
    await full
    h.clock.advance(7_000)
    h.tracker.track({ profile_id: pid, event: 'later' })
    // The first opening's deadline (at 10 s) passes: it is stale, and the new item waits for its own.
    h.clock.advance(3_000)
    await tick()
    expect(h.tracker.stats()).toMatchObject({ sent: 30, bufferedItems: 1 })
    const next = nextEvent(h.tracker, 'sent')
    h.clock.advance(7_000)
    await next
    expect(h.tracker.stats()).toMatchObject({ sent: 31, bufferedItems: 0, requests: { sent: 2 } })
  })
})

describe('room is made by sending, not by refusing', () => {
  test('past half of maxBufferedItems the oldest buckets go before their deadline, and a steady stream is never refused', async () => {
    h = await harness({ maxBufferedItems: 200, flushIntervalMs: 600_000 })
    const people = Array.from({ length: 400 }, person)
    // 2,000 calls in rounds of 40, as a server makes them: other work (here, I/O) runs between rounds.
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 40; i++) h.tracker.track({ profile_id: people[(round * 40 + i) % people.length], event: 'e' })
      while (h.tracker.stats().bufferedItems > 120) await tick()
    }
    expect(h.tracker.stats()).toMatchObject({ accepted: 2_000, dropped: 0 })
    // The fake clock never moved, so no deadline passed: what went was sent early.
    expect(h.tracker.stats().sent).toBeGreaterThan(1_800)
    expect(await h.tracker.flush()).toMatchObject({ failed: 0, timedOut: false })
    expect(h.collector.stats().profiles.events).toBe(2_000)
  })

  test('below half of the bounds nothing is sent before its deadline', async () => {
    h = await harness({ maxBufferedItems: 200, flushIntervalMs: 600_000 })
    for (let i = 0; i < 99; i++) h.tracker.track({ profile_id: person(), event: 'e' })
    for (let i = 0; i < 5; i++) await tick()
    expect(h.tracker.stats()).toMatchObject({ bufferedItems: 99, buckets: 99, requests: { sent: 0 } })
  })

  test('when Koala does not answer, what cannot be sent is refused as queue_full and counted', async () => {
    h = await harness({ maxBufferedItems: 100, maxConcurrentRequests: 2, flushIntervalMs: 600_000 }, { fault: () => ({ kind: 'hang' }) })
    for (let i = 0; i < 150; i++) {
      h.tracker.track({ profile_id: person(), event: 'e' })
      await tick()
    }
    const s = h.tracker.stats()
    expect(s.droppedBy.queue_full).toBe(50)
    expect(s.accepted).toBe(100)
    expect(s.inFlightRequests).toBe(2)
  })
})

describe('large backlogs are worked off in slices', () => {
  test('flush() of 10,000 people returns before sealing every bucket, lets other work run, and delivers everything once', async () => {
    h = await harness({ flushIntervalMs: 600_000 })
    const people = Array.from({ length: 10_000 }, person)
    for (const profile_id of people) h.tracker.track({ profile_id, event: 'e' })
    const flushing = h.tracker.flush({ timeoutMs: 60_000 })
    expect(h.tracker.stats().buckets).toBeGreaterThan(0)
    let otherWork = 0
    const ticker = setInterval(() => { otherWork++ }, 0)
    const result = await flushing
    clearInterval(ticker)
    expect(result).toEqual({ delivered: 10_000, failed: 0, pending: 0, timedOut: false })
    expect(otherWork).toBeGreaterThan(0)
    expect(new Set(profileIds()).size).toBe(10_000)
  })

  test('a flush() whose last queue entries are stale (buckets already sent when full) resolves once the rest is delivered', async () => {
    h = await harness({ flushIntervalMs: 600_000 })
    for (let i = 0; i < 1_000; i++) h.tracker.track({ profile_id: person(), event: 'e' })
    // 20 full buckets for one person after them: 20 more queue entries, each sealed already.
    const busy = person()
    for (let i = 0; i < 600; i++) h.tracker.track({ profile_id: busy, event: 'e' })
    expect(await h.tracker.flush({ timeoutMs: 60_000 })).toEqual({ delivered: 1_600, failed: 0, pending: 0, timedOut: false })
  })

  test('close() seals a backlog in slices too and waits for all of it', async () => {
    h = await harness({ flushIntervalMs: 600_000 })
    for (let i = 0; i < 5_000; i++) h.tracker.track({ profile_id: person(), event: 'e' })
    expect(await h.tracker.close({ timeoutMs: 60_000 })).toEqual({ delivered: 5_000, failed: 0, abandoned: 0, unknown: 0, spooled: 0, timedOut: false })
    expect(h.collector.stats().profiles.events).toBe(5_000)
    expect(h.tracker.stats()).toMatchObject({ state: 'closed', bufferedItems: 0, buckets: 0 })
  })
})

describe('keys', () => {
  test('a profile_id in capitals keys the same bucket as in lower case, and a bad id after a good one is still refused', async () => {
    h = await harness()
    const pid = person()
    h.tracker.track({ profile_id: pid.toUpperCase(), event: 'a' })
    h.tracker.track({ profile_id: pid.toUpperCase(), event: 'b' })
    h.tracker.track({ profile_id: 'not-a-uuid', event: 'c' })
    h.tracker.page({ profile_id: pid, name: 'Home' })
    expect(h.tracker.stats()).toMatchObject({ accepted: 3, buckets: 1, droppedBy: { invalid: 1 } })
    await h.tracker.flush()
    expect(h.collector.received).toHaveLength(1)
    expect(h.collector.received[0].body).toMatchObject({ profile_id: pid, events: [{ event: 'a' }, { event: 'b' }], page_views: [{ name: 'Home' }] })
  })
})
