import type { Clock } from './clock'

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
 * warning, not at import: most processes never log and keep ~25 ms of start-up.
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

interface Tally { lastLoggedAt: number, suppressed: number, level: 'warn' | 'error', msg: string }

/**
 * Logs the first occurrence of each kind of problem at once, then sums later
 * ones up: a line with the count at most once per interval, and the rest at close.
 * A broken endpoint or a bad caller therefore costs a handful of lines, not one per event.
 */
export class Reporter {
  readonly #logger: LoggerLike
  readonly #clock: Clock
  readonly #intervalMs: number
  readonly #tallies = new Map<string, Tally>()

  constructor (logger: LoggerLike, clock: Clock, intervalMs: number) {
    this.#logger = logger
    this.#clock = clock
    this.#intervalMs = intervalMs
  }

  get logger (): LoggerLike { return this.#logger }

  note (kind: string, level: 'warn' | 'error', fields: Record<string, unknown>, msg: string): void {
    const now = this.#clock.now()
    const tally = this.#tallies.get(kind)
    if (tally === undefined) {
      this.#tallies.set(kind, { lastLoggedAt: now, suppressed: 0, level, msg })
      this.#log(level, { ...fields, kind }, msg)
      return
    }
    if (now - tally.lastLoggedAt >= this.#intervalMs) {
      const repeated = tally.suppressed + 1
      tally.lastLoggedAt = now
      tally.suppressed = 0
      this.#log(level, { ...fields, kind, repeated }, `${msg} (${repeated} times since the last report)`)
    } else {
      tally.suppressed++
    }
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
    for (const [kind, tally] of this.#tallies) {
      if (tally.suppressed > 0) {
        this.#log(tally.level, { kind, repeated: tally.suppressed }, `${tally.msg} (${tally.suppressed} more times since the last report)`)
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
