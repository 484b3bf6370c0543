import { constants as osConstants } from 'node:os'
import { systemClock, type Clock } from '../shared/clock'
import { ServerDrain, type DrainableServer, type DrainResult } from './drain'
import { ConfigError } from '../shared/errors'
import { childLogger, createDefaultLogger, Reporter, type LoggerLike } from '../shared/logger'
import { checkClock, checkKnownKeys, checkLogger } from '../shared/checks'
import { DEFAULTS } from '../tracker'
import { configuredTracker } from '../singleton'
import type { CloseResult, DeadlineOptions } from '../tracker'

/** Where signals come from and go: `process`, or a stand-in in tests. */
export interface SignalSource {
  readonly pid: number
  on(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown
  removeListener(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown
  kill(pid: number, signal: NodeJS.Signals): unknown
  /** Listeners the app has of its own for a signal (process has it); without it, none are assumed. */
  listenerCount?(signal: NodeJS.Signals): number
}

/**
 * How long the process is held for the raised signal to reach the app's own
 * listeners: it arrives on the next turn of the event loop, this is a bound.
 */
const RAISE_HOLD_MS = 5_000

/** Anything with the tracker's close(): a Tracker, or the singleton `koala`. */
export interface Closable {
  close(options?: DeadlineOptions): Promise<CloseResult>
}

export interface ShutdownOptions {
  /** Servers to drain: they stop accepting connections and their requests in flight finish first. */
  server?: DrainableServer | DrainableServer[]
  /** Trackers to close after the servers are drained. The singleton, once configured, is always closed too. */
  tracker?: Closable | Closable[]
  /** Default: SIGTERM and SIGINT. */
  signals?: NodeJS.Signals[]
  /** How long requests in flight get to finish before their connections are cut. Default: 10 000 ms. */
  drainTimeoutMs?: number
  /** Deadline of each tracker's close(). Default: the tracker's own closeTimeoutMs. */
  trackerTimeoutMs?: number
  /** What ends the process after a signal. Default: remove the hook's listeners and raise the same signal again. */
  exit?: (signal: NodeJS.Signals) => void
  /** For tests: the signal source. Default: `process`. */
  process?: SignalSource
  /** For tests: the source of time for the drain deadline. */
  clock?: Clock
  /** Where a cut drain or a failed step is reported. Default: warnings to stderr. */
  logger?: LoggerLike
}

export interface ShutdownResult {
  /** The signal that started it, or undefined for a direct shutdown() call. */
  signal: NodeJS.Signals | undefined
  servers: DrainResult[]
  trackers: CloseResult[]
}

export interface ShutdownHook {
  /** Runs the shutdown now (once; later calls share it). Does not end the process. Never rejects. */
  shutdown(): Promise<ShutdownResult>
  /** Removes the signal listeners (the servers' request listeners too). */
  dispose(): void
  readonly shuttingDown: boolean
}

export const SHUTDOWN_DEFAULTS = Object.freeze({
  signals: Object.freeze(['SIGTERM', 'SIGINT'] as NodeJS.Signals[]),
  drainTimeoutMs: 10_000
})

const UNCATCHABLE = new Set(['SIGKILL', 'SIGSTOP'])

const toList = <T>(v: T | T[] | undefined): T[] => v === undefined ? [] : Array.isArray(v) ? v : [v]

function check (options: ShutdownOptions): void {
  if (typeof options !== 'object' || options === null) throw new ConfigError('options', 'must be an object')
  // `servers` for `server` would leave the server undrained, without a word.
  checkKnownKeys(options, ['server', 'tracker', 'signals', 'drainTimeoutMs', 'trackerTimeoutMs', 'exit', 'process', 'clock', 'logger'])
  for (const s of toList(options.server)) {
    if (typeof s?.close !== 'function' || typeof s.on !== 'function' || typeof s.removeListener !== 'function') {
      throw new ConfigError('server', 'must be an http.Server (or have close(), on() and removeListener())')
    }
  }
  for (const t of toList(options.tracker)) {
    if (typeof t?.close !== 'function') throw new ConfigError('tracker', 'must have a close() method (a Tracker or koala)')
  }
  for (const name of ['drainTimeoutMs', 'trackerTimeoutMs'] as const) {
    const v = options[name]
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 2 ** 31 - 1)) {
      throw new ConfigError(name, `must be an integer between 0 and ${2 ** 31 - 1}, got ${String(v)}`)
    }
  }
  if (options.signals !== undefined) {
    if (!Array.isArray(options.signals)) throw new ConfigError('signals', 'must be an array of signal names such as SIGTERM')
    for (const s of options.signals as unknown[]) {
      // A misspelt name would never fire; SIGKILL and SIGSTOP cannot be caught (listening for them throws).
      if (typeof s !== 'string' || !Object.hasOwn(osConstants.signals, s) || UNCATCHABLE.has(s)) {
        throw new ConfigError('signals', `must be signal names this platform can catch, such as SIGTERM; got ${JSON.stringify(s)}`)
      }
    }
  }
  if (options.exit !== undefined && typeof options.exit !== 'function') throw new ConfigError('exit', 'must be a function')
  checkLogger(options.logger)
  checkClock(options.clock)
  const p = options.process as Partial<Record<keyof SignalSource, unknown>> | null | undefined
  if (p !== undefined && (typeof p !== 'object' || p === null || typeof p.on !== 'function' ||
    typeof p.removeListener !== 'function' || typeof p.kill !== 'function' || typeof p.pid !== 'number')) {
    throw new ConfigError('process', 'must be a signal source like process (on(), removeListener(), kill() and pid)')
  }
}

class Hook implements ShutdownHook {
  readonly #source: SignalSource
  readonly #signals: NodeJS.Signals[]
  readonly #drains: ServerDrain[] = []
  readonly #trackers: Closable[] = []
  readonly #drainTimeoutMs: number
  readonly #trackerTimeoutMs: number | undefined
  readonly #exit: (signal: NodeJS.Signals) => void
  readonly #clock: Clock
  readonly #reporter: Reporter
  #running: Promise<ShutdownResult> | undefined
  #signal: NodeJS.Signals | undefined
  #exiting = false
  #disposed = false

  constructor (options: ShutdownOptions, source: SignalSource) {
    this.#source = source
    this.#signals = options.signals ?? [...SHUTDOWN_DEFAULTS.signals]
    this.#drainTimeoutMs = options.drainTimeoutMs ?? SHUTDOWN_DEFAULTS.drainTimeoutMs
    this.#trackerTimeoutMs = options.trackerTimeoutMs
    this.#exit = options.exit ?? ((signal) => { this.#raise(signal) })
    this.#clock = options.clock ?? systemClock
    const logger = options.logger !== undefined ? childLogger(options.logger) : createDefaultLogger()
    this.#reporter = new Reporter(logger, this.#clock, DEFAULTS.logSummaryIntervalMs)
    this.add(options)
    const listening: NodeJS.Signals[] = []
    try {
      for (const s of this.#signals) {
        source.on(s, this.#onSignal)
        listening.push(s)
      }
    } catch (err) {
      // Nothing stays installed by a hook that was never returned: no one could dispose of it.
      for (const s of listening) source.removeListener(s, this.#onSignal)
      for (const d of this.#drains) d.dispose()
      throw new ConfigError('signals', `could not be listened for: ${err instanceof Error ? err.message : String(err)}`)
    }
  }

  get shuttingDown (): boolean { return this.#running !== undefined }

  /** Registers more servers and trackers (a second gracefulShutdown() call). */
  add (options: ShutdownOptions): void {
    for (const server of toList(options.server)) {
      if (!this.#drains.some(d => d.server === server)) this.#drains.push(new ServerDrain(server))
    }
    for (const t of toList(options.tracker)) if (!this.#trackers.includes(t)) this.#trackers.push(t)
  }

  readonly #onSignal = (signal: NodeJS.Signals): void => {
    // A second signal while shutting down changes nothing: the first run is bounded by its deadlines.
    if (this.#exiting) return
    this.#exiting = true
    this.#signal = signal
    void this.shutdown().then(() => {
      this.dispose()
      try {
        this.#exit(signal)
      } catch (err) {
        this.#reporter.note('exit', 'error', { err }, 'koala-tracker: the shutdown exit function threw')
      }
    })
  }

  /**
   * Raises the signal again. With no listener left it ends the process as it
   * would have without the hook. If the app has listeners of its own, Node does
   * not end the process on the signal, and a signal listener does not keep the
   * event loop alive: the signal arrives on a later turn, by which time an
   * emptied loop would have exited with 0, and they would never see it. So
   * the loop is held until they have run.
   */
  #raise (signal: NodeJS.Signals): void {
    const source = this.#source
    if ((source.listenerCount?.(signal) ?? 0) > 0) {
      const hold = this.#clock.setTimeout(() => {}, RAISE_HOLD_MS, true)
      // Added after the app's listeners, so it runs after them.
      const release = (): void => {
        source.removeListener(signal, release)
        this.#clock.clearTimeout(hold)
      }
      source.on(signal, release)
    }
    source.kill(source.pid, signal)
  }

  shutdown (): Promise<ShutdownResult> {
    return (this.#running ??= this.#run())
  }

  async #run (): Promise<ShutdownResult> {
    const result: ShutdownResult = { signal: this.#signal, servers: [], trackers: [] }
    // Servers first: events tracked by the requests in flight must be buffered before the trackers close.
    result.servers = await Promise.all(this.#drains.map(async d => await d.drain(this.#drainTimeoutMs, this.#clock).catch((err: unknown) => {
      this.#reporter.note('server', 'error', { err }, 'koala-tracker: closing a server failed during shutdown')
      return { forced: false }
    })))
    if (result.servers.some(r => r.forced)) {
      this.#reporter.note('drain', 'warn', { drainTimeoutMs: this.#drainTimeoutMs },
        `koala-tracker: requests were still running after ${this.#drainTimeoutMs} ms; their connections were closed`)
    }
    const trackers = [...this.#trackers]
    const singleton = configuredTracker()
    if (singleton !== undefined && !trackers.includes(singleton)) trackers.push(singleton)
    const deadline = this.#trackerTimeoutMs === undefined ? undefined : { timeoutMs: this.#trackerTimeoutMs }
    result.trackers = await Promise.all(trackers.map(async t => {
      try {
        return await t.close(deadline)
      } catch (err) {
        this.#reporter.note('tracker', 'error', { err }, 'koala-tracker: a tracker close() threw during shutdown')
        return { delivered: 0, failed: 0, abandoned: 0, unknown: 0, spooled: 0, timedOut: false }
      }
    }))
    return result
  }

  dispose (): void {
    if (this.#disposed) return
    this.#disposed = true
    for (const s of this.#signals) this.#source.removeListener(s, this.#onSignal)
    for (const d of this.#drains) {
      // One server that will not let go must not keep the process from ending by the signal.
      try {
        d.dispose()
      } catch (err) {
        this.#reporter.note('server', 'warn', { err }, 'koala-tracker: removing the shutdown hook from a server failed')
      }
    }
    hooks().delete(this.#source)
  }
}

/** One hook per signal source, shared by every copy of the package in the process. */
const HOOKS = Symbol.for('koala-tracker.shutdown')

function hooks (): WeakMap<SignalSource, Hook> {
  const g = globalThis as { [HOOKS]?: WeakMap<SignalSource, Hook> }
  return (g[HOOKS] ??= new WeakMap())
}

/**
 * Opt-in graceful shutdown: on SIGTERM or SIGINT, stop the servers taking new
 * connections and let requests in flight finish (closing idle keep-alive
 * sockets), then close the trackers so everything buffered is delivered within
 * their deadline, then remove these listeners and raise the signal again so the
 * process ends with the code it would have had without the hook. Nothing is
 * installed until this is called. Calling it again adds servers and trackers
 * to the same hook; a second signal is ignored while the first is handled.
 */
export function gracefulShutdown (options: ShutdownOptions = {}): ShutdownHook {
  check(options)
  const source = options.process ?? process
  const existing = hooks().get(source)
  if (existing !== undefined) {
    existing.add(options)
    return existing
  }
  const hook = new Hook(options, source)
  hooks().set(source, hook)
  return hook
}
