import type { CallName, DeliveryError, FailureReason, IngestDisabledError, KoalaError } from '../shared/errors'
import type { SpoolProblem } from '../spool'
import type { DropReason } from './stats'

export type RouteName = 'profiles' | 'accounts'

/** Delivery outcomes a caller can subscribe to with tracker.on(). */
export interface TrackerEvents {
  /** A batch was accepted by Koala. */
  sent: { route: RouteName, items: number, status: number, attempts: number }
  /** An attempt failed and the batch will be sent again after delayMs. */
  retry: { route: RouteName, items: number, attempt: number, delayMs: number, status: number | undefined, detail: string }
  /** Accepted items that will never be delivered. */
  failed: { route: RouteName, items: number, reason: FailureReason, error: DeliveryError }
  /** A call was refused and not buffered. */
  dropped: { route: RouteName, call: CallName, reason: DropReason, error: KoalaError }
  /** Koala refused the project; the tracker stopped sending. Emitted once. */
  disabled: { error: IngestDisabledError }
  /**
   * A problem with the spool: `failed` (a write or sync failed; the spool stopped), `corrupt` (a torn or
   * corrupt record; the rest of its segment skipped), `version` (a segment of another format version, left
   * as it is), `read`, `ack` or `delete` (a file operation failed). Also logged.
   */
  spool: { kind: SpoolProblem, message: string }
}

export type EventName = keyof TrackerEvents
export type Listener<E extends EventName> = (payload: TrackerEvents[E]) => void

/**
 * A minimal typed emitter. Unlike node:events there is no special 'error'
 * event that throws when nobody listens, and a listener that throws is
 * contained (reported through onListenerError) instead of reaching the host.
 */
export class Emitter {
  readonly #listeners: { [E in EventName]?: Array<Listener<E>> } = {}
  readonly #onListenerError: (event: EventName, error: unknown) => void

  constructor (onListenerError: (event: EventName, error: unknown) => void) {
    this.#onListenerError = onListenerError
  }

  on<E extends EventName>(event: E, listener: Listener<E>): () => void {
    const list = (this.#listeners[event] ??= []) as Array<Listener<E>>
    list.push(listener)
    return () => this.off(event, listener)
  }

  off<E extends EventName>(event: E, listener: Listener<E>): void {
    const list = this.#listeners[event] as Array<Listener<E>> | undefined
    const i = list?.indexOf(listener) ?? -1
    if (i !== -1) list?.splice(i, 1)
  }

  /** Cheap check so payloads are only built when someone listens. */
  has (event: EventName): boolean {
    return (this.#listeners[event]?.length ?? 0) > 0
  }

  emit<E extends EventName>(event: E, payload: TrackerEvents[E]): void {
    const list = this.#listeners[event] as Array<Listener<E>> | undefined
    if (list === undefined) return
    for (const listener of list.slice()) {
      try {
        listener(payload)
      } catch (err) {
        this.#onListenerError(event, err)
      }
    }
  }
}
