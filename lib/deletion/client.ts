import { systemClock, type Clock } from '../shared/clock'
import { typeName } from '../shared/describe-error'
import { exchange, type Exchanged, type ExchangeDeps, type Failure, type RetryNotice } from './exchange'
import { createDeletionHttpTransport, type DeletionTransport } from './http'
import { resolveDeletionOptions, type DeletionClientOptions, type ResolvedDeletionOptions } from './options'
import { planDeletion, type InvalidEmail } from './plan'
import { DeletionError, InputError, type DeletionCallName } from '../shared/errors'
import { childLogger, createDefaultLogger, Reporter } from '../shared/logger'
import { plural } from '../shared/plural'
import { redactSecrets } from '../shared/redact'
import { USER_AGENT } from '../shared/version'

export interface SubmitResult {
  /** Requests Koala accepted, with the id to check them by. */
  submitted: Array<{ id: string, emails: string[] }>
  /** Requests not made (or of unknown outcome: reason `timeout`); requesting them again is safe. */
  failed: Array<{ emails: string[], error: DeletionError }>
  /** Entries that are not email addresses; nothing was sent for them. */
  invalid: InvalidEmail[]
  /** Entries left out because an earlier entry had the same email. */
  duplicates: number
  timedOut: boolean
}

/** Koala's answer to GET /api/v1/deletion-requests/{id}, as sent (only `completed` is a documented status). */
export interface DeletionRequestStatus {
  id: string
  status: string
  input?: string[]
  deleted_receipt?: Array<Record<string, unknown>>
  messages?: unknown[]
  [field: string]: unknown
}

export interface WaitResult {
  completed: DeletionRequestStatus[]
  /** Not completed at the deadline, with the last status seen. */
  pending: Array<{ id: string, status: string | undefined }>
  failed: Array<{ id: string, error: DeletionError }>
  timedOut: boolean
}

export type DeletionProgress =
  | { type: 'submitted', request: number, of: number, emails: number, id: string }
  | { type: 'not_submitted', request: number, of: number, emails: number, error: DeletionError }
  | { type: 'retry', method: 'POST', request: number, of: number, attempt: number, delayMs: number, status: number | undefined, detail: string }
  | { type: 'retry', method: 'GET', id: string, attempt: number, delayMs: number, status: number | undefined, detail: string }
  | { type: 'status', id: string, status: string }
  | { type: 'status_failed', id: string, error: DeletionError }

export interface DeletionCallOptions {
  /** Overall deadline of this call; defaults to submitTimeoutMs or waitTimeoutMs. */
  timeoutMs?: number
  /** Called as the call progresses (for a CLI or a job log). Errors it throws are contained. */
  onProgress?: (event: DeletionProgress) => void
}

const COMPLETED = 'completed'
// Ids are Koala's UUIDs; the bound only keeps a wrong argument out of a URL.
const MAX_ID_CHARS = 200

/**
 * Koala's GDPR deletion API: request deletion of a list of emails, then poll
 * until each request is completed. Separate from the tracker: it needs the
 * secret key, which is kept in a private field and redacted from every text
 * the client reports. Requests are made one at a time.
 */
export class DeletionClient {
  readonly #opts: ResolvedDeletionOptions
  readonly #clock: Clock
  readonly #reporter: Reporter
  readonly #deps: ExchangeDeps
  #transport: DeletionTransport | undefined

  constructor (options: DeletionClientOptions) {
    const opts = resolveDeletionOptions(options)
    this.#opts = opts
    this.#clock = opts.clock ?? systemClock
    const logger = opts.logger !== undefined ? childLogger(opts.logger) : createDefaultLogger()
    this.#reporter = new Reporter(logger, this.#clock, 60_000)
    this.#deps = {
      opts,
      clock: this.#clock,
      transport: () => (this.#transport ??= opts.transport ?? createDeletionHttpTransport({
        origin: opts.origin, dispatcher: opts.dispatcher, requestTimeoutMs: opts.requestTimeoutMs
      })),
      headers: Object.freeze({
        authorization: `Bearer ${opts.secretKey}`,
        accept: 'application/json',
        'content-type': 'application/json',
        'user-agent': USER_AGENT
      })
    }
  }

  /**
   * Requests deletion of every valid email, 50 per request. Never rejects for
   * what Koala answers: failures are in the result. A failure that would
   * repeat for the rest (bad key, Koala unreachable, the deadline) stops the
   * run, and the requests not made are reported as `skipped`.
   */
  async requestDeletion (emails: readonly string[], options: DeletionCallOptions = {}): Promise<SubmitResult> {
    if (!Array.isArray(emails)) throw new InputError('requestDeletion', 'emails', `must be an array of email addresses, got ${typeName(emails)}`)
    const deadlineAt = this.#deadline('requestDeletion', options.timeoutMs, this.#opts.submitTimeoutMs)
    const progress = this.#progress(options.onProgress)
    const plan = planDeletion(emails)
    if (plan.invalid.length > 0) {
      // Counts only: the values may be personal data.
      this.#reporter.note('deletion_invalid', 'warn', { invalid: plan.invalid.length },
        `${plural(plan.invalid.length, 'entry', 'entries')} ${plan.invalid.length === 1 ? 'is not an email address and was' : 'are not email addresses and were'} ` +
        'not sent (see the result\'s invalid list)')
    }
    const result: SubmitResult = { submitted: [], failed: [], invalid: plan.invalid, duplicates: plan.duplicates, timedOut: false }
    const of = plan.batches.length
    let stop: DeletionError | undefined
    for (const [i, batch] of plan.batches.entries()) {
      const request = i + 1
      const label = `deletion request ${request} of ${of} (${plural(batch.length, 'email')})`
      if (stop !== undefined) {
        const error = this.#error(label, skipped(`not attempted after an earlier failure (${stop.reason})`))
        result.failed.push({ emails: batch, error })
        progress({ type: 'not_submitted', request, of, emails: batch.length, error })
        continue
      }
      const ex = await exchange(this.#deps, 'POST', this.#opts.requestsPath, JSON.stringify({ emails: batch }), deadlineAt,
        n => this.#retried(n, label, progress, { method: 'POST', request, of }))
      const read = answer(ex, readId, 'a JSON object with a deletion_request_id')
      if (!read.ok) {
        const error = this.#error(label, read)
        result.failed.push({ emails: batch, error })
        progress({ type: 'not_submitted', request, of, emails: batch.length, error })
        if (read.fatal) stop = error
        if (read.reason === 'timeout') result.timedOut = true
        continue
      }
      const id = read.value
      result.submitted.push({ id, emails: batch })
      progress({ type: 'submitted', request, of, emails: batch.length, id })
    }
    return result
  }

  /** One status check, with retries. Rejects with a DeletionError (reason `not_found` for an unknown id). */
  async getStatus (id: string, options: { timeoutMs?: number } = {}): Promise<DeletionRequestStatus> {
    checkId('getStatus', 'id', id)
    const deadlineAt = this.#deadline('getStatus', options.timeoutMs, this.#opts.waitTimeoutMs)
    const checked = await this.#check(id, deadlineAt, () => {})
    if ('error' in checked) throw checked.error
    return checked.status
  }

  /**
   * Checks each request now and then every pollIntervalMs until all are
   * completed or the deadline passes (no check starts after it; one in flight
   * at the deadline is aborted). Never rejects for what Koala answers.
   */
  async waitForCompletion (ids: readonly string[], options: DeletionCallOptions = {}): Promise<WaitResult> {
    if (!Array.isArray(ids)) throw new InputError('waitForCompletion', 'ids', `must be an array of deletion request ids, got ${typeName(ids)}`)
    ids.forEach((id, i) => checkId('waitForCompletion', `ids[${i}]`, id))
    const deadlineAt = this.#deadline('waitForCompletion', options.timeoutMs, this.#opts.waitTimeoutMs)
    const progress = this.#progress(options.onProgress)
    const result: WaitResult = { completed: [], pending: [], failed: [], timedOut: false }
    const last = new Map<string, string | undefined>([...new Set(ids)].map(id => [id, undefined]))
    let stop: DeletionError | undefined
    while (last.size > 0 && stop === undefined) {
      const nextRoundAt = this.#clock.now() + this.#opts.pollIntervalMs
      for (const id of [...last.keys()]) {
        const checked = await this.#check(id, deadlineAt, progress)
        if ('status' in checked) {
          last.set(id, checked.status.status)
          progress({ type: 'status', id, status: checked.status.status })
          if (checked.status.status.toLowerCase() === COMPLETED) {
            result.completed.push(checked.status)
            last.delete(id)
          }
          continue
        }
        if (checked.error.reason === 'timeout') {
          // Not a failure of the request: it simply is not known to be completed.
          result.timedOut = true
          stop = checked.error
          break
        }
        result.failed.push({ id, error: checked.error })
        progress({ type: 'status_failed', id, error: checked.error })
        last.delete(id)
        if (checked.fatal) {
          stop = checked.error
          break
        }
      }
      if (last.size === 0 || stop !== undefined) break
      if (nextRoundAt >= deadlineAt) {
        result.timedOut = true
        break
      }
      await new Promise<void>(resolve => { this.#clock.setTimeout(resolve, nextRoundAt - this.#clock.now(), true) })
    }
    if (stop !== undefined && stop.reason !== 'timeout') {
      for (const id of last.keys()) {
        const error = this.#error(`status of deletion request ${id}`, skipped(`not checked after an earlier failure (${stop.reason})`), id)
        result.failed.push({ id, error })
        progress({ type: 'status_failed', id, error })
      }
      last.clear()
    }
    for (const [id, status] of last) result.pending.push({ id, status })
    return result
  }

  /** Releases the connection. A later call opens a new one. */
  async close (): Promise<void> {
    const transport = this.#transport
    this.#transport = undefined
    await transport?.close()
  }

  async #check (id: string, deadlineAt: number, progress: (e: DeletionProgress) => void):
  Promise<{ status: DeletionRequestStatus } | { error: DeletionError, fatal: boolean }> {
    const label = `status of deletion request ${id}`
    const ex = await exchange(this.#deps, 'GET', `${this.#opts.requestsPath}/${encodeURIComponent(id)}`, undefined, deadlineAt,
      n => this.#retried(n, label, progress, { method: 'GET', id }))
    const read = answer(ex, body => readStatus(body, id), 'a JSON object with a status')
    // A deadline passing here leaves the request pending, which the caller reports; it is not an error of its own.
    if (!read.ok) return { error: this.#error(label, read, id, read.reason !== 'timeout'), fatal: read.fatal }
    return { status: read.value }
  }

  #retried (n: RetryNotice, label: string, progress: (e: DeletionProgress) => void,
    where: { method: 'POST', request: number, of: number } | { method: 'GET', id: string }): void {
    const detail = redactSecrets(n.detail, this.#opts.secretKey)
    const fields = { status: n.status, detail, delayMs: n.delayMs, attempt: n.attempt }
    const msg = `${label}: attempt ${n.attempt} failed (${detail}); retrying in ${n.delayMs} ms`
    if (n.rateLimited) this.#reporter.note('deletion_rate_limited', 'warn', fields, `${msg}: Koala asked to slow down (HTTP 429)`)
    else if (n.attempt >= 3) this.#reporter.note('deletion_retry', 'warn', fields, msg)
    else this.#reporter.debug(fields, msg)
    progress({ type: 'retry', ...where, attempt: n.attempt, delayMs: n.delayMs, status: n.status, detail })
  }

  /** Builds the error for a failed exchange, redacted, and logs it unless it was only skipped. */
  #error (label: string, ex: Failure, requestId?: string, log = true): DeletionError {
    const key = this.#opts.secretKey
    const body = ex.body === '' ? undefined : redactSecrets(ex.body, key).slice(0, 512)
    const message = redactSecrets(`${label} failed (${ex.reason}): ${ex.detail}${body !== undefined ? `: ${body.slice(0, 200)}` : ''}`, key)
    const error = new DeletionError(message, { reason: ex.reason, attempts: ex.attempts, status: ex.status, body, requestId })
    if (log && ex.reason !== 'skipped') this.#reporter.note(`deletion_failed:${ex.reason}`, 'error', { reason: ex.reason, status: ex.status, requestId }, message)
    return error
  }

  #progress (listener: ((event: DeletionProgress) => void) | undefined): (event: DeletionProgress) => void {
    if (listener === undefined) return () => {}
    return (event) => {
      try {
        listener(event)
      } catch (err) {
        this.#reporter.note('deletion_progress', 'warn', { err: redactSecrets(String(err), this.#opts.secretKey) }, 'an onProgress listener threw; the error was contained')
      }
    }
  }

  #deadline (call: DeletionCallName, timeoutMs: number | undefined, fallback: number): number {
    const ms = timeoutMs ?? fallback
    if (typeof ms !== 'number' || !(ms >= 0)) throw new InputError(call, 'timeoutMs', `must be a non-negative number of milliseconds, got ${String(ms)}`)
    return this.#clock.now() + ms
  }
}

export function createDeletionClient (options: DeletionClientOptions): DeletionClient {
  return new DeletionClient(options)
}

/** What a deletion request id must be; the CLI checks its arguments with it before sending anything. */
export const DELETION_ID_RULE = `a deletion request id (a non-empty string of at most ${MAX_ID_CHARS} characters)`
export const isDeletionId = (id: unknown): id is string => typeof id === 'string' && id.trim() !== '' && id.length <= MAX_ID_CHARS

function checkId (call: DeletionCallName, field: string, id: unknown): void {
  if (!isDeletionId(id)) throw new InputError(call, field, `must be ${DELETION_ID_RULE}, got ${typeName(id)}`)
}

function parseObject (text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text)
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v as Record<string, unknown> : undefined
  } catch {
    return undefined
  }
}

function readId (text: string): string | undefined {
  const id = parseObject(text)?.deletion_request_id
  return typeof id === 'string' && id !== '' ? id : undefined
}

function readStatus (text: string, id: string): DeletionRequestStatus | undefined {
  const body = parseObject(text)
  if (body === undefined || typeof body.status !== 'string') return undefined
  return { ...body, id: typeof body.id === 'string' ? body.id : id, status: body.status }
}

/** What a 2xx answer says, or why there is nothing to read: a failed exchange, or a body Koala does not document. */
function answer<T> (ex: Exchanged, read: (body: string) => T | undefined, expected: string): { ok: true, value: T } | Failure {
  if (!ex.ok) return ex
  const value = read(ex.body)
  if (value !== undefined) return { ok: true, value }
  return { ok: false, reason: 'bad_response', status: ex.status, body: ex.body.slice(0, 512), detail: `HTTP ${ex.status} without ${expected}`, attempts: ex.attempts, fatal: true }
}

function skipped (detail: string): Failure {
  return { ok: false, reason: 'skipped', status: undefined, body: '', detail, attempts: 0, fatal: true }
}
