import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import { mkdtempSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Fault } from '../lib/collector'
import { hostname } from 'node:os'
import { crc32 } from 'node:zlib'
import { FIXTURES, startNode } from './helpers/child'
import { harness, person, tick, type Harness } from './helpers/setup'

let h: Harness
afterEach(async () => { await h.done() })

const newDir = (): string => mkdtempSync(join(tmpdir(), 'koala-spool-'))
const segments = (dir: string): string[] => readdirSync(dir).filter(n => n.endsWith('.log')).sort()

/** Lets the spool's writer and reader (real file I/O) and the sender run until `done()` holds. */
async function until (done: () => boolean, what: string, turns = 2000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (done()) return
    await new Promise(resolve => setTimeout(resolve, 1))
  }
  throw new Error(`gave up waiting for ${what}`)
}

const ids = (h: Harness): string[] => [...h.collector.messageIds().keys()].sort()
const range = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(5, '0')}`).sort()

describe('a spool keeps what is accepted until Koala has it', () => {
  test('items are written as they are accepted and the segments are deleted once delivered', async () => {
    const dir = newDir()
    h = await harness({ spool: { dir }, flushIntervalMs: 1000 })
    const pid = person()
    for (let i = 0; i < 45; i++) h.tracker.track({ profile_id: pid, event: 'e', message_id: `m-${i}` })
    // 30 went as a full batch; 15 wait for their deadline, on disk and in memory.
    await until(() => h.tracker.stats().sent === 30 && h.tracker.stats().spool?.writtenItems === 45, 'the writes and the full batch')
    expect(h.tracker.stats().spool).toMatchObject({ items: 15, segments: 1, state: 'ok' })
    h.clock.advance(1000)
    await until(() => h.tracker.stats().sent === 45, 'the rest')
    await until(() => h.tracker.stats().spool?.items === 0, 'the acknowledgements')
    const closed = await h.tracker.close()
    expect(closed).toMatchObject({ delivered: 0, spooled: 0, abandoned: 0 })
    expect(ids(h)).toEqual(range('m', 45).map(s => s.replace(/-0*(\d)/, '-$1')).sort())
    // A clean stop leaves nothing behind: no segment, no lock.
    expect(readdirSync(dir)).toEqual([])
  })

  test('what close() cannot deliver stays in the spool, and the next tracker on the directory sends it with the same message_ids', async () => {
    const dir = newDir()
    let down = true
    h = await harness({ spool: { dir }, flushIntervalMs: 1000 }, { fault: () => down ? { status: 503 } : undefined })
    const people = Array.from({ length: 20 }, person)
    for (let i = 0; i < 200; i++) h.tracker.track({ profile_id: people[i % 20], event: 'e', message_id: `k-${String(i).padStart(5, '0')}` })
    h.tracker.identify({ profile_id: people[0], traits: { plan: 'pro' } })
    await until(() => h.tracker.stats().spool?.writtenItems === 201, 'the writes')
    const closing = h.tracker.close({ timeoutMs: 0 })
    h.clock.advance(0)
    const closed = await closing
    expect(closed).toMatchObject({ delivered: 0, abandoned: 0, unknown: 0, spooled: 201 })
    expect(h.collector.stats().accepted).toBe(0)
    expect(segments(dir)).toHaveLength(1)

    down = false
    const next = h.make({ spool: { dir } })
    await until(() => next.stats().spool?.recovered === 201, 'the recovery')
    h.clock.advance(1000)
    await until(() => next.stats().sent === 201, 'the delivery')
    expect(ids(h)).toEqual(range('k', 200))
    expect(h.collector.stats()).toMatchObject({ duplicates: 0, profiles: { identifies: 1 } })
    await until(() => next.stats().spool?.items === 0, 'the acknowledgements')
  })
})

describe('an exit that cannot wait', () => {
  test('the records of the last turn are written synchronously when the process exits (here: the exit event, in process)', async () => {
    const dir = newDir()
    h = await harness({ spool: { dir }, flushIntervalMs: 600_000 })
    const pid = person()
    for (let i = 0; i < 100; i++) h.tracker.track({ profile_id: pid, event: 'e', message_id: `exit-${i}` })
    // Still in the turn of the calls: nothing has been written yet.
    expect(segments(dir)).toEqual([])
    process.emit('exit', 0)
    const [seg] = segments(dir)
    const bytes = fs.readFileSync(join(dir, seg))
    let records = 0
    for (let at = 8; at < bytes.length; records++) at += 8 + bytes.readUInt32LE(at)
    expect(records).toBe(100)
    expect(bytes.toString('latin1', 0, 8)).toBe('KOALASP\x01')
    expect(h.logger.lines.some(l => /exiting \(process.exit\(0\)\) with 100 items undelivered; those written to the spool are sent by the next tracker/.test(l.msg ?? ''))).toBe(true)
  })
})

describe('outages longer than memory', () => {
  test('items beyond maxBufferedItems wait on disk, are never refused, and arrive once Koala is back', async () => {
    const dir = newDir()
    let down = true
    const fault = (): Fault | undefined => down ? { status: 503 } : undefined
    h = await harness({ spool: { dir }, maxBufferedItems: 100, flushIntervalMs: 1000, maxRetryDurationMs: 10_000_000, retryMaxDelayMs: 1000 }, { fault })
    const people = Array.from({ length: 50 }, person)
    for (let i = 0; i < 1000; i++) {
      h.tracker.page({ profile_id: people[i % 50], name: 'p', message_id: `o-${String(i).padStart(5, '0')}` })
      if (i % 100 === 0) await tick()
    }
    const s = h.tracker.stats()
    expect(s).toMatchObject({ accepted: 1000, dropped: 0 })
    expect(s.bufferedItems).toBeLessThanOrEqual(100)
    await until(() => h.tracker.stats().spool?.writtenItems === 1000, 'the writes')
    expect(h.tracker.stats().spool?.backlogItems).toBeGreaterThanOrEqual(900)

    down = false
    await until(() => {
      // Time moves only between requests: a request in flight must not see its deadline pass.
      if (h.tracker.stats().inFlightRequests === 0) h.clock.advance(1000)
      return h.tracker.stats().sent === 1000
    }, 'the delivery')
    expect(ids(h)).toEqual(range('o', 1000))
    expect(h.collector.stats().duplicates).toBe(0)
    await until(() => h.tracker.stats().spool?.items === 0, 'the acknowledgements')
    expect(h.tracker.stats().spool?.backlogItems).toBe(0)
  })
})

/** Leaves `n` tracked items in a spool, as a tracker that could not reach Koala would at its close() deadline. */
async function leave (dir: string, n: number, prefix: string): Promise<void> {
  let down = true
  h = await harness({ spool: { dir }, flushIntervalMs: 1000 }, { fault: () => down ? { status: 503 } : undefined })
  const pid = person()
  for (let i = 0; i < n; i++) h.tracker.track({ profile_id: pid, event: 'e', message_id: `${prefix}-${String(i).padStart(5, '0')}` })
  await until(() => h.tracker.stats().spool?.writtenItems === n, 'the writes')
  const closing = h.tracker.close({ timeoutMs: 0 })
  h.clock.advance(0)
  expect(await closing).toMatchObject({ spooled: n })
  down = false
}

describe('recovery tolerates what a crash leaves', () => {
  test('a torn last record is skipped and counted; every whole record before it is delivered', async () => {
    const dir = newDir()
    await leave(dir, 50, 't')
    const [seg] = segments(dir)
    const file = join(dir, seg)
    fs.truncateSync(file, fs.statSync(file).size - 5)
    const next = h.make({ spool: { dir } })
    const problems: string[] = []
    next.on('spool', (p) => problems.push(p.kind))
    await until(() => next.stats().spool?.corruptRecords === 1, 'the recovery')
    expect(problems).toEqual(['corrupt'])
    h.clock.advance(1000)
    await until(() => next.stats().sent === 49, 'the delivery')
    expect(ids(h)).toEqual(range('t', 49))
    expect(next.stats().spool).toMatchObject({ recovered: 49, corruptRecords: 1 })
    expect(h.logger.lines.some(l => l.level === 'error' && /torn write/.test(l.msg ?? ''))).toBe(true)
    // The segment goes once what it held is settled; the directory is left clean.
    await until(() => segments(dir).length === 0 && next.stats().spool?.segments === 1, 'the deletion')
  })

  test('a record whose checksum fails ends its segment: the rest is skipped and counted, later segments are read', async () => {
    const dir = newDir()
    let down = true
    h = await harness({ spool: { dir }, flushIntervalMs: 1000 }, { fault: () => down ? { status: 503 } : undefined })
    const pid = person()
    const stop = async (t: typeof h.tracker): Promise<void> => {
      const closing = t.close({ timeoutMs: 0 })
      h.clock.advance(0)
      await closing
    }
    for (let i = 0; i < 20; i++) h.tracker.track({ profile_id: pid, event: 'e', message_id: `c-${String(i).padStart(5, '0')}` })
    await until(() => h.tracker.stats().spool?.writtenItems === 20, 'the first writes')
    await stop(h.tracker)
    // A second process, Koala still down, adds a second segment behind the first.
    const second = h.make({ spool: { dir } })
    for (let i = 0; i < 5; i++) second.track({ profile_id: pid, event: 'e', message_id: `d-${String(i).padStart(5, '0')}` })
    await until(() => second.stats().spool?.writtenItems === 5, 'the second writes')
    await stop(second)
    const [first, later] = segments(dir)
    expect(later).toBeDefined()
    const file = join(dir, first)
    const bytes = fs.readFileSync(file)
    // Damage the payload of the 11th record (each is framed: u32 length, u32 crc, payload).
    let at = 8
    for (let r = 0; r < 10; r++) at += 8 + bytes.readUInt32LE(at)
    bytes[at + 20] ^= 0xff
    fs.writeFileSync(file, bytes)

    down = false
    const third = h.make({ spool: { dir } })
    await until(() => third.stats().spool?.recovered === 15, 'the recovery')
    h.clock.advance(1000)
    await until(() => third.stats().sent === 15, 'the delivery')
    expect(third.stats().spool).toMatchObject({ corruptRecords: 1 })
    expect(third.stats().spool?.corruptBytes).toBeGreaterThan(0)
    expect(ids(h)).toEqual([...range('c', 10), ...range('d', 5)])
  })

  test('an .ack file says what an earlier process had delivered: only the rest is sent again', async () => {
    const dir = newDir()
    await leave(dir, 10, 'a')
    const [seg] = segments(dir)
    // Records 0-4 marked settled, as a process that got Koala's answer for them would have.
    const bytes = fs.readFileSync(join(dir, seg))
    const offsets: number[] = []
    for (let at = 8, r = 0; r < 5; r++) { offsets.push(at); at += 8 + bytes.readUInt32LE(at) }
    const ack = Buffer.alloc(20)
    offsets.forEach((o, i) => ack.writeUInt32LE(o, i * 4))
    fs.writeFileSync(join(dir, seg.replace('.log', '.ack')), ack)
    const next = h.make({ spool: { dir } })
    await until(() => next.stats().spool?.recovered === 5, 'the recovery')
    h.clock.advance(1000)
    await until(() => next.stats().sent === 5, 'the delivery')
    expect(ids(h)).toEqual(range('a', 10).slice(5))
  })

  test('a record whose checksum holds but whose content is not an item is skipped and counted', async () => {
    const dir = newDir()
    // A segment written by hand, in the format of docs/durability.md: header, then length | crc32 | payload.
    const record = (payload: string): Buffer => {
      const body = Buffer.from(payload)
      const head = Buffer.alloc(8)
      head.writeUInt32LE(body.length, 0)
      head.writeUInt32LE(crc32(body), 4)
      return Buffer.concat([head, body])
    }
    const pid = person()
    const item = (id: string): string => JSON.stringify(['profiles', 0, pid, pid, null]) + '\n' + JSON.stringify({ message_id: id, type: 'track', event: 'e', properties: {} })
    fs.writeFileSync(join(dir, 'seg-000000000007.log'), Buffer.concat([
      Buffer.from('KOALASP\x01', 'latin1'), record(item('h-1')), record('not an item'), record(JSON.stringify(['nowhere', 0, 'k', null, null]) + '\n{}'), record(item('h-2'))
    ]))
    h = await harness({ spool: { dir }, flushIntervalMs: 1000 })
    await until(() => h.tracker.stats().spool?.recovered === 2, 'the recovery')
    h.clock.advance(1000)
    await until(() => h.tracker.stats().sent === 2, 'the delivery')
    expect(ids(h)).toEqual(['h-1', 'h-2'])
    expect(h.tracker.stats().spool).toMatchObject({ corruptRecords: 2 })
    await until(() => segments(dir).length === 0, 'the deletion')
    // This process's own segment is numbered after the one it found.
    h.tracker.track({ profile_id: pid, event: 'e' })
    await until(() => h.tracker.stats().spool?.writtenItems === 1, 'the write')
    expect(segments(dir)).toEqual(['seg-000000000008.log'])
  })

  test('a segment that cannot be read (a directory in its place) is reported and passed over; the spool carries on', async () => {
    const dir = newDir()
    fs.mkdirSync(join(dir, 'seg-000000000003.log'))
    h = await harness({ spool: { dir }, flushIntervalMs: 1000 })
    const problems: string[] = []
    h.tracker.on('spool', (p) => problems.push(p.kind))
    await until(() => problems.includes('read') && problems.includes('delete'), 'the failed read and delete')
    expect(h.tracker.stats().spool).toMatchObject({ state: 'ok', recovered: 0 })
    h.tracker.track({ profile_id: person(), event: 'e', message_id: 'after-the-bad-one' })
    h.clock.advance(1000)
    await until(() => h.tracker.stats().sent === 1, 'the delivery')
    expect(ids(h)).toEqual(['after-the-bad-one'])
  })

  test('a segment of another format version is left alone and reported; one that is not a segment at all is skipped and counted', async () => {
    const dir = newDir()
    fs.writeFileSync(join(dir, 'seg-000000000001.log'), Buffer.from('KOALASP\x09whatever comes next', 'latin1'))
    fs.writeFileSync(join(dir, 'seg-000000000002.log'), Buffer.from('NOTOURS!whatever comes next', 'latin1'))
    h = await harness({ spool: { dir } })
    await until(() => h.tracker.stats().spool?.corruptRecords === 1, 'the check')
    expect(h.logger.lines.some(l => /seg-000000000001.log is of another format version; it was left as it is/.test(l.msg ?? ''))).toBe(true)
    expect(h.logger.lines.some(l => /seg-000000000002.log has a segment header that is not koala-tracker's/.test(l.msg ?? ''))).toBe(true)
    await until(() => h.tracker.stats().spool?.segments === 1, 'the deletion of the corrupt one')
    expect(segments(dir)).toEqual(['seg-000000000001.log'])
  })
})

describe('bounds and ownership', () => {
  test('past maxBytes calls are refused as spool_full, counted; what was accepted is delivered', async () => {
    const dir = newDir()
    let down = true
    h = await harness({ spool: { dir, segmentBytes: 64 * 1024, maxBytes: 128 * 1024 }, maxBufferedItems: 100, flushIntervalMs: 1000 },
      { fault: () => down ? { status: 503 } : undefined })
    const people = Array.from({ length: 10 }, person)
    const refused: string[] = []
    h.tracker.on('dropped', (d) => refused.push(d.reason))
    for (let i = 0; i < 2000; i++) h.tracker.track({ profile_id: people[i % 10], event: 'e', message_id: `f-${String(i).padStart(5, '0')}`, properties: { pad: 'x'.repeat(100) } })
    const s = h.tracker.stats()
    expect(s.droppedBy.spool_full).toBeGreaterThan(0)
    expect(s.droppedBy.queue_full).toBe(0)
    expect(s.accepted + s.droppedBy.spool_full).toBe(2000)
    expect(new Set(refused)).toEqual(new Set(['spool_full']))
    expect(h.errors[0]).toMatchObject({ code: 'KOALA_ERR_REFUSED', reason: 'spool_full' })
    expect(s.spool?.bytes).toBeLessThanOrEqual(128 * 1024)

    down = false
    await until(() => {
      if (h.tracker.stats().inFlightRequests === 0) h.clock.advance(1000)
      return h.tracker.stats().sent === s.accepted
    }, 'the delivery')
    expect(h.collector.messageIds().size).toBe(s.accepted)
    expect(h.collector.stats().duplicates).toBe(0)
  })

  test('two trackers of one process cannot share a directory; the second may take it once the first closed', async () => {
    const dir = newDir()
    h = await harness({ spool: { dir } })
    expect(() => h.make({ spool: { dir } })).toThrow(expect.objectContaining({ code: 'KOALA_ERR_INVALID_OPTION', option: 'spool.dir' }))
    await h.tracker.close()
    expect(() => h.make({ spool: { dir } })).not.toThrow()
  })

  test('a directory held by another live process is refused, naming it; once that process is killed, it is taken over', async () => {
    const dir = newDir()
    h = await harness()
    const other = startNode([join(FIXTURES, 'spool-crash.cjs')], {
      env: { KOALA_BASE_URL: h.collector.url, SPOOL_DIR: dir, RUN: 'other', RATE: '1', FSYNC: 'never', MAX_CONCURRENT_REQUESTS: '4' }
    })
    await other.waitForOutput('ready')
    const pid = other.process.pid as number
    expect(() => h.make({ spool: { dir } })).toThrow(expect.objectContaining({
      option: 'spool.dir', message: expect.stringContaining(`in use by process ${pid} on ${hostname()}`)
    }))
    other.process.kill('SIGKILL')
    await other.exited
    h.make({ spool: { dir } })
    expect(JSON.parse(fs.readFileSync(join(dir, 'LOCK'), 'utf8'))).toMatchObject({ pid: process.pid })
  })

  test.each([
    ['a pid that cannot be running (above pid_max)', { pid: 2 ** 22 + 1, hostname: hostname(), token: 'old' }],
    ['this process\'s own pid, from an earlier process (pid 1 in every container)', { pid: process.pid, hostname: hostname(), token: 'old' }],
    ['a boot before the last reboot', { pid: 1, hostname: hostname(), bootId: 'another-boot', token: 'old' }],
    ['a half-written lock file', undefined]
  ])('a lock left by %s is taken over', async (_what, owner) => {
    const dir = newDir()
    fs.writeFileSync(join(dir, 'LOCK'), owner === undefined ? '{"pid":' : JSON.stringify(owner))
    h = await harness({ spool: { dir } })
    expect(JSON.parse(fs.readFileSync(join(dir, 'LOCK'), 'utf8'))).toMatchObject({ pid: process.pid })
  })

  test('a lock from another host is live while it is touched, and stale after 30 s without', async () => {
    const dir = newDir()
    const lock = join(dir, 'LOCK')
    fs.writeFileSync(lock, JSON.stringify({ pid: 7, hostname: 'elsewhere', token: 'theirs' }))
    h = await harness()
    expect(() => h.make({ spool: { dir } })).toThrow(/in use by process 7 on elsewhere/)
    const past = new Date(Date.now() - 31_000)
    fs.utimesSync(lock, past, past)
    expect(() => h.make({ spool: { dir } })).not.toThrow()
  })

  test('a directory it cannot use is a ConfigError naming spool.dir', async () => {
    const file = join(newDir(), 'not-a-dir')
    fs.writeFileSync(file, '')
    h = await harness()
    expect(() => h.make({ spool: { dir: file } })).toThrow(expect.objectContaining({ option: 'spool.dir', message: expect.stringContaining(file) }))
    expect(() => h.make({ spool: { dir: join(file, 'below') } })).toThrow(expect.objectContaining({ option: 'spool.dir' }))
  })

  // A read-only directory, even for root: the immutable attribute (chattr +i, ext4 and most Linux file systems).
  const frozen = newDir()
  const canFreeze = spawnSync('chattr', ['+i', frozen]).status === 0 && spawnSync('chattr', ['-i', frozen]).status === 0;
  (canFreeze ? test : test.skip)('a read-only directory is a ConfigError naming spool.dir, at createTracker', async () => {
    h = await harness()
    spawnSync('chattr', ['+i', frozen])
    try {
      expect(() => h.make({ spool: { dir: frozen } })).toThrow(expect.objectContaining({
        option: 'spool.dir', message: expect.stringMatching(/cannot be used: (EPERM|EACCES|EROFS)/)
      }))
    } finally {
      spawnSync('chattr', ['-i', frozen])
    }
    expect(readdirSync(frozen)).toEqual([])
  })

  test('spool options are checked by name', async () => {
    h = await harness()
    const dir = newDir()
    expect(() => h.make({ spool: { dir, fsync: 'sometimes' as 'never' } })).toThrow(/spool\.fsync must be one of interval, batch, never/)
    expect(() => h.make({ spool: { dir, maxByte: 1 } as unknown as { dir: string } })).toThrow(/spool\.maxByte is not an option \(did you mean spool\.maxBytes\?\)/)
    expect(() => h.make({ spool: { dir: '' } })).toThrow(/spool\.dir is required/)
    expect(() => h.make({ spool: { dir, segmentBytes: 1024 * 1024, maxBytes: 1024 * 1024 } })).toThrow(/spool\.maxBytes must be between 2097152/)
  })

  test('an item larger than a spool record can hold is refused at the call, naming the field; the option is lowered with a warning', async () => {
    const dir = newDir()
    h = await harness({ spool: { dir }, maxItemBytes: 32 * 1024 * 1024, maxBufferedBytes: 64 * 1024 * 1024 })
    expect(h.logger.lines.filter(l => l.level === 'warn').map(l => l.msg)).toEqual(['maxItemBytes 33554432 is above what a spool record holds; using 16711680'])
    const pid = person()
    h.tracker.track({ profile_id: pid, event: 'big', properties: { blob: 'x'.repeat(17 * 1024 * 1024) }, message_id: 'too-big' })
    expect(h.errors.map(e => [(e as { code?: string }).code, (e as { field?: string }).field])).toEqual([['KOALA_ERR_INVALID_INPUT', 'properties']])
    h.tracker.track({ profile_id: pid, event: 'fits', properties: { blob: 'y'.repeat(1024 * 1024) }, message_id: 'fits' })
    await h.tracker.flush()
    expect(ids(h)).toEqual(['fits'])
  })

  test('when the spool cannot be written, items are kept in memory and delivered, and the failure is reported', async () => {
    const dir = newDir()
    h = await harness({ spool: { dir }, flushIntervalMs: 1000 })
    fs.rmSync(dir, { recursive: true })
    const pid = person()
    for (let i = 0; i < 10; i++) h.tracker.track({ profile_id: pid, event: 'e', message_id: `w-${i}` })
    await until(() => h.tracker.stats().spool?.state === 'failed', 'the failed write')
    h.tracker.track({ profile_id: pid, event: 'e', message_id: 'w-10' })
    h.clock.advance(1000)
    await until(() => h.tracker.stats().sent === 11, 'the delivery')
    expect(h.tracker.stats().spool?.state).toBe('failed')
    expect(h.tracker.stats().spool?.errors).toBeGreaterThanOrEqual(1)
    expect(h.logger.lines.filter(l => l.level === 'error' && /kept in memory only/.test(l.msg ?? ''))).toHaveLength(1)
  })
})
