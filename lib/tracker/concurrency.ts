/** What the limit notes about an attempt when it starts. */
export interface Ticket {
  /** Attempts numbered from 1 as they start. */
  readonly seq: number
  /** It took the last free slot: its outcome says whether more in flight would help. */
  readonly filled: boolean
}

/** Answers this much slower than the fastest seen mean requests are queueing somewhere: more in flight will not help. */
const QUEUEING_RATIO = 2
/**
 * A failure takes a tenth off, once per window. Faults that strike at random (a 503 from one busy
 * node, a reset) are not congestion: halving for each window would, at 30% of requests failing,
 * shrink the limit to one and deliver a fraction of what Koala can take. An outage is recognised apart
 * (see Sender) and drops to one probe at once.
 */
const DECREASE = 0.9
/** Round trips after which the fastest one seen is forgotten (routes and servers change). */
const RTT_WINDOW = 256

/**
 * The limit on requests in flight, adapted as TCP's congestion window is:
 * additive increase, multiplicative decrease.
 *
 * - It grows by one for each success of an attempt that filled the limit, while
 *   answers come about as fast as the fastest seen: the network needs more in
 *   flight (Little's law: in flight = rate x latency). On a local server the round
 *   trip is mostly the client's own event loop, so it can grow well past `floor`
 *   without gain.
 * - It shrinks by DECREASE on a failure, once per window: attempts started before the
 *   last cut do not cut it again, so one burst of failures costs one cut, not many.
 * - Answers much slower than the fastest (queueing) take it back toward `floor`;
 *   below `floor`, any success raises it.
 *
 * Pure bookkeeping: no clock, no I/O. The sender asks `allowed` before each dispatch.
 */
export class ConcurrencyLimit {
  readonly #max: number
  readonly #floor: number
  #limit: number
  #started = 0
  #cutBefore = 0
  #minRttMs = Number.POSITIVE_INFINITY
  #windowMinRttMs = Number.POSITIVE_INFINITY
  #samples = 0

  /** `max`: the ceiling; `floor`: where latency alone never takes it below (failures may). */
  constructor (max: number, floor: number) {
    this.#max = max
    this.#floor = Math.min(floor, max)
    this.#limit = this.#floor
  }

  /** Requests that may be in flight now. */
  get allowed (): number { return Math.max(1, Math.floor(this.#limit)) }

  start (inFlightBefore: number): Ticket {
    return { seq: ++this.#started, filled: inFlightBefore + 1 >= this.allowed }
  }

  onSuccess (ticket: Ticket, rttMs: number): void {
    this.#sample(rttMs)
    if (!ticket.filled) return
    // Below the floor (after failures) every success counts: Koala answers again.
    if (this.#limit < this.#floor || rttMs <= this.#minRttMs * QUEUEING_RATIO) {
      this.#limit = Math.min(this.#max, this.#limit + 1)
    } else if (this.#limit > this.#floor) {
      this.#limit = Math.max(this.#floor, this.#limit - 1)
    }
  }

  onFailure (ticket: Ticket): void {
    if (ticket.seq <= this.#cutBefore) return
    this.#limit = Math.max(1, this.#limit * DECREASE)
    this.#cutBefore = this.#started
  }

  #sample (rttMs: number): void {
    this.#minRttMs = Math.min(this.#minRttMs, rttMs)
    this.#windowMinRttMs = Math.min(this.#windowMinRttMs, rttMs)
    if (++this.#samples >= RTT_WINDOW) {
      this.#minRttMs = this.#windowMinRttMs
      this.#windowMinRttMs = Number.POSITIVE_INFINITY
      this.#samples = 0
    }
  }
}
