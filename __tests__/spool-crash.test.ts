import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startCollector, type Collector } from '../lib/collector'
import { FIXTURES, startNode, type Child } from './helpers/child'

// SIGKILL at seeded random moments, while calls flow, with Koala up or down, then again while the next
// process recovers; a third process on the same directory delivers what is left. Every item the spool
// had handed to the OS (written: SIGKILL cannot take it back, whatever the fsync policy) must arrive.

/** A small seeded generator (mulberry32), so a failing run can be repeated. */
function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

let collector: Collector
let down = false
beforeAll(async () => {
  collector = await startCollector({ keepBodies: false, fault: () => down ? { status: 503 } : undefined })
})
afterAll(async () => { await collector.close() })

function start (dir: string, run: string, rate: number, fsync: string, extra: Record<string, string> = {}): Child {
  return startNode([join(FIXTURES, 'spool-crash.cjs')], {
    env: { KOALA_BASE_URL: collector.url, SPOOL_DIR: dir, RUN: run, RATE: String(rate), FSYNC: fsync, MAX_CONCURRENT_REQUESTS: String(IN_FLIGHT), ...extra },
    guardMs: 20_000
  })
}

/** The items written before the kill: the last count the child printed. */
function writtenBefore (child: Child): number {
  const lines = child.output().trim().split('\n').filter(l => l.startsWith('written '))
  return lines.length === 0 ? 0 : Number(lines[lines.length - 1].split(' ')[1])
}

async function killAfter (child: Child, ms: number): Promise<number> {
  await child.waitForOutput('ready')
  // From its first write on (a loaded machine may take a while to get there), then at a random moment.
  while (writtenBefore(child) === 0 && child.process.exitCode === null && child.process.signalCode === null) await new Promise(resolve => setTimeout(resolve, 5))
  await new Promise(resolve => setTimeout(resolve, ms))
  child.process.kill('SIGKILL')
  const r = await child.exited
  expect(r.signal).toBe('SIGKILL')
  return writtenBefore(child)
}

/** Requests in flight at most in each child. */
const IN_FLIGHT = 8
const POLICIES = ['interval', 'batch', 'never']
const SEEDS = [1, 2, 3, 4, 5, 6]

test.each(SEEDS)('seed %i: two processes killed at random moments; the third delivers every item written before each kill', async (seed) => {
  const random = prng(seed)
  const dir = mkdtempSync(join(tmpdir(), 'koala-crash-'))
  const fsync = POLICIES[seed % POLICIES.length]
  // Odd seeds: Koala is down until the last process, so nothing may arrive twice.
  const outage = seed % 2 === 1
  down = outage
  const duplicatesBefore = collector.stats().duplicates

  const first = await killAfter(start(dir, `s${seed}a`, 20, fsync), 50 + Math.floor(random() * 250))
  // The second also recovers what the first left while it tracks its own calls, and is killed in the middle.
  const second = await killAfter(start(dir, `s${seed}b`, 20, fsync, { MAX_BUFFERED_ITEMS: '2000' }), 50 + Math.floor(random() * 250))
  expect(first).toBeGreaterThan(0)
  expect(second).toBeGreaterThan(0)

  down = false
  const last = start(dir, `s${seed}c`, 0, fsync)
  await last.waitForOutput('done')
  expect((await last.exited).code).toBe(0)

  const seen = collector.messageIds()
  const missing: string[] = []
  for (const [run, n] of [[`s${seed}a`, first], [`s${seed}b`, second]] as const) {
    for (let i = 0; i < n; i++) if (!seen.has(`${run}-${i}`)) missing.push(`${run}-${i}`)
  }
  expect(missing).toEqual([])
  const repeats = collector.stats().duplicates - duplicatesBefore
  if (outage) {
    expect(repeats).toBe(0)
  } else {
    // Koala answering: only what was in flight at a kill, or answered in the moment before it, is sent again
    // (an item in flight at both kills goes three times). Without the .ack files it would be most of a segment.
    expect(repeats).toBeLessThanOrEqual(4 * IN_FLIGHT * 30)
  }
})

test('items Koala accepted before a kill are not sent again: the .ack files record them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'koala-crash-'))
  down = false
  const duplicatesBefore = collector.stats().duplicates
  const first = start(dir, 'acked', 20, 'interval', { COUNT: '1000' })
  await first.waitForOutput('acked')
  first.process.kill('SIGKILL')
  await first.exited

  const last = start(dir, 'acked-after', 0, 'interval')
  await last.waitForOutput('done')
  const stats = JSON.parse(last.output().split('done ')[1]) as { recovered: number, corruptRecords: number }
  expect(stats).toMatchObject({ recovered: 0, corruptRecords: 0 })
  for (let i = 0; i < 1000; i++) expect(collector.messageIds().get(`acked-${i}`)).toBe(1)
  expect(collector.stats().duplicates).toBe(duplicatesBefore)
})

test.each(['exit', 'throw'])('calls made just before the process ends (%s) are written on the way out and delivered by the next process', async (how) => {
  const dir = mkdtempSync(join(tmpdir(), 'koala-crash-'))
  down = true
  const first = start(dir, `end-${how}`, 0, 'interval', { EXIT_HOW: how, COUNT: '500' })
  const r = await first.exited
  expect(r.code).toBe(how === 'exit' ? 3 : 1)
  expect(r.stderr).toMatch(/with 500 items undelivered; those written to the spool are sent by the next tracker/)
  down = false
  const last = start(dir, `end-${how}-after`, 0, 'interval')
  await last.waitForOutput('done')
  const stats = JSON.parse(last.output().split('done ')[1]) as { recovered: number }
  expect(stats.recovered).toBe(500)
  for (let i = 0; i < 500; i++) expect(collector.messageIds().get(`end-${how}-${i}`)).toBe(1)
})
