// The global Buffer is a getter on globalThis, called on every read; the module's export is a plain property.
import { Buffer } from 'node:buffer'
/** Bodies share slabs of this many bytes; the GC frees a slab once no batch holds it. */
export const SLAB_BYTES = 64 * 1024
/** A body larger than this gets a buffer of its own, so that a slab never wastes more than a quarter. */
const OWN_BUFFER_ABOVE = SLAB_BYTES / 4

/** Where a batch's body is: a string, or bytes [bodyAt, bodyEnd) of a buffer that other bodies may share. */
export interface BodyHolder {
  body: string | Buffer
  bodyAt: number
  bodyEnd: number
}

/**
 * Request bodies as UTF-8 bytes, written into shared slabs, for the built-in
 * transport (which would otherwise turn every string body into a Buffer itself).
 * Why bytes before the send: a backlog of bodies as strings lives on the V8 heap,
 * where the scavenger copies each body it finds waiting (a run that only built and
 * kept S1's bodies spent 40% of its CPU in scavenges); bytes in an ArrayBuffer are
 * never copied by the GC, and undici sends them without encoding them again. Slabs rather than a buffer per body:
 * a buffer of its own costs an allocation and a GC-tracked backing store per
 * request. A batch holds the slab and its range, not a view of its own (~80 bytes a batch).
 */
export class BodySlabs {
  #slab: Buffer | undefined
  #used = 0

  /** Writes `text` (`bytes` of UTF-8) into a slab (or a buffer of its own) and points `to` at it. */
  place (text: string, to: BodyHolder, bytes = Buffer.byteLength(text)): void {
    if (bytes > OWN_BUFFER_ABOVE) {
      to.body = Buffer.from(text, 'utf8')
      to.bodyAt = 0
      to.bodyEnd = to.body.length
      return
    }
    let slab = this.#slab
    if (slab === undefined || this.#used + bytes > slab.length) {
      slab = this.#slab = Buffer.allocUnsafeSlow(SLAB_BYTES)
      this.#used = 0
    }
    const at = this.#used
    // As many bytes as characters: all ASCII, which latin1 writes as a plain copy (UTF-8 encodes it ~1.5-2x slower).
    slab.write(text, at, bytes, bytes === text.length ? 'latin1' : 'utf8')
    this.#used = at + bytes
    to.body = slab
    to.bodyAt = at
    to.bodyEnd = at + bytes
  }
}

/** The body to send: the string, or a view of its bytes (made per attempt, and dropped with it). */
export function bodyOf (b: BodyHolder): string | Buffer {
  const body = b.body
  return typeof body === 'string' || (b.bodyAt === 0 && b.bodyEnd === body.length) ? body : body.subarray(b.bodyAt, b.bodyEnd)
}

/**
 * Copies the body out of a buffer it shares: a batch that waits to be retried
 * must not keep a whole slab alive (most of it other, delivered bodies).
 */
export function unshare (b: BodyHolder): void {
  const body = b.body
  if (typeof body === 'string' || (b.bodyAt === 0 && b.bodyEnd === body.length)) return
  const own = Buffer.allocUnsafeSlow(b.bodyEnd - b.bodyAt)
  body.copy(own, 0, b.bodyAt, b.bodyEnd)
  b.body = own
  b.bodyAt = 0
  b.bodyEnd = own.length
}
