import { MAX_EMAILS_PER_DELETION_REQUEST } from '../shared/constants'
import { emailProblem } from '../shared/email'

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
