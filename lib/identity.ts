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

/**
 * Whether `s` matches the schema's ProfileId pattern (`^[0-9A-Fa-f]{8}-…{12}$`), and whether it
 * has capitals, in one pass. It stands in for the schema's regex and a second /[A-F]/ regex
 * on every call for a new person (~100 ns of ~3 µs); the schema is still what explains a refusal.
 */
export function uuidShape (s: string): typeof NOT_UUID | typeof LOWER_UUID | typeof UPPER_UUID {
  if (s.length !== 36) return NOT_UUID
  let upper = false
  for (let i = 0; i < 36; i++) {
    const c = s.charCodeAt(i)
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 0x2d /* - */) return NOT_UUID
    } else if (c >= 0x61 /* a */) {
      if (c > 0x66 /* f */) return NOT_UUID
    } else if (c >= 0x41 /* A */) {
      if (c > 0x46 /* F */) return NOT_UUID
      upper = true
    } else if (c < 0x30 /* 0 */ || c > 0x39 /* 9 */) {
      return NOT_UUID
    }
  }
  return upper ? UPPER_UUID : LOWER_UUID
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
