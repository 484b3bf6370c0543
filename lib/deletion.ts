// Entry point `koala-tracker/deletion`: Koala's GDPR deletion API. Kept apart
// from the tracker, which only ever holds the public key.
export { DeletionClient, createDeletionClient } from './deletion-client'
export type { DeletionCallOptions, DeletionProgress, DeletionRequestStatus, SubmitResult, WaitResult } from './deletion-client'
export { DELETION_DEFAULTS } from './deletion-options'
export type { DeletionClientOptions } from './deletion-options'
export { planDeletion } from './deletion-plan'
export type { DeletionPlan, InvalidEmail } from './deletion-plan'
export { parseEmailList } from './email-list'
export type { EmailList } from './email-list'
export type { DeletionTransport, DeletionHttpRequest, DeletionHttpResponse } from './deletion-http'
export { ConfigError, DeletionError, InputError, KoalaError, isKoalaError } from './errors'
export type { DeletionFailureReason, KoalaErrorCode } from './errors'
export { MAX_EMAILS_PER_DELETION_REQUEST } from './constants'
