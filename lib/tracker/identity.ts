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

/** The bucket key of a valid profile_id: the ko_id cookie's UUID, whatever case it came in. */
export function profileKey (profileId: string): string {
  return profileId.toLowerCase()
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
