import { Buffer } from 'node:buffer'
import { crc32 } from 'node:zlib'

// The spool's files (docs/durability.md has the format for humans).
//
// A segment, `seg-<12 digits>.log`, is its 8-byte header then records:
//   u32 LE payload length | u32 LE CRC-32 (IEEE) of the payload | payload (UTF-8)
// Records never span segments. A segment's acknowledgements, `seg-<12 digits>.ack`,
// are u32 LE offsets of the records settled; losing some only means resending them.

/** "KOALASP" and the format version: a reader refuses a segment of a version it does not know. */
export const SEGMENT_HEADER = Buffer.from('KOALASP\x01', 'latin1')
export const HEADER_BYTES = SEGMENT_HEADER.length
export const FRAME_BYTES = 8
/** A length above this is corruption, not a record: it must not make the reader allocate it. */
export const MAX_PAYLOAD_BYTES = 16 * 1024 * 1024
/** The largest item a record holds: what is left of MAX_PAYLOAD_BYTES after a generous allowance for its header. */
export const MAX_SPOOLED_ITEM_BYTES = MAX_PAYLOAD_BYTES - 64 * 1024

/** Offsets within a segment fit in 32 bits; a record's place is one number. */
const SEGMENT_SPAN = 2 ** 32

export function location (segment: number, offset: number): number {
  return segment * SEGMENT_SPAN + offset
}

export function segmentOf (loc: number): number {
  return Math.floor(loc / SEGMENT_SPAN)
}

export function offsetOf (loc: number): number {
  return loc % SEGMENT_SPAN
}

const SEGMENT_NAME = /^seg-(\d{12})\.log$/

export function segmentName (id: number): string {
  return `seg-${String(id).padStart(12, '0')}.log`
}

export function ackName (id: number): string {
  return `seg-${String(id).padStart(12, '0')}.ack`
}

/** The segment ids among a directory's file names, in order. */
export function segmentIds (names: readonly string[]): number[] {
  const ids: number[] = []
  for (const name of names) {
    const m = SEGMENT_NAME.exec(name)
    if (m !== null) ids.push(Number(m[1]))
  }
  return ids.sort((a, b) => a - b)
}

/** Frames payloads, each given as two parts (with its UTF-8 length), into one buffer, ready for one write. */
export function frame (heads: readonly string[], bodies: readonly string[], lengths: readonly number[]): Buffer {
  let total = 0
  for (const n of lengths) total += FRAME_BYTES + n
  const buf = Buffer.allocUnsafe(total)
  let at = 0
  for (let i = 0; i < heads.length; i++) {
    const n = lengths[i]
    buf.writeUInt32LE(n, at)
    const headBytes = buf.write(heads[i], at + FRAME_BYTES, n, 'utf8')
    buf.write(bodies[i], at + FRAME_BYTES + headBytes, n - headBytes, 'utf8')
    buf.writeUInt32LE(crc32(buf.subarray(at + FRAME_BYTES, at + FRAME_BYTES + n)), at + 4)
    at += FRAME_BYTES + n
  }
  return buf
}

export type Scan =
  /** A whole record at `offset` (relative to the buffer), `size` bytes with its frame. */
  | { kind: 'record', payload: string, size: number }
  /** The buffer ends inside a record: read more, or, at the end of the file, a torn write. */
  | { kind: 'partial', need: number }
  /** A length out of bounds or a checksum that does not match. */
  | { kind: 'corrupt', detail: string }

/** Reads the record that starts at `at` in `buf`. */
export function scanRecord (buf: Buffer, at: number): Scan {
  if (buf.length - at < FRAME_BYTES) return { kind: 'partial', need: FRAME_BYTES }
  const n = buf.readUInt32LE(at)
  if (n === 0 || n > MAX_PAYLOAD_BYTES) return { kind: 'corrupt', detail: `a record length of ${n} bytes` }
  if (buf.length - at < FRAME_BYTES + n) return { kind: 'partial', need: FRAME_BYTES + n }
  const body = buf.subarray(at + FRAME_BYTES, at + FRAME_BYTES + n)
  if (crc32(body) !== buf.readUInt32LE(at + 4)) return { kind: 'corrupt', detail: 'a checksum that does not match' }
  return { kind: 'record', payload: body.toString('utf8'), size: FRAME_BYTES + n }
}

/** Whether a segment starts with the header of this format version. */
export function hasHeader (buf: Buffer): boolean {
  return buf.length >= HEADER_BYTES && buf.subarray(0, HEADER_BYTES).equals(SEGMENT_HEADER)
}

/** Whether a segment starts with the magic of this format but another version byte. */
export function isOtherVersion (buf: Buffer): boolean {
  const magic = HEADER_BYTES - 1
  return buf.length >= HEADER_BYTES && buf.subarray(0, magic).equals(SEGMENT_HEADER.subarray(0, magic)) && !hasHeader(buf)
}

/** The acknowledged offsets in an .ack file's bytes (a torn last entry is ignored). */
export function parseAcks (buf: Buffer): Set<number> {
  const acked = new Set<number>()
  for (let at = 0; at + 4 <= buf.length; at += 4) acked.add(buf.readUInt32LE(at))
  return acked
}

export function encodeAcks (offsets: readonly number[]): Buffer {
  const buf = Buffer.allocUnsafe(offsets.length * 4)
  for (let i = 0; i < offsets.length; i++) buf.writeUInt32LE(offsets[i], i * 4)
  return buf
}
