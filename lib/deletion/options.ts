import type { Dispatcher } from 'undici'
import type { Clock } from '../shared/clock'
import { DEFAULT_DELETION_BASE_URL, DELETION_REQUESTS_PATH } from '../shared/constants'
import type { DeletionTransport } from './http'
import { ConfigError } from '../shared/errors'
import type { LoggerLike } from '../shared/logger'
import { checkClock, checkFunction, checkInt, checkKnownKeys, checkLogger, parseBaseUrl, SHARED_INJECTION_NAMES, type NumericKeys, type SharedInjections } from '../shared/checks'

/** Options for createDeletionClient(). Every number carries its unit in its name. */
export interface DeletionClientOptions extends SharedInjections {
  /** A secret key (`sk_...`, Settings → API Keys). Required. Never logged, never put in an error. */
  secretKey: string
  /** Where requests go. Default: `https://app.getkoala.com`. `http://` only for localhost, 127.0.0.1 and ::1. */
  baseUrl?: string
  /** Deadline for one attempt, from send to the end of the answer. Default: 30 000 ms. */
  requestTimeoutMs?: number
  /** Attempts per request, the first included. Default: 5. */
  maxAttempts?: number
  /** First retry wait before jitter; doubles per consecutive failure. Default: 1 000 ms. */
  retryBaseDelayMs?: number
  /** Cap on one retry wait. Default: 30 000 ms. */
  retryMaxDelayMs?: number
  /** A request is given up once this long has passed since its first attempt. Default: 120 000 ms. */
  maxRetryDurationMs?: number
  /** Longest Retry-After honoured; longer values are clamped. Default: 120 000 ms. */
  maxRetryAfterMs?: number
  /** Time between two status checks of the same request in waitForCompletion(). Default: 5 000 ms. */
  pollIntervalMs?: number
  /** Default deadline of requestDeletion(). Default: 600 000 ms. */
  submitTimeoutMs?: number
  /** Default deadline of waitForCompletion() and getStatus(). Default: 600 000 ms. */
  waitTimeoutMs?: number
  /** For tests or custom HTTP: replaces the undici Pool entirely (it receives the Authorization header). */
  transport?: DeletionTransport
}

type NumericOption = NumericKeys<DeletionClientOptions>

/** Every default of the deletion client in one place. */
export const DELETION_DEFAULTS = Object.freeze({
  baseUrl: DEFAULT_DELETION_BASE_URL,
  requestTimeoutMs: 30_000,
  maxAttempts: 5,
  retryBaseDelayMs: 1_000,
  retryMaxDelayMs: 30_000,
  maxRetryDurationMs: 120_000,
  maxRetryAfterMs: 120_000,
  pollIntervalMs: 5_000,
  submitTimeoutMs: 600_000,
  waitTimeoutMs: 600_000
} satisfies Record<NumericOption, number> & { baseUrl: string })

const MAX_TIMER_MS = 2 ** 31 - 1
const INT_LIMITS: Record<NumericOption, [min: number, max: number]> = {
  requestTimeoutMs: [1, MAX_TIMER_MS],
  maxAttempts: [1, 1000],
  retryBaseDelayMs: [0, MAX_TIMER_MS],
  retryMaxDelayMs: [0, MAX_TIMER_MS],
  maxRetryDurationMs: [0, Number.MAX_SAFE_INTEGER],
  maxRetryAfterMs: [0, MAX_TIMER_MS],
  pollIntervalMs: [1, MAX_TIMER_MS],
  submitTimeoutMs: [0, Number.MAX_SAFE_INTEGER],
  waitTimeoutMs: [0, Number.MAX_SAFE_INTEGER]
}

export interface ResolvedDeletionOptions extends Readonly<Record<NumericOption, number>> {
  readonly secretKey: string
  readonly logger: LoggerLike | undefined
  readonly clock: Clock | undefined
  readonly transport: DeletionTransport | undefined
  readonly dispatcher: Dispatcher | undefined
  readonly random: () => number
  /** `https://host:port` of baseUrl. */
  readonly origin: string
  /** `{prefix}/api/v1/deletion-requests`. */
  readonly requestsPath: string
}

// The loopback names a URL can carry; anything else must use https.
const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]'])

/** Header-safe printable ASCII after the prefix. */
const SECRET_KEY = /^sk_[\x21-\x7e]+$/

/**
 * Checks the secret key without ever echoing it: a ConfigError message or
 * property must not carry a secret, even a malformed one.
 */
export function checkSecretKey (value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new ConfigError('secretKey', 'is required: a Koala secret key (sk_..., Settings → API Keys)')
  }
  // A trailing newline is what `echo key > file` leaves behind.
  const key = value.trim()
  if (key.startsWith('pk_')) {
    throw new ConfigError('secretKey', 'must be a secret key (sk_...), not the public project key (pk_...)')
  }
  if (!SECRET_KEY.test(key)) {
    throw new ConfigError('secretKey', 'does not look like a Koala secret key: expected sk_ followed by printable ASCII without spaces')
  }
  return key
}

const DELETION_OPTION_NAMES = Object.freeze(['secretKey', 'baseUrl', ...Object.keys(INT_LIMITS), 'transport', ...SHARED_INJECTION_NAMES])

/** Merges options over DELETION_DEFAULTS and checks them. Pure: throws ConfigError, never logs. */
export function resolveDeletionOptions (input: DeletionClientOptions): ResolvedDeletionOptions {
  if (typeof input !== 'object' || input === null) throw new ConfigError('options', 'must be an object')
  checkKnownKeys(input, DELETION_OPTION_NAMES)
  const secretKey = checkSecretKey(input.secretKey)
  const numbers = {} as Record<NumericOption, number>
  for (const name of Object.keys(INT_LIMITS) as NumericOption[]) {
    numbers[name] = checkInt(name, input[name] ?? DELETION_DEFAULTS[name], INT_LIMITS[name])
  }
  numbers.retryMaxDelayMs = Math.max(numbers.retryMaxDelayMs, numbers.retryBaseDelayMs)

  const url = parseBaseUrl(input.baseUrl ?? DELETION_DEFAULTS.baseUrl)
  if (url.protocol === 'http:' && !LOCAL_HOSTS.has(url.hostname)) {
    throw new ConfigError('baseUrl', `must use https: over http:// the secret key would cross the network in clear text to ${url.host} ` +
      '(http:// is allowed only for localhost, 127.0.0.1 and [::1])')
  }
  if (url.username !== '' || url.password !== '') throw new ConfigError('baseUrl', 'must not contain credentials')

  checkFunction('random', input.random)
  checkClock(input.clock)
  checkLogger(input.logger)
  if (input.transport !== undefined && typeof input.transport.request !== 'function') {
    throw new ConfigError('transport', 'must have a request() method')
  }

  return Object.freeze({
    ...numbers,
    secretKey,
    logger: input.logger,
    clock: input.clock,
    transport: input.transport,
    dispatcher: input.dispatcher,
    random: input.random ?? Math.random,
    origin: url.origin,
    requestsPath: url.pathname.replace(/\/+$/, '') + DELETION_REQUESTS_PATH
  })
}
