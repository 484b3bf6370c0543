import type { Dispatcher } from 'undici'
import { MAX_ERROR_BODY_CHARS } from '../shared/constants'
import { readStart } from '../transport'

export interface DeletionHttpRequest {
  method: 'GET' | 'POST'
  /** Absolute path on the origin, e.g. /api/v1/deletion-requests. */
  path: string
  /** Includes Authorization: a custom transport must not log them. */
  headers: Readonly<Record<string, string>>
  /** JSON, for POST. */
  body?: string
  /** Aborted at the attempt's deadline. */
  signal: AbortSignal
}

export interface DeletionHttpResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  /** The whole body for a 2xx answer (at most MAX_RESPONSE_BYTES); the start of it otherwise. */
  body: string
}

/** The deletion client's only view of HTTP. Rejects on network errors and aborts. */
export interface DeletionTransport {
  request(request: DeletionHttpRequest): Promise<DeletionHttpResponse>
  close(): Promise<void>
}

/** A status answer carries one receipt per email; 50 receipts fit many times over. */
export const MAX_RESPONSE_BYTES = 4 * 1024 * 1024

export class ResponseTooLargeError extends Error {
  readonly code = 'KOALA_RESPONSE_TOO_LARGE'
  constructor () {
    super(`response body larger than ${MAX_RESPONSE_BYTES} bytes`)
  }
}

/**
 * HTTP over one small undici Pool, required on the first request like the
 * tracker's transport. Requests are sequential, so one connection is enough.
 */
export function createDeletionHttpTransport (opts: { origin: string, dispatcher?: Dispatcher, requestTimeoutMs: number }): DeletionTransport {
  let dispatcher: Dispatcher | undefined = opts.dispatcher
  const owned = dispatcher === undefined
  const get = (): Dispatcher => {
    if (dispatcher === undefined) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { Pool } = require('undici') as typeof import('undici')
      dispatcher = new Pool(opts.origin, {
        connections: 1,
        // Backstops only: the client's own deadline (an AbortSignal) fires first.
        headersTimeout: opts.requestTimeoutMs + 1_000,
        bodyTimeout: opts.requestTimeoutMs + 1_000,
        connect: { timeout: opts.requestTimeoutMs }
      })
    }
    return dispatcher
  }
  return {
    async request (req: DeletionHttpRequest): Promise<DeletionHttpResponse> {
      const res = await get().request({
        origin: opts.origin,
        path: req.path,
        method: req.method,
        headers: req.headers,
        body: req.body,
        signal: req.signal
      })
      const headers = res.headers as Record<string, string | string[] | undefined>
      const ok = res.statusCode >= 200 && res.statusCode < 300
      // Either way the body is read to its end or the socket dropped, never left pending.
      // Well past the 512 characters an error keeps: the client redacts the secret key before it cuts,
      // so a key echoed across the cut is still whole when it is looked for.
      return { status: res.statusCode, headers, body: ok ? await readAll(res.body) : await readStart(res.body, 16 * MAX_ERROR_BODY_CHARS) }
    },
    /** Idempotent; a later request opens a new Pool. */
    async close (): Promise<void> {
      if (!owned || dispatcher === undefined) return
      const closing = dispatcher
      dispatcher = undefined
      await closing.close()
    }
  }
}

async function readAll (body: AsyncIterable<Buffer>): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += chunk.length
    // Leaving the loop destroys the stream (and its socket).
    if (size > MAX_RESPONSE_BYTES) throw new ResponseTooLargeError()
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}
