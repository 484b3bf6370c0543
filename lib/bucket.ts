import type { randomUUID as RandomUUID } from 'node:crypto'
import { EVENTS, IDENTIFIES, LIST_NAMES, NEEDS_MESSAGE_ID, PAGE_VIEWS, type Captured, type ListIndex } from './capture'
import type { Route } from './route'

/** A sealed bucket: one request body and what it takes to deliver it. */
export interface Batch {
  readonly route: Route
  /** Built once, right after the bucket is sealed: every retry sends it unchanged. */
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

/** A bucket's items, taken out of it, before its body is built. */
export interface Taken {
  readonly route: Route
  readonly primary: string | undefined
  readonly secondary: string | undefined
  readonly lists: Lists
  readonly items: number
  readonly bytes: number
}

/** Builds the request body of taken items: done once per batch (see buildBody). */
export function toBatch (t: Taken): Batch {
  return {
    route: t.route,
    body: buildBody(t.route, t.primary, t.secondary, t.lists),
    items: t.items,
    bytes: t.bytes,
    attempts: 0,
    firstAttemptAt: Number.NaN,
    settled: false,
    waiters: undefined,
    abort: undefined
  }
}

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
 * It is built right after the bucket is sealed, not on the first attempt: a backlog of
 * one string per batch costs the GC far less than one string per item.
 */
function buildBody (route: Route, primary: string | undefined, secondary: string | undefined, lists: Lists): string {
  // One flat array of flat pieces and one join: joining strings built with `+`
  // would make V8 flatten each of them first (a copy and an allocation per item).
  const out: string[] = ['{']
  if (primary !== undefined) out.push('"', route.primaryField, '":', JSON.stringify(primary))
  if (secondary !== undefined) out.push(out.length > 1 ? ',"' : '"', route.secondaryField, '":', JSON.stringify(secondary))
  for (let i = 0 as ListIndex; i < 3; i++) {
    const list = lists[i]
    if (list === undefined) continue
    out.push(out.length > 1 ? ',"' : '"', LIST_NAMES[i], '":[')
    for (let j = 0; j < list.length; j++) {
      if (j > 0) out.push(',')
      const item = list[j]
      if (item.charCodeAt(0) === NEEDS_MESSAGE_ID) out.push('{"message_id":"', newMessageId(), '"')
      out.push(item)
    }
    out.push(']')
  }
  out.push('}')
  return out.join('')
}

/**
 * One person's (or account's) unsent items, as JSON strings per array. Taking
 * them empties it for the person's next calls (see Batcher).
 */
export class Bucket {
  readonly key: string
  readonly route: Route
  readonly primary: string | undefined
  /** Set by the first call that brings one; cleared when sealed. */
  secondary: string | undefined
  // One field per array rather than a tuple, and each array created holding its
  // first item (`[]` then push() reserves 17 slots): a bucket per person, up to
  // maxBuckets of them, is most of what a process tracking many people holds.
  #events: string[] | undefined
  #identifies: string[] | undefined
  #pageViews: string[] | undefined
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
    this.items++
    this.bytes += c.bytes
    switch (c.list) {
      case EVENTS: return this.#events === undefined ? (this.#events = [c.json]).length : this.#events.push(c.json)
      case IDENTIFIES: return this.#identifies === undefined ? (this.#identifies = [c.json]).length : this.#identifies.push(c.json)
      case PAGE_VIEWS: return this.#pageViews === undefined ? (this.#pageViews = [c.json]).length : this.#pageViews.push(c.json)
    }
  }

  /** Hands over what the bucket holds (cheap: no body is built) and empties it. */
  take (): Taken {
    const taken: Taken = {
      route: this.route,
      primary: this.primary,
      secondary: this.secondary,
      lists: [this.#events, this.#identifies, this.#pageViews],
      items: this.items,
      bytes: this.bytes
    }
    this.#events = this.#identifies = this.#pageViews = undefined
    this.items = 0
    this.bytes = 0
    this.secondary = undefined
    return taken
  }
}
