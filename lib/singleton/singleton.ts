import type { AccountIdentifyCall, AccountTrackCall, IdentifyCall, PageCall, TrackCall } from '../tracker'
import { systemClock } from '../shared/clock'
import type { FlushResult } from '../tracker'
import { envConfigError, optionsFromEnv } from './env'
import { ConfigError, RefusedError, type CallName } from '../shared/errors'
import type { EventName, Listener, RouteName } from '../tracker'
import { createDefaultLogger, Reporter } from '../shared/logger'
import { DEFAULTS, type TrackerOptions } from '../tracker'
import { addRoutes, RequestCounters, RouteCounters, type RouteStats, type TrackerStats } from '../tracker'
import { createTracker, type CloseResult, type DeadlineOptions, type Tracker } from '../tracker'

/**
 * One tracker per process. The state lives on globalThis under a Symbol.for
 * key, so two copies of the package in one process (a nested node_modules,
 * import next to require) share one tracker, one buffer and one Pool.
 */
interface Slot {
  tracker: Tracker | undefined
  /** The options it was created with, to tell a repeated init() from a conflicting one. */
  options: Readonly<Record<string, unknown>> | undefined
  source: 'init()' | 'the environment' | undefined
  /** The environment has been read once for lazy configuration. */
  envChecked: boolean
  /** Why the environment configured nothing, when it was set but invalid. */
  envProblem: ConfigError | undefined
  /** Calls refused because nothing was configured. */
  readonly unconfigured: Record<RouteName, RouteCounters>
  /** koala.on() listeners, attached to the tracker once there is one. */
  readonly listeners: Array<{ event: EventName, listener: Listener<EventName>, off?: () => void }>
  reporter: Reporter | undefined
}

const KEY = Symbol.for('koala-tracker.singleton')

function slot (): Slot {
  const g = globalThis as { [KEY]?: Slot }
  return (g[KEY] ??= {
    tracker: undefined,
    options: undefined,
    source: undefined,
    envChecked: false,
    envProblem: undefined,
    unconfigured: { profiles: new RouteCounters(), accounts: new RouteCounters() },
    listeners: [],
    reporter: undefined
  })
}

function adopt (s: Slot, tracker: Tracker, options: TrackerOptions, source: NonNullable<Slot['source']>): Tracker {
  s.tracker = tracker
  s.options = { ...options }
  s.source = source
  for (const l of s.listeners) l.off = tracker.on(l.event, l.listener)
  return tracker
}

/** The first option (in name order) whose value differs; functions and objects compare by identity. */
function firstDifference (a: Readonly<Record<string, unknown>>, b: Readonly<Record<string, unknown>>): string | undefined {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)])
  return [...keys].sort().find(k => !Object.is(a[k] ?? undefined, b[k] ?? undefined))
}

/**
 * Configures the process-wide tracker and returns it. With no argument it
 * reads the environment (see optionsFromEnv) and throws if KOALA_PUBLIC_KEY is
 * not set, unless the singleton is already configured: then it returns it. Calling it again with the same options returns the same tracker;
 * with different ones it throws a ConfigError naming the first difference.
 * Meant for start-up: it throws, the calls it configures never do.
 */
export function init (options?: TrackerOptions): Tracker {
  const s = slot()
  const fromEnv = options === undefined
  if (!fromEnv && (typeof options !== 'object' || options === null)) throw new ConfigError('options', 'must be an object')
  const opts = fromEnv ? optionsFromEnv(process.env) : options
  // A library's own init() (no options) in an app that configured the singleton in code: the same tracker.
  if (fromEnv && opts.publicKey === undefined && s.tracker !== undefined) return s.tracker
  if (fromEnv && opts.publicKey === undefined) {
    throw new ConfigError('KOALA_PUBLIC_KEY', 'is not set: set it, or pass the options to init({ publicKey, ... })')
  }
  if (s.tracker !== undefined && s.options !== undefined) {
    const diff = firstDifference(s.options, opts)
    if (diff === undefined) return s.tracker
    throw new ConfigError(diff, `differs from the options koala-tracker was first configured with (from ${s.source ?? 'init()'}); ` +
      'configure the singleton once per process, with init() at start-up')
  }
  let tracker: Tracker
  try {
    tracker = createTracker(opts as TrackerOptions)
  } catch (err) {
    throw fromEnv && err instanceof ConfigError ? envConfigError(err) : err
  }
  return adopt(s, tracker, opts as TrackerOptions, fromEnv ? 'the environment' : 'init()')
}

/** The tracker if init() ran or a call configured it from the environment; never configures anything. */
export function configuredTracker (): Tracker | undefined {
  return slot().tracker
}

/**
 * The tracker, configured from the environment on first use when init() was
 * not called. Read once: later calls reuse the answer.
 */
function resolve (s: Slot): Tracker | undefined {
  if (s.tracker !== undefined || s.envChecked) return s.tracker
  s.envChecked = true
  try {
    const opts = optionsFromEnv(process.env)
    if (opts.publicKey === undefined) return undefined
    return adopt(s, createTracker(opts as TrackerOptions), opts as TrackerOptions, 'the environment')
  } catch (err) {
    s.envProblem = err instanceof ConfigError ? envConfigError(err) : new ConfigError('environment', `could not be read: ${String(err)}`)
    reporter(s).note('env', 'error', { option: s.envProblem.option }, `koala-tracker: ${s.envProblem.message}`)
    return undefined
  }
}

/** The singleton tracker; throws a ConfigError at once when it is not configured (a start-up check). */
export function getTracker (): Tracker {
  const s = slot()
  const t = resolve(s)
  if (t !== undefined) return t
  throw s.envProblem ?? new ConfigError('KOALA_PUBLIC_KEY', 'is not set and init() was not called: koala-tracker is not configured')
}

function reporter (s: Slot): Reporter {
  return (s.reporter ??= new Reporter(createDefaultLogger(), systemClock, DEFAULTS.logSummaryIntervalMs))
}

function refuse (s: Slot, call: CallName, route: RouteName): void {
  s.unconfigured[route].droppedBy.unconfigured++
  const error = new RefusedError(call, 'unconfigured')
  const why = s.envProblem === undefined ? '' : ` (${s.envProblem.message})`
  reporter(s).note('unconfigured', 'warn', { call, reason: 'unconfigured' }, error.message + why)
  for (const l of s.listeners) {
    if (l.event !== 'dropped') continue
    try {
      (l.listener as Listener<'dropped'>)({ route, call, reason: 'unconfigured', error })
    } catch {
      // Contained, like the tracker's own listeners.
    }
  }
}

function dispatch (call: CallName, route: RouteName, input: unknown): void {
  const s = slot()
  const t = resolve(s)
  if (t === undefined) refuse(s, call, route)
  else (t[call] as (c: unknown) => void).call(t, input)
}

export interface SingletonStats extends Omit<TrackerStats, 'state'> {
  /** `unconfigured` until init() runs or the environment configures the tracker. */
  state: TrackerStats['state'] | 'unconfigured'
}

function addUnconfigured (into: RouteStats, from: RouteCounters): void {
  const n = from.droppedBy.unconfigured
  into.droppedBy.unconfigured += n
  into.dropped += n
}

function stats (): SingletonStats {
  const s = slot()
  const { profiles, accounts } = s.unconfigured
  if (s.tracker === undefined) {
    const p = profiles.snapshot(0)
    const a = accounts.snapshot(0)
    const r = new RequestCounters()
    return {
      ...addRoutes(p, a),
      bufferedBytes: 0,
      requests: { sent: r.sent, succeeded: r.succeeded, retried: r.retried, failed: r.failed },
      inFlightRequests: 0,
      concurrency: 0,
      spool: undefined,
      redis: undefined,
      waitingBatches: 0,
      pausedUntil: 0,
      state: 'unconfigured',
      profiles: p,
      accounts: a
    }
  }
  const out: SingletonStats = s.tracker.stats()
  addUnconfigured(out.profiles, profiles)
  addUnconfigured(out.accounts, accounts)
  addUnconfigured(out, profiles)
  addUnconfigured(out, accounts)
  return out
}

/** The singleton as a Tracker-shaped object that any module can import. */
export interface SingletonTracker {
  track(call: TrackCall): void
  identify(call: IdentifyCall): void
  page(call: PageCall): void
  trackAccount(call: AccountTrackCall): void
  identifyAccount(call: AccountIdentifyCall): void
  /** Resolves at once with nothing to do when not configured. */
  flush(options?: DeadlineOptions): Promise<FlushResult>
  /** Resolves at once with nothing to do when not configured. */
  close(options?: DeadlineOptions): Promise<CloseResult>
  /** The tracker's counters, plus `droppedBy.unconfigured` for calls made before it was configured. */
  stats(): SingletonStats
  /** Listeners added before the tracker exists are attached to it when it is configured. */
  on<E extends EventName>(event: E, listener: Listener<E>): () => void
  /** Whether a tracker exists (init() ran, or a call configured it from the environment). */
  readonly configured: boolean
}

/**
 * `import { koala } from 'koala-tracker/singleton'`: calls go to the process
 * tracker, configured by init() or, on first use, from the environment. Before
 * either, calls are refused (`unconfigured`), counted and logged, never thrown.
 */
export const koala: SingletonTracker = Object.freeze({
  track: (call: TrackCall) => dispatch('track', 'profiles', call),
  identify: (call: IdentifyCall) => dispatch('identify', 'profiles', call),
  page: (call: PageCall) => dispatch('page', 'profiles', call),
  trackAccount: (call: AccountTrackCall) => dispatch('trackAccount', 'accounts', call),
  identifyAccount: (call: AccountIdentifyCall) => dispatch('identifyAccount', 'accounts', call),
  flush: async (options?: DeadlineOptions) =>
    await (slot().tracker?.flush(options) ?? Promise.resolve({ delivered: 0, failed: 0, pending: 0, timedOut: false })),
  close: async (options?: DeadlineOptions) =>
    await (slot().tracker?.close(options) ?? Promise.resolve({ delivered: 0, failed: 0, abandoned: 0, unknown: 0, spooled: 0, timedOut: false })),
  stats,
  on<E extends EventName>(event: E, listener: Listener<E>): () => void {
    const s = slot()
    const entry: Slot['listeners'][number] = { event, listener: listener as Listener<EventName> }
    s.listeners.push(entry)
    if (s.tracker !== undefined) entry.off = s.tracker.on(event, listener)
    return () => {
      const i = s.listeners.indexOf(entry)
      if (i !== -1) s.listeners.splice(i, 1)
      entry.off?.()
    }
  },
  get configured () { return slot().tracker !== undefined }
})

export { optionsFromEnv, envName } from './env'
export type { Env } from './env'
