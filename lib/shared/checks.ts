import type { Dispatcher } from 'undici'
import type { Clock } from './clock'
import { ConfigError } from './errors'
import type { LoggerLike } from './logger'
import { nearestName } from './near'

// Option checks shared by every part that takes options (tracker, deletion client, middleware, shutdown).

/** Injection points shared by the tracker and the deletion client. */
export interface SharedInjections {
  /** A pino (or pino-compatible) logger. Default: warnings and errors to stderr. */
  logger?: LoggerLike
  /** For tests: the source of time and timers. */
  clock?: Clock
  /** An undici Dispatcher (Agent, ProxyAgent, MockAgent) to send through. Never closed by koala-tracker. */
  dispatcher?: Dispatcher
  /** For tests: random numbers in [0, 1) for retry jitter. */
  random?: () => number
}

/** The option names of T whose values are numbers. */
export type NumericKeys<T> = Exclude<{
  [K in keyof T]-?: NonNullable<T[K]> extends number ? K : never
}[keyof T], undefined>

/** The injections every options object takes (SharedInjections). */
export const SHARED_INJECTION_NAMES = Object.freeze(['logger', 'clock', 'dispatcher', 'random'])

export function checkInt (name: string, value: unknown, [min, max]: [number, number]): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new ConfigError(name, `must be an integer, got ${typeof value === 'number' ? value : typeof value}`)
  }
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`)
  return value
}

/**
 * A misspelt option (`flushIntervalMS`, `servers`) would be ignored and its
 * default used without a word: refuse any name that is not an option.
 */
export function checkKnownKeys (input: object, known: readonly string[], prefix = ''): void {
  for (const key of Object.keys(input)) {
    if (known.includes(key)) continue
    const near = nearestName(key, known)
    throw new ConfigError(prefix + key, `is not an option${near === undefined ? '' : ` (did you mean ${prefix}${near}?)`}`)
  }
}

export function checkFunction (name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'function') {
    throw new ConfigError(name, `must be a function, got ${typeof value}`)
  }
}

export function checkClock (clock: Clock | undefined): void {
  if (clock !== undefined && (typeof clock.now !== 'function' || typeof clock.setTimeout !== 'function' ||
    typeof clock.clearTimeout !== 'function')) {
    throw new ConfigError('clock', 'must have now(), setTimeout() and clearTimeout()')
  }
}

export function checkLogger (logger: LoggerLike | undefined): void {
  if (logger !== undefined && (typeof logger.warn !== 'function' || typeof logger.error !== 'function' ||
    typeof logger.debug !== 'function')) {
    throw new ConfigError('logger', 'must have debug(), warn() and error() methods (a pino logger works)')
  }
}

/** An absolute http(s) URL without query or fragment; the caller decides what the path means. */
export function parseBaseUrl (baseUrl: unknown, name = 'baseUrl'): URL {
  let url: URL
  try {
    url = new URL(baseUrl as string)
  } catch {
    throw new ConfigError(name, `must be an absolute http(s) URL, got ${JSON.stringify(baseUrl)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(name, `must use http or https, got ${url.protocol}`)
  }
  if (url.search !== '' || url.hash !== '') throw new ConfigError(name, 'must not have a query or fragment')
  return url
}
