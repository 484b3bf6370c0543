/** Koala's cap on each of events, identifies and page_views in one request. */
export const MAX_ITEMS_PER_ARRAY = 30

export const DEFAULT_BASE_URL = 'https://api2.getkoala.com'

/** Paths under `{baseUrl}/web/projects/{publicKey}`. */
export const PROFILE_BATCH_PATH = '/batch'
export const ACCOUNT_BATCH_PATH = '/accounts/batch'

/** How much of an error response body is kept for reports. */
export const MAX_ERROR_BODY_CHARS = 512
