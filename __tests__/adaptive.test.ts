import { driveUntil } from './helpers/drive'
import { harness, nextEvent, person, type Harness } from './helpers/setup'

let h: Harness
afterEach(async () => { await h.done() })

/** A seeded generator: the same faults every run. */
function seeded (seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed / 2147483648
  }
}

describe('partial faults do not stall delivery', () => {
  test('with 30% of requests failing at random (503, 429, resets), every item arrives once, in a few backoffs, not one pause per failure', async () => {
    const random = seeded(42)
    const faults = [{ status: 503 }, { status: 429 }, { kind: 'reset' as const }]
    let failed = 0
    h = await harness({ random: () => 0.5, flushIntervalMs: 600_000 }, {
      fault: () => {
        if (random() >= 0.3) return undefined
        failed++
        return faults[failed % faults.length]
      }
    })
    const people = Array.from({ length: 600 }, person)
    for (const profile_id of people) h.tracker.track({ profile_id, event: 'e' })
    const { value, jumps } = await driveUntil(h.tracker, h.clock, h.tracker.flush({ timeoutMs: 600_000 }))
    expect(value).toEqual({ delivered: 600, failed: 0, pending: 0, timedOut: false })
    expect(h.collector.stats().duplicates).toBe(0)
    expect(h.collector.messageIds().size).toBe(600)
    const requests = h.collector.stats().requests
    expect(failed).toBeGreaterThan(200)
    // Each failure costs its own batch a retry: about 1/(1 - 0.3) attempts per batch.
    expect(requests / 600).toBeLessThan(1.6)
    // Retries of different batches overlap: the whole delivery takes a handful of backoffs (375 ms, 750 ms,
    // 1.5 s, ...), where pausing everyone for each failure took one backoff per failure (over a minute here).
    const virtualMs = jumps.reduce((a, b) => a + b, 0)
    expect(virtualMs).toBeLessThan(15_000)
    expect(h.tracker.stats().pausedUntil).toBe(0)
  })

  test('a full outage is probed by one request per backoff, and delivery resumes at full speed after it', async () => {
    let down = true
    h = await harness({ random: () => 0.5, flushIntervalMs: 600_000 }, { fault: () => down ? { status: 503 } : undefined })
    for (let i = 0; i < 100; i++) h.tracker.track({ profile_id: person(), event: 'e' })
    const flushed = h.tracker.flush({ timeoutMs: 600_000 })
    // The first wave fails; then every wake sends exactly one probe.
    await driveUntil(h.tracker, h.clock, new Promise<void>(resolve => {
      const off = h.tracker.on('retry', () => { if (h.tracker.stats().pausedUntil > 0 && h.tracker.stats().inFlightRequests === 0) { off(); resolve() } })
    }))
    const firstWave = h.collector.stats().requests
    expect(firstWave).toBeLessThanOrEqual(10)
    const probes: number[] = []
    for (let i = 0; i < 5; i++) {
      const before = h.collector.stats().requests
      const { jumps } = await driveUntil(h.tracker, h.clock, new Promise(resolve => { const off = h.tracker.on('retry', (r) => { off(); resolve(r) }) }))
      probes.push(h.collector.stats().requests - before)
      expect(jumps.length).toBeGreaterThan(0)
    }
    expect(probes).toEqual([1, 1, 1, 1, 1])
    down = false
    const { value } = await driveUntil(h.tracker, h.clock, flushed)
    expect(value).toMatchObject({ delivered: 100, failed: 0 })
    expect(h.collector.messageIds().size).toBe(100)
  })
})

test('a batch due for its retry takes its turn between batches never tried, not after all of them', async () => {
  let first = true
  h = await harness({ random: () => 0.5, maxConcurrentRequests: 1, flushIntervalMs: 600_000 }, {
    fault: () => { if (first) { first = false; return { status: 503 } } return undefined }
  })
  const order: string[] = []
  h.collector.on('request', (req) => { order.push((JSON.parse(req.body) as { email: string }).email) })
  const people = ['a', 'b', 'c', 'd', 'e', 'f'].map(p => `${p}@example.com`)
  for (const email of people) h.tracker.track({ email, event: 'e' })
  const flushed = h.tracker.flush({ timeoutMs: 60_000 })
  await nextEvent(h.tracker, 'retry')
  // a's backoff (375 ms) passes while b, the next one never tried, is in flight.
  h.clock.advance(375)
  const { value } = await driveUntil(h.tracker, h.clock, flushed)
  expect(value).toMatchObject({ delivered: 6, failed: 0 })
  expect(order).toEqual(['a', 'b', 'a', 'c', 'd', 'e', 'f'].map(p => `${p}@example.com`))
})
