import type { Clock } from './clock'
import { plural } from './plural'

/** What the tracker needs from a logger; any pino logger fits. */
export interface LoggerLike {
  debug(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
  child?(bindings: Record<string, unknown>): LoggerLike
  isLevelEnabled?(level: string): boolean
}

/**
 * Warnings and errors to stderr through pino. pino is loaded on the first
 * warning, not at import: most processes never log, and loading it is most of a cold start.
 */
export function createDefaultLogger (): LoggerLike {
  let real: LoggerLike | undefined
  const get = (): LoggerLike => {
    if (real === undefined) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const pino = require('pino') as typeof import('pino')
      real = pino({ name: 'koala-tracker', level: 'warn' }, pino.destination({ dest: 2, sync: true })) as unknown as LoggerLike
    }
    return real
  }
  return {
    debug: () => {},
    warn: (obj, msg) => get().warn(obj, msg),
    error: (obj, msg) => get().error(obj, msg),
    isLevelEnabled: (level) => level === 'warn' || level === 'error' || level === 'fatal'
  }
}

export function childLogger (logger: LoggerLike): LoggerLike {
  return typeof logger.child === 'function' ? logger.child({ component: 'koala-tracker' }) : logger
}

interface Tally { kind: string, lastLoggedAt: number, suppressed: number, level: 'warn' | 'error', msg: string }

/**
 * Problems told apart within one kind. A reason may carry the caller's text (a getter's error), so
 * past this many the rest share one tally: the log and the memory stay bounded.
 */
const MAX_PROBLEMS_PER_KIND = 16
const FURTHER_PROBLEMS = 'further problems of this kind, summed up together'
const FURTHER_KEY = '\nfurther'

/**
 * Logs the first occurrence of each problem at once, then sums later ones up:
 * a line with the count at most once per interval, and the rest at close.
 * A broken endpoint or a bad caller therefore costs a handful of lines, not one per event.
 * A problem is its kind and, when the fields give one, its `reason`: a summary repeats the
 * message of the first occurrence, so two problems of one kind (a BigInt and a cycle, both
 * in `properties`) are summed up apart, each under its own message.
 */
export class Reporter {
  readonly #logger: LoggerLike
  readonly #clock: Clock
  readonly #intervalMs: number
  readonly #tallies = new Map<string, Tally>()
  readonly #problemsPerKind = new Map<string, number>()

  constructor (logger: LoggerLike, clock: Clock, intervalMs: number) {
    this.#logger = logger
    this.#clock = clock
    this.#intervalMs = intervalMs
  }

  get logger (): LoggerLike { return this.#logger }

  note (kind: string, level: 'warn' | 'error', fields: Record<string, unknown>, msg: string): void {
    const now = this.#clock.now()
    const key = this.#problemKey(kind, fields.reason)
    const tally = this.#tallies.get(key)
    if (tally === undefined) {
      this.#tallies.set(key, { kind, lastLoggedAt: now, suppressed: 0, level, msg: key.endsWith(FURTHER_KEY) ? FURTHER_PROBLEMS : msg })
      this.#log(level, { ...fields, kind }, msg)
      return
    }
    if (now - tally.lastLoggedAt >= this.#intervalMs) {
      const repeated = tally.suppressed + 1
      tally.lastLoggedAt = now
      tally.suppressed = 0
      this.#log(level, { ...fields, kind, repeated }, `${tally.msg} (${plural(repeated, 'time')} since the last report)`)
    } else {
      tally.suppressed++
    }
  }

  /** Numbers are masked: "40123 bytes" and "40124 bytes" are one problem. */
  #problemKey (kind: string, reason: unknown): string {
    if (typeof reason !== 'string') return kind
    const key = `${kind}\nreason:${reason.replace(/\d+/g, '#')}`
    if (this.#tallies.has(key)) return key
    const problems = this.#problemsPerKind.get(kind) ?? 0
    if (problems >= MAX_PROBLEMS_PER_KIND) return `${kind}${FURTHER_KEY}`
    this.#problemsPerKind.set(kind, problems + 1)
    return key
  }

  /** Routine detail, only when the logger is at debug level. */
  debug (fields: Record<string, unknown>, msg: string): void {
    const enabled = this.#logger.isLevelEnabled
    if (enabled !== undefined && !enabled.call(this.#logger, 'debug')) return
    try {
      this.#logger.debug(fields, msg)
    } catch {
      // See #log.
    }
  }

  /** Logs what is still counted but unlogged; used at close. */
  flushSummaries (): void {
    for (const tally of this.#tallies.values()) {
      if (tally.suppressed > 0) {
        this.#log(tally.level, { kind: tally.kind, repeated: tally.suppressed }, `${tally.msg} (${plural(tally.suppressed, 'more time', 'more times')} since the last report)`)
        tally.suppressed = 0
      }
    }
  }

  #log (level: 'warn' | 'error', fields: Record<string, unknown>, msg: string): void {
    try {
      this.#logger[level](fields, msg)
    } catch {
      // A broken logger must not break the host: there is nowhere left to report it.
    }
  }
}
