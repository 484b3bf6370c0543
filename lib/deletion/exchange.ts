import type { Clock } from '../shared/clock'
import type { DeletionTransport } from './http'
import type { ResolvedDeletionOptions } from './options'
import { classifyDeletionError, classifyDeletionResponse, type DeletionOutcome, type DeletionRefusal } from './policy'
import type { DeletionFailureReason } from '../shared/errors'
import { plural } from '../shared/plural'
import { retryBudgetSpent, retryDelayMs } from '../shared/retry-policy'

export interface RetryNotice {
  attempt: number
  delayMs: number
  status: number | undefined
  detail: string
  rateLimited: boolean
}

export interface Failure { ok: false, reason: DeletionFailureReason, status: number | undefined, body: string, detail: string, attempts: number, fatal: boolean }

export type Exchanged = { ok: true, status: number, body: string, attempts: number } | Failure

export interface ExchangeDeps {
  opts: ResolvedDeletionOptions
  clock: Clock
  transport: () => DeletionTransport
  headers: Readonly<Record<string, string>>
}

const FAIL_DETAIL: Record<DeletionRefusal, string> = {
  unauthorized: 'Koala refused the secret key',
  not_found: 'Koala knows no deletion request with this id',
  rejected: 'Koala rejected the request',
  bad_response: 'the answer could not be read'
}

/**
 * One HTTP exchange with the tracker's retry rules: a deadline per attempt,
 * backoff with jitter or Retry-After, maxAttempts and maxRetryDurationMs, and
 * an overall deadline (deadlineAt) that no attempt or wait runs past.
 * Resolves, never rejects. Texts here may hold what a server echoed: the
 * caller redacts them.
 */
export async function exchange (d: ExchangeDeps, method: 'GET' | 'POST', path: string, body: string | undefined, deadlineAt: number,
  onRetry: (notice: RetryNotice) => void): Promise<Exchanged> {
  const { clock, opts } = d
  const firstAttemptAt = clock.now()
  let attempts = 0
  let last = ''
  for (;;) {
    const remainingMs = deadlineAt - clock.now()
    if (remainingMs <= 0) {
      return { ok: false, reason: 'timeout', status: undefined, body: '', detail: `the deadline passed${last === '' ? '' : ` (last: ${last})`}`, attempts, fatal: true }
    }
    attempts++
    const attemptMs = Math.min(opts.requestTimeoutMs, remainingMs)
    const ac = new AbortController()
    let timedOut = false
    // keepAlive: the caller is awaiting this, as with the tracker's flush().
    const timer = clock.setTimeout(() => { timedOut = true; ac.abort() }, attemptMs, true)
    let outcome: DeletionOutcome
    let text = ''
    try {
      const res = await d.transport().request({ method, path, headers: d.headers, body, signal: ac.signal })
      text = res.body
      outcome = classifyDeletionResponse(method, res.status, res.headers, res.body, clock.now())
    } catch (err) {
      outcome = timedOut
        ? { kind: 'retry', status: undefined, retryAfterMs: undefined, rateLimited: false, detail: `no answer within ${attemptMs} ms` }
        : classifyDeletionError(err)
    } finally {
      clock.clearTimeout(timer)
    }
    if (outcome.kind === 'ok') return { ok: true, status: outcome.status, body: text, attempts }
    if (outcome.kind === 'fail') {
      const status = outcome.status === undefined ? '' : ` (HTTP ${outcome.status})`
      const what = outcome.reason === 'not_found' && method === 'POST' ? 'no deletion API at this baseUrl' : FAIL_DETAIL[outcome.reason]
      return { ok: false, reason: outcome.reason, status: outcome.status, body: outcome.body, detail: what + status, attempts, fatal: outcome.fatal }
    }
    last = outcome.detail
    const now = clock.now()
    if (timedOut && now >= deadlineAt) {
      return { ok: false, reason: 'timeout', status: undefined, body: '', detail: `the deadline passed during attempt ${attempts}`, attempts, fatal: true }
    }
    const delayMs = retryDelayMs(attempts, outcome.retryAfterMs, opts, opts.random)
    if (retryBudgetSpent(attempts, firstAttemptAt, now, delayMs, opts)) {
      return { ok: false, reason: 'retry_exhausted', status: outcome.status, body: '', detail: `gave up after ${plural(attempts, 'attempt')}; last: ${last}`, attempts, fatal: true }
    }
    if (now + delayMs >= deadlineAt) {
      return { ok: false, reason: 'timeout', status: outcome.status, body: '', detail: `the deadline passes before the next attempt (last: ${last})`, attempts, fatal: true }
    }
    onRetry({ attempt: attempts, delayMs, status: outcome.status, detail: last, rateLimited: outcome.rateLimited })
    await new Promise<void>(resolve => { clock.setTimeout(resolve, delayMs, true) })
  }
}
