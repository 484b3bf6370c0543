import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { MockAgent } from 'undici'
import { BodySlabs, bodyOf, SLAB_BYTES, unshare, type BodyHolder } from '../lib/body-slabs'
import { MESSAGE_ID_PIECE_LENGTH, messageIdPiece } from '../lib/message-id'
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
