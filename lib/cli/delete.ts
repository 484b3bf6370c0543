import type { DeletionClient, DeletionProgress, WaitResult } from '../deletion'
import { DELETION_DEFAULTS } from '../deletion'
import { planDeletion } from '../deletion'
import { parseEmailList } from '../deletion'
import type { CliIo } from './io'
import { plural } from '../shared/plural'

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
  io.out(`Read ${plural(list.emails.length, 'entry', 'entries')} from ${source}${column}: ${plural(plan.emails, 'unique email')}, ${plural(plan.duplicates, 'duplicate')}, ${plan.invalid.length} invalid.`)
  for (const bad of plan.invalid.slice(0, MAX_LISTED)) io.err(`  line ${list.lines[bad.index]}: ${JSON.stringify(bad.value)} ${bad.reason}`)
  if (plan.invalid.length > MAX_LISTED) io.err(`  ... and ${plural(plan.invalid.length - MAX_LISTED, 'more invalid line')}`)
  if (plan.invalid.length > 0 && !skipInvalid) {
    const one = plan.invalid.length === 1
    const bad = one ? '1 line is not an email address' : `${plan.invalid.length} lines are not email addresses`
    throw new UsageError(`${bad}; nothing was sent. Fix ${one ? 'it' : 'them'}, or pass --skip-invalid to send the rest.`)
  }
  if (plan.emails === 0) throw new UsageError(`no email addresses in ${source}; nothing was sent.`)
  return { emails: plan.batches.flat(), batches: plan.batches.map(b => b.length) }
}

export async function runDelete (io: CliIo, client: DeletionClient, emails: string[], wait: WaitSettings): Promise<number> {
  const result = await client.requestDeletion(emails, {
    onProgress: (e) => {
      if (e.type === 'submitted') io.out(`  [${e.request}/${e.of}] ${plural(e.emails, 'email')}: deletion request ${e.id}`)
      else if (e.type === 'not_submitted') io.out(`  [${e.request}/${e.of}] ${plural(e.emails, 'email')}: NOT requested: ${e.error.message}`)
      else if (e.type === 'retry' && e.method === 'POST') io.out(`  [${e.request}/${e.of}] attempt ${e.attempt} failed (${e.detail}); retrying in ${seconds(e.delayMs)}`)
    }
  })
  const ids = result.submitted.map(r => r.id)
  const requested = result.submitted.reduce((n, r) => n + r.emails.length, 0)
  io.out(`Requested deletion of ${plural(requested, 'email')} in ${plural(ids.length, 'request')}.`)
  let code: number = EXIT.ok
  if (result.failed.length > 0) {
    const missed = result.failed.reduce((n, r) => n + r.emails.length, 0)
    io.err(`error: ${result.failed.length} of ${plural(result.failed.length + ids.length, 'deletion request')} (${plural(missed, 'email')}) ` +
      `${result.failed.length === 1 ? 'was' : 'were'} not made: ` +
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
  io.out(`Waiting for ${plural(ids.length, 'deletion request')} to complete (checking every ${every}, for at most ${limit})...`)
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
    io.err(`error: ${result.failed.length} of ${plural(total, 'deletion request')} could not be checked: ${result.failed[0].error.message}`)
    return EXIT.failed
  }
  if (result.pending.length > 0) {
    io.err(`error: ${result.pending.length} of ${plural(total, 'deletion request')} ${result.pending.length === 1 ? 'was' : 'were'} not completed before the deadline ` +
      `(last status: ${result.pending.map(p => p.status ?? 'unknown').join(', ')}). Check later with: koala-tracker status ${result.pending.map(p => p.id).join(' ')}`)
    return EXIT.pending
  }
  io.out(total === 1 ? 'The deletion request completed.' : `All ${total} deletion requests completed.`)
  return EXIT.ok
}

/** `status ID...` without --wait: one check each. */
export async function runStatus (io: CliIo, client: DeletionClient, ids: string[]): Promise<number> {
  let code: number = EXIT.ok
  for (const id of ids) {
    try {
      const s = await client.getStatus(id)
      const receipts = Array.isArray(s.deleted_receipt) ? ` (receipt for ${plural(s.deleted_receipt.length, 'email')})` : ''
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
