import type { Dispatcher } from 'undici'
import { MAX_ERROR_BODY_CHARS } from '../shared/constants'
import { undiciBuildConnector, undiciPool } from './undici-pool'
import { USER_AGENT } from '../shared/version'

export interface TransportRequest {
  /** Absolute path on the origin, e.g. /web/projects/pk_x/batch. */
  path: string
  /** JSON body. */
  body: string
  /** Aborted at the request deadline or at close(). */
  signal: AbortSignal
}

export interface TransportResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  /** For non-2xx answers, the start of the body (for reports); '' otherwise. */
  body: string
}

/** The tracker's only view of HTTP. Rejects on network errors and aborts. */
export interface Transport {
  send(request: TransportRequest): Promise<TransportResponse>
  /** Graceful: lets requests in flight finish. */
  close(): Promise<void>
  /** Immediate: fails whatever is in flight. */
  destroy(): Promise<void>
}

/** One request in flight: its answer, and how to stop it (at its deadline, or at close()). */
export interface Exchange {
  answer: Promise<TransportResponse>
  abort(reason: Error): void
}

/**
 * The built-in transport also starts requests without an AbortSignal: an AbortController per
 * request cost more than the rest of the tracker's own work on it.
 */
export interface PoolTransport extends Transport {
  start(path: string, body: string): Exchange
}

/** Starts a request through any transport: a caller's gets an AbortSignal, the built-in one needs none. */
export function startExchange (transport: Transport, path: string, body: string): Exchange {
  const pool = transport as Partial<PoolTransport>
  if (typeof pool.start === 'function') return pool.start(path, body)
  const ac = new AbortController()
  let answer: Promise<TransportResponse>
  try {
    answer = transport.send({ path, body, signal: ac.signal })
  } catch (err) {
    // A transport that throws instead of rejecting fails this attempt like any network error.
    answer = Promise.reject(err)
  }
  return { answer, abort: (reason) => ac.abort(reason) }
}

export interface PoolTransportOptions {
  origin: string
  /** Send through this dispatcher instead of an owned Pool; it is never closed here. */
  dispatcher?: Dispatcher
  connections: number
  keepAliveTimeoutMs: number
  requestTimeoutMs: number
}

const HEADERS = Object.freeze({ 'content-type': 'application/json', 'user-agent': USER_AGENT })

/**
 * Transport over one undici Pool: keep-alive, up to `connections` sockets, one
 * request per socket at a time over HTTP/1.1, or many streams on one connection
 * where the server offers HTTP/2 (TLS with ALPN; otherwise HTTP/1.1 as before).
 * The Pool is required on the first send, not at import (see undiciPool).
 *
 * Its sockets never keep the process alive, not even with a request in flight:
 * what holds a process for the tracker is a flush() or close() someone awaits, and
 * only until its deadline (docs/delivery.md). undici refs a socket while it has
 * requests; the connector below makes that a no-op for the sockets it opens.
 */
export function createPoolTransport (opts: PoolTransportOptions): PoolTransport {
  let dispatcher: Dispatcher | undefined = opts.dispatcher
  const owned = dispatcher === undefined
  const get = (): Dispatcher => {
    if (dispatcher === undefined) {
      const Pool = undiciPool()
      const connect = undiciBuildConnector()({ timeout: opts.requestTimeoutMs, allowH2: true })
      dispatcher = new Pool(opts.origin, {
        connections: opts.connections,
        pipelining: 1,
        allowH2: true,
        keepAliveTimeout: opts.keepAliveTimeoutMs,
        keepAliveMaxTimeout: opts.keepAliveTimeoutMs,
        // Backstops only: the tracker's own deadline (an AbortSignal) fires first.
        headersTimeout: opts.requestTimeoutMs + 1_000,
        bodyTimeout: opts.requestTimeoutMs + 1_000,
        connect: (options, callback) => connect(options, (err, socket) => {
          if (err !== null || socket === null) return callback(err ?? new Error('no socket'), null)
          holdsNoProcess(socket)
          callback(null, socket)
        })
      })
    }
    return dispatcher
  }

  const start = (path: string, body: string): Exchange => new PoolExchange(get(), opts.origin, path, body)
  return {
    start,
    send (req: TransportRequest): Promise<TransportResponse> {
      const { signal } = req
      if (signal.aborted) return Promise.reject(abortReason(signal))
      const exchange = start(req.path, req.body)
      const onAbort = (): void => exchange.abort(abortReason(signal))
      signal.addEventListener('abort', onAbort)
      return exchange.answer.finally(() => signal.removeEventListener('abort', onAbort))
    },
    async close (): Promise<void> {
      if (owned && dispatcher !== undefined) await dispatcher.close()
    },
    async destroy (): Promise<void> {
      if (owned && dispatcher !== undefined) await dispatcher.destroy()
    }
  }
}

function holdsNoProcess (socket: { unref: () => unknown, ref: () => unknown }): void {
  socket.unref()
  socket.ref = () => socket
}

const is2xx = (status: number): boolean => status >= 200 && status < 300

/**
 * One request through undici's dispatch API, with a handler of our own rather
 * than request(): no response stream or body promise per request, and the
 * answer is handled as undici parses it.
 *
 * The status decides the outcome: a 2xx whose body breaks off is still a 2xx;
 * of any other answer, the first MAX_ERROR_BODY_CHARS of the body are kept for
 * reports and the rest is discarded with the socket.
 *
 * An object of a class, not an object literal of closures: after a burst, V8 may decide that a
 * literal's allocation site makes long-lived objects and allocate them in the old generation from
 * then on, and everything such a handler refers to (its closures, the response headers, the body)
 * then outlives the young-generation collections until a full one. An instance of a class is never
 * allocated old by that decision.
 */
class PoolExchange implements Exchange, Dispatcher.DispatchHandler {
  readonly answer: Promise<TransportResponse>
  #resolve!: (res: TransportResponse) => void
  #reject!: (err: unknown) => void
  #controller: Dispatcher.DispatchController | undefined
  #abortedWith: Error | undefined
  #settled = false
  #status = 0
  #headers: TransportResponse['headers'] = {}
  #text = ''

  constructor (dispatcher: Dispatcher, origin: string, path: string, body: string) {
    this.answer = new Promise<TransportResponse>((resolve, reject) => { this.#resolve = resolve; this.#reject = reject })
    try {
      dispatcher.dispatch({ origin, path, method: 'POST', headers: HEADERS, body }, this)
    } catch (err) {
      // A dispatcher that throws (a closed one, bad arguments) fails the attempt like a network error.
      this.#fail(err)
    }
  }

  /** A request still queued in the dispatcher is stopped when it would start (onRequestStart). */
  abort (reason: Error): void {
    if (this.#settled) return
    this.#abortedWith = reason
    this.#controller?.abort(reason)
    this.#fail(reason)
  }

  onRequestStart (controller: Dispatcher.DispatchController): void {
    this.#controller = controller
    if (this.#abortedWith !== undefined) controller.abort(this.#abortedWith)
  }

  onResponseStart (_c: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[]>): void {
    // 1xx (103 Early Hints, 102 Processing) is not the answer: a reset or a deadline after it is a network failure.
    if (statusCode < 200) return
    this.#status = statusCode
    this.#headers = headers
  }

  onResponseData (controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (is2xx(this.#status) || this.#settled) return
    this.#text += chunk.toString('utf8')
    if (this.#text.length >= MAX_ERROR_BODY_CHARS) {
      this.#answer()
      controller.abort(new Error('error body read far enough'))
    }
  }

  onResponseEnd (): void { this.#answer() }

  /** After the status line, the status decides: keep what arrived of the body. */
  onResponseError (_c: Dispatcher.DispatchController, err: Error): void {
    if (this.#status !== 0) this.#answer()
    else this.#fail(err)
  }

  #answer (): void {
    if (this.#settled) return
    this.#settled = true
    const status = this.#status
    this.#resolve({ status, headers: this.#headers, body: is2xx(status) ? '' : this.#text.slice(0, MAX_ERROR_BODY_CHARS).trim() })
  }

  #fail (err: unknown): void {
    if (this.#settled) return
    this.#settled = true
    this.#reject(err)
  }
}

function abortReason (signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('the request was aborted')
}

/**
 * Reads at most `maxChars` of an error body; the rest is discarded with the
 * socket. The status already decided the outcome, so a body that breaks off
 * only shortens the report.
 */
export async function readStart (body: AsyncIterable<Buffer>, maxChars = MAX_ERROR_BODY_CHARS): Promise<string> {
  let text = ''
  try {
    for await (const chunk of body) {
      text += chunk.toString('utf8')
      if (text.length >= maxChars) break
    }
  } catch {
    // Keep what arrived.
  }
  return text.slice(0, maxChars).trim()
}
