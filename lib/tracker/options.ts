import type { Dispatcher } from 'undici'
import type { Clock } from '../shared/clock'
import { checkClock, checkFunction, checkInt, checkKnownKeys, checkLogger, parseBaseUrl, SHARED_INJECTION_NAMES, type NumericKeys, type SharedInjections } from '../shared/checks'
import { DEFAULT_BASE_URL, MAX_ITEMS_PER_ARRAY } from '../shared/constants'
import { ConfigError, type KoalaError } from '../shared/errors'
import type { LoggerLike } from '../shared/logger'
import { resolveFleetOptions, type FleetOptions, type ResolvedFleetOptions } from '../fleet'
import { MAX_SPOOLED_ITEM_BYTES, resolveSpoolOptions, type ResolvedSpoolOptions, type SpoolOptions } from '../spool'
import type { Transport } from '../transport'

/** Options for createTracker(). Every number carries its unit in its name. */
export interface TrackerOptions extends SharedInjections {
  /** Koala project's public key (`pk_...`, Settings → Install). Required. */
  publicKey: string
  /** Where requests go. Default: `https://api2.getkoala.com`. A path prefix (for a proxy) is kept. */
  baseUrl?: string
  /** Send a bucket as soon as any of its arrays holds this many items. Default and maximum: 30. */
  flushAt?: number
  /** Send everything buffered this long after the first unsent call. Default: 10 000 ms. */
  flushIntervalMs?: number
  /** Person (and, separately, account) buckets held at once; the least recently used is sent when full. Default: 10 000. */
  maxBuckets?: number
  /** Items held at once, from acceptance until Koala answers. Calls beyond are refused (`queue_full`). Default: 200 000. */
  maxBufferedItems?: number
  /** UTF-8 bytes of JSON held at once, counted like maxBufferedItems. Default: 64 MiB. */
  maxBufferedBytes?: number
  /** Largest single item, as UTF-8 JSON. Larger calls are refused as invalid. Default: 32 KiB. */
  maxItemBytes?: number
  /** Ceiling on requests in flight (the limit adapts below it) and on the Pool's connections. Default: 256. */
  maxConcurrentRequests?: number
  /** Deadline for one request, from send to the end of the response body. Default: 10 000 ms. */
  requestTimeoutMs?: number
  /** Attempts per batch, the first included. Default: 10. */
  maxAttempts?: number
  /** First retry wait before jitter; doubles per consecutive failure. Default: 500 ms. */
  retryBaseDelayMs?: number
  /** Cap on one retry wait. Default: 30 000 ms. */
  retryMaxDelayMs?: number
  /** A batch is given up once this long has passed since its first attempt. Default: 300 000 ms. */
  maxRetryDurationMs?: number
  /** Longest Retry-After honoured; longer values are clamped. Default: 120 000 ms. */
  maxRetryAfterMs?: number
  /** Default deadline of flush(). Default: 10 000 ms. */
  flushTimeoutMs?: number
  /** Default deadline of close(). Default: 10 000 ms. */
  closeTimeoutMs?: number
  /** How long an idle keep-alive connection is kept. Default: 4 000 ms. */
  keepAliveTimeoutMs?: number
  /** Repeated problems are logged once, then summed up at most this often. Default: 60 000 ms. */
  logSummaryIntervalMs?: number
  /** Throw from track/identify/page on invalid input or use after close, instead of refusing quietly. Default: false. */
  strict?: boolean
  /**
   * When the process is about to exit on its own (its event loop is empty), send what is buffered first, within
   * closeTimeoutMs. Whatever is still undelivered when the process exits is logged once, with its count. Default: true.
   */
  sendOnExit?: boolean
  /**
   * Keep every accepted item in a local spool until Koala has it, so a crash, a kill or an outage longer than
   * memory loses nothing (docs/durability.md). Off by default.
   */
  spool?: SpoolOptions
  /**
   * Fleet mode: every process adds its items to one Redis stream, and consumers deliver them, one person's items
   * from many processes together (docs/durability.md). Needs the ioredis package. Off by default.
   */
  redis?: FleetOptions
  /** Called with every refused call and every failed batch. Errors it throws are contained. */
  onError?: (error: KoalaError) => void
  /** For tests or custom HTTP: replaces the undici Pool entirely. */
  transport?: Transport
}

type NumericOption = NumericKeys<TrackerOptions>

/** Every default in one place. */
export const DEFAULTS = Object.freeze({
  baseUrl: DEFAULT_BASE_URL,
  flushAt: MAX_ITEMS_PER_ARRAY,
  flushIntervalMs: 10_000,
  maxBuckets: 10_000,
  // Heap per held item is in docs/benchmarks.md: 200k stays within tens of MB, and lets a burst
  // of calls ride out a network slower than the caller without refusing any.
  maxBufferedItems: 200_000,
  maxBufferedBytes: 64 * 1024 * 1024,
  maxItemBytes: 32 * 1024,
  // The limit on requests in flight adapts up to this (see lib/tracker/concurrency.ts). Koala takes one
  // person per request, so anonymous traffic is one request per visitor: by Little's law 2,000 visitors/s
  // at 100 ms need 200 in flight. Connections are opened only as the limit needs them.
  maxConcurrentRequests: 256,
  requestTimeoutMs: 10_000,
  maxAttempts: 10,
  retryBaseDelayMs: 500,
  retryMaxDelayMs: 30_000,
  maxRetryDurationMs: 300_000,
  maxRetryAfterMs: 120_000,
  flushTimeoutMs: 10_000,
  closeTimeoutMs: 10_000,
  keepAliveTimeoutMs: 4_000,
  logSummaryIntervalMs: 60_000,
  strict: false,
  sendOnExit: true
} satisfies Record<NumericOption, number> & { baseUrl: string, strict: boolean, sendOnExit: boolean })

export interface ResolvedOptions extends Readonly<Omit<Required<TrackerOptions>, 'onError' | 'logger' | 'clock' | 'transport' | 'dispatcher' | 'random' | 'spool' | 'redis'>> {
  readonly spool: ResolvedSpoolOptions | undefined
  readonly redis: ResolvedFleetOptions | undefined
  readonly onError: TrackerOptions['onError']
  readonly logger: LoggerLike | undefined
  readonly clock: Clock | undefined
  readonly transport: Transport | undefined
  readonly dispatcher: Dispatcher | undefined
  readonly random: () => number
  /** `https://host:port` of baseUrl. */
  readonly origin: string
  /** Path of the project under baseUrl: `{prefix}/web/projects/{publicKey}`. */
  readonly projectPath: string
}

export interface Resolution {
  options: ResolvedOptions
  /** Soft problems that were corrected; the tracker logs them once. */
  warnings: string[]
}

const INT_LIMITS: Record<NumericOption, [min: number, max: number]> = {
  flushAt: [1, Number.MAX_SAFE_INTEGER],
  flushIntervalMs: [1, 2 ** 31 - 1],
  maxBuckets: [1, 10_000_000],
  maxBufferedItems: [1, Number.MAX_SAFE_INTEGER],
  maxBufferedBytes: [1024, Number.MAX_SAFE_INTEGER],
  maxItemBytes: [256, Number.MAX_SAFE_INTEGER],
  maxConcurrentRequests: [1, 1024],
  requestTimeoutMs: [1, 2 ** 31 - 1],
  maxAttempts: [1, 1000],
  retryBaseDelayMs: [0, 2 ** 31 - 1],
  retryMaxDelayMs: [0, 2 ** 31 - 1],
  maxRetryDurationMs: [0, Number.MAX_SAFE_INTEGER],
  maxRetryAfterMs: [0, 2 ** 31 - 1],
  flushTimeoutMs: [0, 2 ** 31 - 1],
  closeTimeoutMs: [0, 2 ** 31 - 1],
  keepAliveTimeoutMs: [1, 2 ** 31 - 1],
  logSummaryIntervalMs: [0, 2 ** 31 - 1]
}

const TRACKER_OPTION_NAMES = Object.freeze([
  'publicKey', 'baseUrl', ...Object.keys(INT_LIMITS), 'strict', 'sendOnExit', 'spool', 'redis', 'onError', 'transport', ...SHARED_INJECTION_NAMES
])

/** Merges options over DEFAULTS and checks them. Pure: throws ConfigError, never logs. */
export function resolveOptions (input: TrackerOptions): Resolution {
  if (typeof input !== 'object' || input === null) throw new ConfigError('options', 'must be an object')
  checkKnownKeys(input, TRACKER_OPTION_NAMES)
  const warnings: string[] = []
  const { publicKey } = input
  if (typeof publicKey !== 'string' || publicKey.trim() === '') {
    throw new ConfigError('publicKey', 'is required: your Koala project public key (pk_...)')
  }
  // The public key travels in every request URL, where proxies and servers log it: a secret key must not.
  if (/^\s*sk_/i.test(publicKey)) {
    throw new ConfigError('publicKey', 'is a secret key (sk_...); the tracker takes your project\'s public key (pk_..., Settings → Install). ' +
      'The secret key is for GDPR deletion, with the deletion client (koala-tracker/deletion)')
  }
  const numbers = {} as Record<NumericOption, number>
  for (const name of Object.keys(INT_LIMITS) as NumericOption[]) {
    numbers[name] = checkInt(name, input[name] ?? DEFAULTS[name], INT_LIMITS[name])
  }
  if (numbers.flushAt > MAX_ITEMS_PER_ARRAY) {
    warnings.push(`flushAt ${numbers.flushAt} is above Koala's limit of ${MAX_ITEMS_PER_ARRAY} per array; using ${MAX_ITEMS_PER_ARRAY}`)
    numbers.flushAt = MAX_ITEMS_PER_ARRAY
  }
  if (numbers.retryMaxDelayMs < numbers.retryBaseDelayMs) {
    warnings.push(`retryMaxDelayMs ${numbers.retryMaxDelayMs} is below retryBaseDelayMs ${numbers.retryBaseDelayMs}; using ${numbers.retryBaseDelayMs}`)
    numbers.retryMaxDelayMs = numbers.retryBaseDelayMs
  }
  // A larger record would be read back as corruption after a restart, and the records behind it lost.
  if (input.spool !== undefined && numbers.maxItemBytes > MAX_SPOOLED_ITEM_BYTES) {
    warnings.push(`maxItemBytes ${numbers.maxItemBytes} is above what a spool record holds; using ${MAX_SPOOLED_ITEM_BYTES}`)
    numbers.maxItemBytes = MAX_SPOOLED_ITEM_BYTES
  }
  if (numbers.maxBufferedBytes < numbers.maxItemBytes) {
    warnings.push(`maxBufferedBytes ${numbers.maxBufferedBytes} is below maxItemBytes ${numbers.maxItemBytes}; using ${numbers.maxItemBytes}`)
    numbers.maxBufferedBytes = numbers.maxItemBytes
  }

  const baseUrl = input.baseUrl ?? DEFAULTS.baseUrl
  const url = parseBaseUrl(baseUrl)
  const prefix = url.pathname.replace(/\/+$/, '')

  for (const name of ['strict', 'sendOnExit'] as const) {
    if (input[name] !== undefined && typeof input[name] !== 'boolean') {
      throw new ConfigError(name, `must be a boolean, got ${typeof input[name]}`)
    }
  }
  checkFunction('onError', input.onError)
  checkFunction('random', input.random)
  checkClock(input.clock)
  if (input.transport !== undefined && typeof input.transport.send !== 'function') {
    throw new ConfigError('transport', 'must have a send() method')
  }
  // Unchecked, a wrong one would fail every send as a retryable error until the retries ran out.
  if (input.dispatcher !== undefined && typeof (input.dispatcher as { dispatch?: unknown } | null)?.dispatch !== 'function') {
    throw new ConfigError('dispatcher', 'must be an undici Dispatcher (a Pool, Agent or MockAgent) with a dispatch() method')
  }
  checkLogger(input.logger)

  const options: ResolvedOptions = Object.freeze({
    ...numbers,
    publicKey,
    baseUrl,
    strict: input.strict ?? DEFAULTS.strict,
    sendOnExit: input.sendOnExit ?? DEFAULTS.sendOnExit,
    spool: input.spool === undefined ? undefined : resolveSpoolOptions(input.spool),
    redis: input.redis === undefined ? undefined : resolveFleetOptions(input.redis, publicKey),
    onError: input.onError,
    logger: input.logger,
    clock: input.clock,
    transport: input.transport,
    dispatcher: input.dispatcher,
    random: input.random ?? Math.random,
    origin: url.origin,
    projectPath: `${prefix}/web/projects/${encodeURIComponent(publicKey)}`
  })
  return { options, warnings }
}
