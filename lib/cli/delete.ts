import type { DeletionClient, DeletionProgress, WaitResult } from '../deletion'
import { DELETION_DEFAULTS } from '../deletion'
import { planDeletion } from '../deletion'
import { parseEmailList } from '../deletion'
import type { CliIo } from './io'

/** Exit codes of the CLI (documented in docs/deletion.md). */
export const EXIT = Object.freeze({
  ok: 0,
  /** Some deletion requests were not made, or a status check failed. */
  failed: 1,
  /** Bad arguments, file or key: nothing was sent. */
  usage: 2,
  /** --wait: the deadline passed before every request completed. */
  pending: 3
})

export class UsageError extends Error {}

export interface WaitSettings { wait: boolean, timeoutMs: number | undefined, pollIntervalMs: number | undefined }

const MAX_LISTED = 20
const seconds = (ms: number): string => `${Number((ms / 1000).toFixed(1))} s`

/** Reads and checks the list; returns the emails to send, or throws UsageError having explained why not. */
export function readPlan (io: CliIo, file: string, skipInvalid: boolean): { emails: string[], batches: number[] } {
  let text: string
  try {
    text = io.readFile(file)
  } catch (err) {
    throw new UsageError(`cannot read ${file === '-' ? 'standard input' : file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
  }
  const list = parseEmailList(text)
  const plan = planDeletion(list.emails)
  const source = file === '-' ? 'standard input' : file
  const column = list.column === undefined ? '' : ` (CSV column ${list.column + 1})`
  io.out(`Read ${list.emails.length} entries from ${source}${column}: ${plan.emails} unique emails, ${plan.duplicates} duplicates, ${plan.invalid.length} invalid.`)
  for (const bad of plan.invalid.slice(0, MAX_LISTED)) io.err(`  line ${list.lines[bad.index]}: ${JSON.stringify(bad.value)} ${bad.reason}`)
  if (plan.invalid.length > MAX_LISTED) io.err(`  ... and ${plan.invalid.length - MAX_LISTED} more invalid lines`)
  if (plan.invalid.length > 0 && !skipInvalid) {
    throw new UsageError(`${plan.invalid.length} lines are not email addresses; nothing was sent. Fix them, or pass --skip-invalid to send the rest.`)
  }
  if (plan.emails === 0) throw new UsageError(`no email addresses in ${source}; nothing was sent.`)
  return { emails: plan.batches.flat(), batches: plan.batches.map(b => b.length) }
}

export async function runDelete (io: CliIo, client: DeletionClient, emails: string[], wait: WaitSettings): Promise<number> {
  const result = await client.requestDeletion(emails, {
    onProgress: (e) => {
      if (e.type === 'submitted') io.out(`  [${e.request}/${e.of}] ${e.emails} emails: deletion request ${e.id}`)
      else if (e.type === 'not_submitted') io.out(`  [${e.request}/${e.of}] ${e.emails} emails: NOT requested: ${e.error.message}`)
      else if (e.type === 'retry' && e.method === 'POST') io.out(`  [${e.request}/${e.of}] attempt ${e.attempt} failed (${e.detail}); retrying in ${seconds(e.delayMs)}`)
    }
  })
  const ids = result.submitted.map(r => r.id)
  const requested = result.submitted.reduce((n, r) => n + r.emails.length, 0)
  io.out(`Requested deletion of ${requested} emails in ${ids.length} requests.`)
  let code: number = EXIT.ok
  if (result.failed.length > 0) {
    const missed = result.failed.reduce((n, r) => n + r.emails.length, 0)
    io.err(`error: ${result.failed.length} of ${result.failed.length + ids.length} deletion requests (${missed} emails) were not made: ` +
      `${result.failed[0].error.message}. Requesting deletion again is safe: fix the cause and run the same command again.`)
    code = EXIT.failed
  }
  if (ids.length === 0) return code
  if (!wait.wait) {
    io.out(`Koala deletes in the background. Check with: koala-tracker status ${ids.join(' ')}`)
    return code
  }
  const waited = await runWait(io, client, ids, wait)
  // A request not made outranks one not yet completed.
  return code === EXIT.failed ? EXIT.failed : waited
}

export async function runWait (io: CliIo, client: DeletionClient, ids: string[], wait: WaitSettings): Promise<number> {
  const shown = new Map<string, string>()
  const every = seconds(wait.pollIntervalMs ?? DELETION_DEFAULTS.pollIntervalMs)
  const limit = seconds(wait.timeoutMs ?? DELETION_DEFAULTS.waitTimeoutMs)
  io.out(`Waiting for ${ids.length} deletion requests to complete (checking every ${every}, for at most ${limit})...`)
  const result = await client.waitForCompletion(ids, {
    timeoutMs: wait.timeoutMs,
    onProgress: (e: DeletionProgress) => {
      if (e.type === 'status' && shown.get(e.id) !== e.status) {
        shown.set(e.id, e.status)
        io.out(`  ${e.id}: ${e.status}`)
      } else if (e.type === 'status_failed') {
        io.out(`  ${e.id}: check failed: ${e.error.message}`)
      } else if (e.type === 'retry' && e.method === 'GET') {
        io.out(`  ${e.id}: check failed (${e.detail}); retrying in ${seconds(e.delayMs)}`)
      }
    }
  })
  return report(io, result, ids.length)
}

function report (io: CliIo, result: WaitResult, total: number): number {
  if (result.failed.length > 0) {
    io.err(`error: ${result.failed.length} of ${total} deletion requests could not be checked: ${result.failed[0].error.message}`)
    return EXIT.failed
  }
  if (result.pending.length > 0) {
    io.err(`error: ${result.pending.length} of ${total} deletion requests were not completed before the deadline ` +
      `(last status: ${result.pending.map(p => p.status ?? 'unknown').join(', ')}). Check later with: koala-tracker status ${result.pending.map(p => p.id).join(' ')}`)
    return EXIT.pending
  }
  io.out(`All ${total} deletion requests completed.`)
  return EXIT.ok
}

/** `status ID...` without --wait: one check each. */
export async function runStatus (io: CliIo, client: DeletionClient, ids: string[]): Promise<number> {
  let code: number = EXIT.ok
  for (const id of ids) {
    try {
      const s = await client.getStatus(id)
      const receipts = Array.isArray(s.deleted_receipt) ? ` (receipt for ${s.deleted_receipt.length} emails)` : ''
      const completed = s.status.toLowerCase() === 'completed'
      io.out(`${id}: ${s.status}${completed ? receipts : ''}`)
      if (!completed && code === EXIT.ok) code = EXIT.pending
    } catch (err) {
      io.err(`${id}: ${(err as Error).message}`)
      code = EXIT.failed
    }
  }
  return code
}
