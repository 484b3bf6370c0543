import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import type { Fault } from '../lib/collector'
import { DeliveryError, IngestDisabledError, RefusedError } from '../lib/shared/errors'
import type { TrackerEvents } from '../lib/tracker/events'
import { driveUntil } from './helpers/drive'
import { freePort, harness, nextEvent, person, tick, UUID_V4, type Harness } from './helpers/setup'

let h: Harness
afterEach(async () => { await h.done() })

/** A full GC, without starting jest with --expose-gc. */
function collectGarbage (): void {
  setFlagsFromString('--expose-gc')
  ;(runInNewContext('gc') as () => void)()
}

const LONG = { timeoutMs: 3_600_000 }
// random() = 0.5 makes each wait three quarters of its exponential step: 375, 750, 1500, ... ms.
const FIXED = { random: () => 0.5, maxAttempts: 4 }

/** Collector faults in order, then normal answers. */
const script = (...faults: Array<Fault | undefined>) => () => faults.shift()

function record (h: Harness): { retries: Array<TrackerEvents['retry']>, failed: Array<TrackerEvents['failed']> } {
  const retries: Array<TrackerEvents['retry']> = []
  const failed: Array<TrackerEvents['failed']> = []
  h.tracker.on('retry', e => retries.push(e))
  h.tracker.on('failed', e => failed.push(e))
  return { retries, failed }
}

describe('response and fault matrix', () => {
  type Row = [name: string, attempts: number, waits: number[], outcome: 'sent' | 'rejected' | 'retry_exhausted' | 'disabled', faults: Fault[]]
  const rows: Row[] = [
    ['200', 1, [], 'sent', []],
    ['400', 1, [], 'rejected', [{ status: 400, body: '{"error":"bad batch"}' }]],
    ['413', 1, [], 'rejected', [{ status: 413 }]],
    ['422', 1, [], 'rejected', [{ status: 422 }]],
    ['501', 1, [], 'rejected', [{ status: 501 }]],
    ['505', 1, [], 'rejected', [{ status: 505 }]],
    ['401', 1, [], 'disabled', [{ status: 401 }]],
    ['403', 1, [], 'disabled', [{ status: 403 }]],
    ['404', 1, [], 'disabled', [{ status: 404 }]],
    ['400 ingest suspended', 1, [], 'disabled', [{ status: 400, body: '{"error": "Koala ingest suspended"}' }]],
    ['422 whose text says ingest is suspended (not Koala\'s answer)', 1, [], 'rejected', [{ status: 422, body: 'ingest is suspended for this workspace' }]],
    ['408 then 200', 2, [375], 'sent', [{ status: 408 }]],
    ['429 then 200', 2, [375], 'sent', [{ status: 429 }]],
    ['500 then 200', 2, [375], 'sent', [{ status: 500 }]],
    ['502 twice then 200', 3, [375, 750], 'sent', [{ status: 502 }, { status: 502 }]],
    ['503 then 200', 2, [375], 'sent', [{ status: 503 }]],
    ['504 then 200', 2, [375], 'sent', [{ status: 504 }]],
    ['500 on every attempt', 4, [375, 750, 1500], 'retry_exhausted', [{ status: 500 }, { status: 500 }, { status: 500 }, { status: 500 }]],
    ['reset mid-request then 200', 2, [375], 'sent', [{ kind: 'reset' }]],
    ['200 with the body cut short (the status was received: delivered)', 1, [], 'sent', [{ kind: 'truncate' }]]
  ]

  test.each(rows)('%s: %i attempt(s), waits %j, ends %s', async (_name, attempts, waits, outcome, faults) => {
    h = await harness(FIXED, { fault: script(...faults) })
    const seen = record(h)
    const pid = person()
    h.tracker.track({ profile_id: pid, event: 'Matrix', message_id: 'm-1' })
    h.tracker.page({ profile_id: pid, name: 'p' })
    const { value: result } = await driveUntil(h.tracker, h.clock, h.tracker.flush(LONG))

    expect(h.collector.stats().requests).toBe(attempts)
    expect(seen.retries.map(r => r.delayMs)).toEqual(waits)
    expect(seen.retries.map(r => r.attempt)).toEqual(waits.map((_, i) => i + 1))
    const s = h.tracker.stats()
    expect(s.requests).toMatchObject({ sent: attempts, retried: waits.length })
    expect(s.accepted).toBe(s.sent + s.failed + s.bufferedItems)
    if (outcome === 'sent') {
      expect(result).toEqual({ delivered: 2, failed: 0, pending: 0, timedOut: false })
      expect(s).toMatchObject({ sent: 2, failed: 0 })
      expect(h.errors).toEqual([])
      // Same message_id on every attempt; a body cut short was never stored, so nothing repeats.
      expect(h.collector.messageIds().get('m-1')).toBe(1)
      return
    }
    expect(result).toEqual({ delivered: 0, failed: 2, pending: 0, timedOut: false })
    expect(s.failedBy[outcome]).toBe(2)
    expect(seen.failed).toEqual([expect.objectContaining({ items: 2, reason: outcome })])
    const [err] = h.errors
    if (outcome === 'disabled') {
      expect(err).toBeInstanceOf(IngestDisabledError)
      expect(err).toMatchObject({ code: 'KOALA_ERR_INGEST_DISABLED', status: faults[0] && 'status' in faults[0] ? faults[0].status : 0 })
      expect(h.logger.lines.filter(l => l.level === 'error')).toHaveLength(1)
    } else {
      expect(err).toBeInstanceOf(DeliveryError)
      expect(err).toMatchObject({ reason: outcome, items: 2, attempts })
      if (outcome === 'rejected') {
        const f = faults[0] as { status: number, body?: string }
        expect((err as DeliveryError).status).toBe(f.status)
        expect(err.message).toContain(`HTTP ${f.status}`)
        if (f.body !== undefined) expect(err.message).toContain(f.body)
      }
      expect(h.logger.lines).toContainEqual(expect.objectContaining({ level: 'error', msg: err.message }))
    }
    expect(h.errors).toHaveLength(1)
  })

  test('a server that accepts and never answers: the deadline aborts the attempt and the retry delivers', async () => {
    h = await harness({ ...FIXED, requestTimeoutMs: 2_000 }, { fault: script({ kind: 'hang' }) })
    const seen = record(h)
    h.tracker.track({ profile_id: person(), event: 'Slow' })
    const flushed = h.tracker.flush(LONG)
    await h.collector.waitFor(() => h.collector.stats().requests === 1)
    expect(h.tracker.stats().inFlightRequests).toBe(1)
    h.clock.advance(1_999)
    await tick()
    expect(h.tracker.stats().inFlightRequests).toBe(1)
    h.clock.advance(1)
    const retry = await nextEvent(h.tracker, 'retry')
    expect(retry).toMatchObject({ attempt: 1, delayMs: 375, detail: 'no answer within requestTimeoutMs (2000 ms)' })
    const { value } = await driveUntil(h.tracker, h.clock, flushed)
    expect(value).toMatchObject({ delivered: 1, failed: 0 })
    expect(seen.retries).toHaveLength(1)
    expect(h.collector.stats().requests).toBe(2)
  })

  test('attempts that started apart time out each at its own deadline, under one timer', async () => {
    h = await harness({ ...FIXED, requestTimeoutMs: 2_000 }, { fault: script({ kind: 'hang' }, { kind: 'hang' }) })
    const seen = record(h)
    const deadlineTimers = (): number => h.clock.pending().filter(t => !t.keepAlive && t.ms <= 2_000).length
    const first = person()
    h.tracker.track({ profile_id: first, event: 'First' })
    const flushed = h.tracker.flush(LONG)
    await h.collector.waitFor(() => h.collector.stats().requests === 1)
    h.clock.advance(500)
    h.tracker.track({ profile_id: person(), event: 'Second' })
    const flushedBoth = h.tracker.flush(LONG)
    await h.collector.waitFor(() => h.collector.stats().requests === 2)
    expect(h.tracker.stats().inFlightRequests).toBe(2)
    expect(deadlineTimers()).toBe(1)

    h.clock.advance(1_499)
    await tick()
    expect(seen.retries).toHaveLength(0)
    h.clock.advance(1)
    await nextEvent(h.tracker, 'retry')
    expect(h.tracker.stats().inFlightRequests).toBe(1)
    // Re-armed for the second attempt, which has 500 ms left.
    expect(h.clock.pending().filter(t => !t.keepAlive && t.inMs === 500)).toHaveLength(1)
    h.clock.advance(499)
    await tick()
    expect(seen.retries).toHaveLength(1)
    h.clock.advance(1)
    await nextEvent(h.tracker, 'retry')
    expect(seen.retries.map(r => r.detail)).toEqual(['no answer within requestTimeoutMs (2000 ms)', 'no answer within requestTimeoutMs (2000 ms)'])

    const { value } = await driveUntil(h.tracker, h.clock, Promise.all([flushed, flushedBoth]))
    expect(value).toEqual([expect.objectContaining({ delivered: 1, failed: 0 }), expect.objectContaining({ delivered: 2, failed: 0 })])
    expect(h.collector.received.map(r => (r.body.events as Array<{ event: string }>)[0].event).sort()).toEqual(['First', 'Second'])
    // Nothing in flight: no deadline timer is left behind.
    expect(deadlineTimers()).toBe(0)
  })

  test('connection refused: retried with backoff until the attempts run out', async () => {
    const port = await freePort()
    h = await harness({ ...FIXED, baseUrl: `http://127.0.0.1:${port}` })
    const seen = record(h)
    h.tracker.identify({ email: 'nobody@example.com', traits: { a: 1 } })
    const { value } = await driveUntil(h.tracker, h.clock, h.tracker.flush(LONG))
    expect(value).toEqual({ delivered: 0, failed: 1, pending: 0, timedOut: false })
    expect(seen.retries.map(r => r.delayMs)).toEqual([375, 750, 1500])
    expect(seen.retries[0].detail).toContain('ECONNREFUSED')
    expect(h.tracker.stats()).toMatchObject({ failedBy: { retry_exhausted: 1 }, requests: { sent: 4, retried: 3, failed: 1 } })
    expect(h.errors[0]).toMatchObject({ reason: 'retry_exhausted', attempts: 4 })
    // One retry warning, then silence: the rest are summed up.
    expect(h.logger.lines.filter(l => l.level === 'warn')).toHaveLength(1)
  })

  test('maxRetryDurationMs gives up before a wait that would overrun it', async () => {
    h = await harness({ random: () => 0.5, maxAttempts: 100, maxRetryDurationMs: 2_000 }, { fault: () => ({ status: 503 }) })
    const seen = record(h)
    h.tracker.track({ email: 'a@example.com', event: 'x' })
    const { value } = await driveUntil(h.tracker, h.clock, h.tracker.flush(LONG))
    expect(value.failed).toBe(1)
    // 375 + 750 = 1125 ms spent; the next wait (1500) would end at 2625 > 2000.
    expect(seen.retries.map(r => r.delayMs)).toEqual([375, 750])
    expect(h.errors[0]).toMatchObject({ reason: 'retry_exhausted', attempts: 3 })
  })

  test('after a permanent rejection the other people\'s batches still go through', async () => {
    const bad = person()
    h = await harness({}, { fault: (req) => req.body.includes(bad) ? { status: 400, body: 'nope' } : undefined })
    const good = [person(), person(), person()]
    h.tracker.track({ profile_id: bad, event: 'x' })
    for (const p of good) h.tracker.track({ profile_id: p, event: 'x' })
    const r = await h.tracker.flush()
    expect(r).toEqual({ delivered: 3, failed: 1, pending: 0, timedOut: false })
    expect(h.collector.received.map(x => x.body.profile_id).sort()).toEqual(good.sort())
  })

  test('an event named "Ingest Suspended" refused with a 400 that quotes it fails its batch only: the project goes on', async () => {
    // A server quoting the caller's input in its error, as validation errors do.
    h = await harness({}, {
      fault: (req) => req.body.includes('Ingest Suspended') ? { status: 400, body: JSON.stringify({ error: 'invalid event name "Ingest Suspended"' }) } : undefined
    })
    const disabled: unknown[] = []
    h.tracker.on('disabled', e => disabled.push(e))
    h.tracker.track({ profile_id: person(), event: 'Ingest Suspended' })
    expect(await h.tracker.flush()).toEqual({ delivered: 0, failed: 1, pending: 0, timedOut: false })
    h.tracker.track({ profile_id: person(), event: 'Signed Up' })
    expect(await h.tracker.flush()).toEqual({ delivered: 1, failed: 0, pending: 0, timedOut: false })
    expect(disabled).toEqual([])
    expect(h.tracker.stats()).toMatchObject({ state: 'open', failedBy: { rejected: 1, disabled: 0 }, droppedBy: { disabled: 0 } })
    expect(h.errors.map(e => e.constructor.name)).toEqual(['DeliveryError'])
  })
})

describe('Retry-After and the shared pause', () => {
  test.each([
    ['seconds', () => '3', 3_000],
    ['an HTTP date', (now: number) => new Date(now + 5_000).toUTCString(), 5_000],
    ['a value above maxRetryAfterMs, clamped', () => '900', 60_000]
  ])('a 429 with Retry-After in %s pauses every person for that long', async (_name, value, waitMs) => {
    let first = true
    h = await harness({ maxRetryAfterMs: 60_000 }, {
      fault: () => {
        if (!first) return undefined
        first = false
        return { status: 429, headers: { 'retry-after': value(Date.UTC(2026, 10, 26, 12, 0, 0)) } }
      }
    })
    const a = person()
    const b = person()
    h.tracker.track({ profile_id: a, event: 'first' })
    const retry = nextEvent(h.tracker, 'retry')
    const flushedA = h.tracker.flush(LONG)
    expect(await retry).toMatchObject({ delayMs: waitMs, status: 429 })
    expect(h.tracker.stats().pausedUntil).toBe(h.clock.now() + waitMs)

    h.tracker.track({ profile_id: b, event: 'second' })
    const flushedB = h.tracker.flush(LONG)
    await tick()
    expect(h.tracker.stats()).toMatchObject({ requests: { sent: 1 }, waitingBatches: 2 })
    h.clock.advance(waitMs - 1)
    await tick()
    expect(h.tracker.stats().requests.sent).toBe(1)
    h.clock.advance(1)
    await flushedA
    await flushedB
    expect(h.collector.received.map(r => r.body.profile_id).sort()).toEqual([a, b].sort())
    expect(h.collector.stats().requests).toBe(3)
  })

  test.each([
    ['0', () => '0'],
    ['not a number or an HTTP date', () => '-1'],
    ['a date already past', (now: number) => new Date(now - 60_000).toUTCString()]
  ])('a 429 with Retry-After %s does not shorten the backoff, so its attempts are not spent at once', async (_name, value) => {
    let answers = 0
    h = await harness(FIXED, {
      fault: () => ++answers <= 3 ? { status: 429, headers: { 'retry-after': value(Date.UTC(2026, 10, 26, 12, 0, 0)) } } : undefined
    })
    const { retries } = record(h)
    h.tracker.track({ email: 'a@example.com', event: 'x' })
    const { value: result } = await driveUntil(h.tracker, h.clock, h.tracker.flush(LONG))
    expect(result).toMatchObject({ delivered: 1, failed: 0 })
    expect(retries.map(r => r.delayMs)).toEqual([375, 750, 1500])
    expect(h.collector.stats().requests).toBe(4)
  })

  test('a 5xx pauses everyone too, and until a success only one request probes', async () => {
    let failing = true
    h = await harness({ random: () => 0.5 }, { fault: () => failing ? { status: 503 } : undefined })
    const people = Array.from({ length: 20 }, person)
    for (const p of people) h.tracker.track({ profile_id: p, event: 'x' })
    const flushed = h.tracker.flush(LONG)
    await nextEvent(h.tracker, 'retry', () => h.tracker.stats().inFlightRequests === 0)
    const firstWave = h.collector.stats().requests
    expect(firstWave).toBeLessThanOrEqual(10) // maxConcurrentRequests
    // During the outage every wake sends exactly one probe.
    for (let i = 0; i < 3; i++) {
      const before = h.collector.stats().requests
      h.clock.next()
      await nextEvent(h.tracker, 'retry')
      expect(h.collector.stats().requests).toBe(before + 1)
    }
    failing = false
    const { value } = await driveUntil(h.tracker, h.clock, flushed)
    expect(value).toMatchObject({ delivered: 20, failed: 0 })
    expect(h.collector.stats().profiles.events).toBe(20)
  })
})

describe('backpressure and outages', () => {
  test('a retry approved within maxRetryDurationMs still goes when its timer fires a little late', async () => {
    let lagMs = 0
    h = await harness({ random: () => 1, retryBaseDelayMs: 199, retryMaxDelayMs: 199, maxRetryDurationMs: 200 }, { fault: script({ status: 503 }) })
    const late = { now: () => h.clock.now() + lagMs, setTimeout: h.clock.setTimeout.bind(h.clock), clearTimeout: h.clock.clearTimeout.bind(h.clock) }
    const t = h.make({ clock: late })
    const retry = nextEvent(t, 'retry')
    t.track({ email: 'a@example.com', event: 'x' })
    const flushed = t.flush(LONG)
    expect(await retry).toMatchObject({ delayMs: 199 })
    lagMs = 6 // a busy event loop: the wake runs 6 ms after its time, 205 ms after the first attempt
    h.clock.advance(199)
    await expect(flushed).resolves.toMatchObject({ delivered: 1, failed: 0 })
    expect(h.collector.stats().requests).toBe(2)
  })

  test('a failure while handling an answer (a random() that throws) settles that batch instead of stranding it', async () => {
    h = await harness({ random: () => { throw new Error('no entropy') } }, { fault: script({ status: 503 }) })
    h.tracker.track({ email: 'a@example.com', event: 'x' })
    await expect(h.tracker.flush(LONG)).resolves.toEqual({ delivered: 0, failed: 1, pending: 0, timedOut: false })
    expect(h.tracker.stats()).toMatchObject({ accepted: 1, failed: 1, failedBy: { rejected: 1 }, bufferedItems: 0, bufferedBytes: 0 })
    expect(h.errors).toEqual([expect.objectContaining({ reason: 'rejected', message: expect.stringContaining('no entropy') })])
    // The next batch still goes out.
    h.tracker.track({ email: 'b@example.com', event: 'y' })
    await expect(h.tracker.flush(LONG)).resolves.toMatchObject({ delivered: 1 })
  })

  test('maxRetryDurationMs bounds a batch even while it waits for its turn behind an outage\'s single probe', async () => {
    const attempts = new Map<string, number[]>()
    h = await harness({ random: () => 0.5, retryBaseDelayMs: 100, retryMaxDelayMs: 100, maxRetryDurationMs: 1_000, maxAttempts: 1_000 }, {
      fault: (req) => {
        const who = (JSON.parse(req.body) as { email: string }).email
        attempts.set(who, [...attempts.get(who) ?? [], h.clock.now()])
        return { kind: 'reset' }
      }
    })
    const { failed } = record(h)
    for (let i = 0; i < 20; i++) h.tracker.track({ email: `p${i}@example.com`, event: 'x' })
    const { value } = await driveUntil(h.tracker, h.clock, h.tracker.flush(LONG))
    expect(value).toMatchObject({ delivered: 0, failed: 20, pending: 0 })
    expect(failed.map(f => f.reason)).toEqual(Array(20).fill('retry_exhausted'))
    // 20 batches served one per 75 ms pause: each turn comes 1.5 s after the last, past the budget.
    const spans = [...attempts.values()].map(t => t[t.length - 1] - t[0])
    expect(Math.max(...spans)).toBeLessThanOrEqual(1_000)
    expect(h.tracker.stats()).toMatchObject({ failedBy: { retry_exhausted: 20 }, bufferedItems: 0 })
  })

  test('an outage longer than the buffer keeps memory flat, refuses and counts the overflow, then recovery delivers the rest', async () => {
    let down = true
    h = await harness({ maxBufferedItems: 50, random: () => 0.5 }, { fault: () => down ? { kind: 'reset' } : undefined })
    const accepted: string[] = []
    let peakItems = 0
    let peakBytes = 0
    for (let i = 0; i < 300; i++) {
      const pid = person()
      h.tracker.track({ profile_id: pid, event: 'During Outage', properties: { i } })
      const s = h.tracker.stats()
      if (s.accepted > accepted.length) accepted.push(pid)
      peakItems = Math.max(peakItems, s.bufferedItems)
      peakBytes = Math.max(peakBytes, s.bufferedBytes)
      if (i % 30 === 29) { h.tracker.flush(LONG).catch(() => {}); await tick() }
      // Time passes during the outage: a few probes fail in between. The clock moves only
      // once nothing is in flight: a jump past requestTimeoutMs would time out requests the
      // collector has yet to answer, and their retries would arrive twice.
      if (i % 60 === 59) {
        while (h.tracker.stats().inFlightRequests > 0) await tick()
        h.clock.next()
        await tick()
      }
    }
    expect(accepted).toHaveLength(50)
    expect(peakItems).toBe(50)
    expect(peakBytes).toBeLessThan(50 * 200)
    const s = h.tracker.stats()
    expect(s).toMatchObject({ accepted: 50, dropped: 250, droppedBy: { queue_full: 250 }, failed: 0 })
    expect(h.errors.filter(e => e instanceof RefusedError)).toHaveLength(250)
    // A summary, not a line per refused call.
    expect(h.logger.lines.filter(l => l.obj.kind === 'queue_full').length).toBeLessThanOrEqual(2)

    down = false
    const { value } = await driveUntil(h.tracker, h.clock, h.tracker.flush(LONG))
    expect(value.failed).toBe(0)
    expect(h.tracker.stats()).toMatchObject({ sent: 50, bufferedItems: 0, bufferedBytes: 0 })
    expect(h.collector.received.map(r => r.body.profile_id).sort()).toEqual(accepted.sort())
  })

  test('maxBufferedBytes refuses a call that does not fit while smaller ones still do', async () => {
    h = await harness({ maxBufferedBytes: 2500, maxItemBytes: 2000 })
    const pid = person()
    h.tracker.track({ profile_id: pid, event: 'big', properties: { s: 'x'.repeat(900) } })
    h.tracker.track({ profile_id: pid, event: 'big', properties: { s: 'x'.repeat(900) } })
    h.tracker.track({ profile_id: pid, event: 'big', properties: { s: 'x'.repeat(900) } })
    h.tracker.track({ profile_id: pid, event: 'small' })
    expect(h.tracker.stats()).toMatchObject({ accepted: 3, droppedBy: { queue_full: 1 } })
    expect(h.tracker.stats().bufferedBytes).toBeLessThanOrEqual(2500)
  })

  test('no more than maxConcurrentRequests are in flight', async () => {
    let peak = 0
    h = await harness({ maxConcurrentRequests: 3 }, { fault: () => { peak = Math.max(peak, h.tracker.stats().inFlightRequests); return undefined } })
    for (let i = 0; i < 40; i++) h.tracker.page({ profile_id: person() })
    await h.tracker.flush()
    expect(peak).toBe(3)
    expect(h.collector.stats().profiles.page_views).toBe(40)
  })
})

describe('generated message_ids', () => {
  test('are fixed before the first attempt and sent unchanged on every retry', async () => {
    const attempts: string[][] = []
    h = await harness(FIXED, {
      fault: (req) => {
        attempts.push((req.body.match(/"message_id":"[^"]+"/g) ?? []).map(m => m.slice(14, -1)))
        return attempts.length < 3 ? { status: 503 } : undefined
      }
    })
    const pid = person()
    h.tracker.track({ profile_id: pid, event: 'one' })
    h.tracker.page({ profile_id: pid, name: 'two' })
    h.tracker.identify({ profile_id: pid, traits: { plan: 'pro' } }) // identifies carry none
    const { value } = await driveUntil(h.tracker, h.clock, h.tracker.flush(LONG))
    expect(value).toEqual({ delivered: 3, failed: 0, pending: 0, timedOut: false })
    expect(attempts).toHaveLength(3)
    expect(attempts[0]).toEqual([expect.stringMatching(UUID_V4), expect.stringMatching(UUID_V4)])
    expect(new Set(attempts[0]).size).toBe(2)
    expect(attempts[1]).toEqual(attempts[0])
    expect(attempts[2]).toEqual(attempts[0])
  })
})

describe('a run with 30% failures', () => {
  test('delivers every accepted item; the only repeats are retries of requests whose answer was lost', async () => {
    // A seeded generator keeps the run reproducible.
    let seed = 42
    const rand = (): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31 }
    const lostAnswers = new Map<string, number>()
    h = await harness({ random: rand, maxAttempts: 50 }, {
      fault: (req) => {
        const r = rand()
        if (r < 0.10) return { status: 503 }
        if (r < 0.20) return { kind: 'reset' }
        if (r < 0.30) {
          // Stored, then the connection dies: the tracker cannot know it was delivered.
          for (const id of req.body.match(/"message_id":"[^"]+"/g) ?? []) lostAnswers.set(id.slice(14, -1), (lostAnswers.get(id.slice(14, -1)) ?? 0) + 1)
          return { kind: 'reset', record: true }
        }
        return undefined
      }
    })
    const ids: string[] = []
    const people = Array.from({ length: 150 }, person)
    for (let i = 0; i < 900; i++) {
      const id = `msg-${i}`
      ids.push(id)
      const p = people[(i * 7) % people.length]
      if (i % 3 === 0) h.tracker.page({ profile_id: p, name: 'x', message_id: id })
      else h.tracker.track({ profile_id: p, event: 'x', message_id: id })
    }
    const { value } = await driveUntil(h.tracker, h.clock, h.tracker.flush(LONG))
    expect(value).toEqual({ delivered: 900, failed: 0, pending: 0, timedOut: false })
    expect(lostAnswers.size).toBeGreaterThan(0)
    const received = h.collector.messageIds()
    for (const id of ids) expect([id, received.get(id)]).toEqual([id, 1 + (lostAnswers.get(id) ?? 0)])
    expect(received.size).toBe(900)
    expect(h.tracker.stats().requests.retried).toBeGreaterThan(0)
  })
})

describe('flush() and close()', () => {
  test('overlapping flush() calls each wait for what was unsettled when they were called', async () => {
    h = await harness({}, { fault: script({ status: 503 }) })
    h.tracker.track({ email: 'a@example.com', event: 'one' })
    const first = h.tracker.flush(LONG)
    h.tracker.track({ email: 'b@example.com', event: 'two' })
    const second = h.tracker.flush(LONG)
    expect(second).not.toBe(first)
    const both = await driveUntil(h.tracker, h.clock, Promise.all([first, second]))
    // The first flush did not wait for 'two', buffered after it; the second waited for both.
    expect(both.value).toEqual([
      { delivered: 1, failed: 0, pending: 0, timedOut: false },
      { delivered: 2, failed: 0, pending: 0, timedOut: false }
    ])
    await expect(h.tracker.flush()).resolves.toEqual({ delivered: 0, failed: 0, pending: 0, timedOut: false })
  })

  test('each flush() keeps its own deadline: a short one is not held by a longer one still waiting, nor ended by an earlier short one', async () => {
    h = await harness({ random: () => 0.5 }, { fault: () => ({ status: 503 }) })
    h.tracker.track({ email: 'a@example.com', event: 'one' })
    const long = h.tracker.flush({ timeoutMs: 10_000 })
    const short = h.tracker.flush({ timeoutMs: 200 })
    let shortResult: unknown
    void short.then(r => { shortResult = r })
    await nextEvent(h.tracker, 'retry')
    h.clock.advance(200)
    await tick()
    expect(shortResult).toEqual({ delivered: 0, failed: 0, pending: 1, timedOut: true })
    // An expired short flush does not end a later one early.
    const later = h.tracker.flush({ timeoutMs: 5_000 })
    let laterResult: unknown
    void later.then(r => { laterResult = r })
    h.clock.advance(4_000)
    await tick()
    expect(laterResult).toBeUndefined()
    h.clock.advance(1_000)
    await expect(later).resolves.toEqual({ delivered: 0, failed: 0, pending: 1, timedOut: true })
    h.clock.advance(4_800)
    await expect(long).resolves.toEqual({ delivered: 0, failed: 0, pending: 1, timedOut: true })
  })

  test('a flush() that timed out during an outage is not held by the batches it waited for', async () => {
    h = await harness({ random: () => 0.5, flushIntervalMs: 600_000 }, { fault: () => ({ kind: 'hang' }) })
    for (let i = 0; i < 50; i++) h.tracker.track({ profile_id: person(), event: 'stuck' })
    const refs: Array<WeakRef<object>> = []
    // In a function of its own: a suspended async function's frame would hold the last promise.
    const flushAndWeaklyKeep = async (): Promise<void> => {
      const flushed = h.tracker.flush({ timeoutMs: 0 })
      refs.push(new WeakRef(flushed))
      h.clock.advance(0)
      await expect(flushed).resolves.toMatchObject({ pending: 50, timedOut: true })
    }
    for (let i = 0; i < 20; i++) await flushAndWeaklyKeep()
    expect(h.tracker.stats().bufferedItems).toBe(50)
    await tick()
    collectGarbage()
    // Each flush's promise (and the wait behind it) is garbage once it has resolved.
    expect(refs.map((r, i) => r.deref() === undefined ? -1 : i).filter(i => i >= 0)).toEqual([])
  })

  test('flush() resolves at its deadline with what is still pending; delivery carries on', async () => {
    h = await harness({ random: () => 0.5 }, { fault: script({ status: 503 }, { status: 503 }) })
    h.tracker.track({ email: 'a@example.com', event: 'one' })
    const flushed = h.tracker.flush({ timeoutMs: 500 })
    await nextEvent(h.tracker, 'retry')
    h.clock.advance(375)      // second attempt (503 again), next wait 750
    await nextEvent(h.tracker, 'retry')
    h.clock.advance(125)      // the flush deadline
    expect(await flushed).toEqual({ delivered: 0, failed: 0, pending: 1, timedOut: true })
    const { value } = await driveUntil(h.tracker, h.clock, h.tracker.flush(LONG))
    expect(value.delivered).toBe(1)
  })

  test('close() during an outage resolves at its deadline, aborts what is left and reports the loss', async () => {
    h = await harness({ random: () => 0.5, flushIntervalMs: 600_000 }, { fault: () => ({ kind: 'hang' }) })
    for (let i = 0; i < 10; i++) h.tracker.track({ profile_id: person(), event: 'lost' })
    const closing = h.tracker.close({ timeoutMs: 5_000 })
    expect(h.tracker.close()).toBe(closing)
    await h.collector.waitFor(() => h.collector.stats().requests === 10)
    expect(h.tracker.stats().inFlightRequests).toBe(10)
    h.clock.advance(4_999)
    await tick()
    expect(h.tracker.stats().state).toBe('closing')
    h.clock.advance(1)
    const result = await closing
    // Sent and never answered: Koala may have them, so they are unknown, not abandoned.
    expect(result).toEqual({ delivered: 0, failed: 0, abandoned: 0, unknown: 10, spooled: 0, timedOut: true })
    const s = h.tracker.stats()
    expect(s).toMatchObject({ state: 'closed', failedBy: { shutdown: 0, unknown: 10 }, bufferedItems: 0, inFlightRequests: 0 })
    expect(h.errors).toEqual([expect.objectContaining({ code: 'KOALA_ERR_DELIVERY', reason: 'unknown', items: 10 })])
    expect(h.logger.lines).toContainEqual(expect.objectContaining({ level: 'error', obj: expect.objectContaining({ kind: 'shutdown', unknown: 10, abandoned: 0 }) }))
    expect(h.clock.pending()).toEqual([])
  })

  test('at the close() deadline, an attempt whose 2xx status has arrived counts as delivered; one with no answer is unknown', async () => {
    h = await harness({ flushIntervalMs: 600_000 }, { fault: (req) => req.body.includes('"stalled"') ? { kind: 'stall' } : { kind: 'hang' } })
    // The client's side of the socket: undici reports the status line as it parses it.
    const statusArrived = new Promise<void>(resolve => {
      const onHeaders = (m: unknown): void => {
        if ((m as { response: { statusCode: number } }).response.statusCode !== 200) return
        unsubscribe('undici:request:headers', onHeaders)
        resolve()
      }
      subscribe('undici:request:headers', onHeaders)
    })
    h.tracker.track({ profile_id: person(), event: 'stalled' })
    h.tracker.track({ profile_id: person(), event: 'unanswered' })
    const closing = h.tracker.close({ timeoutMs: 5_000 })
    await h.collector.waitFor(() => h.collector.stats().requests === 2)
    await statusArrived
    h.clock.advance(5_000)
    expect(await closing).toEqual({ delivered: 1, failed: 0, abandoned: 0, unknown: 1, spooled: 0, timedOut: true })
    expect(h.tracker.stats()).toMatchObject({ sent: 1, failedBy: { unknown: 1 }, bufferedItems: 0, inFlightRequests: 0 })
    expect(h.errors).toEqual([expect.objectContaining({ code: 'KOALA_ERR_DELIVERY', reason: 'unknown', items: 1 })])
  })

  test('close() waits for pending retries within its deadline, and does not depend on flushIntervalMs', async () => {
    h = await harness({ random: () => 0.5, flushIntervalMs: 600_000 }, { fault: script({ status: 500 }, { kind: 'reset' }) })
    h.tracker.track({ email: 'a@example.com', event: 'x' })
    const { value, jumps } = await driveUntil(h.tracker, h.clock, h.tracker.close({ timeoutMs: 3_000 }))
    expect(value).toEqual({ delivered: 1, failed: 0, abandoned: 0, unknown: 0, spooled: 0, timedOut: false })
    expect(jumps).toEqual([375, 750])
  })

  test('a batch that a flush() and close() both wait for settles both', async () => {
    h = await harness({ random: () => 0.5 }, { fault: script({ status: 503 }) })
    h.tracker.track({ email: 'a@example.com', event: 'one' })
    const flushed = h.tracker.flush(LONG)
    const closing = h.tracker.close(LONG)
    const { value } = await driveUntil(h.tracker, h.clock, closing)
    expect(value).toEqual({ delivered: 1, failed: 0, abandoned: 0, unknown: 0, spooled: 0, timedOut: false })
    await expect(flushed).resolves.toEqual({ delivered: 1, failed: 0, pending: 0, timedOut: false })
    expect(h.collector.stats().requests).toBe(2)
  })

  test('flush() during close() waits for the same batches, with its own deadline', async () => {
    h = await harness()
    h.tracker.track({ email: 'a@example.com', event: 'x' })
    const closing = h.tracker.close()
    await expect(h.tracker.flush()).resolves.toEqual({ delivered: 1, failed: 0, pending: 0, timedOut: false })
    await closing

    const hung = await harness({}, { fault: () => ({ kind: 'hang' }) })
    const tracker = hung.make()
    try {
      tracker.track({ email: 'a@example.com', event: 'x' })
      const closing = tracker.close({ timeoutMs: 3_000 })
      let closed = false
      void closing.then(() => { closed = true })
      const flushed = tracker.flush({ timeoutMs: 100 })
      hung.clock.advance(100)
      await expect(flushed).resolves.toEqual({ delivered: 0, failed: 0, pending: 1, timedOut: true })
      expect(closed).toBe(false)
      hung.clock.advance(2_900)
      await expect(closing).resolves.toEqual({ delivered: 0, failed: 0, abandoned: 0, unknown: 1, spooled: 0, timedOut: true })
    } finally {
      await hung.done()
    }
  })

  test('close() reaches its deadline under Jest fake timers, which hold setImmediate back', async () => {
    jest.useFakeTimers()
    try {
      const transport = {
        reusesSignals: true,
        send: async ({ signal }: { signal: AbortSignal }) => await new Promise<never>((_resolve, reject) => {
          signal.addEventListener('abort', () => reject(signal.reason), { once: true })
        }),
        close: async () => {},
        destroy: async () => {}
      }
      h = await harness({ transport, clock: undefined })
      h.tracker.track({ email: 'a@example.com', event: 'x' })
      const closing = h.tracker.close({ timeoutMs: 1_000 })
      jest.advanceTimersByTime(1_000)
      await expect(closing).resolves.toEqual({ delivered: 0, failed: 0, abandoned: 0, unknown: 1, spooled: 0, timedOut: true })
    } finally {
      jest.useRealTimers()
    }
  })
})

describe('ingest disabled', () => {
  test('a 401 stops sending: buffered items fail as disabled, later calls are refused and counted, reported once', async () => {
    h = await harness({}, { fault: () => ({ status: 401, body: '{"error":"invalid key"}' }) })
    const disabled = nextEvent(h.tracker, 'disabled')
    const pid = person()
    h.tracker.track({ profile_id: pid, event: 'first' })
    const flushed = h.tracker.flush()
    h.tracker.track({ profile_id: person(), event: 'buffered while the first is in flight' })
    expect((await disabled).error.status).toBe(401)
    await flushed
    for (let i = 0; i < 5; i++) h.tracker.track({ profile_id: pid, event: 'after' })
    await h.tracker.flush()
    const s = h.tracker.stats()
    expect(s).toMatchObject({ state: 'disabled', accepted: 2, failedBy: { disabled: 2 }, droppedBy: { disabled: 5 }, bufferedItems: 0 })
    expect(h.collector.stats().requests).toBe(1)
    expect(h.errors.filter(e => e instanceof IngestDisabledError)).toHaveLength(1)
    expect(h.logger.lines.filter(l => l.level === 'error')).toHaveLength(1)
    expect(h.logger.lines[0].msg).toContain('HTTP 401')
  })
})

describe('nothing escapes to the host', () => {
  test('an onError hook and listeners that throw are contained; the tracker carries on', async () => {
    h = await harness({ onError: () => { throw new Error('hook broke') } }, { fault: script({ status: 400 }) })
    h.tracker.on('failed', () => { throw new Error('listener broke') })
    h.tracker.on('dropped', () => { throw new Error('listener broke too') })
    expect(() => h.tracker.track({ event: 'no id' } as never)).not.toThrow()
    h.tracker.track({ email: 'a@example.com', event: 'rejected' })
    await h.tracker.flush()
    h.tracker.track({ email: 'a@example.com', event: 'delivered' })
    await h.tracker.flush()
    expect(h.collector.stats().profiles.events).toBe(1)
    const kinds = h.logger.lines.map(l => l.obj.kind)
    expect(kinds).toEqual(expect.arrayContaining(['onError', 'listener:failed', 'listener:dropped']))
  })

  test('with no listeners at all, failures raise no error event', async () => {
    h = await harness({ onError: undefined }, { fault: () => ({ status: 400 }) })
    h.tracker.track({ email: 'a@example.com', event: 'x' })
    await expect(h.tracker.flush()).resolves.toMatchObject({ failed: 1 })
  })
})
