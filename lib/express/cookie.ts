import { ConfigError } from '../shared/errors'
import { checkKnownKeys } from '../shared/checks'
import { person } from '../generated/validators'

/** The cookie the Koala pixel reads and writes: the visitor's profile_id. */
export const KO_ID = 'ko_id'

/** How the middleware sets `ko_id` when it mints one. Never HttpOnly: the pixel reads it from JavaScript. */
export interface CookieOptions {
  /** `.example.com` shares the cookie with every subdomain, as the pixel does. Default: none (this host only). */
  domain?: string
  /** Lifetime. Default: 365 days. Browsers cap cookies at 400 days. */
  maxAgeMs?: number
  /** Default: `lax`. `none` needs `secure: true`. */
  sameSite?: 'lax' | 'strict' | 'none'
  /** `auto` (default): Secure when the request came over HTTPS (`req.secure`, which honours Express's trust proxy). */
  secure?: boolean | 'auto'
  /** Default: `/`. */
  path?: string
}

export const COOKIE_DEFAULTS = Object.freeze({
  maxAgeMs: 365 * 24 * 60 * 60 * 1000,
  sameSite: 'lax',
  secure: 'auto',
  path: '/'
} satisfies Required<Omit<CookieOptions, 'domain'>>)

const MAX_AGE_LIMIT_MS = 400 * 24 * 60 * 60 * 1000

export interface ResolvedCookie {
  /** Everything after the value, except Secure: `; Max-Age=…; Path=/; Domain=…; SameSite=Lax`. */
  readonly attributes: string
  readonly secure: boolean | 'auto'
}

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?'
const DOMAIN = new RegExp(`^\\.?${LABEL}(?:\\.${LABEL})*$`, 'i')
/** Printable ASCII but `;` and `,` (RFC 6265's path-value): Node refuses a header above \xff, at request time. */
const PATH = /^\/[\x21-\x2b\x2d-\x3a\x3c-\x7e]*$/
const SAME_SITE = { lax: 'Lax', strict: 'Strict', none: 'None' } as const

/** Checks cookie options once, at start-up; throws a ConfigError naming the option. */
export function resolveCookieOptions (input: CookieOptions = {}): ResolvedCookie {
  if (typeof input !== 'object' || input === null) throw new ConfigError('cookie', 'must be an object')
  if (Object.hasOwn(input, 'httpOnly')) {
    throw new ConfigError('cookie.httpOnly', 'is not an option: ko_id is never HttpOnly, as the Koala pixel reads it from JavaScript')
  }
  checkKnownKeys(input, ['domain', 'maxAgeMs', 'sameSite', 'secure', 'path'], 'cookie.')
  const { domain } = input
  if (domain !== undefined && (typeof domain !== 'string' || domain.length > 253 || !DOMAIN.test(domain))) {
    throw new ConfigError('cookie.domain', `must be a host name such as .example.com, got ${JSON.stringify(domain)}`)
  }
  const maxAgeMs = input.maxAgeMs ?? COOKIE_DEFAULTS.maxAgeMs
  if (typeof maxAgeMs !== 'number' || !Number.isInteger(maxAgeMs) || maxAgeMs < 1000 || maxAgeMs > MAX_AGE_LIMIT_MS) {
    throw new ConfigError('cookie.maxAgeMs', `must be an integer between 1000 and ${MAX_AGE_LIMIT_MS} (400 days, the browsers' cap), got ${String(maxAgeMs)}`)
  }
  const sameSiteInput = input.sameSite ?? COOKIE_DEFAULTS.sameSite
  const key = typeof sameSiteInput === 'string' ? sameSiteInput.toLowerCase() : ''
  // Own keys only: 'constructor' is a key of every object.
  const sameSite = Object.hasOwn(SAME_SITE, key) ? SAME_SITE[key as keyof typeof SAME_SITE] : undefined
  if (sameSite === undefined) throw new ConfigError('cookie.sameSite', `must be 'lax', 'strict' or 'none', got ${JSON.stringify(sameSiteInput)}`)
  const secure = input.secure ?? COOKIE_DEFAULTS.secure
  if (secure !== true && secure !== false && secure !== 'auto') {
    throw new ConfigError('cookie.secure', `must be true, false or 'auto', got ${JSON.stringify(secure)}`)
  }
  if (sameSite === 'None' && secure !== true) {
    throw new ConfigError('cookie.sameSite', "'none' needs secure: true (browsers drop SameSite=None cookies without Secure)")
  }
  const path = input.path ?? COOKIE_DEFAULTS.path
  if (typeof path !== 'string' || !PATH.test(path)) throw new ConfigError('cookie.path', `must start with / and hold only printable ASCII, without spaces, ; or , — got ${JSON.stringify(path)}`)
  const attributes = `; Max-Age=${Math.floor(maxAgeMs / 1000)}; Path=${path}` + (domain === undefined ? '' : `; Domain=${domain}`) + `; SameSite=${sameSite}`
  return { attributes, secure }
}

/**
 * A profile_id the schema accepts (the same validator as track() uses), but not
 * the nil or max UUID, which would merge strangers.
 */
export function isValidKoId (value: string): boolean {
  return person({ profile_id: value }) && !/^[0-]+$/.test(value) && !/^[f-]+$/i.test(value)
}

/**
 * The visitor's ko_id from a Cookie header: the first `ko_id` whose value is a
 * valid UUID (a browser may send two, from different domains or paths).
 * Anything else (missing, empty, too long, script, quotes around garbage) is
 * undefined, so a hostile value is never sent to Koala.
 */
export function readKoId (header: string | string[] | undefined): string | undefined {
  if (typeof header !== 'string') return undefined
  // Jump from one `ko_id` to the next instead of splitting the whole header: most requests carry other cookies.
  for (let at = header.indexOf(KO_ID); at !== -1; at = header.indexOf(KO_ID, at + KO_ID.length)) {
    let start = at + KO_ID.length
    while (header.charCodeAt(start) === 32) start++
    if (header.charCodeAt(start) !== 61 /* = */ || !startsName(header, at)) continue
    let end = header.indexOf(';', start)
    if (end === -1) end = header.length
    let value = header.slice(start + 1, end).trim()
    if (value.length === 38 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1)
    if (isValidKoId(value)) return value
  }
  return undefined
}

/** Whether the name found at `at` is a whole cookie name: only spaces between it and the previous `;`. */
function startsName (header: string, at: number): boolean {
  let i = at - 1
  while (i >= 0 && header.charCodeAt(i) === 32) i--
  return i < 0 || header.charCodeAt(i) === 59 /* ; */
}

/** The Set-Cookie value for a ko_id. Never HttpOnly. */
export function serializeKoId (value: string, cookie: ResolvedCookie, secure: boolean): string {
  return `${KO_ID}=${value}${cookie.attributes}${secure ? '; Secure' : ''}`
}
