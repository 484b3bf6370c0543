import { MAX_EMAILS_PER_DELETION_REQUEST } from './constants'
import { typeName } from './describe-error'

export interface InvalidEmail {
  /** Position in the list given. */
  index: number
  value: unknown
  reason: string
}

export interface DeletionPlan {
  /** The requests to make: unique valid emails, in the order given, at most 50 each. */
  batches: string[][]
  /** Unique valid emails. */
  emails: number
  /** Entries dropped because an earlier one had the same email (compared without regard to case). */
  duplicates: number
  invalid: InvalidEmail[]
}

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

/**
 * Pure: trims each entry, sets aside the invalid ones, drops repeats (the
 * first spelling is kept and sent), and splits the rest into requests of at
 * most 50, because Koala silently ignores everything past the 50th email.
 */
export function planDeletion (emails: readonly unknown[], perRequest = MAX_EMAILS_PER_DELETION_REQUEST): DeletionPlan {
  const size = Math.min(Math.max(1, Math.floor(perRequest)), MAX_EMAILS_PER_DELETION_REQUEST)
  const seen = new Set<string>()
  const unique: string[] = []
  const invalid: InvalidEmail[] = []
  let duplicates = 0
  emails.forEach((raw, index) => {
    const value = typeof raw === 'string' ? raw.trim() : raw
    const problem = emailProblem(value)
    if (problem !== undefined) {
      invalid.push({ index, value: raw, reason: problem })
      return
    }
    const email = value as string
    const key = email.toLowerCase()
    if (seen.has(key)) {
      duplicates++
      return
    }
    seen.add(key)
    unique.push(email)
  })
  const batches: string[][] = []
  for (let i = 0; i < unique.length; i += size) batches.push(unique.slice(i, i + size))
  return { batches, emails: unique.length, duplicates, invalid }
}
