import { domainToASCII } from 'node:url'

/**
 * Key rules, one place. A bucket (and so a request) is for exactly one person
 * or account:
 * - profile_id given: keyed by the lower-cased profile_id itself; an email on the call
 *   rides along as the bucket's email.
 * - email only: keyed by the lower-cased email (prefixed so it never meets a
 *   profile_id key). Such a bucket is separate from any profile_id bucket with
 *   the same email; Koala merges them on its side.
 * Accounts follow the same rule with domain in place of profile_id and
 * account_id in place of email, except that an account_id is matched exactly:
 * it is the app's own id (a Salesforce id, say), where case can matter.
 */
export function secondaryKey (secondary: string, caseless: boolean): string {
  return '#' + (caseless ? secondary.toLowerCase() : secondary)
}

/**
 * Whether a call's secondary id (email / account_id) conflicts with the one the
 * bucket already holds: the bucket must then be sent before the call is added,
 * so one request never names two people.
 */
export function conflicts (held: string | undefined, incoming: string | undefined, caseless: boolean): boolean {
  return held !== undefined && incoming !== undefined && held !== incoming && (!caseless || held.toLowerCase() !== incoming.toLowerCase())
}

/** uuidShape's answers: not the ko_id cookie's 8-4-4-4-12 form, that form in lower case, or with capitals. */
export const NOT_UUID = 0
export const LOWER_UUID = 1
export const UPPER_UUID = 2

/** uuidShape's character classes: a lower-case hex digit, an upper-case one, a dash; 0 for any other. */
const HEX_LOWER = 1
const HEX_UPPER = 2
const DASH = 4
const CLASS = new Uint8Array(128)
for (let c = 0x30; c <= 0x39; c++) CLASS[c] = HEX_LOWER // digits count as lower case: they need no lower-casing
for (let c = 0x61; c <= 0x66; c++) CLASS[c] = HEX_LOWER
for (let c = 0x41; c <= 0x46; c++) CLASS[c] = HEX_UPPER
CLASS[0x2d] = DASH
/** The classes each of the 36 positions takes: 8-4-4-4-12 hex digits between dashes. */
const EXPECTED = new Uint8Array(36).fill(HEX_LOWER | HEX_UPPER)
for (const i of [8, 13, 18, 23]) EXPECTED[i] = DASH

/**
 * Whether `s` matches the schema's ProfileId pattern (`^[0-9A-Fa-f]{8}-…{12}$`), and whether it
 * has capitals, in one pass. It stands in for the schema's regex and a second /[A-F]/ regex
 * on every call for a new person; the schema is still what explains a refusal. No branch depends
 * on a character: digits and letters come in random order, and a branch on them mispredicted about
 * half the time (~180 ns a call, against ~65 ns; docs/benchmarks.md, tenth round).
 */
export function uuidShape (s: string): typeof NOT_UUID | typeof LOWER_UUID | typeof UPPER_UUID {
  if (s.length !== 36) return NOT_UUID
  let seen = 0
  let miss = 0
  for (let i = 0; i < 36; i++) {
    const c = s.charCodeAt(i)
    const k = c < 128 ? CLASS[c] : 0
    // -1 when k is not a class this position takes (k & EXPECTED[i] is 0), else 0.
    miss |= ((k & EXPECTED[i]) - 1) >> 31
    seen |= k
  }
  if (miss !== 0) return NOT_UUID
  return (seen & HEX_UPPER) !== 0 ? UPPER_UUID : LOWER_UUID
}

const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//

/**
 * Normalises what callers pass as a company domain: case, surrounding spaces,
 * a scheme, credentials, a port, a path, query or fragment, a trailing dot,
 * and Unicode (to its ASCII form). `www.` is kept: it is part of what was given.
 * The result is checked against the schema afterwards.
 */
export function normalizeDomain (input: string): string {
  let s = input.trim().toLowerCase().replace(SCHEME, '')
  const end = s.search(/[/?#]/)
  if (end !== -1) s = s.slice(0, end)
  const at = s.lastIndexOf('@')
  if (at !== -1) s = s.slice(at + 1)
  s = s.replace(/:\d*$/, '').replace(/\.$/, '')
  // eslint-disable-next-line no-control-regex
  // Converted, an ideographic full stop at the end (acme.com。) is a trailing dot like any other.
  if (/[^\x00-\x7f]/.test(s)) s = domainToASCII(s).replace(/\.$/, '')
  return s
}
