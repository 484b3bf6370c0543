import type { Clock, TimerHandle } from '../shared/clock'
import { DeliveryError, IngestDisabledError, type FailureReason } from '../shared/errors'
import type { Reporter } from '../shared/logger'
import { plural } from '../shared/plural'
import { classifyError, classifyResponse, errorCode, retryBudgetSpent, retryDelayMs, type Outcome } from '../shared/retry-policy'
import { startExchange, type Transport } from '../transport'
import type { Budget } from './budget'
import { bodyOf, type Batch, type Tries } from './bucket'
import type { Completion } from './completion'
import { ConcurrencyLimit, type Ticket } from './concurrency'
import type { Emitter } from './events'
import type { ResolvedOptions } from './options'
import { RetryQueue } from './retry-queue'
import type { RequestCounters } from './stats'

/** The abort reason of an attempt that ran past requestTimeoutMs. */
const TIMED_OUT = new Error('no answer within requestTimeoutMs')
/** The abort reason of the attempts still in flight at the close() deadline. */
const CLOSE_DEADLINE = new Error('the close() deadline passed')

/** Consecutive failed attempts before retries are logged as a warning rather than at debug level. */
const WARN_AFTER_FAILURES = 3
/**
 * Consecutive failures, at least, that mean an outage rather than bad luck: then (and when there are
 * more requests in flight than this, as many as are allowed) everyone waits and one request probes.
 * With 30% of requests failing at random, ten in a row happen about once in 170,000 attempts.
 */
const OUTAGE_AFTER_FAILURES = 3
/** Requests in flight before the limit has learnt anything: what this tracker always allowed. */
const INITIAL_CONCURRENCY = 10

/** Errors that happen before a request reaches Koala: an attempt that failed so was not stored. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH'])

export interface SenderDeps {
  opts: ResolvedOptions
  clock: Clock
  transport: () => Transport
  budget: Budget
  requests: RequestCounters
  events: Emitter
  reporter: Reporter
  /** The caller's onError, already made safe. */
  onError: (error: DeliveryError) => void
  /** Koala refused the project; called once. */
  onDisabled: (error: IngestDisabledError) => void
  /** Asked when a slot is free and nothing waits: hands over a batch early (enqueue) when memory is pressed. */
  refill: () => boolean
  /** A batch left memory: delivered, failed for good, or (`kept`) left in the spool at the close() deadline. */
  settled: (batch: Batch, kept: boolean) => void
  /** Koala said to wait (a 429 with Retry-After) until `until`: others sharing its quota may want to know. */
  rateLimited: (until: number) => void
}

/** What close() could not deliver by its deadline. */
export interface Leftovers {
  /** Items whose request was never answered: Koala may have stored them. */
  unknown: number
  /** Items never sent, or whose every attempt was answered with a failure. */
  abandoned: number
  /** Items delivered while the attempts in flight were being aborted. */
  delivered: number
  /** Items left in the spool for the next start (instead of unknown or abandoned). */
  spooled: number
}

/**
 * Delivers sealed batches: a deadline per attempt, retries with backoff, and a
 * limit on requests in flight that adapts (see ConcurrencyLimit) up to
 * maxConcurrentRequests.
 *
 * A failed attempt costs its own batch a backoff, trims the limit, and takes a
 * slot away until the next success; the others keep going, so random faults slow
 * delivery down, not to a crawl. Two things stop everyone: a 429 with
 * Retry-After (until then), and an outage (as many failures in a row as requests
 * allowed, at least three): then everyone waits for the backoff and one request
 * probes per wait, and batches never tried keep their retry budget for when Koala
 * is back. Batches due for a retry and batches never tried take turns, so neither
 * starves the other.
 */
export class Sender {
  readonly #d: SenderDeps
  readonly #limit: ConcurrencyLimit
  /** Batches never tried, in the order they were sealed. */
  #fresh: Batch[] = []
  #head = 0
  readonly #retries = new RetryQueue()
  /** Whether a due retry goes before the next fresh batch. */
  #retryTurn = false
  /** Batches with an attempt in flight, and their deadline. */
  readonly #flying = new Map<Batch, number>()
  /** One timer for the deadlines of every attempt in flight (see #armDeadline). */
  #deadlineTimer: TimerHandle | undefined
  /** Failed attempts in a row (a success or any answer from Koala ends the run). */
  #failures = 0
  /** The run's length when it became an outage; 0 when it is not one. */
  #outageFrom = 0
  #pausedUntil = 0
  #pauseIsRateLimit = false
  #wake: TimerHandle | undefined
  #wakeAt = 0
  #pumpQueued = false
  #disabled = false
  #stopped = false
  /** Number of the last batch enqueued. */
  #seq = 0
  #unsettledBatches = 0
  #unsettledItems = 0
  /** flush() and close() calls still waiting, in the order they began, so by `upTo`. */
  readonly #watches: Completion[] = []
  /** Those of them that also take every batch enqueued, until their buckets are all sealed. */
  #collecting: Completion[] = []

  constructor (deps: SenderDeps) {
    this.#d = deps
    this.#limit = new ConcurrencyLimit(deps.opts.maxConcurrentRequests, INITIAL_CONCURRENCY)
  }

  get inFlight (): number { return this.#flying.size }
  get waiting (): number { return this.#fresh.length - this.#head + this.#retries.size }
  get pausedUntil (): number { return this.#pausedUntil > this.#d.clock.now() ? this.#pausedUntil : 0 }
  /** Requests allowed in flight now: each failure in a row takes a slot away until the next success. */
  get concurrency (): number { return Math.max(1, this.#limit.allowed - this.#failures) }

  get #outage (): boolean {
    return this.#failures >= Math.max(OUTAGE_AFTER_FAILURES, this.#limit.allowed)
  }

  enqueue (batch: Batch): void {
    batch.seq = ++this.#seq
    this.#unsettledBatches++
    this.#unsettledItems += batch.items
    for (const c of this.#collecting) c.add(batch.seq, batch.items)
    if (this.#disabled) return this.#fail(batch, 'disabled', 'ingest is disabled for this project')
    if (this.#stopped) return this.#fail(batch, 'shutdown', 'the tracker is closed')
    this.#fresh.push(batch)
    this.schedulePump()
  }

  /**
   * Makes `c` wait for every batch not yet settled (those numbered up to the
   * last one enqueued) and for every batch enqueued from now until
   * stopCollecting(c): the buckets a flush() seals over several turns. It
   * costs the same with a backlog of any size.
   */
  watch (c: Completion): void {
    c.begin(this.#seq, this.#unsettledBatches, this.#unsettledItems, () => {
      const i = this.#watches.indexOf(c)
      if (i !== -1) this.#watches.splice(i, 1)
    }, true)
    if (!c.done) {
      this.#watches.push(c)
      this.#collecting.push(c)
    }
  }

  stopCollecting (c: Completion): void {
    this.#collecting = this.#collecting.filter(x => x !== c)
    c.stopCollecting()
  }

  /**
   * Close deadline: gives up what waits and aborts what is in flight. An
   * attempt whose 2xx status had already arrived (its body still coming) is
   * delivered: the transport answers the abort with that status. So the
   * aborted attempts settle first, within one turn of the event loop, and
   * only then is what is left given up (a transport that ignores the abort
   * included). Items in flight, or whose earlier attempt went unanswered, are
   * `unknown`: Koala may have them.
   */
  async abortAll (): Promise<Leftovers> {
    this.#stopped = true
    this.#clearWake()
    this.#clearDeadline()
    const waiting = [...this.#fresh.slice(this.#head), ...this.#retries.drain()]
    this.#fresh = []
    this.#head = 0
    const flying = [...this.#flying.keys()]
    const left: Leftovers = { unknown: 0, abandoned: 0, delivered: 0, spooled: 0 }
    for (const b of waiting) {
      if (this.#keep(b, left)) continue
      // Waiting for a retry after an attempt that went unanswered: Koala may have it.
      const unknown = b.tries?.unanswered === true
      if (unknown) left.unknown += b.items
      else left.abandoned += b.items
      this.#fail(b, unknown ? 'unknown' : 'shutdown', CLOSE_DEADLINE.message)
    }
    for (const b of flying) b.tries?.abort?.(CLOSE_DEADLINE)
    // The built-in transport settles an aborted attempt at once; waiting for the attempts themselves,
    // not only for a turn, lets close() finish under fake timers, which hold setImmediate back.
    await Promise.race([Promise.allSettled(flying.map(b => b.tries?.attempt)), new Promise(resolve => setImmediate(resolve))])
    for (const b of flying) {
      if (b.settled) {
        if (b.delivered) left.delivered += b.items
      } else if (!this.#keep(b, left)) {
        left.unknown += b.items
        this.#fail(b, 'unknown', CLOSE_DEADLINE.message)
      }
    }
    return left
  }

  /** At the close() deadline: a batch whose every item is in the spool stays there for the next start. */
  #keep (batch: Batch, left: Leftovers): boolean {
    if (batch.locs === undefined || batch.locs.length !== batch.items) return false
    left.spooled += batch.items
    this.#settle(batch, false, true)
    return true
  }

  stop (): void {
    this.#stopped = true
    this.#clearWake()
    this.#clearDeadline()
  }

  /** Sends what it can on a microtask (coalesced): track() stays cheap and never sees transport errors. */
  schedulePump (): void {
    if (this.#pumpQueued) return
    this.#pumpQueued = true
    queueMicrotask(() => {
      this.#pumpQueued = false
      this.#safePump()
    })
  }

  /** Runs from a microtask or a timer: nothing may escape to the host from there. `lateMs`: how late that timer fired. */
  #safePump (lateMs = 0): void {
    try {
      this.#pump(lateMs)
    } catch (err) {
      this.#d.reporter.note('internal', 'error', { err }, 'koala-tracker internal error while sending; please report it')
    }
  }

  #pump (lateMs: number): void {
    if (this.#disabled || this.#stopped) return
    const now = this.#d.clock.now()
    if (now < this.#pausedUntil) {
      if (this.waiting > 0) this.#armWake(this.#pausedUntil)
      return
    }
    // `now < #pausedUntil` too: a transport that throws rather than rejects fails its attempt inside this
    // loop, and a pause it causes must hold for the batches behind it.
    while (this.#flying.size < this.concurrency && now >= this.#pausedUntil) {
      const batch = this.#next(now)
      if (batch === undefined) break
      // During an outage the queue is served one probe per pause, and a retried batch may wait far longer
      // than its own backoff. Late by no more than the timer that woke us is a busy event loop, not a turn missed.
      const tries = batch.tries
      if (tries !== undefined && now - tries.firstAt > this.#d.opts.maxRetryDurationMs && now - tries.retryAt > lateMs) {
        this.#fail(batch, 'retry_exhausted', `gave up after ${plural(batch.attempts, 'attempt')}: maxRetryDurationMs ` +
          `(${this.#d.opts.maxRetryDurationMs} ms) passed while it waited for its turn`)
        continue
      }
      const t = batch.tries ??= { firstAt: now, retryAt: 0, abort: undefined, abortedWith: undefined, attempt: undefined, unanswered: false }
      t.attempt = this.#attempt(batch, t, this.#limit.start(this.#flying.size))
    }
    const nextRetry = this.#retries.nextAt
    if (nextRetry !== undefined && nextRetry > now) this.#armWake(Math.max(nextRetry, this.#pausedUntil))
  }

  /** The next batch to try: due retries and fresh batches take turns; with neither, an early one when memory is pressed. */
  #next (now: number): Batch | undefined {
    const retryDue = (this.#retries.nextAt ?? Number.POSITIVE_INFINITY) <= now
    if (retryDue && this.#retryTurn) {
      this.#retryTurn = false
      return this.#retries.pop()
    }
    if (this.#head < this.#fresh.length || (this.#d.refill() && this.#head < this.#fresh.length)) {
      this.#retryTurn = true
      const batch = this.#fresh[this.#head]
      this.#fresh[this.#head++] = undefined as unknown as Batch
      if (this.#head > 1024 && this.#head * 2 > this.#fresh.length) {
        this.#fresh = this.#fresh.slice(this.#head)
        this.#head = 0
      }
      return batch
    }
    return retryDue ? this.#retries.pop() : undefined
  }

  async #attempt (batch: Batch, tries: Tries, ticket: Ticket): Promise<void> {
    const { clock, opts, requests } = this.#d
    batch.attempts++
    requests.sent++
    tries.abortedWith = undefined
    const startedAt = clock.now()
    this.#flying.set(batch, startedAt + opts.requestTimeoutMs)
    if (this.#deadlineTimer === undefined) this.#armDeadline()
    let outcome: Outcome
    try {
      const exchange = startExchange(this.#d.transport(), batch.route.path, bodyOf(batch))
      tries.abort = (reason) => {
        tries.abortedWith ??= reason
        exchange.abort(reason)
      }
      const res = await exchange.answer
      outcome = classifyResponse(res.status, res.headers, res.body, clock.now())
    } catch (err) {
      const timedOut = tries.abortedWith === TIMED_OUT
      if (timedOut || !NOT_SENT_CODES.has(errorCode(err) ?? '')) tries.unanswered = true
      outcome = timedOut
        ? { kind: 'retry', status: undefined, retryAfterMs: undefined, rateLimited: false, detail: `no answer within requestTimeoutMs (${opts.requestTimeoutMs} ms)` }
        : classifyError(err)
    } finally {
      this.#flying.delete(batch)
      if (this.#flying.size === 0) this.#clearDeadline()
      tries.abort = undefined
    }
    try {
      if (!batch.settled) this.#handle(batch, tries, ticket, outcome, clock.now() - startedAt)
    } catch (err) {
      this.#d.reporter.note('internal', 'error', { err }, 'koala-tracker internal error while handling a response; please report it')
      // Neither queued nor settled, it would hold its room in the buffer, and every flush(), for good.
      if (!batch.settled && this.#fresh.indexOf(batch, this.#head) === -1) {
        this.#fail(batch, 'rejected', `internal error while handling the answer: ${err instanceof Error ? err.message : String(err)}`)
      }
    }
    // Already off the caller's stack (after an await): the next batch goes now, not on another microtask.
    this.#safePump()
  }

  #handle (batch: Batch, tries: Tries, ticket: Ticket, outcome: Outcome, rttMs: number): void {
    const { requests, events, clock, opts } = this.#d
    switch (outcome.kind) {
      case 'ok':
        this.#failures = 0
        this.#outageFrom = 0
        if (!this.#pauseIsRateLimit) this.#pausedUntil = 0
        this.#limit.onSuccess(ticket, rttMs)
        requests.succeeded++
        this.#settle(batch, true)
        batch.route.counters.sent += batch.items
        if (events.has('sent')) events.emit('sent', { route: batch.route.name, items: batch.items, status: outcome.status, attempts: batch.attempts })
        return
      case 'disable':
        requests.failed++
        this.#disable(outcome.status, outcome.body)
        this.#fail(batch, 'disabled', `HTTP ${outcome.status}`, outcome.status, outcome.body)
        return
      case 'reject':
        // Koala answered: it is up, whatever it thought of this batch.
        this.#failures = 0
        this.#outageFrom = 0
        requests.failed++
        this.#fail(batch, 'rejected', outcome.status === 0 ? outcome.body : `HTTP ${outcome.status}`, outcome.status || undefined, outcome.body)
        return
      case 'retry': {
        if (this.#disabled) {
          requests.failed++
          this.#fail(batch, 'disabled', outcome.detail, outcome.status)
          return
        }
        // Aborted at the close() deadline: abortAll() gives it up.
        if (this.#stopped) return
        this.#failures++
        this.#limit.onFailure(ticket)
        const now = clock.now()
        // Its own backoff, longer with each of its failures; a Retry-After lengthens it.
        let delayMs = retryDelayMs(batch.attempts, outcome.retryAfterMs, opts, opts.random)
        if (outcome.retryAfterMs !== undefined && outcome.rateLimited) {
          // Koala said when: nobody sends before then.
          this.#pauseUntil(now + delayMs, true)
          this.#d.rateLimited(now + delayMs)
        } else if (this.#outage) {
          // Everyone waits, longer with each failed probe, and one request probes after the wait.
          if (this.#outageFrom === 0) this.#outageFrom = this.#failures
          this.#pauseUntil(now + retryDelayMs(this.#failures - this.#outageFrom + 1, outcome.retryAfterMs, opts, opts.random), outcome.rateLimited)
        }
        delayMs = Math.max(delayMs, this.#pausedUntil - now)
        if (retryBudgetSpent(batch.attempts, tries.firstAt, now, delayMs, opts)) {
          requests.failed++
          this.#fail(batch, 'retry_exhausted', `gave up after ${plural(batch.attempts, 'attempt')}; last: ${outcome.detail}`, outcome.status)
          return
        }
        requests.retried++
        tries.retryAt = now + delayMs
        this.#retries.push(batch)
        const fields = { status: outcome.status, detail: outcome.detail, delayMs, failures: this.#failures, concurrency: this.concurrency }
        if (outcome.rateLimited) {
          this.#d.reporter.note('rate_limited', 'warn', fields, 'Koala asked the tracker to slow down (HTTP 429); sending is slowed down')
        } else if (this.#failures >= WARN_AFTER_FAILURES) {
          // One failed attempt is routine; a run of them means Koala is unreachable.
          this.#d.reporter.note('retry', 'warn', fields, `Koala requests keep failing (last: ${outcome.detail}); retrying with backoff`)
        } else {
          this.#d.reporter.debug(fields, `Koala request failed (${outcome.detail}); retrying`)
        }
        if (events.has('retry')) {
          events.emit('retry', { route: batch.route.name, items: batch.items, attempt: batch.attempts, delayMs, status: outcome.status, detail: outcome.detail })
        }
      }
    }
  }

  /** Another process was told to wait (fleet mode): nobody here sends before `until` either. */
  holdUntil (until: number): void {
    if (until <= this.#pausedUntil) return
    this.#pauseUntil(until, true)
    if (this.waiting > 0) this.#armWake(until)
  }

  #pauseUntil (at: number, rateLimited: boolean): void {
    if (at > this.#pausedUntil) {
      this.#pausedUntil = at
      this.#pauseIsRateLimit = rateLimited
      // The next pump arms the wake for the new end: one probe per pause, no wake-up before it.
      this.#clearWake()
    }
  }

  #disable (status: number, body: string): void {
    if (this.#disabled) return
    this.#disabled = true
    this.#clearWake()
    const waiting = [...this.#fresh.slice(this.#head), ...this.#retries.drain()]
    this.#fresh = []
    this.#head = 0
    for (const b of waiting) this.#fail(b, 'disabled', 'ingest is disabled for this project')
    this.#d.onDisabled(new IngestDisabledError(status, body))
  }

  #fail (batch: Batch, reason: FailureReason, detail: string, status?: number, body?: string): void {
    this.#settle(batch, false)
    batch.route.counters.failedBy[reason] += batch.items
    const items = `${plural(batch.items, batch.route.name === 'accounts' ? 'account item' : 'item')}`
    const error = new DeliveryError(`${items} not delivered (${reason}): ${detail}` +
      (body !== undefined && body !== '' && status !== undefined ? `: ${body.slice(0, 200)}` : ''),
    { reason, items: batch.items, attempts: batch.attempts, status, body })
    if (this.#d.events.has('failed')) this.#d.events.emit('failed', { route: batch.route.name, items: batch.items, reason, error })
    // Disabled and close-deadline losses are reported once, as a whole, by the tracker.
    if (reason === 'rejected' || reason === 'retry_exhausted') {
      this.#d.reporter.note(`${reason}:${status ?? 'network'}`, 'error', { reason, status, items: batch.items, body: body?.slice(0, 200) }, error.message)
      this.#d.onError(error)
    }
  }

  #settle (batch: Batch, delivered: boolean, kept = false): void {
    if (batch.settled) return
    batch.settled = true
    batch.delivered = delivered
    batch.route.counters.bufferedItems -= batch.items
    this.#d.budget.release(batch.items, batch.bytes)
    this.#unsettledBatches--
    this.#unsettledItems -= batch.items
    this.#d.settled(batch, kept)
    // Every watch that began after this batch was enqueued waits for it: a suffix of #watches.
    // (One that finishes removes itself at index i, which the loop has passed.)
    const w = this.#watches
    for (let i = w.length - 1; i >= 0 && w[i].upTo >= batch.seq; i--) w[i].settle(batch.items, delivered)
  }

  /**
   * Every attempt gets the same requestTimeoutMs, so deadlines come in the order
   * attempts started (#flying's order): one timer, armed for the oldest attempt
   * not yet timed out, replaces a timer per request.
   */
  #armDeadline (): void {
    const { clock } = this.#d
    for (const [b, deadline] of this.#flying) {
      if (b.tries?.abortedWith === TIMED_OUT) continue
      this.#deadlineTimer = clock.setTimeout(() => this.#onDeadline(), Math.max(0, deadline - clock.now()))
      return
    }
  }

  #onDeadline (): void {
    this.#deadlineTimer = undefined
    const now = this.#d.clock.now()
    try {
      for (const [b, deadline] of this.#flying) {
        if (deadline > now) break
        const t = b.tries
        if (t?.abort !== undefined && t.abortedWith === undefined) t.abort(TIMED_OUT)
      }
    } finally {
      if (!this.#stopped) this.#armDeadline()
    }
  }

  /** One timer for the pause's end and the next retry: armed for the earliest asked, kept if sooner. */
  #armWake (at: number): void {
    if (this.#wake !== undefined && this.#wakeAt <= at) return
    this.#clearWake()
    this.#wakeAt = at
    this.#wake = this.#d.clock.setTimeout(() => {
      this.#wake = undefined
      this.#safePump(Math.max(0, this.#d.clock.now() - at))
    }, Math.max(0, at - this.#d.clock.now()))
  }

  #clearDeadline (): void {
    if (this.#deadlineTimer !== undefined) {
      this.#d.clock.clearTimeout(this.#deadlineTimer)
      this.#deadlineTimer = undefined
    }
  }

  #clearWake (): void {
    if (this.#wake !== undefined) {
      this.#d.clock.clearTimeout(this.#wake)
      this.#wake = undefined
    }
  }
}
