// Kept in step with package.json by a test; read at build time, not from disk at run time.
export const VERSION = '0.1.0'
export const USER_AGENT = `koala-tracker/${VERSION}`
