// Entry point `koala-tracker/deletion`: Koala's GDPR deletion API. Kept apart
// from the tracker, which only ever holds the public key.
export { DeletionClient, createDeletionClient, DELETION_ID_RULE, isDeletionId } from './client'
export type { DeletionCallOptions, DeletionProgress, DeletionRequestStatus, SubmitResult, WaitResult } from './client'
export { DELETION_DEFAULTS } from './options'
export type { DeletionClientOptions } from './options'
export { planDeletion } from './plan'
export type { DeletionPlan, InvalidEmail } from './plan'
export { parseEmailList } from './email-list'
export type { EmailList } from './email-list'
export type { DeletionTransport, DeletionHttpRequest, DeletionHttpResponse } from './http'
export { ConfigError, DeletionError, InputError, KoalaError, isKoalaError } from '../shared/errors'
export type { DeletionFailureReason, KoalaErrorCode } from '../shared/errors'
export { MAX_EMAILS_PER_DELETION_REQUEST } from '../shared/constants'
