import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { MockAgent } from 'undici'
import { BodySlabs, bodyOf, SLAB_BYTES, unshare, type BodyHolder } from '../lib/body-slabs'
import { toBatch, type Batch, type Taken } from '../lib/bucket'
import { Capturer, EVENTS, IDENTIFIES, PAGE_VIEWS, type Captured } from '../lib/capture'
import { MESSAGE_ID_PIECE_LENGTH, messageIdPiece } from '../lib/message-id'
import { createRoutes } from '../lib/route'
import { createTracker } from '../lib/tracker'
import type { TransportRequest } from '../lib/transport'
import { driveUntil } from './helpers/drive'
import { harness, memoryLogger, person, type Harness } from './helpers/setup'

const PIECE = /^\{"message_id":"([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})"$/
const holder = (): BodyHolder => ({ body: '', bodyAt: 0, bodyEnd: 0 })

describe('generated message ids', () => {
  test('are UUID v4 heads of an item, of the length capture counts, and never repeat across refills', () => {
    const ids = new Set<string>()
    const bad: string[] = []
    for (let i = 0; i < 3_000; i++) { // 256 pieces per refill: eleven refills
      const piece = messageIdPiece()
      const m = PIECE.exec(piece)
      if (m === null || piece.length !== MESSAGE_ID_PIECE_LENGTH) bad.push(piece)
      else ids.add(m[1])
    }
    expect(bad).toEqual([])
    expect(ids.size).toBe(3_000)
  })

  test('are random in every position but the version and the variant', () => {
    const seen = Array.from({ length: 36 }, () => new Set<string>())
    for (let i = 0; i < 1_000; i++) {
      const id = (PIECE.exec(messageIdPiece()) as RegExpExecArray)[1]
      for (let j = 0; j < 36; j++) seen[j].add(id[j])
    }
    const distinct = seen.map(s => s.size)
    // Dashes at 8, 13, 18, 23; the version digit (14) is always 4; the variant digit (19) one of 8, 9, a, b.
    expect(distinct.filter((_, j) => ![8, 13, 14, 18, 19, 23].includes(j)).every(n => n === 16)).toBe(true)
    expect([distinct[8], distinct[13], distinct[14], distinct[18], distinct[23]]).toEqual([1, 1, 1, 1, 1])
    expect(distinct[19]).toBe(4)
  })
})

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
const capturer = new Capturer(() => Date.UTC(2026, 10, 27, 9, 30, 0, 123), 32 * 1024)
const pid = 'b0f5bd5e-6a0e-4bf4-9a5e-3c1fb3e0b7a1'

/** Items of every kind: with and without ids of their own, non-ASCII in each place a caller's text goes. */
const mixedCalls = (): Captured[] => [
  capturer.track({ profile_id: pid, event: 'Viewed Pricing', properties: { plan: 'pro', seats: 12 } }),
  capturer.track({ profile_id: pid, event: 'Café ☕', properties: { note: '𝄞 é\u00ff' } }),
  capturer.track({ profile_id: pid, event: 'own', message_id: 'id-ü-1', sent_at: '2026-01-01T00:00:00.000Z' }),
  capturer.track({ profile_id: pid, event: 'dated', sent_at: new Date(Date.UTC(2026, 0, 2)) }),
  capturer.page({ profile_id: pid, name: 'Prix ✓', properties: { path: '/prix' } }),
  capturer.page({ profile_id: pid }),
  capturer.page({ profile_id: pid, message_id: 'page-1' }),
  capturer.identify({ profile_id: pid, traits: { name: 'Zoë', plan: 'pro' } }),
  capturer.trackAccount({ domain: 'acme.com', event: 'Renewed ★', properties: { seats: 3 } }),
  capturer.identifyAccount({ account_id: 'acc_1', traits: { name: 'Açme' } })
]

/** A Taken of these items, as a bucket hands them over (a list of one item is the item itself). */
function taken (items: Captured[], fields: { primary?: string, secondary?: string } = { primary: pid }): Taken {
  const lists: [string[] | string | undefined, string[] | string | undefined, string[] | string | undefined] = [undefined, undefined, undefined]
  for (const c of items) {
    const l = lists[c.list]
    lists[c.list] = l === undefined ? c.json : typeof l === 'string' ? [l, c.json] : [...l, c.json]
  }
  return {
    route: createRoutes('/web/projects/pk_test').profiles,
    primary: fields.primary,
    secondary: fields.secondary,
    lists,
    items: items.length,
    bytes: items.reduce((n, c) => n + c.bytes, 0),
    ownIds: items.filter(c => !c.needsId && c.list !== IDENTIFIES).length
  }
}

const text = (b: Batch): string => bodyOf(b).toString()
type Sent = Record<string, Array<{ message_id?: string }>>
const idsOf = (sent: Sent): string[] => ['events', 'page_views'].flatMap(k => (sent[k] ?? []).map(e => e.message_id as string))

describe('captured items', () => {
  test('count the UTF-8 bytes each takes in a body, its generated id included', () => {
    const items = mixedCalls()
    expect(items.map(c => c.bytes)).toEqual(items.map(c => Buffer.byteLength(c.json) + (c.needsId ? MESSAGE_ID_PIECE_LENGTH : 0)))
    expect(items.map(c => c.needsId)).toEqual([true, true, false, true, true, true, false, false, true, false])
    expect(items.map(c => c.list)).toEqual([EVENTS, EVENTS, EVENTS, EVENTS, PAGE_VIEWS, PAGE_VIEWS, PAGE_VIEWS, IDENTIFIES, EVENTS, IDENTIFIES])
    // And a batch of them holds exactly those bytes, once its ids are in.
    const slabs = new BodySlabs()
    const t = taken(items.slice(0, 8))
    const b = toBatch(t, slabs)
    expect(b.bodyEnd - b.bodyAt).toBe(Buffer.byteLength(`{"profile_id":"${pid}"`) + t.bytes +
      Buffer.byteLength(',"events":[],"identifies":[],"page_views":[]}') + 5 /* commas: 3 among 4 events, 2 among 3 page views */)
  })
})

describe('bodies built into slabs', () => {
  test('get their generated ids written into the bytes: valid JSON, every id a UUID v4, own ids kept, all distinct', () => {
    const slabs = new BodySlabs()
    const ascii = mixedCalls().filter((_, i) => ![1, 2, 4, 7, 8, 9].includes(i)) // no text beyond ASCII
    const own = ascii.filter(c => !c.needsId)
    expect(own.length).toBeGreaterThan(0)
    const batches = [toBatch(taken(ascii), slabs), toBatch(taken(ascii, { primary: pid, secondary: 'a@example.com' }), slabs)]
    const sent = batches.map(b => JSON.parse(text(b)) as Sent)
    const ids = sent.flatMap(idsOf)
    const generated = ids.filter(id => V4.test(id))
    expect(generated).toHaveLength(2 * ascii.filter(c => c.needsId).length)
    expect(new Set(generated).size).toBe(generated.length)
    expect(ids.filter(id => !V4.test(id))).toEqual(['page-1', 'page-1'])
    expect(batches.map(b => b.bodyEnd - b.bodyAt)).toEqual(batches.map(b => text(b).length))
    expect(batches[0].body).toBe(batches[1].body) // one slab
    // Built as a string, the same items make the same body but for the ids.
    const asString = toBatch(taken(ascii))
    const blank = (s: string): string => s.replace(/"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"/g, '"-"')
    expect(blank(text(batches[0]))).toBe(blank(text(asString)))
  })

  test('that are not all ASCII are built with the ids in the text, and say the same', () => {
    const slabs = new BodySlabs()
    const items = mixedCalls()
    const b = toBatch(taken(items, { primary: pid, secondary: 'zoë@example.com' }), slabs)
    const sent = JSON.parse(text(b)) as Sent & { email: string }
    expect(sent.email).toBe('zoë@example.com')
    const ids = idsOf(sent)
    expect(ids.filter(id => V4.test(id))).toHaveLength(items.filter(c => c.needsId && c.list !== IDENTIFIES).length)
    expect(new Set(ids).size).toBe(ids.length)
    expect(b.bodyEnd - b.bodyAt).toBe(Buffer.byteLength(text(b)))
  })

  test('with more ids than the places first kept for them (64) get them all, in a slab or in a buffer of their own', () => {
    const slabs = new BodySlabs()
    // 70 items of ~140 bytes fit a slab; 150 with padding make a body over a quarter of one, which gets a buffer of its own.
    for (const [count, pad] of [[70, ''], [150, 'x'.repeat(100)]] as const) {
      const many = Array.from({ length: count }, (_, i) => capturer.track({ profile_id: pid, event: 'e', properties: { i, pad } }))
      const b = toBatch(taken(many), slabs)
      expect((b.body as Buffer).length === SLAB_BYTES).toBe(count === 70)
      const sent = JSON.parse(text(b)) as { events: Array<{ message_id: string, properties: { i: number } }> }
      expect(sent.events.map(e => e.properties.i)).toEqual(many.map((_, i) => i))
      expect(sent.events.every(e => V4.test(e.message_id))).toBe(true)
      expect(new Set(sent.events.map(e => e.message_id)).size).toBe(count)
    }
  })
})

describe('BodySlabs', () => {
  test('writes bodies one after another into one slab, each read back exactly, non-ASCII included', () => {
    const slabs = new BodySlabs()
    // ASCII (written as latin1), a two-byte string, and one that V8 holds one byte a character but is not ASCII.
    const texts = ['{"a":1}', '{"name":"café ☕ 𝄞"}', '{"b":[1,2,3]}', '{"n":"é\u00ff"}']
    const holders = texts.map(t => { const h = holder(); slabs.place(t, h); return h })
    expect(new Set(holders.map(h => h.body)).size).toBe(1)
    expect((holders[0].body as Buffer).length).toBe(SLAB_BYTES)
    const ends = texts.map((_, i) => texts.slice(0, i + 1).reduce((n, t) => n + Buffer.byteLength(t), 0))
    expect(holders.map(h => [h.bodyAt, h.bodyEnd])).toEqual(ends.map((end, i) => [i === 0 ? 0 : ends[i - 1], end]))
    expect(holders.map(h => bodyOf(h).toString())).toEqual(texts)
  })

  test('starts a new slab when a body does not fit, and gives a body over a quarter of a slab a buffer of its own', () => {
    const slabs = new BodySlabs()
    const quarter = 'x'.repeat(SLAB_BYTES / 4)
    const h = Array.from({ length: 5 }, () => { const x = holder(); slabs.place(quarter, x); return x })
    expect(h[3].body).toBe(h[0].body)
    expect(h[4].body).not.toBe(h[0].body) // four quarters filled the first
    expect(h[4].bodyAt).toBe(0)
    const big = holder()
    slabs.place('y'.repeat(SLAB_BYTES / 4 + 1), big)
    expect((big.body as Buffer).length).toBe(SLAB_BYTES / 4 + 1)
    expect(bodyOf(big)).toBe(big.body) // no view needed: the buffer is the body
    const after = holder()
    slabs.place('{}', after)
    expect(after.body).toBe(h[4].body) // the big one did not use up the current slab
  })

  test('unshare copies a body out of its slab, so that the slab can go; a body of its own and a string stay', () => {
    const slabs = new BodySlabs()
    const a = holder()
    const b = holder()
    slabs.place('{"first":true}', a)
    slabs.place('{"second":true}', b)
    const slab = b.body as Buffer
    unshare(b)
    expect(b.body).not.toBe(slab)
    expect([b.bodyAt, b.bodyEnd, (b.body as Buffer).buffer.byteLength]).toEqual([0, 15, 15])
    slab.fill(0)
    expect(bodyOf(b).toString()).toBe('{"second":true}')
    const own = b.body
    unshare(b)
    expect(b.body).toBe(own)
    const s: BodyHolder = { body: '{"s":1}', bodyAt: 0, bodyEnd: 7 }
    unshare(s)
    expect(bodyOf(s)).toBe('{"s":1}')
  })
})

/** The bodies undici's Requests are made with, in order (undici keeps a Buffer body as given). */
function undiciBodies (): { bodies: unknown[], stop: () => void } {
  const bodies: unknown[] = []
  const onCreate = (m: unknown): void => { bodies.push((m as { request: { body: unknown } }).request.body) }
  subscribe('undici:request:create', onCreate)
  return { bodies, stop: () => unsubscribe('undici:request:create', onCreate) }
}

describe('request bodies', () => {
  let h: Harness | undefined
  afterEach(async () => { await h?.done(); h = undefined })

  test('go to the owned Pool as bytes from a shared slab; a retried one goes from a copy of its own, unchanged', async () => {
    const statuses = [503]
    h = await harness({ random: () => 0.5 }, { fault: () => { const s = statuses.shift(); return s === undefined ? undefined : { status: s } } })
    const seen = undiciBodies()
    try {
      const pid = person()
      for (let i = 0; i < 3; i++) h.tracker.track({ profile_id: pid, event: `e${i}` })
      const { value } = await driveUntil(h.tracker, h.clock, h.tracker.flush({ timeoutMs: 60_000 }))
      expect(value).toMatchObject({ delivered: 3 })
    } finally { seen.stop() }
    expect(seen.bodies).toHaveLength(2)
    const [first, retry] = seen.bodies as Buffer[]
    expect(Buffer.isBuffer(first) && Buffer.isBuffer(retry)).toBe(true)
    expect(first.buffer.byteLength).toBe(SLAB_BYTES)
    expect(retry.buffer.byteLength).toBe(retry.length)
    expect(retry.equals(first)).toBe(true)
    expect(h.collector.stats().requests).toBe(2)
    expect(h.collector.received.map(r => r.body)).toEqual([JSON.parse(first.toString())])
    expect(JSON.parse(retry.toString()).events.map((e: { event: string }) => e.event)).toEqual(['e0', 'e1', 'e2'])
  })

  test('go to a dispatcher of your own as strings, so a MockAgent matches them', async () => {
    const agent = new MockAgent()
    agent.disableNetConnect()
    const pid = person()
    const tracker = createTracker({ publicKey: 'pk_test', baseUrl: 'http://mock.test', dispatcher: agent, logger: memoryLogger() })
    tracker.track({ profile_id: pid, event: 'matched', message_id: 'm-1', sent_at: '2026-01-01T00:00:00.000Z' })
    const body = JSON.stringify({ profile_id: pid, events: [{ message_id: 'm-1', type: 'track', event: 'matched', properties: {}, sent_at: '2026-01-01T00:00:00.000Z' }] })
    agent.get('http://mock.test').intercept({ path: '/web/projects/pk_test/batch', method: 'POST', body }).reply(200, {})
    expect(await tracker.flush({ timeoutMs: 10_000 })).toMatchObject({ delivered: 1, failed: 0 })
    agent.assertNoPendingInterceptors()
    await tracker.close()
    await agent.close()
  })

  test('go to a transport of your own as strings, as documented', async () => {
    const requests: TransportRequest[] = []
    const tracker = createTracker({
      publicKey: 'pk_test',
      logger: memoryLogger(),
      transport: { async send (req) { requests.push(req); return { status: 200, headers: {}, body: '' } }, async close () {}, async destroy () {} }
    })
    tracker.page({ profile_id: person(), name: 'Home' })
    await tracker.flush({ timeoutMs: 10_000 })
    expect(requests.map(r => typeof r.body)).toEqual(['string'])
    expect(JSON.parse(requests[0].body).page_views[0].name).toBe('Home')
    await tracker.close()
  })
})
