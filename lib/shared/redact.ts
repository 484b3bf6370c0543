/**
 * The secret key must never reach a log line, an error message or an error
 * property. Every text the deletion client passes on from outside (undici
 * error messages, Koala's answers, which a proxy may echo headers into) goes
 * through here first.
 */

export const REDACTED = '[redacted]'

// Any sk_ token, also one cut short or percent-encoded (`Bearer%20sk_...`), but not the placeholder `sk_...`.
const KEY_LIKE = /(?:(?<![A-Za-z0-9])|(?<=%[0-9A-Fa-f]{2}))sk_[A-Za-z0-9][^\s"'<>,;&\\]*/g
const BEARER = /(bearer(?:\s|%20|\+)+)(?!\[redacted\])[^\s"',;&<>]+/gi
/** The shortest start of the key that is redacted at the end of a text cut short. */
const MIN_CUT_KEY = 4

export function redactSecrets (text: string, secret?: string): string {
  let out = text
  if (secret !== undefined && secret !== '') {
    // The key as sent, and as a proxy may echo it inside a URL or a form.
    const forms = [...new Set([secret, encodeURIComponent(secret)])]
    for (const form of forms) out = out.split(form).join(`sk_${REDACTED}`)
    out = cutShortKey(out, forms)
  }
  return out.replace(BEARER, `$1${REDACTED}`).replace(KEY_LIKE, `sk_${REDACTED}`)
}

/** A text cut short may end with the start of the key, glued to what came before it. */
function cutShortKey (text: string, forms: string[]): string {
  for (const form of forms) {
    for (let n = Math.min(form.length - 1, text.length); n >= MIN_CUT_KEY; n--) {
      if (text.endsWith(form.slice(0, n))) return text.slice(0, text.length - n) + `sk_${REDACTED}`
    }
  }
  return text
}
