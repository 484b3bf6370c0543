import type { Budget } from './budget'
import { bodyOf, type Batch, type Tries } from './bucket'
import type { Clock, TimerHandle } from '../shared/clock'
import type { Completion } from './completion'
import { DeliveryError, IngestDisabledError, type FailureReason } from '../shared/errors'
import type { Emitter } from './events'
import type { Reporter } from '../shared/logger'
import type { ResolvedOptions } from './options'
import { classifyError, classifyResponse, retryBudgetSpent, retryDelayMs, type Outcome } from '../shared/retry-policy'
import type { RequestCounters } from './stats'
import type { Transport } from '../transport'

/** The abort reason of an attempt that ran past requestTimeoutMs. */
const TIMED_OUT = new Error('no answer within requestTimeoutMs')
/** The abort reason of the attempts still in flight at the close() deadline. */
const CLOSE_DEADLINE = new Error('the close() deadline passed')

/** Consecutive failed attempts before retries are logged as a warning rather than at debug level. */
const WARN_AFTER_FAILURES = 3

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
}

/**
 * Delivers sealed batches: at most maxConcurrentRequests in flight, a deadline
 * per attempt, retries with backoff, and one pause shared by everyone.
 *
 * Any retryable failure (429, 5xx, network, deadline) pauses all sending for
 * the backoff (or Retry-After), and until the next success only one request is
 * in flight: during an outage the tracker probes instead of hammering, and
 * batches that have not been tried keep their retry budget for when Koala is back.
 * A failed batch goes to the back of the queue so one bad batch cannot hold up
 * the others.
 */
export class Sender {
  readonly #d: SenderDeps
  #ready: Batch[] = []
  #head = 0
  /**
   * Batches with an attempt in flight. Every unsettled batch is here or in #ready:
   * a Set of every one of them cost a rehash every few thousand batches of a backlog.
   */
  readonly #flying = new Map<Batch, number>()
  /** One timer for the deadlines of every attempt in flight (see #armDeadline). */
  #deadlineTimer: TimerHandle | undefined
  #failures = 0
  #pausedUntil = 0
  #pauseIsRateLimit = false
  #wake: TimerHandle | undefined
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
  }

  get inFlight (): number { return this.#flying.size }
  get waiting (): number { return this.#ready.length - this.#head }
  get pausedUntil (): number { return this.#pausedUntil > this.#d.clock.now() ? this.#pausedUntil : 0 }

  enqueue (batch: Batch): void {
    batch.seq = ++this.#seq
    this.#unsettledBatches++
    this.#unsettledItems += batch.items
    for (const c of this.#collecting) c.add(batch.seq, batch.items)
    if (this.#disabled) return this.#fail(batch, 'disabled', 'ingest is disabled for this project')
    if (this.#stopped) return this.#fail(batch, 'shutdown', 'the tracker is closed')
    this.#ready.push(batch)
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
   * included). Resolves with the items abandoned and the items delivered meanwhile.
   */
  async abortAll (): Promise<{ abandoned: number, delivered: number }> {
    this.#stopped = true
    this.#clearWake()
    this.#clearDeadline()
    const waiting = this.#ready.slice(this.#head)
    this.#ready = []
    this.#head = 0
    const flying = [...this.#flying.keys()]
    const routes = new Set([...waiting, ...flying].map(b => b.route))
    const count = (): { shutdown: number, sent: number } => {
      let shutdown = 0
      let sent = 0
      for (const r of routes) {
        shutdown += r.counters.failedBy.shutdown
        sent += r.counters.sent
      }
      return { shutdown, sent }
    }
    const before = count()
    for (const b of waiting) this.#fail(b, 'shutdown', CLOSE_DEADLINE.message)
    for (const b of flying) b.tries?.abort?.abort(CLOSE_DEADLINE)
    // The built-in transport settles an aborted attempt at once; waiting for the attempts themselves,
    // not only for a turn, lets close() finish under fake timers, which hold setImmediate back.
    await Promise.race([Promise.allSettled(flying.map(b => b.tries?.attempt)), new Promise(resolve => setImmediate(resolve))])
    for (const b of flying) {
      if (!b.settled) this.#fail(b, 'shutdown', CLOSE_DEADLINE.message)
    }
    const after = count()
    return { abandoned: after.shutdown - before.shutdown, delivered: after.sent - before.sent }
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

  // Runs from a microtask or a timer: nothing may escape to the host from there.
  #safePump (): void {
    try {
      this.#pump()
    } catch (err) {
      this.#d.reporter.note('internal', 'error', { err }, 'koala-tracker internal error while sending; please report it')
    }
  }

  #pump (): void {
    if (this.#disabled || this.#stopped) return
    const now = this.#d.clock.now()
    if (now < this.#pausedUntil) {
      if (this.waiting > 0) this.#armWake(this.#pausedUntil - now)
      return
    }
    const limit = this.#failures > 0 ? 1 : this.#d.opts.maxConcurrentRequests
    // `now < #pausedUntil` too: a transport that throws rather than rejects fails its attempt inside this
    // loop, and its pause must hold for the batches behind it (and for itself, re-queued).
    while (this.#flying.size < limit && now >= this.#pausedUntil) {
      if (this.#head === this.#ready.length) {
        // Nothing waits: when memory is pressed, the oldest bucket goes before its deadline.
        if (!this.#d.refill() || this.#head === this.#ready.length) break
      }
      const batch = this.#ready[this.#head]
      this.#ready[this.#head++] = undefined as unknown as Batch
      if (this.#head > 1024 && this.#head * 2 > this.#ready.length) {
        this.#ready = this.#ready.slice(this.#head)
        this.#head = 0
      }
      // Its budget was checked when its last attempt failed, but during an outage the queue is served
      // one probe per pause, and a retried batch may wait far longer than that for its turn. Late by
      // less than its own wait is a timer firing late, not a turn missed: that retry goes.
      const tries = batch.tries
      if (tries !== undefined && now - tries.firstAt > this.#d.opts.maxRetryDurationMs &&
        now - tries.retryAt > tries.retryWaitMs) {
        this.#fail(batch, 'retry_exhausted', `gave up after ${batch.attempts} attempts: maxRetryDurationMs ` +
          `(${this.#d.opts.maxRetryDurationMs} ms) passed while it waited for its turn`)
        continue
      }
      const t = batch.tries ??= { firstAt: now, retryAt: 0, retryWaitMs: 0, abort: undefined, attempt: undefined }
      t.attempt = this.#attempt(batch, t)
    }
  }

  async #attempt (batch: Batch, tries: Tries): Promise<void> {
    const { clock, opts, requests } = this.#d
    batch.attempts++
    requests.sent++
    const ac = new AbortController()
    tries.abort = ac
    this.#flying.set(batch, clock.now() + opts.requestTimeoutMs)
    if (this.#deadlineTimer === undefined) this.#armDeadline()
    let outcome: Outcome
    try {
      const res = await this.#d.transport().send({ path: batch.route.path, body: bodyOf(batch), signal: ac.signal })
      outcome = classifyResponse(res.status, res.headers, res.body, clock.now())
    } catch (err) {
      outcome = ac.signal.reason === TIMED_OUT
        ? { kind: 'retry', status: undefined, retryAfterMs: undefined, rateLimited: false, detail: `no answer within requestTimeoutMs (${opts.requestTimeoutMs} ms)` }
        : classifyError(err)
    } finally {
      this.#flying.delete(batch)
      if (this.#flying.size === 0) this.#clearDeadline()
      tries.abort = undefined
    }
    try {
      if (!batch.settled) this.#handle(batch, tries, outcome)
    } catch (err) {
      this.#d.reporter.note('internal', 'error', { err }, 'koala-tracker internal error while handling a response; please report it')
      // Neither queued nor settled, it would hold its room in the buffer, and every flush(), for good.
      if (!batch.settled && this.#ready.indexOf(batch, this.#head) === -1) {
        this.#fail(batch, 'rejected', `internal error while handling the answer: ${err instanceof Error ? err.message : String(err)}`)
      }
    }
    // Already off the caller's stack (after an await): the next batch goes now, not on another microtask.
    this.#safePump()
  }

  #handle (batch: Batch, tries: Tries, outcome: Outcome): void {
    const { requests, events, clock, opts } = this.#d
    switch (outcome.kind) {
      case 'ok':
        this.#failures = 0
        if (!this.#pauseIsRateLimit) this.#pausedUntil = 0
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
        this.#failures = 0
        requests.failed++
        this.#fail(batch, 'rejected', outcome.status === 0 ? outcome.body : `HTTP ${outcome.status}`, outcome.status || undefined, outcome.body)
        return
      case 'retry': {
        if (this.#disabled || this.#stopped) {
          requests.failed++
          this.#fail(batch, this.#disabled ? 'disabled' : 'shutdown', outcome.detail, outcome.status)
          return
        }
        this.#failures++
        const now = clock.now()
        const delayMs = retryDelayMs(this.#failures, outcome.retryAfterMs, opts, opts.random)
        if (now + delayMs > this.#pausedUntil) {
          this.#pausedUntil = now + delayMs
          this.#pauseIsRateLimit = outcome.rateLimited
        }
        if (retryBudgetSpent(batch.attempts, tries.firstAt, now, delayMs, opts)) {
          requests.failed++
          this.#fail(batch, 'retry_exhausted', `gave up after ${batch.attempts} attempts; last: ${outcome.detail}`, outcome.status)
          return
        }
        requests.retried++
        tries.retryAt = this.#pausedUntil
        tries.retryWaitMs = this.#pausedUntil - now
        this.#ready.push(batch)
        this.#armWake(this.#pausedUntil - now)
        const fields = { status: outcome.status, detail: outcome.detail, delayMs, failures: this.#failures }
        if (outcome.rateLimited) {
          this.#d.reporter.note('rate_limited', 'warn', fields, 'Koala asked the tracker to slow down (HTTP 429); sending is paused for everyone')
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

  #disable (status: number, body: string): void {
    if (this.#disabled) return
    this.#disabled = true
    this.#clearWake()
    const waiting = this.#ready.slice(this.#head)
    this.#ready = []
    this.#head = 0
    for (const b of waiting) this.#fail(b, 'disabled', 'ingest is disabled for this project')
    this.#d.onDisabled(new IngestDisabledError(status, body))
  }

  #fail (batch: Batch, reason: FailureReason, detail: string, status?: number, body?: string): void {
    this.#settle(batch, false)
    this.#count(batch, reason)
    const error = new DeliveryError(`${batch.items} ${batch.route.name === 'accounts' ? 'account ' : ''}items not delivered (${reason}): ${detail}` +
      (body !== undefined && body !== '' && status !== undefined ? `: ${body.slice(0, 200)}` : ''),
    { reason, items: batch.items, attempts: batch.attempts, status, body })
    if (this.#d.events.has('failed')) this.#d.events.emit('failed', { route: batch.route.name, items: batch.items, reason, error })
    // Disabled and shutdown losses are reported once, as a whole, by the tracker.
    if (reason === 'rejected' || reason === 'retry_exhausted') {
      this.#d.reporter.note(`${reason}:${status ?? 'network'}`, 'error', { reason, status, items: batch.items, body: body?.slice(0, 200) }, error.message)
      this.#d.onError(error)
    }
  }

  #count (batch: Batch, reason: FailureReason): void {
    batch.route.counters.failedBy[reason] += batch.items
  }

  #settle (batch: Batch, delivered: boolean): void {
    if (batch.settled) return
    batch.settled = true
    batch.route.counters.bufferedItems -= batch.items
    this.#d.budget.release(batch.items, batch.bytes)
    this.#unsettledBatches--
    this.#unsettledItems -= batch.items
    // Every watch that began after this batch was enqueued waits for it: a suffix of #watches.
    // (One that finishes removes itself at index i, which the loop has passed.)
    const w = this.#watches
    for (let i = w.length - 1; i >= 0 && w[i].upTo >= batch.seq; i--) w[i].settle(batch.items, delivered)
  }

  /**
   * Every attempt gets the same requestTimeoutMs, so deadlines come in the order
   * attempts started (#flying's order): one timer, armed for the oldest attempt
   * not yet timed out, replaces a timer per request. Deadlines are read off the
   * injected clock, so a wall clock stepped back delays them; the built-in
   * transport's undici timeouts (requestTimeoutMs + 1 s) still bound an attempt.
   */
  #armDeadline (): void {
    const { clock } = this.#d
    for (const [b, deadline] of this.#flying) {
      if (b.tries?.abort?.signal.reason === TIMED_OUT) continue
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
        const ac = b.tries?.abort
        if (ac !== undefined && !ac.signal.aborted) ac.abort(TIMED_OUT)
      }
    } finally {
      if (!this.#stopped) this.#armDeadline()
    }
  }

  #armWake (ms: number): void {
    this.#clearWake()
    this.#wake = this.#d.clock.setTimeout(() => {
      this.#wake = undefined
      this.#safePump()
    }, Math.max(0, ms))
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
