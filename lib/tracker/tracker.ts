import { Batcher } from './batcher'
import { Budget } from './budget'
import {
  Capturer, type AccountIdentifyCall, type AccountTrackCall, type Captured, type IdentifyCall, type PageCall, type TrackCall
} from './capture'
import { systemClock, type Clock } from '../shared/clock'
import { Completion, type FlushResult } from './completion'
import { plural } from '../shared/plural'
import { DeliveryError, InputError, RefusedError, type CallName, type IngestDisabledError, type KoalaError } from '../shared/errors'
import { Emitter, type EventName, type Listener } from './events'
import { watchExit } from './exit'
import { childLogger, createDefaultLogger, Reporter } from '../shared/logger'
import { resolveOptions, type ResolvedOptions, type TrackerOptions } from './options'
import { createRoutes, type Route } from './route'
import { Sender } from './sender'
import { addRoutes, RequestCounters, type DropReason, type TrackerStats } from './stats'
import { createPoolTransport, type Transport } from '../transport'
import { Fleet } from '../fleet'
import { Spool, SPOOL_FULL } from '../spool'
import { capturedOf, recordOf } from './spooled'

export interface CloseResult {
  /** Items Koala accepted after close() was called. */
  delivered: number
  /** Items dropped for good before the deadline (rejected, retries spent, ingest disabled). */
  failed: number
  /** Items never sent by the deadline (or whose every attempt was refused with a retryable answer): lost. */
  abandoned: number
  /** Items whose request was sent but not answered by the deadline: aborted, and Koala may have stored them. */
  unknown: number
  /** With a spool: items not delivered by the deadline, kept in the spool for the next tracker started on it. */
  spooled: number
  /** Whether the deadline passed before everything was settled. */
  timedOut: boolean
}

export interface DeadlineOptions {
  /** Overrides flushTimeoutMs / closeTimeoutMs for this call. */
  timeoutMs?: number
}

type State = 'open' | 'closing' | 'closed' | 'disabled'

/**
 * The tracker: validates each call, buffers it in its person's bucket, and
 * delivers buckets through a Sender. Calls never throw (unless `strict`) and
 * never wait; flush() and close() never reject.
 */
export class Tracker {
  readonly #opts: ResolvedOptions
  readonly #clock: Clock
  readonly #capturer: Capturer
  readonly #routes: { profiles: Route, accounts: Route }
  readonly #budget: Budget
  readonly #requests = new RequestCounters()
  readonly #events: Emitter
  readonly #reporter: Reporter
  readonly #batcher: Batcher
  readonly #sender: Sender
  readonly #spool: Spool | undefined
  readonly #fleet: Fleet | undefined
  #transport: Transport | undefined
  #state: State = 'open'
  #closing: Promise<CloseResult> | undefined
  readonly #unwatchExit: () => void
  #exitReported = false

  constructor (options: TrackerOptions) {
    const { options: opts, warnings } = resolveOptions(options)
    this.#opts = opts
    this.#clock = opts.clock ?? systemClock
    const logger = opts.logger !== undefined ? childLogger(opts.logger) : createDefaultLogger()
    this.#reporter = new Reporter(logger, this.#clock, opts.logSummaryIntervalMs)
    for (const w of warnings) this.#reporter.note(`option:${w}`, 'warn', {}, w)
    // The call goes without the field, and that is said once (strict: the call is refused as invalid).
    this.#capturer = new Capturer(this.#clock.now.bind(this.#clock), opts.maxItemBytes, (call, field, hint) => {
      this.#reporter.note(`unknown:${call}:${field}`, 'warn', { call, field },
        `koala-tracker: ${call}() has no field '${field}'${hint}; it was left out of what is sent`)
    }, opts.strict)
    this.#routes = createRoutes(opts.projectPath)
    this.#budget = new Budget(opts.maxBufferedItems, opts.maxBufferedBytes)
    this.#events = new Emitter((event, err) =>
      this.#reporter.note(`listener:${event}`, 'warn', { err }, `a '${event}' listener threw; the error was contained`))
    this.#sender = new Sender({
      opts,
      clock: this.#clock,
      transport: () => (this.#transport ??= opts.transport ?? createPoolTransport({
        origin: opts.origin,
        dispatcher: opts.dispatcher,
        connections: opts.maxConcurrentRequests,
        keepAliveTimeoutMs: opts.keepAliveTimeoutMs,
        requestTimeoutMs: opts.requestTimeoutMs
      })),
      budget: this.#budget,
      requests: this.#requests,
      events: this.#events,
      reporter: this.#reporter,
      onError: (e) => this.#safeOnError(e),
      onDisabled: (e) => this.#onDisabled(e),
      refill: () => this.#batcher.sealOldestIfPressed(),
      settled: (batch, kept) => {
        // The items' places in the spool or the stream: settled there (unless kept for the next start).
        if (!kept && batch.locs !== undefined) for (const loc of batch.locs) this.#settleLoc(loc)
        if (!this.#budget.high) {
          this.#spool?.resume()
          this.#fleet?.resume()
        }
      },
      rateLimited: (until) => this.#fleet?.pauseAll(until)
    })
    this.#batcher = new Batcher(opts, this.#clock, this.#budget, (b) => this.#sender.enqueue(b), (err, where) =>
      this.#reporter.note('internal', 'error', { err }, `koala-tracker internal error in ${where}; please report it`))
    // Last of what can throw (a ConfigError for a directory it cannot use or that a live process holds).
    this.#spool = opts.spool === undefined ? undefined : new Spool(opts.spool, this.#clock, {
      admit: (payload, loc) => this.#readmit(payload, loc),
      room: () => this.#state === 'open' && !this.#budget.high,
      problem: (kind, level, fields, message) => {
        this.#reporter.note(`spool_${kind}`, level, fields, message)
        if (this.#events.has('spool')) this.#events.emit('spool', { kind, message })
      }
    })
    this.#fleet = opts.redis === undefined ? undefined : new Fleet(opts.redis, this.#clock, {
      admit: (payload, loc) => this.#readmitShared(payload, loc),
      room: () => this.#state === 'open' && !this.#budget.high,
      fallback: (payloads) => { for (const p of payloads) this.#fallBack(p) },
      pause: (until) => this.#sender.holdUntil(until),
      problem: (kind, level, fields, message) => this.#reporter.note(kind, level, fields, message)
    })
    this.#unwatchExit = watchExit({
      beforeExit: () => {
        // The process would end with items still buffered: send them, as close() does, within its deadline.
        if (this.#state === 'open' && (this.#budget.items > 0 || this.#fleet?.writing === true) && this.#opts.sendOnExit) void this.close()
      },
      exiting: (how) => {
        this.#keepStranded()
        this.#spool?.writeQueuedSync()
        this.#reportExit(how)
      }
    })
  }

  /** Records a custom event for a person. Never throws unless `strict`. */
  track (call: TrackCall): void { this.#accept('track', this.#routes.profiles, call) }
  /** Records traits for a person and links profile_id with email. */
  identify (call: IdentifyCall): void { this.#accept('identify', this.#routes.profiles, call) }
  /** Records a page view for a person. */
  page (call: PageCall): void { this.#accept('page', this.#routes.profiles, call) }
  /** Records an event for an account (company), keyed by domain or account_id. */
  trackAccount (call: AccountTrackCall): void { this.#accept('trackAccount', this.#routes.accounts, call) }
  /** Records traits for an account (company), keyed by domain or account_id. */
  identifyAccount (call: AccountIdentifyCall): void { this.#accept('identifyAccount', this.#routes.accounts, call) }

  /**
   * Sends everything buffered now and resolves when everything not yet
   * delivered at the time of the call is settled, or at this call's deadline.
   * Overlapping calls each keep their own deadline. Never rejects.
   */
  flush (options?: DeadlineOptions): Promise<FlushResult> {
    try {
      // During close() too: close() has sealed every bucket, and this call keeps its own deadline.
      const timeoutMs = this.#deadline('flush', options, this.#opts.flushTimeoutMs)
      const c = new Completion(this.#clock, timeoutMs)
      // It waits for what is unsettled now and for every batch sealed until the buckets open now are all sealed.
      this.#sender.watch(c)
      this.#batcher.sealAll(() => this.#sender.stopCollecting(c))
      return c.promise
    } catch (err) {
      this.#reporter.note('internal', 'error', { err }, 'koala-tracker internal error in flush(); please report it')
      return Promise.resolve({ delivered: 0, failed: 0, pending: this.#budget.items, timedOut: false })
    }
  }

  /**
   * Stops accepting calls, sends every bucket, waits for requests in flight and
   * pending retries until the deadline, then aborts what is left and releases
   * the Pool and timers. Idempotent; never rejects; never outlives its deadline.
   */
  close (options?: DeadlineOptions): Promise<CloseResult> {
    if (this.#closing === undefined) {
      const timeoutMs = this.#deadline('close', options, this.#opts.closeTimeoutMs)
      this.#state = 'closing'
      this.#closing = this.#shutdown(timeoutMs)
    }
    return this.#closing
  }

  /** Whether close() has been called. */
  get closed (): boolean {
    return this.#closing !== undefined
  }

  /** Subscribes to delivery outcomes; returns an unsubscribe function. */
  on<E extends EventName>(event: E, listener: Listener<E>): () => void {
    return this.#events.on(event, listener)
  }

  off<E extends EventName>(event: E, listener: Listener<E>): void {
    this.#events.off(event, listener)
  }

  stats (): TrackerStats {
    const profiles = this.#routes.profiles.counters.snapshot(this.#batcher.buckets(this.#routes.profiles))
    const accounts = this.#routes.accounts.counters.snapshot(this.#batcher.buckets(this.#routes.accounts))
    const r = this.#requests
    const all = addRoutes(profiles, accounts)
    // Field by field: a spread followed by more fields takes V8's slow path.
    return {
      accepted: all.accepted,
      sent: all.sent,
      failed: all.failed,
      failedBy: all.failedBy,
      dropped: all.dropped,
      droppedBy: all.droppedBy,
      bufferedItems: all.bufferedItems,
      buckets: all.buckets,
      bufferedBytes: this.#budget.bytes,
      requests: { sent: r.sent, succeeded: r.succeeded, retried: r.retried, failed: r.failed },
      inFlightRequests: this.#sender.inFlight,
      concurrency: this.#sender.concurrency,
      waitingBatches: this.#sender.waiting,
      pausedUntil: this.#sender.pausedUntil,
      state: this.#state,
      spool: this.#spool?.stats(),
      redis: this.#fleet?.stats(),
      profiles,
      accounts
    }
  }

  #accept (name: CallName, route: Route, input: unknown): void {
    let refusal: KoalaError | undefined
    try {
      if (this.#state !== 'open') {
        const reason = this.#state === 'disabled' ? 'disabled' : 'closed'
        refusal = this.#drop(name, route, reason, new RefusedError(name, reason))
      } else {
        let c: Captured | undefined
        try {
          c = this.#capture(name, input)
        } catch (err) {
          if (!(err instanceof InputError)) throw err
          refusal = this.#drop(name, route, 'invalid', err)
        }
        if (c !== undefined) {
          if (this.#fleet?.ready === true) {
            // To the fleet's stream: a consumer (this process or another) delivers it.
            const record = recordOf(route, c)
            this.#fleet.add(record.head + record.body)
            route.counters.accepted++
          } else if (this.#spool !== undefined) {
            // Without a fleet, or while Redis is unreachable: kept on local disk and delivered from here.
            if (this.#acceptDurably(name, route, c, this.#spool)) this.#fleet?.tookLocally()
          } else if (this.#fleet !== undefined && this.#budget.tryTake(c.bytes)) {
            this.#fleet.tookLocally()
            this.#hold(route, c)
            route.counters.accepted++
          } else if (this.#budget.tryTake(c.bytes)) {
            this.#hold(route, c)
            route.counters.accepted++
          } else {
            this.#drop(name, route, 'queue_full', new RefusedError(name, 'queue_full'))
          }
        }
      }
    } catch (err) {
      // A tracker bug must not become the host's bug.
      this.#drop(name, route, 'error', new InputError(name, 'call', 'could not be recorded: internal error', { cause: err }))
      this.#reporter.note('internal', 'error', { err }, 'koala-tracker internal error while recording a call; please report it')
    }
    // Strict mode throws for caller mistakes only, not for operational refusals.
    if (refusal !== undefined && this.#opts.strict) throw refusal
  }

  /** Puts an item whose room is taken into its bucket. */
  #hold (route: Route, c: Captured): void {
    try {
      this.#batcher.add(route, c)
    } catch (err) {
      // The batcher throws before it holds the item: give its room back, or it is never freed.
      this.#budget.release(1, c.bytes)
      this.#settleLoc(c.loc)
      throw err
    }
    route.counters.bufferedItems++
    // Past half the bounds, a free request slot takes the oldest bucket early (see Sender refill).
    if (this.#budget.high) this.#sender.schedulePump()
  }

  /**
   * With a spool, every item is appended to it. One that finds no room in memory
   * (or arrives while older ones wait on disk) stays on disk only, and is read
   * back as room frees. Refused only when the spool is full; if the spool failed,
   * items are kept in memory as without one.
   */
  #acceptDurably (name: CallName, route: Route, c: Captured, spool: Spool): boolean {
    let held = !spool.backlog && this.#budget.tryTake(c.bytes)
    const loc = this.#append(route, c, spool, held)
    if (loc === SPOOL_FULL) {
      if (held) this.#budget.release(1, c.bytes)
      this.#drop(name, route, 'spool_full', new RefusedError(name, 'spool_full'))
      return false
    }
    if (loc < 0 && !held && !(held = this.#budget.tryTake(c.bytes))) {
      this.#drop(name, route, 'queue_full', new RefusedError(name, 'queue_full'))
      return false
    }
    if (held) this.#hold(route, c)
    route.counters.accepted++
    return true
  }

  /**
   * A record Redis did not take (its XADD failed): already accepted, so never refused. To the spool
   * if there is one (and it has room), else into memory whatever the room, which MAX_PENDING_ADDS bounds.
   */
  #fallBack (payload: string): void {
    const { route, c } = capturedOf(payload, this.#routes)
    const spool = this.#spool
    if (spool !== undefined) {
      const held = !spool.backlog && this.#budget.tryTake(c.bytes)
      const loc = this.#append(route, c, spool, held)
      if (held) this.#hold(route, c)
      if (loc >= 0 || held) return
    }
    this.#budget.take(c.bytes)
    this.#hold(route, c)
  }

  /** Appends the item's record to the spool (`held`: it is in memory too); the item keeps its place. */
  #append (route: Route, c: Captured, spool: Spool, held: boolean): number {
    const record = recordOf(route, c)
    const loc = spool.append(record.head, record.body, record.bytes, held)
    if (loc >= 0) c.loc = loc
    return loc
  }

  /** Settles an item's place: in the spool (0 and up) or the fleet's stream (-2 and down); -1 is neither. */
  #settleLoc (loc: number): void {
    if (loc >= 0) this.#spool?.settle(loc)
    else if (loc < -1) this.#fleet?.settle(loc)
  }

  /** A record the spool read back (this process's overflow, or an earlier one's): false when memory has no room. */
  #readmit (payload: string, loc: number): boolean {
    const { route, c } = capturedOf(payload, this.#routes)
    if (!this.#budget.tryTake(c.bytes)) return false
    c.loc = loc
    this.#hold(route, c)
    return true
  }

  /** An entry read from the fleet's stream: held whatever the room, which what one read brings bounds. */
  #readmitShared (payload: string, loc: number): void {
    const { route, c } = capturedOf(payload, this.#routes)
    this.#budget.take(c.bytes)
    c.loc = loc
    this.#hold(route, c)
  }

  #capture (name: CallName, input: unknown): Captured {
    const c = this.#capturer
    switch (name) {
      case 'track': return c.track(input as TrackCall)
      case 'identify': return c.identify(input as IdentifyCall)
      case 'page': return c.page(input as PageCall)
      case 'trackAccount': return c.trackAccount(input as AccountTrackCall)
      case 'identifyAccount': return c.identifyAccount(input as AccountIdentifyCall)
    }
  }

  /** Counts and reports a refused call; returns the error when strict mode should throw it. */
  #drop (name: CallName, route: Route, reason: DropReason, error: KoalaError): KoalaError | undefined {
    route.counters.droppedBy[reason]++
    if (error instanceof InputError) {
      // Field and reason only: values may be personal data.
      this.#reporter.note(`invalid:${name}:${error.field}`, 'warn', { call: name, field: error.field, reason: error.reason }, error.message)
    } else if (reason !== 'disabled') {
      this.#reporter.note(reason, 'warn', { call: name, reason }, error.message)
    }
    if (this.#events.has('dropped')) this.#events.emit('dropped', { route: route.name, call: name, reason, error })
    this.#safeOnError(error)
    return reason === 'invalid' || reason === 'closed' ? error : undefined
  }

  #safeOnError (error: KoalaError): void {
    const onError = this.#opts.onError
    if (onError === undefined) return
    try {
      onError(error)
    } catch (err) {
      this.#reporter.note('onError', 'warn', { err }, 'the onError hook threw; the error was contained')
    }
  }

  #onDisabled (error: IngestDisabledError): void {
    if (this.#state === 'open') this.#state = 'disabled'
    this.#reporter.note('disabled', 'error', { status: error.status, body: error.body.slice(0, 200) }, error.message)
    // What is still in buckets can never be sent now; the sender counts it as failed (disabled).
    this.#batcher.sealAll()
    this.#events.emit('disabled', { error })
    this.#safeOnError(error)
  }

  /**
   * At an exit that cannot wait, the records on their way to the fleet's stream take the path of those Redis
   * refused: to the spool, to be written with the rest, or else into memory, where the exit report counts them.
   * Those already written to Redis's socket reach it after the exit too: they are kept again only on disk.
   */
  #keepStranded (): void {
    if (this.#fleet === undefined) return
    const { queued, unanswered } = this.#fleet.takeUnconfirmed()
    for (const record of this.#spool === undefined ? queued : [...queued, ...unanswered]) this.#fallBack(record)
  }

  /** Said once, when the process ends with items still held: they are lost, unless the spool has them. */
  #reportExit (how: string): void {
    const spool = this.#spool?.stats()
    const items = this.#budget.items + (spool?.backlogItems ?? 0)
    if (items === 0 || this.#exitReported) return
    this.#exitReported = true
    const hint = this.#opts.sendOnExit ? 'call close() before exiting (or use gracefulShutdown)' : 'sendOnExit is off'
    const fate = spool?.state === 'ok' ? `those written to the spool are sent by the next tracker started on ${spool.dir}` : `they are lost (${hint})`
    this.#reporter.note('exit', 'error', { items, how }, `koala-tracker: the process is exiting (${how}) with ${plural(items, 'item')} undelivered; ${fate}`)
  }

  #deadline (call: string, options: DeadlineOptions | undefined, fallback: number): number {
    const t = options?.timeoutMs
    if (t === undefined) return fallback
    if (typeof t === 'number' && Number.isFinite(t) && t >= 0) return Math.min(Math.floor(t), 2 ** 31 - 1)
    this.#reporter.note(`option:${call}.timeoutMs`, 'warn', { timeoutMs: String(t) }, `${call}(): timeoutMs must be a non-negative number; using ${fallback}`)
    return fallback
  }

  async #shutdown (timeoutMs: number): Promise<CloseResult> {
    try {
      const c = new Completion(this.#clock, timeoutMs)
      this.#sender.watch(c)
      // Records on their way to the fleet's stream get there (or come back to be sent from here) first.
      if (this.#fleet !== undefined) {
        await this.#fleet.drainAdds()
        await this.#fleet.readRemaining(() => !this.#budget.high)
      }
      await new Promise<void>(resolve => this.#batcher.sealAll(resolve))
      this.#batcher.stop()
      this.#sender.stopCollecting(c)
      const r = await c.promise
      let abandoned = 0
      let unknown = 0
      let spooled = 0
      let delivered = r.delivered
      if (r.timedOut) {
        const left = await this.#sender.abortAll()
        ;({ abandoned, unknown, spooled } = left)
        delivered += left.delivered
        if (abandoned + unknown > 0) {
          const error = new DeliveryError(`close(): the ${timeoutMs} ms deadline passed with ${plural(abandoned + unknown, 'item')} undelivered: ` +
            `${abandoned} never sent (lost), ${unknown} sent without an answer (Koala may have them)`,
          { reason: unknown > 0 ? 'unknown' : 'shutdown', items: abandoned + unknown, attempts: 0 })
          this.#reporter.note('shutdown', 'error', { abandoned, unknown, timeoutMs }, error.message)
          this.#safeOnError(error)
        }
      }
      this.#sender.stop()
      await this.#fleet?.close()
      if (this.#spool !== undefined) {
        // Items that never left the disk (an overflow not yet read back) stay there too.
        spooled += this.#spool.stats().backlogItems
        await this.#spool.close()
      }
      this.#reporter.flushSummaries()
      await this.#releaseTransport(r.timedOut)
      return { delivered, failed: r.failed, abandoned, unknown, spooled, timedOut: r.timedOut }
    } catch (err) {
      this.#reporter.note('internal', 'error', { err }, 'koala-tracker internal error in close(); please report it')
      return { delivered: 0, failed: 0, abandoned: this.#budget.items, unknown: 0, spooled: 0, timedOut: false }
    } finally {
      this.#state = 'closed'
      this.#unwatchExit()
    }
  }

  async #releaseTransport (force: boolean): Promise<void> {
    const t = this.#transport
    if (t === undefined) return
    try {
      await (force ? t.destroy() : t.close())
    } catch (err) {
      this.#reporter.note('transport_close', 'warn', { err }, 'releasing the HTTP pool failed')
    }
  }
}

/** Creates a tracker. Throws ConfigError for bad options; nothing else ever throws. */
export function createTracker (options: TrackerOptions): Tracker {
  return new Tracker(options)
}

export type { FlushResult }
