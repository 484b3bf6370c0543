import { EVENTS, LIST_NAMES, type Captured } from './capture'
import type { Route } from './route'

/**
 * A sealed bucket: one request's items and what it takes to deliver them. The
 * body is built on the first attempt (when a request slot is free, not when the
 * bucket is sealed) and every retry sends it unchanged.
 */
export interface Batch {
  readonly route: Route
  readonly primary: string | undefined
  readonly secondary: string | undefined
  /** The items' JSON per array (events, identifies, page_views; an empty one is absent), until the body is built. */
  lists: Lists | undefined
  body: string | undefined
  /** The items' places in the spool, if there is one: each is settled there with the batch. */
  readonly locs: number[] | undefined
  readonly items: number
  readonly bytes: number
  attempts: number
  settled: boolean
  /** Settled by a 2xx. */
  delivered: boolean
  /**
   * Its place in the order batches reach the Sender, from 1: a flush() waits
   * for the unsettled batches up to a number, and the batch holds no list of
   * who waits for it.
   */
  seq: number
  /** Made by its first attempt. */
  tries: Tries | undefined
}

/** What a batch's attempts need, apart from the batch. */
export interface Tries {
  /** Clock time of the first attempt. */
  readonly firstAt: number
  /** When its next attempt may go. */
  retryAt: number
  /** Aborts the attempt in flight. */
  abort: ((reason: Error) => void) | undefined
  /** Why the attempt in flight was aborted, if it was (its deadline, or close()). */
  abortedWith: Error | undefined
  /** The latest attempt, settled once its outcome is handled (close() waits for aborted ones). */
  attempt: Promise<void> | undefined
  /** An attempt went out and no answer came back (a reset, a deadline): Koala may have stored it. */
  unanswered: boolean
}

type Lists = [string[] | undefined, string[] | undefined, string[] | undefined]

/** The request body: the captured items joined, once. */
export function bodyOf (batch: Batch): string {
  if (batch.body !== undefined) return batch.body
  const { route, primary, secondary } = batch
  const lists = batch.lists as Lists
  const parts: string[] = []
  if (primary !== undefined) parts.push(`"${route.primaryField}":${JSON.stringify(primary)}`)
  if (secondary !== undefined) parts.push(`"${route.secondaryField}":${JSON.stringify(secondary)}`)
  for (let i = EVENTS; i < lists.length; i++) {
    const list = lists[i]
    if (list !== undefined) parts.push(`"${LIST_NAMES[i]}":[${list.join(',')}]`)
  }
  batch.body = `{${parts.join(',')}}`
  batch.lists = undefined
  return batch.body
}

/**
 * One person's (or account's) unsent items, as JSON strings per array. Sealing
 * takes them out and leaves the bucket empty for the person's next calls.
 */
export class Bucket {
  readonly route: Route
  readonly primary: string | undefined
  /** Set by the first call that brings one; cleared when sealed. */
  secondary: string | undefined
  // Made by the first item: a bucket waits empty in the LRU between its person's calls, and a sealed one
  // may wait in the deadline queue until its old deadline passes (many per person, with many people).
  #lists: Lists | undefined
  #locs: number[] | undefined
  items = 0
  bytes = 0
  /** When its first unsent item came: its deadline is flushIntervalMs later. */
  openedAt = 0
  /** Counts its openings, so a deadline set for an earlier opening is known to be stale. */
  opening = 0

  constructor (route: Route, primary: string | undefined, secondary: string | undefined) {
    this.route = route
    this.primary = primary
    this.secondary = secondary
  }

  /** Adds an item; returns how many items its array now holds. */
  add (c: Captured): number {
    this.items++
    this.bytes += c.bytes
    if (c.loc !== -1) (this.#locs ??= []).push(c.loc)
    const lists = this.#lists ??= [undefined, undefined, undefined]
    const list = lists[c.list]
    if (list === undefined) {
      lists[c.list] = [c.json]
      return 1
    }
    return list.push(c.json)
  }

  /** Hands over what the bucket holds and empties it. */
  seal (): Batch {
    const batch: Batch = {
      route: this.route,
      primary: this.primary,
      secondary: this.secondary,
      lists: this.#lists,
      body: undefined,
      locs: this.#locs,
      items: this.items,
      bytes: this.bytes,
      attempts: 0,
      settled: false,
      delivered: false,
      seq: 0,
      tries: undefined
    }
    this.#lists = undefined
    this.#locs = undefined
    this.items = 0
    this.bytes = 0
    this.secondary = undefined
    return batch
  }
}
