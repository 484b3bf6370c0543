/**
 * The secret key must never reach a log line, an error message or an error
 * property. Every text the deletion client passes on from outside (undici
 * error messages, Koala's answers, which a proxy may echo headers into) goes
 * through here first.
 */

export const REDACTED = '[redacted]'

// Any sk_ token, also one cut short, but not the placeholder `sk_...`.
const KEY_LIKE = /(?<![A-Za-z0-9])sk_[A-Za-z0-9][^\s"'<>,;&\\]*/g
const BEARER = /(bearer[\s+]+)(?!\[redacted\])[^\s"',;&<>]+/gi
/** The shortest start of the key that is redacted at the end of a text cut short. */
const MIN_CUT_KEY = 4

/**
 * One escaped character, in the forms a server or proxy may echo a header in: JSON and JavaScript
 * (`\u005f`, `\x5f`, `\u{5f}`), URLs (`%5F`, `%u005F`), HTML (`&#95;`, `&#x5f;`, `&lowbar;`). A
 * doubled backslash, `&amp;` and `%25` are decoded too, so a second pass undoes a form escaped twice.
 */
const ESCAPED = /\\u\{([0-9a-f]{1,6})\}|\\u([0-9a-f]{4})|\\x([0-9a-f]{2})|%u([0-9a-f]{4})|%([0-9a-f]{2})|&#x0*([0-9a-f]{1,6});?|&#0*([0-9]{1,7});?|&(lowbar|UnderBar|amp|percnt|bsol);|\\(\\)/gi
const NAMED: Record<string, string> = { lowbar: '_', underbar: '_', amp: '&', percnt: '%', bsol: '\\' }
/** Enough for anything escaped twice, as a body quoting another body would be. */
const DECODE_PASSES = 3

export function redactSecrets (text: string, secret?: string): string {
  const decoded = decode(text)
  const found: Redaction[] = []
  for (const m of decoded.text.matchAll(BEARER)) {
    const start = (m.index ?? 0) + m[1].length
    found.push({ start, end: (m.index ?? 0) + m[0].length, replacement: REDACTED })
  }
  if (secret !== undefined && secret !== '') found.push(...secretAt(decoded.text, secret))
  for (const m of decoded.text.matchAll(KEY_LIKE)) found.push({ start: m.index ?? 0, end: (m.index ?? 0) + m[0].length, replacement: `sk_${REDACTED}` })
  return replaceInOriginal(text, decoded, found)
}

interface Redaction { start: number, end: number, replacement: string }

/** Every occurrence of the key, in any case, and its start at the end of a text cut short. */
function secretAt (text: string, secret: string): Redaction[] {
  const haystack = asciiLowerCase(text)
  const needle = asciiLowerCase(secret)
  const out: Redaction[] = []
  for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + needle.length)) {
    out.push({ start: at, end: at + needle.length, replacement: `sk_${REDACTED}` })
  }
  for (let n = Math.min(needle.length - 1, haystack.length); n >= MIN_CUT_KEY; n--) {
    if (haystack.endsWith(needle.slice(0, n))) {
      out.push({ start: haystack.length - n, end: haystack.length, replacement: `sk_${REDACTED}` })
      break
    }
  }
  return out
}

/** Lower case that keeps every index: toLowerCase() may lengthen a non-ASCII character. */
function asciiLowerCase (text: string): string {
  return text.replace(/[A-Z]/g, c => c.toLowerCase())
}

/** A text with its escapes undone; decoded character i came from original[from[i], to[i]). */
interface Decoded { text: string, from: number[], to: number[] }

function decode (original: string): Decoded {
  let current: Decoded = {
    text: original,
    from: Array.from({ length: original.length }, (_, i) => i),
    to: Array.from({ length: original.length }, (_, i) => i + 1)
  }
  for (let pass = 0; pass < DECODE_PASSES; pass++) {
    const next = decodeOnce(current)
    if (next.text === current.text) break
    current = next
  }
  return current
}

function decodeOnce (input: Decoded): Decoded {
  let text = ''
  const from: number[] = []
  const to: number[] = []
  let copied = 0
  const keep = (end: number): void => {
    for (; copied < end; copied++) {
      text += input.text[copied]
      from.push(input.from[copied])
      to.push(input.to[copied])
    }
  }
  for (const m of input.text.matchAll(ESCAPED)) {
    const at = m.index ?? 0
    keep(at)
    const units = unescaped(m)
    const end = at + m[0].length
    // By UTF-16 unit, as the maps are: an astral character is two.
    for (let i = 0; i < units.length; i++) {
      text += units[i]
      from.push(input.from[at])
      to.push(input.to[end - 1])
    }
    copied = end
  }
  keep(input.text.length)
  return { text, from, to }
}

function unescaped (m: RegExpMatchArray): string {
  const [, braced, u4, x2, percentU, percent, hex, decimal, named, backslash] = m
  if (named !== undefined) return NAMED[named.toLowerCase()]
  if (backslash !== undefined) return backslash
  const code = decimal !== undefined ? Number(decimal) : parseInt(braced ?? u4 ?? x2 ?? percentU ?? percent ?? hex, 16)
  return code <= 0x10ffff ? String.fromCodePoint(code) : m[0]
}

/** Replaces each found range, mapped back to the original text; overlapping ones become one. */
function replaceInOriginal (original: string, decoded: Decoded, found: Redaction[]): string {
  const ranges = found
    .filter(r => r.end > r.start)
    .map(r => ({ start: decoded.from[r.start], end: decoded.to[r.end - 1], replacement: r.replacement }))
    .sort((a, b) => a.start - b.start)
  let out = ''
  let copied = 0
  for (const r of ranges) {
    if (r.start < copied) {
      // Overlaps the one before: that replacement already stands for both.
      copied = Math.max(copied, r.end)
      continue
    }
    out += original.slice(copied, r.start) + r.replacement
    copied = r.end
  }
  return out + original.slice(copied)
}
