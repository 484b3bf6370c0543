import type { Dispatcher } from 'undici'
import { MAX_ERROR_BODY_CHARS } from './constants'
import { USER_AGENT } from './version'

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
  /**
   * True when send() lets go of the request's signal once its promise settles
   * (removes its listeners), so that a signal that was not aborted may be
   * passed to a later send(). Optional; without it every attempt gets a new one.
   */
  readonly reusesSignals?: boolean
  /** Graceful: lets requests in flight finish. */
  close(): Promise<void>
  /** Immediate: fails whatever is in flight. */
  destroy(): Promise<void>
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
 * Transport over one undici Pool: keep-alive, `connections` sockets, one
 * request per socket at a time. undici is required on the first send, not at
 * import (~100 ms of a cold start on a small machine).
 */
export function createPoolTransport (opts: PoolTransportOptions): Transport {
  let dispatcher: Dispatcher | undefined = opts.dispatcher
  const owned = dispatcher === undefined
  const get = (): Dispatcher => {
    if (dispatcher === undefined) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { Pool } = require('undici') as typeof import('undici')
      dispatcher = new Pool(opts.origin, {
        connections: opts.connections,
        pipelining: 1,
        keepAliveTimeout: opts.keepAliveTimeoutMs,
        keepAliveMaxTimeout: opts.keepAliveTimeoutMs,
        // Backstops only: the tracker's own deadline (an AbortSignal) fires first.
        headersTimeout: opts.requestTimeoutMs + 1_000,
        bodyTimeout: opts.requestTimeoutMs + 1_000,
        connect: { timeout: opts.requestTimeoutMs }
      })
    }
    return dispatcher
  }

  return {
    // undici removes its abort listener when a request ends (at the latest when its body closes).
    reusesSignals: true,
    async send (req: TransportRequest): Promise<TransportResponse> {
      const res = await get().request({
        origin: opts.origin,
        path: req.path,
        method: 'POST',
        headers: HEADERS,
        body: req.body,
        signal: req.signal
      })
      const headers = res.headers as Record<string, string | string[] | undefined>
      if (res.statusCode >= 200 && res.statusCode < 300) {
        // Always consume the body, or the socket cannot be reused.
        await res.body.dump()
        return { status: res.statusCode, headers, body: '' }
      }
      return { status: res.statusCode, headers, body: await readStart(res.body) }
    },
    async close (): Promise<void> {
      if (owned && dispatcher !== undefined) await dispatcher.close()
    },
    async destroy (): Promise<void> {
      if (owned && dispatcher !== undefined) await dispatcher.destroy()
    }
  }
}

/**
 * Reads at most MAX_ERROR_BODY_CHARS of an error body; the rest is discarded
 * with the socket. The status already decided the outcome, so a body that
 * breaks off only shortens the report.
 */
export async function readStart (body: AsyncIterable<Buffer>): Promise<string> {
  let text = ''
  try {
    for await (const chunk of body) {
      text += chunk.toString('utf8')
      if (text.length >= MAX_ERROR_BODY_CHARS) break
    }
  } catch {
    // Keep what arrived.
  }
  return text.slice(0, MAX_ERROR_BODY_CHARS).trim()
}
