import type { Clock } from '../lib/shared/clock'
import { InputError, RefusedError } from '../lib/shared/errors'
import { VERSION } from '../lib/shared/version'
import { harness, nextEvent, person, tick, UUID_V4, type Harness } from './helpers/setup'

let h: Harness
afterEach(async () => { await h.done() })

const START_ISO = '2026-11-26T12:00:00.000Z'

describe('request bodies', () => {
  test('one person\'s track, identify and page go in one exact body with the User-Agent', async () => {
    h = await harness()
    const pid = person()
    h.tracker.track({ profile_id: pid, email: 'ada@example.com', event: 'Signed Up', properties: { plan: 'pro', seats: 3 } })
    h.tracker.identify({ profile_id: pid, traits: { email: 'ada@example.com', vip: true } })
    h.tracker.page({ profile_id: pid, name: 'Pricing', properties: { path: '/pricing' } })
    const result = await h.tracker.flush()

    expect(result).toEqual({ delivered: 3, failed: 0, pending: 0, timedOut: false })
    expect(h.collector.received).toHaveLength(1)
    const [got] = h.collector.received
    expect(got.projectKey).toBe('pk_test')
    expect(got.userAgent).toBe(`koala-tracker/${VERSION}`)
    expect(got.body).toEqual({
      profile_id: pid,
      email: 'ada@example.com',
      events: [{ message_id: expect.stringMatching(UUID_V4), type: 'track', event: 'Signed Up', properties: { plan: 'pro', seats: 3 }, sent_at: START_ISO }],
      identifies: [{ type: 'identify', traits: { email: 'ada@example.com', vip: true }, sent_at: START_ISO }],
      page_views: [{ message_id: expect.stringMatching(UUID_V4), type: 'page', name: 'Pricing', properties: { path: '/pricing' }, sent_at: START_ISO }]
    })
  })

  test('an email-only identify is sent with the email at the top level and no empty arrays', async () => {
    h = await harness()
    h.tracker.identify({ email: 'grace@example.com', traits: { role: 'admin' } })
    await h.tracker.flush()
    expect(h.collector.received[0].body).toEqual({
      email: 'grace@example.com',
      identifies: [{ type: 'identify', traits: { role: 'admin' }, sent_at: START_ISO }]
    })
  })

  test('absent properties and traits are sent as empty objects; null counts as absent', async () => {
    h = await harness()
    const pid = person()
    h.tracker.track({ profile_id: pid, event: 'Ping', properties: null, email: null })
    h.tracker.identify({ profile_id: pid })
    h.tracker.page({ profile_id: pid })
    await h.tracker.flush()
    const body = h.collector.received[0].body as Record<string, Array<Record<string, unknown>>>
    expect(body.events[0].properties).toEqual({})
    expect(body.identifies[0].traits).toEqual({})
    expect(body.page_views[0]).not.toHaveProperty('name')
    expect(body.page_views[0].properties).toEqual({})
    expect(body).not.toHaveProperty('email')
  })
})

describe('size trigger', () => {
  test('the 30th call for a person sends at once; the 31st starts a new request', async () => {
    h = await harness()
    const pid = person()
    for (let i = 1; i <= 29; i++) h.tracker.track({ profile_id: pid, event: `e${i}` })
    await tick()
    expect(h.tracker.stats().requests.sent).toBe(0)

    const sent = nextEvent(h.tracker, 'sent')
    h.tracker.track({ profile_id: pid, event: 'e30' })
    await expect(sent).resolves.toMatchObject({ items: 30, status: 200, attempts: 1 })
    const first = h.collector.received[0].body as { events: Array<{ event: string }> }
    expect(first.events.map(e => e.event)).toEqual(Array.from({ length: 30 }, (_, i) => `e${i + 1}`))

    h.tracker.track({ profile_id: pid, event: 'e31' })
    expect(h.tracker.stats()).toMatchObject({ bufferedItems: 1, buckets: 1, sent: 30 })
    await h.tracker.flush()
    expect(h.collector.received).toHaveLength(2)
    expect((h.collector.received[1].body as { events: unknown[] }).events).toHaveLength(1)
    expect(h.clock.pending().filter(t => !t.keepAlive)).toEqual([]) // the clock saw no wait: it was never advanced
  })

  test('each array triggers on its own: 29 of each type wait, the 30th page view sends all of them', async () => {
    h = await harness()
    const pid = person()
    for (let i = 0; i < 29; i++) {
      h.tracker.track({ profile_id: pid, event: 'e' })
      h.tracker.identify({ profile_id: pid, traits: { i } })
      h.tracker.page({ profile_id: pid, name: 'p' })
    }
    await tick()
    expect(h.tracker.stats().requests.sent).toBe(0)
    h.tracker.page({ profile_id: pid, name: 'p' })
    await h.collector.waitFor(() => h.collector.stats().accepted === 1)
    expect(h.collector.stats().profiles).toMatchObject({ events: 29, identifies: 29, page_views: 30 })
  })
})

describe('flush timer', () => {
  test('sends what is buffered flushIntervalMs after the first call, then leaves no timer behind', async () => {
    h = await harness({ flushIntervalMs: 10_000 })
    h.tracker.track({ profile_id: person(), event: 'a' })
    h.tracker.track({ profile_id: person(), event: 'b' })
    expect(h.clock.pending()).toEqual([{ inMs: 10_000, ms: 10_000, keepAlive: false }])

    h.clock.advance(9_999)
    await tick()
    expect(h.tracker.stats().requests.sent).toBe(0)

    const sent = [nextEvent(h.tracker, 'sent'), nextEvent(h.tracker, 'sent', () => h.tracker.stats().sent === 2)]
    h.clock.advance(1)
    await Promise.all(sent)
    expect(h.collector.stats().accepted).toBe(2)
    expect(h.tracker.stats()).toMatchObject({ sent: 2, bufferedItems: 0, buckets: 0 })
    expect(h.clock.pending()).toEqual([])
  })

  test('a size-triggered send that empties every bucket leaves the timer to fire once, with nothing to send, and not again', async () => {
    h = await harness({ flushIntervalMs: 10_000 })
    const pid = person()
    const sent = nextEvent(h.tracker, 'sent')
    for (let i = 0; i < 30; i++) h.tracker.track({ profile_id: pid, event: 'e' })
    // Not cleared and set again per request (see Batcher.add): it stays as the first call armed it.
    expect(h.clock.pending()).toEqual([{ inMs: 10_000, ms: 10_000, keepAlive: false }])
    await sent
    h.clock.advance(10_000)
    await tick()
    expect(h.clock.pending()).toEqual([])
    expect(h.tracker.stats()).toMatchObject({ sent: 30, bufferedItems: 0, requests: { sent: 1 } })

    // The next call arms it again, for its own flushIntervalMs.
    h.tracker.track({ profile_id: pid, event: 'e' })
    expect(h.clock.pending()).toEqual([{ inMs: 10_000, ms: 10_000, keepAlive: false }])
  })
})

test('the call that fills a bucket returns before its request body is built; stats count the batch in the meantime', async () => {
  h = await harness()
  const pid = person()
  const sent = nextEvent(h.tracker, 'sent')
  for (let i = 0; i < 30; i++) h.tracker.track({ profile_id: pid, event: 'e' })
  expect(h.tracker.stats()).toMatchObject({ bufferedItems: 30, buckets: 0, waitingBatches: 1, inFlightRequests: 0, requests: { sent: 0 } })
  await sent
  expect(h.collector.stats().profiles.events).toBe(30)
  expect(h.tracker.stats()).toMatchObject({ sent: 30, bufferedItems: 0, waitingBatches: 0 })
})

describe('bucket bound', () => {
  test('maxBuckets holds that many people; the least recently used bucket is sent, never dropped', async () => {
    h = await harness({ maxBuckets: 3 })
    const [a, b, c, d, e] = Array.from({ length: 5 }, person)
    for (const p of [a, b, c]) h.tracker.track({ profile_id: p, event: 'first' })
    h.tracker.track({ profile_id: a, event: 'again' }) // a is now the most recently used
    const evicted = nextEvent(h.tracker, 'sent')
    h.tracker.track({ profile_id: d, event: 'first' }) // pushes b out
    expect(h.tracker.stats().buckets).toBe(3)
    await evicted
    expect(h.collector.received.map(r => r.body.profile_id)).toEqual([b])
    h.tracker.track({ profile_id: e, event: 'first' }) // pushes c out
    expect(await h.tracker.flush()).toMatchObject({ delivered: 5, failed: 0 })
    const sent = h.collector.received.map(r => r.body.profile_id)
    expect(sent.slice(0, 2)).toEqual([b, c])
    expect(sent.slice(2).sort()).toEqual([a, d, e].sort())
    expect(h.tracker.stats()).toMatchObject({ accepted: 6, sent: 6, failed: 0 })
  })
})

describe('one person per request', () => {
  test('interleaved calls for 40 people arrive as 40 requests, each holding only its own person\'s items', async () => {
    h = await harness()
    const people = Array.from({ length: 40 }, (_, i) => ({ profile_id: person(), email: i % 2 === 0 ? `p${i}@example.com` : undefined }))
    for (let round = 0; round < 5; round++) {
      for (const p of people) h.tracker.track({ ...p, event: 'Viewed', properties: { owner: p.profile_id } })
    }
    await h.tracker.flush()
    expect(h.collector.received).toHaveLength(40)
    for (const { body } of h.collector.received) {
      const b = body as { profile_id: string, email?: string, events: Array<{ properties: { owner: string } }> }
      expect(b.events).toHaveLength(5)
      for (const e of b.events) expect(e.properties.owner).toBe(b.profile_id)
      const p = people.find(x => x.profile_id === b.profile_id)
      expect(b.email).toBe(p?.email)
    }
  })

  test('a second, different email for one profile_id sends the first bucket before starting another', async () => {
    h = await harness()
    const pid = person()
    h.tracker.track({ profile_id: pid, email: 'first@example.com', event: 'a' })
    h.tracker.track({ profile_id: pid, event: 'b' }) // rides with first@
    h.tracker.track({ profile_id: pid, email: 'second@example.com', event: 'c' })
    h.tracker.track({ profile_id: pid, email: 'SECOND@example.com', event: 'd' }) // same person, other case
    await h.tracker.flush()
    const bodies = h.collector.received.map(r => r.body as { email: string, events: Array<{ event: string }> })
    expect(bodies.map(b => [b.email, b.events.map(e => e.event)])).toEqual([
      ['first@example.com', ['a', 'b']],
      ['second@example.com', ['c', 'd']]
    ])
  })

  test('an email learnt later joins the profile_id bucket; email-only calls keep their own bucket', async () => {
    h = await harness()
    const pid = person()
    h.tracker.page({ profile_id: pid, name: 'Home' })
    h.tracker.identify({ profile_id: pid, email: 'lin@example.com' })
    h.tracker.track({ email: 'Lin@Example.com', event: 'Invoice Paid' })
    await h.tracker.flush()
    const bodies = h.collector.received.map(r => r.body)
    expect(bodies).toHaveLength(2)
    expect(bodies).toContainEqual(expect.objectContaining({ profile_id: pid, email: 'lin@example.com', page_views: [expect.anything()], identifies: [expect.anything()] }))
    expect(bodies).toContainEqual({ email: 'Lin@Example.com', events: [expect.objectContaining({ event: 'Invoice Paid' })] })
  })

  test('a bucket emptied by a size-triggered send starts again with the next call\'s email only', async () => {
    h = await harness()
    const pid = person()
    for (let i = 0; i < 30; i++) h.tracker.track({ profile_id: pid, email: 'first@example.com', event: `e${i}` })
    h.tracker.track({ profile_id: pid, event: 'after' }) // no email: the new request names none
    h.tracker.track({ profile_id: pid, email: 'other@example.com', event: 'later' }) // no conflict with a sent email
    await h.tracker.flush()
    const bodies = h.collector.received.map(r => r.body as { email?: string, events: Array<{ event: string }> })
    expect(bodies.map(b => [b.email, b.events.length])).toEqual([['first@example.com', 30], ['other@example.com', 2]])
    expect(h.tracker.stats()).toMatchObject({ buckets: 0, bufferedItems: 0, sent: 32 })
  })

  test('when maxBuckets people are buffered, the least recently used one is sent early, never dropped', async () => {
    h = await harness({ maxBuckets: 2 })
    const [a, b, c] = [person(), person(), person()]
    h.tracker.track({ profile_id: a, event: 'a1' })
    h.tracker.track({ profile_id: b, event: 'b1' })
    h.tracker.track({ profile_id: a, event: 'a2' }) // b is now the least recently used
    const sent = nextEvent(h.tracker, 'sent')
    h.tracker.track({ profile_id: c, event: 'c1' })
    await sent
    expect(h.collector.received.map(r => r.body)).toEqual([{ profile_id: b, events: [expect.objectContaining({ event: 'b1' })] }])
    expect(h.tracker.stats()).toMatchObject({ buckets: 2, bufferedItems: 3, dropped: 0 })
    await h.tracker.flush()
    expect(h.collector.received.map(r => (r.body as { events: unknown[] }).events.length).sort()).toEqual([1, 1, 2])
  })

  test('profile_ids are matched without regard to case and sent in lower case', async () => {
    h = await harness()
    const pid = person()
    const mixed = pid.replace(/[a-f]/, (c) => c.toUpperCase())
    h.tracker.track({ profile_id: pid.toUpperCase(), event: 'a' })
    h.tracker.track({ profile_id: pid, event: 'b' })
    h.tracker.track({ profile_id: mixed, event: 'c' })
    await h.tracker.flush()
    expect(h.collector.received).toHaveLength(1)
    expect(h.collector.received[0].body.profile_id).toBe(pid)
    expect((h.collector.received[0].body as { events: unknown[] }).events).toHaveLength(3)
  })
})

describe('ids and timestamps', () => {
  test('message_id and sent_at are generated unless given; a Date is accepted', async () => {
    h = await harness()
    const pid = person()
    h.tracker.track({ profile_id: pid, event: 'generated' })
    h.clock.advance(1234)
    h.tracker.track({ profile_id: pid, event: 'later' })
    h.tracker.track({ profile_id: pid, event: 'given', message_id: 'order-42', sent_at: '2024-01-02T03:04:05.678Z' })
    h.tracker.page({ profile_id: pid, message_id: 'pv-1', sent_at: new Date('2024-05-06T07:08:09.010+02:00') })
    h.tracker.identify({ profile_id: pid, sent_at: new Date(Date.UTC(2023, 0, 1)) })
    await h.tracker.flush()
    const b = h.collector.received[0].body as Record<string, Array<Record<string, string>>>
    expect(b.events[0].message_id).toMatch(UUID_V4)
    expect(b.events[0].sent_at).toBe(START_ISO)
    expect(b.events[1].sent_at).toBe('2026-11-26T12:00:01.234Z')
    expect(b.events[0].message_id).not.toBe(b.events[1].message_id)
    expect(b.events[2]).toMatchObject({ message_id: 'order-42', sent_at: '2024-01-02T03:04:05.678Z' })
    expect(b.page_views[0]).toMatchObject({ message_id: 'pv-1', sent_at: '2024-05-06T05:08:09.010Z' })
    expect(b.identifies[0].sent_at).toBe('2023-01-01T00:00:00.000Z')
  })
})

describe('capture at call time', () => {
  test('mutating properties or traits after the call does not change what is sent', async () => {
    h = await harness()
    const pid = person()
    const properties = { plan: 'pro', nested: { seats: 1 }, tags: ['a'] }
    const traits = { name: 'Ada' }
    h.tracker.track({ profile_id: pid, event: 'Upgraded', properties })
    h.tracker.identify({ profile_id: pid, traits })
    properties.plan = 'free'
    properties.nested.seats = 99
    properties.tags.push('b')
    traits.name = 'Eve'
    await h.tracker.flush()
    const b = h.collector.received[0].body as Record<string, Array<Record<string, unknown>>>
    expect(b.events[0].properties).toEqual({ plan: 'pro', nested: { seats: 1 }, tags: ['a'] })
    expect(b.identifies[0].traits).toEqual({ name: 'Ada' })
  })
})

describe('invalid input', () => {
  const pid = '3e6a2c18-3b02-40c4-b8d2-1842c193d3ba'
  const cyclic: Record<string, unknown> = { a: 1 }
  cyclic.self = cyclic
  const cases: Array<[string, () => void, string, string]> = [
    ['no profile_id or email', () => h.tracker.track({ event: 'x' }), 'profile_id or email', 'is required'],
    ['malformed uuid', () => h.tracker.track({ profile_id: 'not-a-uuid', event: 'x' }), 'profile_id', 'must be a UUID'],
    ['uuid with a urn prefix', () => h.tracker.page({ profile_id: `urn:uuid:${pid}` }), 'profile_id', 'must be a UUID'],
    ['malformed email', () => h.tracker.identify({ email: 'ada at example', traits: {} }), 'email', 'must be an email address'],
    ['malformed traits.email', () => h.tracker.identify({ profile_id: pid, traits: { email: 'nope' } }), 'traits.email', 'must be an email address'],
    ['no event name', () => h.tracker.track({ profile_id: pid } as never), 'event', 'is required'],
    ['empty event name', () => h.tracker.track({ profile_id: pid, event: '' }), 'event', 'must not be empty'],
    ['blank event name', () => h.tracker.track({ profile_id: pid, event: '   ' }), 'event', 'must not be blank'],
    ['event not a string', () => h.tracker.track({ profile_id: pid, event: 42 as never }), 'event', 'must be a string, got a number'],
    ['properties an array', () => h.tracker.track({ profile_id: pid, event: 'x', properties: [1] as never }), 'properties', 'must be a JSON object, got an array'],
    ['properties a string', () => h.tracker.page({ profile_id: pid, properties: 'x' as never }), 'properties', 'must be a JSON object, got a string'],
    ['properties a Map', () => h.tracker.track({ profile_id: pid, event: 'x', properties: new Map() as never }), 'properties', 'must be a plain JSON object, got a Map'],
    ['traits not an object', () => h.tracker.identify({ profile_id: pid, traits: 5 as never }), 'traits', 'must be a JSON object, got a number'],
    ['a cycle in properties', () => h.tracker.track({ profile_id: pid, event: 'x', properties: cyclic }), 'properties', 'cannot be converted to JSON (Converting circular structure'],
    ['a BigInt in properties', () => h.tracker.track({ profile_id: pid, event: 'x', properties: { n: 10n } }), 'properties', 'cannot be converted to JSON (Do not know how to serialize a BigInt'],
    ['an item too large', () => h.tracker.track({ profile_id: pid, event: 'x', properties: { blob: 'x'.repeat(40_000) } }), 'properties', 'the limit (maxItemBytes) is 32768'],
    ['sent_at not a date-time', () => h.tracker.track({ profile_id: pid, event: 'x', sent_at: 'yesterday' }), 'sent_at', 'must be an ISO 8601 date-time'],
    ['an invalid Date', () => h.tracker.track({ profile_id: pid, event: 'x', sent_at: new Date('nope') }), 'sent_at', 'is an invalid Date'],
    ['an empty message_id', () => h.tracker.track({ profile_id: pid, event: 'x', message_id: '' }), 'message_id', 'must not be empty'],
    ['not an object at all', () => h.tracker.track(null as never), 'call', 'must be an object, got null']
  ]

  test.each(cases)('%s is refused with the field and reason, and the calls around it are delivered', async (_name, call, field, reason) => {
    h = await harness()
    const before = person()
    const after = person()
    h.tracker.track({ profile_id: before, event: 'Before' })
    expect(() => call()).not.toThrow()
    h.tracker.track({ profile_id: after, event: 'After' })
    await h.tracker.flush()

    expect(h.errors).toHaveLength(1)
    const err = h.errors[0] as InputError
    expect(err).toBeInstanceOf(InputError)
    expect(err.code).toBe('KOALA_ERR_INVALID_INPUT')
    expect(err.field).toBe(field)
    expect(err.reason).toContain(reason)
    expect(err.message).toContain(field)
    expect(h.tracker.stats()).toMatchObject({ accepted: 2, sent: 2, dropped: 1, droppedBy: { invalid: 1 } })
    expect(h.collector.received.map(r => r.body.profile_id).sort()).toEqual([before, after].sort())
    expect(h.logger.lines).toContainEqual(expect.objectContaining({ level: 'warn', msg: err.message }))
  })

  test('strict mode throws the same error, and still delivers the valid calls', async () => {
    h = await harness({ strict: true })
    const pid = person()
    h.tracker.track({ profile_id: pid, event: 'ok' })
    expect(() => h.tracker.track({ profile_id: pid, event: '' })).toThrow(InputError)
    expect(() => h.tracker.track({ profile_id: pid, event: '' })).toThrow('track(): event must not be empty')
    await h.tracker.flush()
    expect(h.collector.stats().profiles.events).toBe(1)
  })

  test('each summary names its own problem: a BigInt, a cycle and an oversized item in the same field are summed up apart', async () => {
    h = await harness({ logSummaryIntervalMs: 60_000 })
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    for (let round = 0; round < 3; round++) {
      h.tracker.track({ profile_id: pid, event: 'x', properties: { n: 10n } })
      h.tracker.track({ profile_id: pid, event: 'x', properties: cyclic })
      // A slightly different size each time: still the same problem.
      h.tracker.track({ profile_id: pid, event: 'x', properties: { blob: 'x'.repeat(40_000 + round) } })
    }
    await h.tracker.close()
    const said = h.logger.lines.map(l => l.msg ?? '')
    expect(said).toHaveLength(6)
    expect(said.slice(0, 3)).toEqual([
      expect.stringContaining('BigInt'), expect.stringContaining('circular'), expect.stringContaining('the limit (maxItemBytes)')
    ])
    expect(said.slice(3)).toEqual(expect.arrayContaining([
      expect.stringMatching(/BigInt.*\(2 more times since the last report\)$/),
      expect.stringMatching(/circular.*\(2 more times since the last report\)$/),
      expect.stringMatching(/maxItemBytes.*\(2 more times since the last report\)$/)
    ]))
  })

  test('problems whose messages carry the caller\'s own text cost a bounded number of lines', async () => {
    h = await harness({ logSummaryIntervalMs: 60_000 })
    for (const name of ['ada', 'grace', 'edsger', 'barbara', 'alan', 'tony', 'niklaus', 'donald', 'john', 'frances',
      'margaret', 'ken', 'dennis', 'bjarne', 'guido', 'james', 'larry', 'yukihiro', 'brendan', 'rasmus']) {
      h.tracker.track({ profile_id: pid, get event (): string { throw new Error(`no such user: ${name}`) } })
    }
    await h.tracker.close()
    expect(h.tracker.stats().droppedBy.invalid).toBe(20)
    // 16 problems told apart, the first of the rest, then one sum for the rest.
    expect(h.logger.lines).toHaveLength(18)
    expect(h.logger.lines[17]).toMatchObject({ obj: { kind: 'invalid:track:event', repeated: 3 }, msg: 'further problems of this kind, summed up together (3 more times since the last report)' })
  })

  test('repeated problems are logged once and summed up, and never log the values', async () => {
    h = await harness({ logSummaryIntervalMs: 60_000 })
    for (let i = 0; i < 100; i++) h.tracker.identify({ email: `secret${i}@x`, traits: { ssn: '123' } })
    expect(h.logger.lines).toHaveLength(1)
    h.clock.advance(60_000)
    h.tracker.identify({ email: 'again@x' })
    expect(h.logger.lines).toHaveLength(2)
    expect(h.logger.lines[1].obj).toMatchObject({ repeated: 100 })
    expect(JSON.stringify(h.logger.lines)).not.toContain('secret')
    expect(h.tracker.stats().droppedBy.invalid).toBe(101)
  })
})

describe('close()', () => {
  test('delivers everything buffered, refuses later calls, and resolves once for every caller', async () => {
    h = await harness()
    const people = Array.from({ length: 25 }, person)
    for (let i = 0; i < 500; i++) h.tracker.track({ profile_id: people[i % 25], event: `e${i}` })
    const [a, b] = [h.tracker.close(), h.tracker.close()]
    expect(a).toBe(b)
    const result = await a
    expect(result).toEqual({ delivered: 500, failed: 0, abandoned: 0, unknown: 0, spooled: 0, timedOut: false })
    expect(h.collector.stats().profiles.events).toBe(500)
    expect(h.collector.stats().duplicates).toBe(0)

    expect(() => h.tracker.track({ profile_id: people[0], event: 'late' })).not.toThrow()
    expect(h.tracker.stats()).toMatchObject({ state: 'closed', droppedBy: { closed: 1 }, bufferedItems: 0 })
    expect(h.errors[0]).toBeInstanceOf(RefusedError)
    expect(h.clock.pending()).toEqual([])
    await expect(h.tracker.flush()).resolves.toMatchObject({ pending: 0 })
  })

  test('strict mode throws for a call after close', async () => {
    h = await harness({ strict: true })
    await h.tracker.close()
    expect(() => h.tracker.page({ email: 'a@example.com' })).toThrow('page(): refused: the tracker is closed')
  })

  test('flush() resolves only after the requests have been answered', async () => {
    h = await harness()
    for (let i = 0; i < 10; i++) h.tracker.page({ profile_id: person(), name: 'p' })
    const r = await h.tracker.flush()
    // No waiting on the collector: its count is already final.
    expect(h.collector.stats().profiles.page_views).toBe(10)
    expect(r.delivered).toBe(10)
  })
})

describe('stats()', () => {
  test('accepted = sent + failed + buffered at every step', async () => {
    h = await harness()
    const check = (): void => {
      const s = h.tracker.stats()
      expect(s.accepted).toBe(s.sent + s.failed + s.bufferedItems)
    }
    const pid = person()
    for (let i = 0; i < 45; i++) { h.tracker.track({ profile_id: pid, event: 'e' }); check() }
    const sent = nextEvent(h.tracker, 'sent')
    h.tracker.track({ event: 'bad' } as never)
    check()
    await sent
    check()
    expect(h.tracker.stats()).toMatchObject({ accepted: 45, sent: 30, bufferedItems: 15, buckets: 1, dropped: 1, inFlightRequests: 0 })
    await h.tracker.flush()
    check()
    expect(h.tracker.stats()).toMatchObject({ sent: 45, requests: { sent: 2, succeeded: 2 } })
  })
})

describe('internal failures while holding a call', () => {
  test('a clock that throws when the flush timer is armed costs that call only: its room is given back', async () => {
    h = await harness({ maxBufferedItems: 2 })
    let refusals = 1
    const clock: Clock = {
      now: () => h.clock.now(),
      setTimeout: (fn, ms, keepAlive) => {
        if (refusals-- > 0) throw new Error('timer refused')
        return h.clock.setTimeout(fn, ms, keepAlive)
      },
      clearTimeout: (t) => h.clock.clearTimeout(t)
    }
    const t = h.make({ clock })
    const pid = person()
    for (const event of ['a', 'b', 'c']) t.track({ profile_id: pid, event })
    // 'a' is refused as an internal error and not held; 'b' and 'c' fit in the two-item cap.
    expect(t.stats()).toMatchObject({ accepted: 2, bufferedItems: 2, droppedBy: { error: 1, queue_full: 0 } })
    expect(await t.flush()).toMatchObject({ delivered: 2, failed: 0 })
    expect(h.collector.received.flatMap(r => (r.body.events as Array<{ event: string }>).map(e => e.event))).toEqual(['b', 'c'])
    expect(t.stats()).toMatchObject({ accepted: 2, sent: 2, bufferedItems: 0, bufferedBytes: 0 })
    expect(h.logger.lines.filter(l => l.level === 'error').map(l => l.msg)).toEqual([expect.stringContaining('internal error while recording a call')])
  })

  test('maxBuckets: the least recently used person\'s bucket is sent to make room, and nothing is lost', async () => {
    h = await harness()
    const t = h.make({ maxBuckets: 70 })
    try {
      const people = Array.from({ length: 100 }, person)
      for (let i = 0; i < 70; i++) t.track({ profile_id: people[i], event: 'first' })
      t.track({ profile_id: people[0], event: 'again' }) // people[1] is now the least recently used
      const early = nextEvent(t, 'sent', () => t.stats().sent === 30)
      for (let i = 70; i < 100; i++) t.track({ profile_id: people[i], event: 'first' })
      expect(t.stats()).toMatchObject({ accepted: 101, buckets: 70, dropped: 0 })
      await early
      // Sent concurrently, so they may arrive in any order.
      expect(h.collector.received.map(r => r.body.profile_id).sort()).toEqual(people.slice(1, 31).sort())
      expect(await t.flush()).toMatchObject({ delivered: 71, failed: 0 })
      expect(h.collector.stats().profiles.events).toBe(101)
      expect(new Set(h.collector.received.map(r => r.body.profile_id)).size).toBe(100)
      expect(h.logger.lines.filter(l => l.level === 'error')).toEqual([])
    } finally {
      await t.close()
    }
  })
})

describe('what is checked is what is sent', () => {
  const pid = '3e6a2c18-3b02-40c4-b8d2-1842c193d3ba'
  const revoked = (): Record<string, unknown> => {
    const { proxy, revoke } = Proxy.revocable({}, {})
    revoke()
    return proxy
  }
  /** A valid call for the same person before and after the bad one: both must arrive, in one accepted body. */
  async function bystanders (bad: () => void): Promise<Array<Record<string, unknown>>> {
    h.tracker.track({ profile_id: pid, event: 'before' })
    bad()
    h.tracker.track({ profile_id: pid, event: 'after' })
    expect(await h.tracker.flush()).toMatchObject({ failed: 0 })
    expect(h.tracker.stats().failedBy.rejected).toBe(0)
    return h.collector.received.map(r => r.body)
  }

  test.each<[string, () => void, string, string]>([
    ['a toJSON() that gives undefined', () => h.tracker.track({ profile_id: pid, event: 'x', properties: { toJSON: () => undefined } }), 'properties', 'must serialise to a JSON object'],
    ['a toJSON() that gives a string', () => h.tracker.identify({ profile_id: pid, traits: { toJSON: () => 'vip' } }), 'traits', 'must serialise to a JSON object'],
    ['a toJSON() that hides a bad email', () => h.tracker.identify({ profile_id: pid, traits: { toJSON: () => ({ email: 'not an email' }) } }), 'traits.email', 'must be an email address'],
    ['a getter that changes traits.email after it was checked', () => {
      let reads = 0
      h.tracker.identify({ profile_id: pid, traits: { get email () { return ++reads === 1 ? 'ada@example.com' : 'not-an-email' } } })
    }, '', ''],
    ['vip that is not a boolean (typed by Koala\'s schema)', () => h.tracker.identify({ profile_id: pid, traits: { vip: 'yes' } }), 'traits.vip', 'must be a boolean'],
    ['sent_at with a space for T', () => h.tracker.track({ profile_id: pid, event: 'x', sent_at: '2024-05-01 12:00:00Z' }), 'sent_at', 'must be an ISO 8601 date-time'],
    ['sent_at with +0530 for +05:30', () => h.tracker.track({ profile_id: pid, event: 'x', sent_at: '2024-05-01T12:00:00+0530' }), 'sent_at', 'must be an ISO 8601 date-time'],
    ['a blank message_id', () => h.tracker.track({ profile_id: pid, event: 'x', message_id: '   ' }), 'message_id', 'must not be blank'],
    ['a call whose getter throws', () => h.tracker.track({ profile_id: pid, get event (): string { throw new Error('lazy') } }), 'event', 'could not be read (lazy)'],
    ['an object that only says it is a Date', () => h.tracker.track({ profile_id: pid, event: 'x', sent_at: { [Symbol.toStringTag]: 'Date' } as never }), 'sent_at', 'could not be read as a Date'],
    ['a revoked Proxy', () => {
      const { proxy, revoke } = Proxy.revocable({}, {})
      revoke()
      h.tracker.track(proxy as never)
    }, 'call', 'could not be read'],
    ['a revoked Proxy as track\'s properties', () => h.tracker.track({ profile_id: pid, event: 'x', properties: revoked() }), 'properties', 'could not be read'],
    ['a revoked Proxy as page\'s properties', () => h.tracker.page({ profile_id: pid, properties: revoked() }), 'properties', 'could not be read'],
    ['a revoked Proxy as identify\'s traits', () => h.tracker.identify({ profile_id: pid, traits: revoked() }), 'traits', 'could not be read'],
    ['a revoked Proxy as trackAccount\'s properties', () => h.tracker.trackAccount({ domain: 'acme.com', event: 'x', properties: revoked() }), 'properties', 'could not be read'],
    ['a revoked Proxy as identifyAccount\'s traits', () => h.tracker.identifyAccount({ domain: 'acme.com', traits: revoked() }), 'traits', 'could not be read']
  ])('%s: refused as invalid, naming the field, and the same person\'s other events arrive', async (_what, bad, field, reason) => {
    h = await harness()
    const bodies = await bystanders(bad)
    const events = bodies.flatMap(b => (b.events as Array<{ event: string }> | undefined ?? []).map(e => e.event))
    expect(events).toEqual(expect.arrayContaining(['before', 'after']))
    if (field === '') {
      // Sent, as read once and checked.
      expect(bodies.flatMap(b => b.identifies ?? [])).toEqual([expect.objectContaining({ traits: { email: 'ada@example.com' } })])
      expect(h.tracker.stats().droppedBy.invalid).toBe(0)
    } else {
      expect(h.tracker.stats()).toMatchObject({ accepted: 2, droppedBy: { invalid: 1, error: 0 } })
      expect(h.errors).toEqual([expect.objectContaining({ code: 'KOALA_ERR_INVALID_INPUT', field, reason: expect.stringContaining(reason) })])
    }
  })

  test('strict mode throws the InputError for a revoked Proxy as properties or traits', async () => {
    h = await harness({ strict: true })
    expect(() => h.tracker.track({ profile_id: pid, event: 'x', properties: revoked() })).toThrow(expect.objectContaining({ field: 'properties', code: 'KOALA_ERR_INVALID_INPUT' }))
    expect(() => h.tracker.identifyAccount({ domain: 'acme.com', traits: revoked() })).toThrow(expect.objectContaining({ field: 'traits', code: 'KOALA_ERR_INVALID_INPUT' }))
    expect(h.tracker.stats().droppedBy).toMatchObject({ invalid: 2, error: 0 })
  })

  test('each field of a call is read once', async () => {
    h = await harness()
    const reads: string[] = []
    const call = {}
    for (const [k, v] of Object.entries({ profile_id: pid, event: 'Read Once', properties: { a: 1 }, sent_at: '2024-05-01T12:00:00Z' })) {
      Object.defineProperty(call, k, { enumerable: true, get: () => { reads.push(k); return v } })
    }
    h.tracker.track(call as never)
    expect(reads.sort()).toEqual(['event', 'profile_id', 'properties', 'sent_at'])
    await h.tracker.flush()
    expect(h.collector.received[0].body.events).toEqual([expect.objectContaining({ event: 'Read Once', properties: { a: 1 } })])
  })

  test('a field the call does not take is left out and said once; in strict mode the call is refused, naming it', async () => {
    h = await harness()
    for (let i = 0; i < 3; i++) h.tracker.track({ profile_id: pid, event: 'x', propertes: { plan: 'pro' } } as never)
    await h.tracker.flush()
    expect(h.collector.received[0].body.events).toEqual([expect.not.objectContaining({ propertes: expect.anything() }), expect.anything(), expect.anything()])
    expect(h.logger.lines.filter(l => l.level === 'warn').map(l => l.msg)).toEqual([
      "koala-tracker: track() has no field 'propertes' (did you mean properties?); it was left out of what is sent"
    ])
    // Names come from the caller's objects: each is said once, and at most 64 of them, so the log and
    // the tallies behind it stay bounded whatever the calls carry.
    for (let i = 0; i < 100; i++) h.tracker.track({ profile_id: pid, event: 'x', [`utm_${i}`]: 'y' } as never)
    expect(h.logger.lines.filter(l => l.level === 'warn')).toHaveLength(64)
    expect(await h.tracker.flush()).toMatchObject({ delivered: 100, failed: 0 })
    const strict = h.make({ strict: true })
    expect(() => strict.identify({ profile_id: pid, trait: { plan: 'pro' } } as never)).toThrow(expect.objectContaining({
      code: 'KOALA_ERR_INVALID_INPUT', field: 'trait', message: expect.stringContaining('is not a field of identify() (did you mean traits?)')
    }))
    expect(strict.stats().droppedBy.invalid).toBe(1)
  })

  test('an item too large names the field that makes it so: properties, or else the call', async () => {
    h = await harness({ maxItemBytes: 256 })
    h.tracker.track({ profile_id: pid, event: 'E'.repeat(150) })
    h.tracker.track({ profile_id: pid, event: 'x', properties: { blob: 'x'.repeat(300) } })
    expect(h.errors.map(e => (e as InputError).field)).toEqual(['call', 'properties'])
  })

  test('a Date from another realm is a Date; a clock with fractions of a millisecond still gives a valid sent_at', async () => {
    const fractional = { now: () => Date.UTC(2026, 10, 26, 12) + 0.640625, setTimeout: () => 0, clearTimeout: () => {} }
    h = await harness()
    const t = h.make({ clock: fractional })
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const foreign = (require('node:vm') as typeof import('node:vm')).runInNewContext('new Date(Date.UTC(2024, 4, 1, 12))') as Date
    t.track({ profile_id: pid, event: 'foreign', sent_at: foreign })
    t.track({ profile_id: pid, event: 'generated' })
    await t.flush()
    expect(h.errors).toEqual([])
    expect(h.collector.received[0].body.events).toEqual([
      expect.objectContaining({ sent_at: '2024-05-01T12:00:00.000Z' }),
      expect.objectContaining({ sent_at: '2026-11-26T12:00:00.000Z' })
    ])
  })
})
