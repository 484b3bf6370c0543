import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Clock, TimerHandle } from '../shared/clock'

/** What draining needs from a server: node:http and node:https servers (and Express's app.listen() result) fit. */
export interface DrainableServer {
  close(callback?: (err?: Error) => void): unknown
  closeIdleConnections?(): void
  closeAllConnections?(): void
  on(event: 'request', listener: (req: IncomingMessage, res: ServerResponse) => void): unknown
  removeListener(event: 'request', listener: (req: IncomingMessage, res: ServerResponse) => void): unknown
}

export interface DrainResult {
  /** Whether connections were still open at the deadline: HTTP ones were cut, and the drain ended without waiting for others. */
  forced: boolean
}

/**
 * Stops one server gracefully. From creation it keeps the set of responses in
 * flight (one Set entry per request), because Node's server.close() alone
 * leaves a keep-alive socket open after its last response until the
 * keep-alive timeout. Draining stops the listener, closes idle sockets, marks
 * every unsent response `Connection: close`, closes each socket as its last
 * response ends, and cuts whatever is left at the deadline.
 */
export class ServerDrain {
  readonly server: DrainableServer
  readonly #inFlight = new Set<ServerResponse>()
  #draining = false
  #done: Promise<DrainResult> | undefined

  /** One function for every response: 'close' listeners run with `this` set to the response. */
  readonly #onResponseClose: (this: ServerResponse) => void

  constructor (server: DrainableServer) {
    this.server = server
    const drain = this
    this.#onResponseClose = function (this: ServerResponse) {
      drain.#inFlight.delete(this)
      // A response whose headers went out before the drain began leaves a keep-alive socket: close it now it is idle.
      if (drain.#draining) drain.server.closeIdleConnections?.()
    }
    server.on('request', this.#onRequest)
  }

  readonly #onRequest = (_req: IncomingMessage, res: ServerResponse): void => {
    this.#inFlight.add(res)
    res.once('close', this.#onResponseClose)
    if (this.#draining) this.#closeAfter(res)
  }

  #closeAfter (res: ServerResponse): void {
    if (!res.headersSent) res.setHeader('connection', 'close')
  }

  /** Resolves once every connection is closed, or at the deadline after cutting the rest. */
  drain (timeoutMs: number, clock: Clock): Promise<DrainResult> {
    this.#done ??= new Promise(resolve => {
      this.#draining = true
      // close() first: if it throws, no deadline timer is left behind. Its callback never runs synchronously.
      this.server.close(() => {
        clock.clearTimeout(timer)
        resolve({ forced: false })
      })
      // Ref'd on purpose: the process must live until the drain is over.
      const timer: TimerHandle = clock.setTimeout(() => {
        this.server.closeAllConnections?.()
        // Not waiting for close(): an upgraded socket (a WebSocket) is no longer the server's to cut, and would hold it open.
        resolve({ forced: true })
      }, timeoutMs, true)
      for (const res of this.#inFlight) this.#closeAfter(res)
      this.server.closeIdleConnections?.()
    })
    return this.#done
  }

  dispose (): void {
    this.server.removeListener('request', this.#onRequest)
  }
}
