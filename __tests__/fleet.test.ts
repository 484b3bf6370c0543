import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Redis from 'ioredis'
import { startCollector, type Collector, type Fault } from '../lib/collector'
import { createTracker, type Tracker } from '../lib/tracker/tracker'
import type { TrackerOptions } from '../lib/tracker/options'
import { EXIT, main, type CliIo } from '../lib/cli/cli'
import { FIXTURES, ROOT, startNode, type Child } from './helpers/child'
import { hasRedis, startRedis, type RedisServer } from './helpers/redis'
import { freePort, memoryLogger, person } from './helpers/setup'

// Against a real redis-server (Debian's package; .ci/run installs it). Time is real here: Redis's is.
const describeRedis = hasRedis ? describe : describe.skip

let redis: RedisServer
let collector: Collector
/** Answers for the next requests, in order; then normal ones. */
const faults: Fault[] = []
const trackers: Tracker[] = []

beforeAll(async () => {
  if (!hasRedis) return
  redis = await startRedis()
  collector = await startCollector({ keepBodies: true, fault: () => faults.shift() })
})
afterAll(async () => {
  if (!hasRedis) return
  await redis.stop()
  await collector.close()
})
afterEach(async () => {
  await Promise.all(trackers.splice(0).map(async t => await t.close({ timeoutMs: 2000 })))
})

function make (extra: Partial<TrackerOptions> = {}, stream = 'test:stream'): Tracker {
  const t = createTracker({
    publicKey: 'pk_test',
    baseUrl: collector.url,
    flushIntervalMs: 100,
    logger: memoryLogger(),
    redis: { url: redis.url, stream, claimIdleMs: 1500 },
    ...extra
  })
  trackers.push(t)
  return t
}

async function connected (t: Tracker): Promise<void> {
  await until(() => t.stats().redis?.connected === true, 'the connection')
}

async function until (done: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 3000 && !done(); i++) await new Promise(resolve => setTimeout(resolve, 2))
  if (!done()) throw new Error(`gave up waiting for ${what}`)
}

describeRedis('fleet mode', () => {
  test('one person\'s events from three producer processes go to Koala together, through one consumer', async () => {
    const stream = `together:${person()}`
    const producers = [0, 1, 2].map(() => make({ redis: { url: redis.url, stream, consume: false } }))
    const consumer = make({ redis: { url: redis.url, stream } })
    await Promise.all([...producers, consumer].map(connected))
    const pid = person()
    const before = collector.stats().requests
    producers.forEach((p, n) => { for (let i = 0; i < 10; i++) p.track({ profile_id: pid, event: 'e', message_id: `t-${n}-${i}` }) })
    await until(() => consumer.stats().sent === 30, 'the delivery')
    const requests = collector.received.filter(r => r.body.profile_id === pid)
    expect(requests).toHaveLength(1)
    expect((requests[0].body.events as unknown[]).length).toBe(30)
    expect(collector.stats().requests - before).toBe(1)
    expect(producers.map(p => p.stats().redis?.produced)).toEqual([10, 10, 10])
    expect(producers.map(p => p.stats().sent)).toEqual([0, 0, 0])
    await until(() => consumer.stats().redis?.acked === 30, 'the acknowledgements')
  })

  test('a burst made in one turn goes to the stream over several turns, and all of it arrives', async () => {
    const stream = `burst:${person()}`
    const producer = make({ redis: { url: redis.url, stream, consume: false } })
    const consumer = make({ redis: { url: redis.url, stream } })
    await Promise.all([producer, consumer].map(connected))
    const people = Array.from({ length: 100 }, person)
    for (let i = 0; i < 5000; i++) producer.track({ profile_id: people[i % 100], event: 'e', message_id: `burst-${i}` })
    await until(() => consumer.stats().sent === 5000, 'the delivery')
    expect(producer.stats().redis).toMatchObject({ produced: 5000, local: 0 })
    for (let i = 0; i < 5000; i += 499) expect(collector.messageIds().get(`burst-${i}`)).toBe(1)
  })

  test('a lone consumer that closes right after its calls delivers them: close() reads what the stream holds', async () => {
    const stream = `lone:${person()}`
    const t = make({ redis: { url: redis.url, stream } })
    await connected(t)
    const people = Array.from({ length: 50 }, person)
    for (let i = 0; i < 1000; i++) t.track({ profile_id: people[i % 50], event: 'e', message_id: `lone-${i}` })
    const closed = await t.close()
    expect(closed).toMatchObject({ timedOut: false, spooled: 0, abandoned: 0 })
    expect(t.stats().redis).toMatchObject({ produced: 1000, consumed: 1000, acked: 1000 })
    for (let i = 0; i < 1000; i += 111) expect(collector.messageIds().get(`lone-${i}`)).toBe(1)
  })

  test('with Redis unreachable, calls are delivered by the process itself, and counted', async () => {
    const port = await freePort()
    const t = make({ redis: { url: `redis://127.0.0.1:${port}`, consume: false } })
    const pid = person()
    for (let i = 0; i < 5; i++) t.track({ profile_id: pid, event: 'e', message_id: `down-${i}` })
    await t.flush()
    expect(t.stats()).toMatchObject({ accepted: 5, sent: 5, redis: { connected: false, produced: 0, local: 5 } })
    expect(collector.messageIds().get('down-4')).toBe(1)
  })

  test('with a spool too, calls made while Redis is unreachable are kept on disk; after a crash the next process delivers them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'koala-fleet-spool-'))
    const port = await freePort()
    // Neither Redis nor Koala answers this process.
    const offline = make({ baseUrl: `http://127.0.0.1:${port}`, redis: { url: `redis://127.0.0.1:${port}`, consume: false }, spool: { dir } })
    const pid = person()
    for (let i = 0; i < 5; i++) offline.track({ profile_id: pid, event: 'e', message_id: `offline-${i}` })
    await until(() => offline.stats().spool?.writtenItems === 5, 'the spool writes')
    expect(offline.stats().redis).toMatchObject({ produced: 0, local: 5 })
    // At its close() deadline they stay in the spool, as after a crash.
    expect(await offline.close({ timeoutMs: 0 })).toMatchObject({ delivered: 0, spooled: 5 })
    make({ redis: { url: redis.url, consume: false }, spool: { dir } })
    await until(() => [0, 1, 2, 3, 4].every(i => collector.messageIds().has(`offline-${i}`)), 'the recovery')
  })

  test('records whose XADD fails come back and are delivered by the process itself', async () => {
    const stream = `wrongtype:${person()}`
    const raw = new Redis(redis.url)
    try {
      // A key of another type: Redis refuses every XADD to it.
      await raw.set(stream, 'not a stream')
      const logger = memoryLogger()
      const t = make({ logger, redis: { url: redis.url, stream, consume: false } })
      await connected(t)
      for (let i = 0; i < 3; i++) t.track({ email: 'fallback@example.com', event: 'e', message_id: `wrongtype-${i}` })
      await until(() => t.stats().redis?.local === 3, 'the fallback')
      await t.flush()
      expect(t.stats()).toMatchObject({ sent: 3, redis: { produced: 0, local: 3 } })
      expect(collector.messageIds().get('wrongtype-2')).toBe(1)
      expect(logger.lines.filter(l => /Redis xadd failed \(WRONGTYPE/.test(l.msg ?? ''))).toHaveLength(1)
    } finally {
      raw.disconnect()
    }
  })

  test('with a spool too, records whose XADD fails are kept on disk before they are delivered from here', async () => {
    const stream = `wrongtype-spool:${person()}`
    const raw = new Redis(redis.url)
    try {
      await raw.set(stream, 'not a stream')
      const t = make({ redis: { url: redis.url, stream, consume: false }, spool: { dir: mkdtempSync(join(tmpdir(), 'koala-fleet-spool-')) } })
      await connected(t)
      for (let i = 0; i < 3; i++) t.track({ email: 'fallback@example.com', event: 'e', message_id: `wrongtype-spool-${i}` })
      await until(() => t.stats().spool?.writtenItems === 3, 'the spool writes')
      await t.flush()
      expect(t.stats()).toMatchObject({ sent: 3, redis: { produced: 0, local: 3 } })
      await until(() => t.stats().spool?.items === 0, 'the spool settled')
    } finally {
      raw.disconnect()
    }
  })

  test('a 429 with Retry-After seen by one consumer pauses the others', async () => {
    const stream = `pause:${person()}`
    const a = make({ redis: { url: redis.url, stream, claimIdleMs: 600 } })
    const b = make({ redis: { url: redis.url, stream, claimIdleMs: 600 } })
    await Promise.all([a, b].map(connected))
    faults.push({ status: 429, headers: { 'retry-after': '30' } })
    a.track({ profile_id: person(), event: 'e' })
    b.track({ profile_id: person(), event: 'e' })
    // Whichever consumer got the 429 tells the fleet; the other reads it within a third of claimIdleMs.
    await until(() => a.stats().pausedUntil > Date.now() + 20_000 && b.stats().pausedUntil > Date.now() + 20_000, 'both paused')
  })

  test('three producer processes, two consumers: one consumer killed mid-batch and Redis restarted mid-run; every item arrives', async () => {
    const stream = `fleet:${person()}`
    const run = `f${Date.now()}`
    const env = { KOALA_BASE_URL: collector.url, REDIS_URL: redis.url, KOALA_ALLOW_UNKNOWN_ENV: '' }
    const spawnRole = (role: string, extra: Record<string, string> = {}): Child => startNode([join(FIXTURES, 'fleet-process.cjs')], {
      env: { ...env, ROLE: role, STREAM: stream, ...extra },
      guardMs: 30_000
    })
    const consumers = [spawnRole('consumer'), spawnRole('consumer')]
    await Promise.all(consumers.map(async c => await c.waitForOutput('ready')))
    const duplicatesBefore = collector.stats().duplicates
    const producers = [0, 1, 2].map(n => spawnRole('producer', { RUN: `${run}-${n}`, COUNT: '3000', RATE: '5' }))
    // Mid-run: one consumer dies holding entries; then Redis goes away and comes back.
    await until(() => [...collector.messageIds().keys()].filter(k => k.startsWith(run)).length > 1500, 'some deliveries')
    consumers[0].process.kill('SIGKILL')
    await redis.restart()
    const results = await Promise.all(producers.map(async p => await p.exited))
    expect(results.map(r => r.code)).toEqual([0, 0, 0])
    const expected: string[] = []
    for (let n = 0; n < 3; n++) for (let i = 0; i < 3000; i++) expected.push(`${run}-${n}-${i}`)
    // The survivor claims what the dead consumer held (after claimIdleMs) and delivers the rest.
    await until(() => expected.every(id => collector.messageIds().has(id)), 'every item')
    const stats = results.map(r => JSON.parse(r.stdout.split('closed ')[1]) as { redis: { produced: number, local: number } })
    expect(stats.reduce((n, s) => n + s.redis.produced + s.redis.local, 0)).toBeGreaterThanOrEqual(9000)
    // Repeats only from what was in flight at the kill or the restart: at most the dead consumer's requests in flight, and the XADDs the restart cut.
    expect(collector.stats().duplicates - duplicatesBefore).toBeLessThan(1000)
    consumers[1].process.kill('SIGTERM')
    const survivor = await consumers[1].exited
    expect(survivor.code).toBe(0)
    // It took over what the killed consumer held: claimed after claimIdleMs, delivered with the same message_ids.
    expect((JSON.parse(survivor.stdout.split('closed ')[1]) as { redis: { claimed: number } }).redis.claimed).toBeGreaterThan(0)
  })

  test('process.exit() right after calls: the records that never reached Redis are reported lost', async () => {
    const run = `x${Date.now()}`
    const child = startNode([join(FIXTURES, 'fleet-process.cjs')], {
      env: { KOALA_BASE_URL: collector.url, REDIS_URL: redis.url, KOALA_ALLOW_UNKNOWN_ENV: '', ROLE: 'exit', STREAM: `exit:${person()}`, COUNT: '40', RUN: run },
      guardMs: 30_000
    })
    const exited = await child.exited
    expect(exited.code).toBe(0)
    // The first 20 XADDs were written to Redis's socket before the exit; the last 20 never left the process.
    expect(exited.stderr).toContain('exiting (process.exit(0)) with 20 items undelivered; they are lost')
  })

  test('beside a spool, the records on their way to Redis at an exit are written to it, and delivered from there (the exit event, in process)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'koala-fleet-exit-'))
    const logger = memoryLogger()
    const t = make({ redis: { url: redis.url, stream: `exit:${person()}`, consume: false }, spool: { dir }, logger })
    await connected(t)
    const pid = person()
    for (let i = 0; i < 20; i++) t.track({ profile_id: pid, event: 'e', message_id: `spooled-exit-${i}` })
    // The fleet's turn sends these 20 XADDs; their answers cannot come before the next 20 calls and the exit.
    await new Promise(resolve => setImmediate(resolve))
    for (let i = 20; i < 40; i++) t.track({ profile_id: pid, event: 'e', message_id: `spooled-exit-${i}` })
    process.emit('exit', 0)
    expect(logger.lines.some(l => /exiting \(process.exit\(0\)\) with 40 items undelivered; those written to the spool are sent by the next tracker/.test(l.msg ?? ''))).toBe(true)
    // In a real exit the process ends here; this one closes, and the next tracker on the directory delivers.
    await t.close()
    make({ redis: undefined, spool: { dir } })
    const expected = Array.from({ length: 40 }, (_, i) => `spooled-exit-${i}`)
    await until(() => expected.every(id => collector.messageIds().has(id)), 'the spooled records')
  })

  test('relay, in process: usage errors name what is missing; stopped, it reports what it delivered', async () => {
    const out: string[] = []
    const err: string[] = []
    let stop!: () => void
    const stopped = new Promise<void>(resolve => { stop = resolve })
    const io = (env: Record<string, string>): CliIo => ({ env, out: l => out.push(l), err: l => err.push(l), readFile: () => '', stopRequested: async () => await stopped })
    expect(await main(['relay'], io({ KOALA_PUBLIC_KEY: 'pk_test' }))).toBe(EXIT.usage)
    expect(await main(['relay', '--redis', redis.url], io({}))).toBe(EXIT.usage)
    expect(await main(['relay', 'extra'], io({}))).toBe(EXIT.usage)
    expect(err).toEqual([
      'error: relay needs --redis URL (or KOALA_REDIS_URL)',
      'error: relay needs KOALA_PUBLIC_KEY: your Koala project\'s public key (pk_...)',
      'error: relay takes only options'
    ])
    expect(await main(['relay', '--help'], io({}))).toBe(EXIT.ok)
    expect(out.pop()).toContain('--stream NAME')
    const stream = `relay-in:${person()}`
    const running = main(['relay'], io({ KOALA_PUBLIC_KEY: 'pk_test', KOALA_BASE_URL: collector.url, KOALA_REDIS_URL: redis.url, KOALA_REDIS_STREAM: stream, KOALA_FLUSH_INTERVAL_MS: '50' }))
    const producer = make({ redis: { url: redis.url, stream, consume: false } })
    await connected(producer)
    for (let i = 0; i < 3; i++) producer.track({ email: 'relayed@example.com', event: 'e', message_id: `relay-in-${i}` })
    await until(() => collector.messageIds().has('relay-in-2'), 'the relay')
    stop()
    expect(await running).toBe(EXIT.ok)
    expect(out).toEqual([
      `Relaying ${stream} from ${redis.url} to Koala. Stop with Ctrl-C.`,
      'Delivered 3 items (0 items failed for good); 0 items left in the stream for another consumer.'
    ])
  })

  test('koala-tracker relay delivers what producer-only processes add, and hands back nothing when stopped', async () => {
    const stream = `relay:${person()}`
    const relay = startNode([join(ROOT, 'dist', 'cjs', 'lib', 'cli', 'cli.js'), 'relay', '--redis', redis.url, '--stream', stream],
      { env: { KOALA_PUBLIC_KEY: 'pk_test', KOALA_BASE_URL: collector.url, KOALA_FLUSH_INTERVAL_MS: '100' } })
    await relay.waitForOutput('Relaying')
    const producer = make({ redis: { url: redis.url, stream, consume: false } })
    await connected(producer)
    const pid = person()
    for (let i = 0; i < 50; i++) producer.track({ profile_id: pid, event: 'e', message_id: `relay-${i}` })
    await until(() => collector.messageIds().has('relay-49') && collector.messageIds().has('relay-0'), 'the relay')
    expect(producer.stats()).toMatchObject({ accepted: 50, sent: 0, redis: { produced: 50, consumed: 0 } })
    relay.process.kill('SIGTERM')
    const r = await relay.exited
    expect(r.code).toBe(0)
    expect(r.stdout).toContain(`Relaying ${stream} from ${redis.url} to Koala`)
    expect(r.stdout).toContain('Delivered 50 items (0 items failed for good); 0 items left in the stream for another consumer.')
  })

  test('entries a consumer took and never renewed (it died) are claimed by another after claimIdleMs, message_ids unchanged', async () => {
    const stream = `claim:${person()}`
    const raw = new Redis(redis.url)
    try {
      const pid = person()
      const record = (id: string): string => JSON.stringify(['profiles', 0, pid, pid, null]) + '\n' + JSON.stringify({ message_id: id, type: 'track', event: 'e', properties: {} })
      await raw.call('XGROUP', 'CREATE', stream, 'koala-tracker', '0', 'MKSTREAM')
      for (let i = 0; i < 5; i++) await raw.call('XADD', stream, '*', 'd', record(`ghost-${i}`))
      // Written by no tracker at all: the consumer must skip it, not stall on it.
      await raw.call('XADD', stream, '*', 'd', 'not an item')
      await raw.call('XADD', stream, '*', 'other', 'field')
      // A consumer that reads them and dies: they stay pending under its name.
      const taken = await raw.call('XREADGROUP', 'GROUP', 'koala-tracker', 'ghost', 'COUNT', 100, 'STREAMS', stream, '>') as Array<[string, unknown[]]>
      expect(taken[0][1]).toHaveLength(7)
      const logger = memoryLogger()
      const heir = make({ logger, redis: { url: redis.url, stream, claimIdleMs: 300 } })
      await until(() => heir.stats().sent === 5, 'the claim and delivery')
      for (let i = 0; i < 5; i++) expect(collector.messageIds().get(`ghost-${i}`)).toBe(1)
      expect(heir.stats().redis).toMatchObject({ claimed: 7 })
      expect(logger.lines.filter(l => /is not an item; it was acknowledged and dropped/.test(l.msg ?? ''))).toHaveLength(1)
      // Delivered or unreadable, every entry is acknowledged and deleted: the stream is empty.
      await until(() => heir.stats().redis?.acked === 7, 'the acknowledgements')
      expect(await raw.call('XLEN', stream)).toBe(0)
    } finally {
      raw.disconnect()
    }
  })

  test('a live consumer that holds entries past claimIdleMs (Koala failing) renews its claim: nobody takes them over', async () => {
    const stream = `renew:${person()}`
    const holder = make({ retryBaseDelayMs: 200, retryMaxDelayMs: 200, redis: { url: redis.url, stream, claimIdleMs: 300 } })
    await connected(holder)
    // Koala refuses for a while: the holder keeps its entries in retries, long past claimIdleMs.
    faults.push(...Array.from({ length: 8 }, () => ({ status: 503 })))
    const pid = person()
    for (let i = 0; i < 5; i++) holder.track({ profile_id: pid, event: 'e', message_id: `renew-${i}` })
    await until(() => holder.stats().redis?.held === 5, 'the read')
    const rival = make({ redis: { url: redis.url, stream, claimIdleMs: 300 } })
    await connected(rival)
    await until(() => holder.stats().sent === 5, 'the delivery after the failures')
    expect(holder.stats().requests.retried).toBeGreaterThanOrEqual(4)
    expect(rival.stats().redis).toMatchObject({ consumed: 0, claimed: 0 })
    for (let i = 0; i < 5; i++) expect(collector.messageIds().get(`renew-${i}`)).toBe(1)
  })

  test('a consumer long gone with nothing pending leaves the group; one with entries pending stays until they are claimed', async () => {
    const stream = `gone:${person()}`
    const raw = new Redis(redis.url)
    try {
      await raw.call('XGROUP', 'CREATE', stream, 'koala-tracker', '0', 'MKSTREAM')
      // Two consumers that went away: one with nothing, one holding an entry (not an item) it read.
      await raw.call('XGROUP', 'CREATECONSUMER', stream, 'koala-tracker', 'gone-empty')
      await raw.call('XADD', stream, '*', 'd', 'not an item')
      await raw.call('XREADGROUP', 'GROUP', 'koala-tracker', 'gone-holding', 'COUNT', 1, 'STREAMS', stream, '>')
      const names = async (): Promise<string[]> => ((await raw.call('XINFO', 'CONSUMERS', stream, 'koala-tracker')) as string[][]).map(c => c[1]).sort()
      expect(await names()).toEqual(['gone-empty', 'gone-holding'])
      const t = make({ redis: { url: redis.url, stream, claimIdleMs: 300 } })
      await until(() => t.stats().redis?.claimed === 1, 'the claim')
      // Past 10 x claimIdleMs of silence, both have nothing pending: they leave; the live consumer stays.
      let left: string[] = []
      await until(() => { void names().then(n => { left = n }); return left.length === 1 }, 'the departures')
      expect(left).toEqual([t.stats().redis?.consumer])
    } finally {
      raw.disconnect()
    }
  })

  test('redis options are checked by name', () => {
    expect(() => make({ redis: { url: 'http://x' } })).toThrow(/redis\.url must be a redis:\/\/ or rediss:\/\/ URL/)
    expect(() => make({ redis: { url: redis.url, consumer: true } as never })).toThrow(/redis\.consumer is not an option \(did you mean redis\.consume\?\)/)
    expect(() => make({ redis: { url: redis.url, claimIdleMs: 10 } })).toThrow(/redis\.claimIdleMs must be between 300/)
    expect(() => make({ redis: { url: redis.url, consume: 'yes' as unknown as boolean } })).toThrow(/redis\.consume must be a boolean/)
    expect(() => make({ redis: { url: redis.url, stream: '' } })).toThrow(/redis\.stream must be a non-empty string/)
    expect(() => make({ redis: 'redis://x' as never })).toThrow(/redis must be an object with a url/)
  })
})
