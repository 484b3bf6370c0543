import { classifyError, classifyResponse, errorCode } from '../shared/retry-policy'

/**
 * The tracker's retry rules (lib/retry-policy.ts), read for the deletion API.
 * What is retried, the backoff and Retry-After are the same. What differs is
 * what a refusal means: the ingestion API takes its key in the path, so a 401,
 * 403 or 404 there means "this project is refused"; here the key is a header
 * and a 404 on GET is just an unknown request id.
 */

export type DeletionRefusal = 'unauthorized' | 'not_found' | 'rejected' | 'bad_response'

export type DeletionOutcome =
  | { kind: 'ok', status: number }
  | { kind: 'retry', status: number | undefined, retryAfterMs: number | undefined, rateLimited: boolean, detail: string }
  /** fatal: the same failure would repeat for every other request, so the run stops. */
  | { kind: 'fail', reason: DeletionRefusal, status: number | undefined, body: string, fatal: boolean }

export function classifyDeletionResponse (method: 'GET' | 'POST', status: number, headers: Record<string, string | string[] | undefined>,
  body: string, nowMs: number): DeletionOutcome {
  const outcome = classifyResponse(status, headers, body, nowMs)
  if (outcome.kind === 'ok' || outcome.kind === 'retry') return outcome
  if (status === 401 || status === 403) return { kind: 'fail', reason: 'unauthorized', status, body, fatal: true }
  // On POST a 404 means there is no deletion endpoint at baseUrl.
  if (status === 404) return { kind: 'fail', reason: 'not_found', status, body, fatal: method === 'POST' }
  // A 4xx is about this request; a redirect, 501 or 505 is about baseUrl.
  return { kind: 'fail', reason: 'rejected', status, body, fatal: status < 400 || status >= 500 }
}

export function classifyDeletionError (error: unknown): DeletionOutcome {
  if (errorCode(error) === 'KOALA_RESPONSE_TOO_LARGE') {
    return { kind: 'fail', reason: 'bad_response', status: undefined, body: (error as Error).message, fatal: true }
  }
  const outcome = classifyError(error)
  if (outcome.kind === 'retry') return outcome
  // A request undici refuses to send would be refused every time.
  return { kind: 'fail', reason: 'rejected', status: undefined, body: outcome.kind === 'reject' ? outcome.body : '', fatal: true }
}
