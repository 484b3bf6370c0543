import { typeName } from './describe-error'

// A dot-atom part or label: no space, control character, or character the address syntax reserves.
const ATOM = String.raw`[^\s\x00-\x1f\x7f@"()<>,;:\\[\].]+`
const QUOTED = String.raw`"(?:[^"\\\x00-\x1f\x7f]|\\.)+"`
const LITERAL = String.raw`\[[^[\]\s]+\]`
/** local@domain: a dot-atom or quoted local part; a domain of two labels or more, or an address literal. */
const ADDRESS = new RegExp(String.raw`^(?:${ATOM}(?:\.${ATOM})*|${QUOTED})@(?:${ATOM}(?:\.${ATOM})+|${LITERAL})$`, 'u')
const MAX_EMAIL_CHARS = 320

/**
 * Why `value` cannot be sent for deletion, or undefined when it can. Looser
 * than the tracker's schema (format email): deletion must reach every address
 * Koala may hold, and the pixel and integrations can store internationalised
 * ones (jörg@bücher.de) and quoted local parts that format email refuses. What
 * it still refuses cannot be an address: no @, nothing on one side of it,
 * spaces or control characters outside quotes, a one-label domain.
 */
export function emailProblem (value: unknown): string | undefined {
  if (typeof value !== 'string') return `must be a string, got ${typeName(value)}`
  if (value === '') return 'must not be empty'
  if (value.length > MAX_EMAIL_CHARS) return `is longer than ${MAX_EMAIL_CHARS} characters`
  if (!ADDRESS.test(value)) return 'is not an email address'
  return undefined
}
