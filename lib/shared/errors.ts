/** Stable codes: match on these rather than on class or message. */
export type KoalaErrorCode =
  | 'KOALA_ERR_INVALID_OPTION'
  | 'KOALA_ERR_INVALID_INPUT'
  | 'KOALA_ERR_REFUSED'
  | 'KOALA_ERR_DELIVERY'
  | 'KOALA_ERR_INGEST_DISABLED'
  | 'KOALA_ERR_DELETION'

export class KoalaError extends Error {
  readonly code: KoalaErrorCode
  constructor (message: string, code: KoalaErrorCode, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** A bad option given to createTracker(); thrown at construction. */
export class ConfigError extends KoalaError {
  readonly option: string
  constructor (option: string, reason: string, options?: { cause?: unknown }) {
    super(`${option} ${reason}`, 'KOALA_ERR_INVALID_OPTION', options)
    this.option = option
  }
}

/** A call refused because its input is invalid. `field` names the culprit. */
export class InputError extends KoalaError {
  readonly field: string
  readonly reason: string
  readonly call: CallName | DeletionCallName
  constructor (call: CallName | DeletionCallName, field: string, reason: string, options?: { cause?: unknown }) {
    super(`${call}(): ${field} ${reason}`, 'KOALA_ERR_INVALID_INPUT', options)
    this.call = call
    this.field = field
    this.reason = reason
  }
}

export type CallName = 'track' | 'identify' | 'page' | 'trackAccount' | 'identifyAccount'

/** Calls of the deletion client (koala-tracker/deletion), which is not a tracker. */
export type DeletionCallName = 'requestDeletion' | 'getStatus' | 'waitForCompletion'

export type RefusalReason = 'queue_full' | 'spool_full' | 'closed' | 'disabled' | 'unconfigured'

const REFUSAL_TEXT: Record<RefusalReason, string> = {
  queue_full: 'the buffer is full (maxBufferedItems or maxBufferedBytes reached)',
  spool_full: 'the spool is full (spool.maxBytes reached, or the disk is 64 MiB of writes behind)',
  closed: 'the tracker is closed',
  disabled: 'sending is disabled because Koala refused this project (see the earlier ingest-disabled error)',
  unconfigured: 'koala-tracker is not configured: call init({ publicKey }) at start-up or set KOALA_PUBLIC_KEY'
}

/** A valid call the tracker could not accept. */
export class RefusedError extends KoalaError {
  readonly reason: RefusalReason
  readonly call: CallName
  constructor (call: CallName, reason: RefusalReason) {
    super(`${call}(): refused: ${REFUSAL_TEXT[reason]}`, 'KOALA_ERR_REFUSED')
    this.call = call
    this.reason = reason
  }
}

/**
 * Why accepted items were not delivered. `shutdown`: never sent by the close() deadline (abandoned);
 * `unknown`: sent, but no answer came by the close() deadline, so Koala may have stored them.
 */
export type FailureReason = 'rejected' | 'retry_exhausted' | 'disabled' | 'shutdown' | 'unknown'

/** Accepted items that will never be delivered. Reported, never thrown. */
export class DeliveryError extends KoalaError {
  readonly reason: FailureReason
  readonly items: number
  readonly attempts: number
  readonly status: number | undefined
  readonly body: string | undefined
  constructor (message: string, info: { reason: FailureReason, items: number, attempts: number, status?: number, body?: string, cause?: unknown }) {
    super(message, 'KOALA_ERR_DELIVERY', { cause: info.cause })
    this.reason = info.reason
    this.items = info.items
    this.attempts = info.attempts
    this.status = info.status
    this.body = info.body
  }
}

/** Koala refused the whole project (bad key, ingest suspended). Sending stops. */
export class IngestDisabledError extends KoalaError {
  readonly status: number
  readonly body: string
  constructor (status: number, body: string) {
    super(`Koala refused this project with HTTP ${status}${body ? `: ${body}` : ''}; ` +
      'the tracker has stopped sending and refuses further calls (check publicKey and baseUrl)', 'KOALA_ERR_INGEST_DISABLED')
    this.status = status
    this.body = body
  }
}

export type DeletionFailureReason =
  /** 401 or 403: Koala refused the secret key. */
  | 'unauthorized'
  /** 404: an unknown deletion request id (GET), or no deletion endpoint at baseUrl (POST). */
  | 'not_found'
  /** Any other refusal: a 4xx, 501, 505, a redirect, or a request undici cannot send. */
  | 'rejected'
  /** Retries ran out (maxAttempts or maxRetryDurationMs). */
  | 'retry_exhausted'
  /** The call's deadline passed; a POST cut short may or may not have reached Koala. */
  | 'timeout'
  /** A 2xx answer whose body is not what Koala documents. */
  | 'bad_response'
  /** Not attempted: an earlier failure would have repeated for this request too. */
  | 'skipped'

/** A deletion request that could not be made or checked. Never carries the secret key. */
export class DeletionError extends KoalaError {
  readonly reason: DeletionFailureReason
  readonly status: number | undefined
  /** The start of Koala's answer, with anything that looks like a key redacted. */
  readonly body: string | undefined
  readonly attempts: number
  /** The deletion request id, for a status check. */
  readonly requestId: string | undefined
  constructor (message: string, info: { reason: DeletionFailureReason, attempts: number, status?: number, body?: string, requestId?: string }) {
    super(message, 'KOALA_ERR_DELETION')
    this.reason = info.reason
    this.status = info.status
    this.body = info.body
    this.attempts = info.attempts
    this.requestId = info.requestId
  }
}

export function isKoalaError (e: unknown): e is KoalaError {
  return e instanceof KoalaError ||
    (typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string' &&
      (e as { code: string }).code.startsWith('KOALA_ERR_'))
}
