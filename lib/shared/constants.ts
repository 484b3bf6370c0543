/** Koala's cap on each of events, identifies and page_views in one request. */
export const MAX_ITEMS_PER_ARRAY = 30

export const DEFAULT_BASE_URL = 'https://api2.getkoala.com'

/** Paths under `{baseUrl}/web/projects/{publicKey}`. */
export const PROFILE_BATCH_PATH = '/batch'
export const ACCOUNT_BATCH_PATH = '/accounts/batch'

/** How much of an error response body is kept for reports. */
export const MAX_ERROR_BODY_CHARS = 512

/** GDPR deletion API: a separate host, authenticated with the secret key. */
export const DEFAULT_DELETION_BASE_URL = 'https://app.getkoala.com'
export const DELETION_REQUESTS_PATH = '/api/v1/deletion-requests'

/** Koala reads the first 50 emails of a deletion request and silently ignores the rest. */
export const MAX_EMAILS_PER_DELETION_REQUEST = 50
