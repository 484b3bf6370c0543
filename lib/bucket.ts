import type { randomUUID as RandomUUID } from 'node:crypto'
import { LIST_NAMES, NEEDS_MESSAGE_ID, type Captured, type ListIndex } from './capture'
import type { Route } from './route'

/** A sealed bucket: one request body and what it takes to deliver it. */
export interface Batch {
  readonly route: Route
  /** Built on first read (the first attempt), then the same on every retry. */
  readonly body: string
  readonly items: number
  readonly bytes: number
  attempts: number
  /** Clock time of the first attempt; NaN before it. */
  firstAttemptAt: number
  settled: boolean
  /** flush()/close() calls waiting for this batch. */
  waiters: Array<{ settle(batch: Batch, delivered: boolean): void }> | undefined
  /** Aborts the attempt in flight. */
  abort: AbortController | undefined
}

type Lists = [string[] | undefined, string[] | undefined, string[] | undefined]

let uuid: typeof RandomUUID | undefined
/**
 * node:crypto is required when the first body is built rather than at import:
 * loading it costs ~6 ms, which would otherwise land on the first call.
 */
function newMessageId (): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  uuid ??= (require('node:crypto') as typeof import('node:crypto')).randomUUID
  return uuid()
}

/**
 * The request body, by concatenating the JSON captured at call time. Items
 * captured without a message_id get theirs here, once: the body is built once
 * per batch and every retry sends it unchanged, so the id never changes.
 */
function buildBody (route: Route, primary: string | undefined, secondary: string | undefined, lists: Lists): string {
  let body = '{'
  if (primary !== undefined) body += `"${route.primaryField}":${JSON.stringify(primary)}`
  if (secondary !== undefined) body += `${body.length > 1 ? ',' : ''}"${route.secondaryField}":${JSON.stringify(secondary)}`
  for (let i = 0 as ListIndex; i < 3; i++) {
    const list = lists[i]
    if (list === undefined) continue
    for (let j = 0; j < list.length; j++) {
      if (list[j].charCodeAt(0) === NEEDS_MESSAGE_ID) list[j] = '{"message_id":"' + newMessageId() + '"' + list[j]
    }
    body += `${body.length > 1 ? ',' : ''}"${LIST_NAMES[i]}":[${list.join(',')}]`
  }
  return body + '}'
}

/**
 * A sealed bucket. Its body is built when the sender first reads it, in a
 * microtask after the call that sealed it: the cost stays off track().
 */
class SealedBatch implements Batch {
  readonly route: Route
  readonly items: number
  readonly bytes: number
  attempts = 0
  firstAttemptAt = Number.NaN
  settled = false
  waiters: Batch['waiters'] = undefined
  abort: AbortController | undefined = undefined
  readonly #primary: string | undefined
  readonly #secondary: string | undefined
  #lists: Lists | undefined
  #body: string | undefined

  constructor (route: Route, primary: string | undefined, secondary: string | undefined, lists: Lists, items: number, bytes: number) {
    this.route = route
    this.#primary = primary
    this.#secondary = secondary
    this.#lists = lists
    this.items = items
    this.bytes = bytes
  }

  get body (): string {
    if (this.#body === undefined) {
      this.#body = buildBody(this.route, this.#primary, this.#secondary, this.#lists as Lists)
      this.#lists = undefined
    }
    return this.#body
  }
}

/**
 * One person's (or account's) unsent items, as JSON strings per array. Sealing
 * empties it for the person's next calls (see Batcher).
 */
export class Bucket {
  readonly key: string
  readonly route: Route
  readonly primary: string | undefined
  /** Set by the first call that brings one; cleared when sealed. */
  secondary: string | undefined
  #lists: Lists = [undefined, undefined, undefined]
  items = 0
  bytes = 0

  constructor (route: Route, key: string, primary: string | undefined, secondary: string | undefined) {
    this.route = route
    this.key = key
    this.primary = primary
    this.secondary = secondary
  }

  /** Adds an item; returns how many items its array now holds. */
  add (c: Captured): number {
    const list = (this.#lists[c.list] ??= [])
    list.push(c.json)
    this.items++
    this.bytes += c.bytes
    return list.length
  }

  /** Turns what the bucket holds into a Batch and empties it. */
  seal (): Batch {
    const batch = new SealedBatch(this.route, this.primary, this.secondary, this.#lists, this.items, this.bytes)
    this.#lists = [undefined, undefined, undefined]
    this.items = 0
    this.bytes = 0
    this.secondary = undefined
    return batch
  }
}
