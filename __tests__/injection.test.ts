import { MockAgent } from 'undici'
import { createTracker } from '../lib/tracker/tracker'
import type { Transport, TransportRequest } from '../lib/transport/transport'
import { driveUntil } from './helpers/drive'
import { FakeClock } from './helpers/fake-clock'
import { memoryLogger } from './helpers/setup'

const ORIGIN = 'https://api2.getkoala.com'
const PATH = '/web/projects/pk_test/batch'

function memoryTransport (): Transport & { requests: TransportRequest[] } {
  const requests: TransportRequest[] = []
  return {
    requests,
    async send (req) { requests.push(req); return { status: 200, headers: {}, body: '' } },
    async close () {},
    async destroy () {}
  }
}

describe('an undici MockAgent as the dispatcher', () => {
  test('receives the POST with its headers, and a network error from it is retried', async () => {
    const agent = new MockAgent()
    agent.disableNetConnect()
    const pool = agent.get(ORIGIN)
    pool.intercept({ path: PATH, method: 'POST' }).replyWithError(Object.assign(new Error('socket hang up'), { code: 'UND_ERR_SOCKET' }))
    let seen: { headers: unknown, body: string } | undefined
    pool.intercept({ path: PATH, method: 'POST' }).reply(200, (opts) => {
      seen = { headers: opts.headers, body: String(opts.body) }
      return { ok: true }
    })
    const clock = new FakeClock()
    const tracker = createTracker({ publicKey: 'pk_test', dispatcher: agent, clock, logger: memoryLogger(), random: () => 0.5 })
    tracker.track({ email: 'mock@example.com', event: 'Mocked', message_id: 'mid-1' })
    const { value, jumps } = await driveUntil(tracker, clock, tracker.flush({ timeoutMs: 60_000 }))
    expect(value).toMatchObject({ delivered: 1 })
    expect(jumps).toEqual([375])
    expect(seen?.headers).toMatchObject({ 'content-type': 'application/json', 'user-agent': expect.stringMatching(/^koala-tracker\//) })
    expect(JSON.parse(seen?.body ?? '')).toMatchObject({ email: 'mock@example.com', events: [{ message_id: 'mid-1' }] })
    agent.assertNoPendingInterceptors()
    await tracker.close()
    await agent.close() // the tracker does not close a dispatcher it was given
  })

  test('a 429 with Retry-After through the MockAgent pauses for exactly that long', async () => {
    const agent = new MockAgent()
    agent.disableNetConnect()
    const pool = agent.get(ORIGIN)
    pool.intercept({ path: PATH, method: 'POST' }).reply(429, '', { headers: { 'retry-after': '7' } })
    pool.intercept({ path: PATH, method: 'POST' }).reply(204, '')
    const clock = new FakeClock()
    const tracker = createTracker({ publicKey: 'pk_test', dispatcher: agent, clock, logger: memoryLogger() })
    tracker.page({ email: 'mock@example.com' })
    const { value, jumps } = await driveUntil(tracker, clock, tracker.flush({ timeoutMs: 60_000 }))
    expect(value.delivered).toBe(1)
    expect(jumps).toEqual([7_000])
    await tracker.close()
    await agent.close()
  })
})

describe('a transport of your own', () => {
  test('gets the path and body, and close() releases it', async () => {
    const transport = memoryTransport()
    const closed = jest.fn(async () => {})
    const tracker = createTracker({ publicKey: 'pk_x', transport: { ...transport, send: transport.send, close: closed } })
    tracker.identify({ email: 'own@example.com', traits: { a: 1 } })
    await tracker.close()
    expect(transport.requests.map(r => [r.path, JSON.parse(r.body).email])).toEqual([['/web/projects/pk_x/batch', 'own@example.com']])
    expect(closed).toHaveBeenCalledTimes(1)
  })

  test('that throws instead of rejecting is retried after the same backoff, not again in the same turn', async () => {
    const clock = new FakeClock()
    const sentAt: number[] = []
    const t0 = clock.now()
    const send = (): never => { sentAt.push(clock.now() - t0); throw new Error('socket gone') }
    const tracker = createTracker({
      publicKey: 'pk_x', clock, logger: memoryLogger(), random: () => 0.5, maxAttempts: 3,
      transport: { send, async close () {}, async destroy () {} } as unknown as Transport
    })
    tracker.track({ email: 'own@example.com', event: 'a' })
    tracker.track({ email: 'other@example.com', event: 'b' })
    const { value } = await driveUntil(tracker, clock, tracker.flush({ timeoutMs: 60_000 }))
    expect(value).toMatchObject({ delivered: 0, failed: 2 })
    // Each batch waits its own backoff (375, then 750 ms with random() = 0.5), three attempts each. It once
    // sent all six at once: the throw happened inside the loop that dispatches, which never looked at the backoff.
    expect(sentAt).toEqual([0, 0, 375, 375, 1125, 1125])
    expect(sentAt.slice(2).every(t => t >= 375)).toBe(true)
    await tracker.close()
  })
})

describe('abort signals', () => {
  test('a transport of your own gets a fresh, unaborted signal on every attempt', async () => {
    const transport = memoryTransport()
    const tracker = createTracker({ publicKey: 'pk_x', transport })
    for (let i = 0; i < 3; i++) {
      tracker.track({ email: `s${i}@example.com`, event: 'x' })
      await tracker.flush()
    }
    await tracker.close()
    const signals = transport.requests.map(r => r.signal)
    expect(signals).toHaveLength(3)
    expect(new Set(signals).size).toBe(3)
  })

})

describe('jest modern fake timers with the default clock', () => {
  afterEach(() => { jest.useRealTimers() })

  test('advancing timers fires the flush timer and sends', async () => {
    jest.useFakeTimers({ now: Date.UTC(2030, 0, 1) })
    const transport = memoryTransport()
    const tracker = createTracker({ publicKey: 'pk', transport, flushIntervalMs: 10_000 })
    tracker.track({ email: 'fake@example.com', event: 'Timed' })
    await jest.advanceTimersByTimeAsync(9_999)
    expect(transport.requests).toHaveLength(0)
    await jest.advanceTimersByTimeAsync(1)
    expect(transport.requests).toHaveLength(1)
    expect(JSON.parse(transport.requests[0].body).events[0].sent_at).toBe('2030-01-01T00:00:00.000Z')
    const closing = tracker.close()
    await jest.runAllTimersAsync()
    await expect(closing).resolves.toMatchObject({ timedOut: false })
  })
})
