/**
 * The secret key must never reach a log line, an error message or an error
 * property. Every text the deletion client passes on from outside (undici
 * error messages, Koala's answers, which a proxy may echo headers into) goes
 * through here first.
 */

export const REDACTED = '[redacted]'

// Any sk_ token, also one cut short where a body was truncated (but not the placeholder `sk_...`).
const KEY_LIKE = /(?<![A-Za-z0-9])sk_[A-Za-z0-9][A-Za-z0-9._~+/=-]*/g
const BEARER = /(bearer\s+)(?!\[redacted\])[^\s"',;]+/gi

export function redactSecrets (text: string, secret?: string): string {
  const exact = secret !== undefined && secret !== '' ? text.split(secret).join(`sk_${REDACTED}`) : text
  return exact.replace(BEARER, `$1${REDACTED}`).replace(KEY_LIKE, `sk_${REDACTED}`)
}
