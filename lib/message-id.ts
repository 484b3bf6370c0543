import type { randomFillSync as RandomFillSync } from 'node:crypto'

/** The head a body gives an item captured without a message_id: `{"message_id":"<UUID v4>"`. */
const HEAD = '{"message_id":"'
export const MESSAGE_ID_PIECE_LENGTH = HEAD.length + 36 + 1
/** Pieces made per refill of random bytes. */
const PER_REFILL = 256

// Where byte i of the 16 random bytes goes in a piece (two hex digits; dashes after bytes 3, 5, 7 and 9).
const AT = Array.from({ length: 16 }, (_, i) => HEAD.length + i * 2 + (i >= 4 ? 1 : 0) + (i >= 6 ? 1 : 0) + (i >= 8 ? 1 : 0) + (i >= 10 ? 1 : 0))
const HEX = Buffer.from('0123456789abcdef', 'latin1')

let fill: typeof RandomFillSync | undefined
let random: Buffer | undefined
let scratch: Buffer | undefined
let pieces = ''
let next = PER_REFILL

/**
 * A new `{"message_id":"<UUID v4>"` for one item. crypto.randomUUID() would build each id from ~20
 * string concatenations, ~650 bytes of garbage an item; here 256 pieces are written as bytes into
 * one buffer and read as one string, and each piece is a slice of it (V8 shares the characters).
 */
export function messageIdPiece (): string {
  if (next === PER_REFILL) refill()
  const at = next++ * MESSAGE_ID_PIECE_LENGTH
  return pieces.slice(at, at + MESSAGE_ID_PIECE_LENGTH)
}

function refill (): void {
  if (fill === undefined) {
    // Required at the first body rather than at import: loading node:crypto costs ~6 ms.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    fill = (require('node:crypto') as typeof import('node:crypto')).randomFillSync
    random = Buffer.allocUnsafeSlow(PER_REFILL * 16)
    scratch = Buffer.allocUnsafeSlow(PER_REFILL * MESSAGE_ID_PIECE_LENGTH)
    // The fixed characters are written once; a refill writes only the hex digits.
    for (let k = 0; k < PER_REFILL; k++) {
      const base = k * MESSAGE_ID_PIECE_LENGTH
      scratch.write(HEAD + 'xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"', base, 'latin1')
    }
  }
  const r = fill(random as Buffer)
  const out = scratch as Buffer
  for (let k = 0; k < PER_REFILL; k++) {
    const base = k * MESSAGE_ID_PIECE_LENGTH
    const from = k * 16
    for (let i = 0; i < 16; i++) {
      let b = r[from + i]
      // RFC 9562 version 4 and variant bits.
      if (i === 6) b = (b & 0x0f) | 0x40
      else if (i === 8) b = (b & 0x3f) | 0x80
      const to = base + AT[i]
      out[to] = HEX[b >> 4]
      out[to + 1] = HEX[b & 0x0f]
    }
  }
  pieces = out.toString('latin1')
  next = 0
}
