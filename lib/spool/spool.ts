import { Buffer } from 'node:buffer'
import * as fs from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import * as path from 'node:path'
import type { Clock, TimerHandle } from '../shared/clock'
import { ConfigError } from '../shared/errors'
import {
  ackName, encodeAcks, frame, FRAME_BYTES, HEADER_BYTES, hasHeader, isOtherVersion, location, offsetOf, parseAcks, scanRecord,
  SEGMENT_HEADER, segmentIds, segmentName, segmentOf
} from './format'
import { acquireLock, LOCK_HEARTBEAT_MS, type Lock } from './lock'
import type { ResolvedSpoolOptions } from './options'

/** append(): the spool is at maxBytes. */
export const SPOOL_FULL = -1
/** append(): the spool stopped after an I/O error (or is closed); the item is not durable. */
export const SPOOL_OFF = -2

/** Records framed into one write at most (and ~1 MiB): a burst is written in several turns, none long. */
const WRITE_SLICE_RECORDS = 4096
const WRITE_SLICE_BYTES = 1024 * 1024
/** Bytes appended and not yet written, at most: a disk that stalls must not fill the heap instead. */
const MAX_QUEUED_BYTES = 64 * 1024 * 1024
/** Bytes read back per turn. */
const READ_CHUNK_BYTES = 128 * 1024

export interface SpoolStats {
  dir: string
  /** Bytes of segment files on disk, settled records included until their segment is deleted. */
  bytes: number
  segments: number
  /** Records not yet settled that this process knows of (in memory, or on disk waiting to be read back). */
  items: number
  /** Of those, records waiting on disk to be read back (an earlier process's are counted as they are read). */
  backlogItems: number
  /** Records read back that an earlier process left. */
  recovered: number
  /** Items of this process that only the disk held, lost to a failed write (or unreadable when read back). */
  lostItems: number
  /** Torn or corrupt records found (each time, the rest of that segment is skipped) and the bytes skipped. */
  corruptRecords: number
  corruptBytes: number
  /** Records handed to the OS (they survive a crash of the process) and, of those, synced (they survive a power cut). */
  writtenItems: number
  syncedItems: number
  /** Age of the oldest write not yet synced; 0 when everything written is synced. */
  syncLagMs: number
  /** Failed writes, syncs or reads. */
  errors: number
  /** 'failed' after a write or sync failed: new items are kept in memory only. */
  state: 'ok' | 'failed' | 'closed'
}

/** What went wrong (see the tracker's 'spool' event). */
export type SpoolProblem = 'failed' | 'corrupt' | 'version' | 'read' | 'ack' | 'delete'

export interface SpoolHooks {
  /**
   * Takes a record read back from disk into memory. Returns false when there is
   * no room (the reader stops and resume() starts it again); throws when the
   * record cannot be understood (it is skipped, counted as corrupt).
   */
  admit: (payload: string, loc: number) => boolean
  /** Whether memory has room for records read back. */
  room: () => boolean
  problem: (kind: SpoolProblem, level: 'warn' | 'error', fields: Record<string, unknown>, message: string) => void
}

interface Segment {
  readonly id: number
  /** Bytes appended, queued writes included. */
  size: number
  /** Bytes handed to the OS. */
  written: number
  /** Records not yet settled. */
  pending: number
  /** Left by an earlier process: its .ack file says what was settled. */
  readonly recovered: boolean
  /** Offsets settled and not yet written to the .ack file. */
  acks: number[]
  /** The .ack file, open for appending once the first acknowledgement is written. */
  ackHandle: FileHandle | undefined
  deleted: boolean
}

/** Where the reader is: every record from here to the end of the log is on disk only. */
interface Cursor {
  seg: Segment
  offset: number
}

/**
 * A local write-ahead log of accepted items (see docs/durability.md). Items are
 * appended as they are accepted, written once per turn of the event loop,
 * synced by policy, and settled one by one; a segment file is deleted once all
 * its records are settled. Items that do not fit in memory, and those an
 * earlier process left, stay on disk until the reader brings them back as room
 * frees. Every file operation is asynchronous and one at a time, except
 * opening (at construction, where errors are the caller's to see).
 */
export class Spool {
  readonly #opts: ResolvedSpoolOptions
  readonly #clock: Clock
  readonly #hooks: SpoolHooks
  readonly #lock: Lock
  /** Every segment not yet deleted, by id; ids only grow, so this is also file order. */
  readonly #segments = new Map<number, Segment>()
  #active: Segment
  #bytes = 0
  #items = 0
  #backlogKnown = 0
  #cursor: Cursor | undefined
  // Records appended and not yet written: their payload's two parts, UTF-8 length and segment.
  #queueHeads: string[] = []
  #queueBodies: string[] = []
  #queueLengths: number[] = []
  #queueSegs: Segment[] = []
  #queueHeld: boolean[] = []
  #queueHead = 0
  #queuedBytes = 0
  /** The segment the writer has open, and its handle. */
  #writeSeg: Segment | undefined
  #writeHandle: FileHandle | undefined
  #writing = false
  #idleWaiters: Array<() => void> = []
  #syncWanted = false
  #written = 0
  #synced = 0
  /** When the oldest write not yet synced was done; 0 when none. */
  #unsyncedSince = 0
  #reading = false
  #readHandle: { seg: Segment, handle: FileHandle, acked: Set<number> } | undefined
  #recovered = 0
  #lost = 0
  #corruptRecords = 0
  #corruptBytes = 0
  #errors = 0
  #state: 'ok' | 'failed' | 'closed' = 'ok'
  readonly #timers: TimerHandle[] = []

  /** Opens (creating) the directory, takes its lock and finds what an earlier process left. Throws ConfigError. */
  constructor (opts: ResolvedSpoolOptions, clock: Clock, hooks: SpoolHooks) {
    this.#opts = opts
    this.#clock = clock
    this.#hooks = hooks
    try {
      fs.mkdirSync(opts.dir, { recursive: true })
    } catch (err) {
      throw new ConfigError('spool.dir', `${opts.dir} cannot be created: ${(err as Error).message}`, { cause: err })
    }
    this.#lock = acquireLock(opts.dir)
    let names: string[]
    try {
      names = fs.readdirSync(opts.dir)
    } catch (err) {
      this.#lock.release()
      throw new ConfigError('spool.dir', `${opts.dir} cannot be read: ${(err as Error).message}`, { cause: err })
    }
    let last = 0
    for (const id of segmentIds(names)) {
      let size = 0
      try {
        size = fs.statSync(this.#path(segmentName(id))).size
      } catch {
        continue
      }
      const seg: Segment = { id, size, written: size, pending: 0, recovered: true, acks: [], ackHandle: undefined, deleted: false }
      this.#segments.set(id, seg)
      this.#bytes += size
      last = id
    }
    this.#active = this.#newSegment(last + 1)
    const first = this.#segments.values().next().value as Segment
    if (first.recovered) this.#cursor = { seg: first, offset: HEADER_BYTES }
    if (opts.fsync === 'interval') this.#every(opts.fsyncIntervalMs, () => { if (this.#unsyncedSince !== 0) this.#syncSoon() })
    this.#every(LOCK_HEARTBEAT_MS, () => this.#lock.heartbeat())
    // What an earlier process left goes first.
    if (this.#cursor !== undefined) setImmediate(() => this.resume())
  }

  /** Whether records are waiting on disk: then new items must go behind them, to disk only. */
  get backlog (): boolean { return this.#cursor !== undefined }

  /**
   * Appends a record whose payload is `head` then `body`, `length` UTF-8 bytes. `held`: the item is also in memory; if not, it waits on
   * disk until the reader brings it back. Returns its location (for settle()),
   * SPOOL_FULL or SPOOL_OFF.
   */
  append (head: string, body: string, length: number, held: boolean): number {
    if (this.#state !== 'ok') return SPOOL_OFF
    const size = FRAME_BYTES + length
    if (this.#bytes + size > this.#opts.maxBytes || this.#queuedBytes + size > MAX_QUEUED_BYTES) return SPOOL_FULL
    if (this.#active.size + size > this.#opts.segmentBytes && this.#active.size > HEADER_BYTES) {
      this.#active = this.#newSegment(this.#active.id + 1)
    }
    const seg = this.#active
    const offset = seg.size
    seg.size += size
    seg.pending++
    this.#bytes += size
    this.#items++
    if (!held) {
      this.#backlogKnown++
      this.#cursor ??= { seg, offset }
    }
    this.#queueHeads.push(head)
    this.#queueBodies.push(body)
    this.#queueLengths.push(length)
    this.#queueSegs.push(seg)
    this.#queueHeld.push(held)
    this.#queuedBytes += size
    this.#kick()
    return location(seg.id, offset)
  }

  /** The record at `loc` was delivered or failed for good: it will not be sent again. */
  settle (loc: number): void {
    const seg = this.#segments.get(segmentOf(loc))
    if (seg === undefined || seg.deleted) return
    seg.pending--
    this.#items--
    seg.acks.push(offsetOf(loc))
    if (!this.#maybeDelete(seg)) this.#kick()
  }

  /** Brings records back from disk while memory has room. */
  resume (): void {
    if (this.#reading || !this.#canRead()) return
    this.#reading = true
    // A read cut short by close() is not a failure.
    this.#read().catch(err => { if (!this.#closed) this.#failRead(err) }).finally(() => {
      this.#reading = false
      // The writer may have added records while the reader was stopping.
      if (this.#canRead()) this.resume()
    })
  }

  get #closed (): boolean { return this.#state === 'closed' }

  #canRead (): boolean {
    const c = this.#cursor
    return c !== undefined && this.#state !== 'closed' && this.#hooks.room() &&
      (c.offset < c.seg.written || (c.seg !== this.#active && c.seg.written >= c.seg.size))
  }

  stats (): SpoolStats {
    return {
      dir: this.#opts.dir,
      bytes: this.#bytes,
      segments: this.#segments.size,
      items: this.#items,
      backlogItems: this.#backlogKnown,
      recovered: this.#recovered,
      lostItems: this.#lost,
      corruptRecords: this.#corruptRecords,
      corruptBytes: this.#corruptBytes,
      writtenItems: this.#written,
      syncedItems: this.#synced,
      syncLagMs: this.#unsyncedSince === 0 ? 0 : Math.max(0, this.#clock.now() - this.#unsyncedSince),
      errors: this.#errors,
      state: this.#state
    }
  }

  /**
   * For an exit that cannot wait (process.exit(), an uncaught exception, a
   * signal): writes the records still queued, synchronously, at the places they
   * were given. A write of the same records still in flight puts the same bytes
   * in the same place, so the two cannot conflict.
   */
  writeQueuedSync (): void {
    if (this.#state !== 'ok') return
    try {
      for (let i = this.#queueHead; i < this.#queueHeads.length;) {
        const seg = this.#queueSegs[i]
        let end = i
        let bytes = 0
        while (end < this.#queueHeads.length && this.#queueSegs[end] === seg) bytes += FRAME_BYTES + this.#queueLengths[end++]
        // A segment's queued records are its last ones.
        const position = seg.size - bytes
        const file = this.#path(segmentName(seg.id))
        let fd: number
        try {
          fd = fs.openSync(file, 'r+')
        } catch {
          fd = fs.openSync(file, 'wx')
        }
        try {
          fs.writeSync(fd, SEGMENT_HEADER, 0, HEADER_BYTES, 0)
          fs.writeSync(fd, frame(this.#queueHeads.slice(i, end), this.#queueBodies.slice(i, end), this.#queueLengths.slice(i, end)), 0, bytes, position)
          if (this.#opts.fsync !== 'never') fs.fdatasyncSync(fd)
        } finally {
          fs.closeSync(fd)
        }
        this.#written += end - i
        i = end
      }
      this.#clearQueue()
    } catch (err) {
      this.#errors++
      this.#hooks.problem('failed', 'error', { err }, `koala-tracker spool: the last writes at exit failed (${(err as Error).message})`)
    }
  }

  /**
   * Writes and syncs what is queued, deletes the segments all settled, and
   * releases the directory. What is not settled stays for the next process.
   */
  async close (): Promise<void> {
    if (this.#state === 'closed') return
    for (const t of this.#timers) this.#clock.clearTimeout(t)
    await this.#idle()
    this.#state = 'closed'
    if (this.#writeSeg !== undefined) await this.#closeWriteSegment(this.#opts.fsync !== 'never')
    // The active segment too, when all its records are settled: a clean stop leaves an empty directory.
    this.#active = { id: -1, size: 0, written: 0, pending: 0, recovered: false, acks: [], ackHandle: undefined, deleted: true }
    for (const seg of [...this.#segments.values()]) this.#maybeDelete(seg)
    this.#syncWanted = false
    this.#kick()
    await this.#idle()
    await this.#readHandle?.handle.close().catch(() => {})
    this.#readHandle = undefined
    for (const seg of this.#segments.values()) await seg.ackHandle?.close().catch(() => {})
    this.#lock.release()
  }

  #path (name: string): string {
    return path.join(this.#opts.dir, name)
  }

  #newSegment (id: number): Segment {
    const seg: Segment = { id, size: HEADER_BYTES, written: 0, pending: 0, recovered: false, acks: [], ackHandle: undefined, deleted: false }
    this.#segments.set(id, seg)
    this.#bytes += HEADER_BYTES
    return seg
  }

  #every (ms: number, fn: () => void): void {
    const tick = (): void => {
      fn()
      this.#timers[i] = this.#clock.setTimeout(tick, ms)
    }
    const i = this.#timers.push(this.#clock.setTimeout(tick, ms)) - 1
  }

  #syncSoon (): void {
    this.#syncWanted = true
    this.#kick()
  }

  /** Starts the writer on the next turn: what this turn appends goes in one write. */
  #kick (): void {
    if (this.#writing) return
    this.#writing = true
    setImmediate(() => { void this.#write() })
  }

  #idle (): Promise<void> {
    if (!this.#writing) return Promise.resolve()
    return new Promise(resolve => this.#idleWaiters.push(resolve))
  }

  /** The one writer: writes, acks, syncs and deletions, one after another, until nothing is left. */
  async #write (): Promise<void> {
    try {
      // Acknowledgements go out after every write: under steady load the queue of writes is never empty for long.
      for (let busy = true; busy;) {
        busy = false
        if (this.#queueHead < this.#queueHeads.length && this.#state === 'ok') {
          await this.#writeSlice()
          busy = true
        }
        if (this.#syncWanted && this.#writeHandle !== undefined && this.#state === 'ok') {
          await this.#sync()
          busy = true
        }
        if (await this.#writeAcksAndDeletions()) busy = true
      }
    } catch (err) {
      this.#failWrite(err)
    } finally {
      this.#writing = false
      for (const done of this.#idleWaiters.splice(0)) done()
    }
  }

  async #writeSlice (): Promise<void> {
    const seg = this.#queueSegs[this.#queueHead]
    const start = this.#queueHead
    let end = start
    let bytes = 0
    while (end < this.#queueHeads.length && this.#queueSegs[end] === seg && end - start < WRITE_SLICE_RECORDS && bytes < WRITE_SLICE_BYTES) {
      bytes += this.#queueLengths[end++]
    }
    const buf = frame(this.#queueHeads.slice(start, end), this.#queueBodies.slice(start, end), this.#queueLengths.slice(start, end))
    const handle = await this.#handleFor(seg)
    const at = seg.written
    await writeAll(handle, buf, at)
    seg.written = at + buf.length
    this.#queuedBytes -= buf.length
    for (let i = start; i < end; i++) {
      this.#queueHeads[i] = ''
      this.#queueBodies[i] = ''
    }
    this.#queueHead = end
    if (end === this.#queueHeads.length) this.#clearQueue()
    this.#written += end - start
    if (this.#opts.fsync !== 'never' && this.#unsyncedSince === 0) this.#unsyncedSince = this.#clock.now()
    if (this.#opts.fsync === 'batch') await this.#sync()
    // The reader may be waiting for these records.
    if (this.#cursor?.seg === seg && !this.#reading) this.resume()
    this.#maybeDelete(seg)
  }

  /** The handle of the segment being written, opened (and created, header first) when it changes. */
  async #handleFor (seg: Segment): Promise<FileHandle> {
    if (this.#writeSeg === seg && this.#writeHandle !== undefined) return this.#writeHandle
    if (this.#writeSeg !== undefined) await this.#closeWriteSegment(this.#opts.fsync !== 'never')
    const handle = await fs.promises.open(this.#path(segmentName(seg.id)), 'wx')
    this.#writeHandle = handle
    this.#writeSeg = seg
    await writeAll(handle, SEGMENT_HEADER, 0)
    seg.written = HEADER_BYTES
    // The new file's name must reach the disk too, or a power cut could lose the file with its synced data.
    if (this.#opts.fsync !== 'never') await syncDirectory(this.#opts.dir)
    return handle
  }

  async #closeWriteSegment (sync: boolean): Promise<void> {
    const handle = this.#writeHandle
    const seg = this.#writeSeg
    this.#writeHandle = undefined
    this.#writeSeg = undefined
    if (handle === undefined) return
    try {
      if (sync) await this.#syncHandle(handle)
    } finally {
      await handle.close()
      if (seg !== undefined) this.#maybeDelete(seg)
    }
  }

  async #sync (): Promise<void> {
    this.#syncWanted = false
    if (this.#writeHandle !== undefined) await this.#syncHandle(this.#writeHandle)
  }

  async #syncHandle (handle: FileHandle): Promise<void> {
    const covered = this.#written
    await handle.datasync()
    this.#synced = Math.max(this.#synced, covered)
    if (this.#synced === this.#written) this.#unsyncedSince = 0
  }

  /** Appends settled offsets to .ack files and deletes finished segments; returns whether there was anything to do. */
  async #writeAcksAndDeletions (): Promise<boolean> {
    let did = false
    for (const seg of [...this.#segments.values()]) {
      if (seg.deleted) {
        did = true
        this.#segments.delete(seg.id)
        if (this.#writeSeg === seg) await this.#closeWriteSegment(false)
        await seg.ackHandle?.close().catch(() => {})
        await this.#unlink(segmentName(seg.id))
        await this.#unlink(ackName(seg.id))
      } else if (seg.acks.length !== 0) {
        did = true
        const offsets = seg.acks
        seg.acks = []
        try {
          seg.ackHandle ??= await fs.promises.open(this.#path(ackName(seg.id)), 'a')
          await seg.ackHandle.write(encodeAcks(offsets))
        } catch (err) {
          // Lost acknowledgements only mean these items are sent again after a crash (Koala drops repeated message_ids).
          this.#errors++
          this.#hooks.problem('ack', 'warn', { err }, `koala-tracker spool: could not record settled items in ${ackName(seg.id)}`)
        }
      }
    }
    return did
  }

  async #unlink (name: string): Promise<void> {
    try {
      await fs.promises.unlink(this.#path(name))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.#errors++
        this.#hooks.problem('delete', 'warn', { err }, `koala-tracker spool: could not delete ${name}`)
      }
    }
  }

  /** Marks a segment for deletion once it is finished, fully written, all settled and behind the reader. */
  #maybeDelete (seg: Segment): boolean {
    if (seg.deleted || seg === this.#active || seg.pending !== 0 || seg.written < seg.size) return false
    if (this.#cursor !== undefined && this.#cursor.seg.id <= seg.id) return false
    seg.deleted = true
    this.#bytes -= seg.size
    this.#kick()
    return true
  }

  /**
   * A write or sync failed. Linux may drop the pages of a failed fsync and report
   * success for the next, so nothing written since the last good sync can be
   * trusted: the spool stops. Items held in memory are still delivered; those
   * only queued for disk are lost, and counted.
   */
  #failWrite (err: unknown): void {
    this.#errors++
    this.#state = 'failed'
    let lost = 0
    for (let i = this.#queueHead; i < this.#queueHeads.length; i++) if (!this.#queueHeld[i]) lost++
    this.#clearQueue()
    // The log ends at what reached the OS; the reader stops there.
    for (const seg of this.#segments.values()) seg.size = Math.max(seg.written, HEADER_BYTES)
    this.#backlogKnown -= lost
    this.#items -= lost
    this.#lost += lost
    this.#hooks.problem('failed', 'error', { err, lost },
      `koala-tracker spool: writing to ${this.#opts.dir} failed (${(err as Error).message}); new items are kept in memory only` +
      (lost > 0 ? `, and ${lost} items waiting to be written to disk are lost` : ''))
  }

  #clearQueue (): void {
    this.#queueHeads = []
    this.#queueBodies = []
    this.#queueLengths = []
    this.#queueSegs = []
    this.#queueHeld = []
    this.#queueHead = 0
    this.#queuedBytes = 0
  }

  #failRead (err: unknown): void {
    this.#errors++
    const cursor = this.#cursor
    this.#hooks.problem('read', 'error', { err }, `koala-tracker spool: reading ${cursor === undefined ? 'the spool' : segmentName(cursor.seg.id)} failed (${(err as Error).message})`)
    // Past this segment, or the reader would fail on it for ever.
    if (cursor !== undefined) this.#skipRest(cursor, false)
  }

  /** The reader's loop: one chunk per turn, while there is room and something on disk. */
  async #read (): Promise<void> {
    let need = 0
    while (this.#cursor !== undefined && !this.#closed && this.#hooks.room()) {
      const cursor = this.#cursor
      const seg = cursor.seg
      if (cursor.offset >= seg.written) {
        if (seg !== this.#active && seg.written >= seg.size) {
          this.#next(cursor)
          continue
        }
        // The active segment: caught up, or waiting for the writer (which resumes the reader).
        if (cursor.offset >= seg.size) this.#cursor = undefined
        return
      }
      const reader = await this.#openForRead(seg)
      if (reader === undefined) continue
      const length = Math.min(Math.max(READ_CHUNK_BYTES, need), seg.written - cursor.offset)
      const buf = Buffer.allocUnsafe(length)
      const { bytesRead } = await reader.handle.read(buf, 0, length, cursor.offset)
      if (this.#cursor !== cursor || this.#closed) return
      need = this.#take(cursor, buf.subarray(0, bytesRead), reader.acked)
    }
  }

  /** Admits the records of one chunk; stops at one that finds no room. Returns the bytes the next read needs at least. */
  #take (cursor: Cursor, buf: Buffer, acked: Set<number>): number {
    const seg = cursor.seg
    for (let at = 0; at < buf.length;) {
      const scan = scanRecord(buf, at)
      if (scan.kind === 'partial') {
        // A record cut by the end of the file: a write the crash interrupted.
        if (cursor.offset + scan.need > seg.written) this.#corrupt(cursor, 'a record cut short (a torn write)')
        return scan.need
      }
      if (scan.kind === 'corrupt') {
        this.#corrupt(cursor, scan.detail)
        return 0
      }
      const loc = location(seg.id, cursor.offset)
      if (!acked.has(cursor.offset)) {
        let admitted: boolean | undefined
        try {
          admitted = this.#hooks.admit(scan.payload, loc)
        } catch {
          // Whole, but not an item this version can send: skipped, like a corrupt record.
          this.#corruptRecords++
          this.#corruptBytes += scan.size
        }
        if (admitted === false) return 0
        if (seg.recovered) {
          if (admitted === true) {
            this.#recovered++
            seg.pending++
            this.#items++
          }
        } else {
          this.#backlogKnown--
          if (admitted === undefined) {
            this.#lost++
            this.settle(loc)
          }
        }
      }
      cursor.offset += scan.size
      at += scan.size
      if (!this.#hooks.room()) return 0
    }
    return 0
  }

  async #openForRead (seg: Segment): Promise<{ handle: FileHandle, acked: Set<number> } | undefined> {
    if (this.#readHandle?.seg === seg) return this.#readHandle
    await this.#readHandle?.handle.close().catch(() => {})
    this.#readHandle = undefined
    const handle = await fs.promises.open(this.#path(segmentName(seg.id)), 'r')
    let acked = new Set<number>()
    if (seg.recovered) {
      const head = Buffer.alloc(HEADER_BYTES)
      try {
        await handle.read(head, 0, HEADER_BYTES, 0)
      } catch (err) {
        await handle.close()
        throw err
      }
      if (!hasHeader(head)) {
        await handle.close()
        const cursor = this.#cursor as Cursor
        if (isOtherVersion(head)) {
          // Written by another version of koala-tracker: kept as it is for that version, and no longer counted here.
          this.#hooks.problem('version', 'error', { segment: segmentName(seg.id) },
            `koala-tracker spool: ${segmentName(seg.id)} is of another format version; it was left as it is`)
          this.#segments.delete(seg.id)
          this.#bytes -= seg.size
          this.#next(cursor)
        } else {
          this.#corrupt(cursor, 'a segment header that is not koala-tracker\'s')
        }
        return undefined
      }
      acked = await fs.promises.readFile(this.#path(ackName(seg.id))).then(parseAcks, () => new Set<number>())
    }
    this.#readHandle = { seg, handle, acked }
    return this.#readHandle
  }

  /** A bad record: the rest of its segment is skipped and counted, never fatal. */
  #corrupt (cursor: Cursor, detail: string): void {
    const skipped = cursor.seg.written - cursor.offset
    this.#corruptRecords++
    this.#corruptBytes += skipped
    this.#hooks.problem('corrupt', 'error', { segment: segmentName(cursor.seg.id), offset: cursor.offset, bytes: skipped },
      `koala-tracker spool: ${segmentName(cursor.seg.id)} has ${detail} at byte ${cursor.offset}; the ${skipped} bytes after it were skipped`)
    this.#skipRest(cursor, true)
  }

  #skipRest (cursor: Cursor, counted: boolean): void {
    if (!counted) this.#corruptBytes += cursor.seg.written - cursor.offset
    cursor.offset = cursor.seg.written
    if (cursor.seg !== this.#active) this.#next(cursor)
  }

  /** Moves the reader to the next segment, deleting the one left if all its records are settled. */
  #next (cursor: Cursor): void {
    const seg = cursor.seg
    let next: Segment | undefined
    for (const s of this.#segments.values()) {
      if (s.id > seg.id && !s.deleted) { next = s; break }
    }
    if (next === undefined || (next === this.#active && next.size <= HEADER_BYTES)) {
      this.#cursor = undefined
    } else {
      cursor.seg = next
      cursor.offset = HEADER_BYTES
    }
    this.#maybeDelete(seg)
  }
}

async function writeAll (handle: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0
  while (done < buf.length) {
    const { bytesWritten } = await handle.write(buf, done, buf.length - done, position + done)
    done += bytesWritten
  }
}

async function syncDirectory (dir: string): Promise<void> {
  const handle = await fs.promises.open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}
