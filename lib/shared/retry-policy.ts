/**
 * Pure delivery decisions: what a response or an error means, how long to
 * wait, when to give up. No I/O and no clock of its own, so each rule is a
 * table row in __tests__/retry-policy.test.ts.
 */

export type Outcome =
  /** 2xx: Koala accepted the batch. */
  | { kind: 'ok', status: number }
  /** Worth another attempt; rateLimited marks a 429. */
  | { kind: 'retry', status: number | undefined, retryAfterMs: number | undefined, rateLimited: boolean, detail: string }
  /** This batch will never be accepted; drop it, keep the rest going. */
  | { kind: 'reject', status: number, body: string }
  /** Koala refuses the whole project: stop sending altogether. */
  | { kind: 'disable', status: number, body: string }

/**
 * How Koala says it takes no more data for the whole project: this exact `error` in a JSON body, with
 * this status (observed: see docs/delivery.md). Nothing looser: a 400 may quote the caller's input
 * (an event named "Ingest Suspended"), and one bad event must not stop a project for good.
 */
const PROJECT_REFUSALS: ReadonlyArray<{ status: number, error: string }> = [
  { status: 400, error: 'Koala ingest suspended' }
]

function isProjectRefusal (status: number, body: string): boolean {
  const refusals = PROJECT_REFUSALS.filter(r => r.status === status)
  if (refusals.length === 0) return false
  const error = jsonErrorField(body)
  return refusals.some(r => r.error === error)
}

function jsonErrorField (body: string): unknown {
  try {
    return (JSON.parse(body) as { error?: unknown } | null)?.error
  } catch {
    return undefined
  }
}

export function classifyResponse (status: number, headers: Record<string, string | string[] | undefined>, body: string, nowMs: number): Outcome {
  if (status >= 200 && status < 300) return { kind: 'ok', status }
  if (status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505)) {
    return {
      kind: 'retry',
      status,
      retryAfterMs: parseRetryAfter(headers['retry-after'], nowMs),
      rateLimited: status === 429,
      detail: `HTTP ${status}`
    }
  }
  // The key is in the path, so these mean the project itself is refused.
  if (status === 401 || status === 403 || status === 404) return { kind: 'disable', status, body }
  if (isProjectRefusal(status, body)) return { kind: 'disable', status, body }
  // Other 4xx, 501/505, and 1xx/3xx (redirects are not followed: baseUrl is wrong).
  return { kind: 'reject', status, body }
}

// Errors that no retry can fix: the request itself is malformed.
const PERMANENT_ERROR_CODES = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED', 'ERR_INVALID_URL', 'ERR_INVALID_ARG_TYPE'])

/** Network errors, resets, deadlines and cut-short bodies are retried; undici's retry handler would not retry a POST. */
export function classifyError (error: unknown): Outcome {
  const code = errorCode(error)
  if (code !== undefined && PERMANENT_ERROR_CODES.has(code)) {
    return { kind: 'reject', status: 0, body: describeError(error) }
  }
  return { kind: 'retry', status: undefined, retryAfterMs: undefined, rateLimited: false, detail: describeError(error) }
}

export function errorCode (error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

export function describeError (error: unknown): string {
  if (error instanceof Error) {
    const code = errorCode(error)
    return code !== undefined ? `${code}: ${error.message}` : error.message
  }
  return String(error)
}

const DAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)'
const MONTH = '(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)'
const TIME = '\\d{2}:\\d{2}:\\d{2}'
/** RFC 9110's three HTTP-date forms: IMF-fixdate, RFC 850 and asctime (the last in UTC, without saying so). */
const IMF_FIXDATE = new RegExp(`^${DAY}, \\d{2} ${MONTH} \\d{4} ${TIME} GMT$`)
const RFC_850 = new RegExp(`^(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day, \\d{2}-${MONTH}-\\d{2} ${TIME} GMT$`)
const ASCTIME = new RegExp(`^${DAY} ${MONTH} [ \\d]\\d ${TIME} \\d{4}$`)

/**
 * Retry-After as delta-seconds or an HTTP date, in ms from now; undefined when
 * absent or not one of those forms. Date.parse alone would read "-1" or "1,2"
 * as dates in 2001, that is, as "retry now".
 */
export function parseRetryAfter (value: string | string[] | undefined, nowMs: number): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value
  if (raw === undefined) return undefined
  const text = raw.trim()
  if (/^\d+(?:\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000)
  let at = Number.NaN
  if (IMF_FIXDATE.test(text) || RFC_850.test(text)) at = Date.parse(text)
  else if (ASCTIME.test(text)) at = Date.parse(`${text} GMT`)
  if (Number.isNaN(at)) return undefined
  return Math.max(0, at - nowMs)
}

export interface BackoffOptions {
  retryBaseDelayMs: number
  retryMaxDelayMs: number
  maxRetryAfterMs: number
}

/**
 * Wait before the next attempt after `failures` consecutive failures:
 * exponential, capped, with "equal jitter" (half fixed, half random) so
 * many trackers that failed together do not retry together. A Retry-After,
 * when given, lengthens the wait (clamped to maxRetryAfterMs) but never
 * shortens it: `Retry-After: 0`, or a date already past, on every answer
 * would otherwise spend every attempt in a few milliseconds and drop the batch.
 */
export function retryDelayMs (failures: number, retryAfterMs: number | undefined, opts: BackoffOptions, random: () => number): number {
  const exp = Math.min(opts.retryMaxDelayMs, opts.retryBaseDelayMs * 2 ** Math.min(Math.max(failures - 1, 0), 30))
  const backoff = Math.round(exp / 2 + random() * (exp / 2))
  if (retryAfterMs === undefined) return backoff
  return Math.max(backoff, Math.min(Math.max(0, retryAfterMs), opts.maxRetryAfterMs))
}

export interface BudgetOptions {
  maxAttempts: number
  maxRetryDurationMs: number
}

/** Whether a batch that just failed its attempt should be given up rather than retried after delayMs. */
export function retryBudgetSpent (attempts: number, firstAttemptAt: number, nowMs: number, delayMs: number, opts: BudgetOptions): boolean {
  return attempts >= opts.maxAttempts || nowMs + delayMs - firstAttemptAt > opts.maxRetryDurationMs
}
