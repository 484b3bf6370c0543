// The global Buffer is a getter on globalThis, called on every read; the module's export is a plain property.
import { Buffer } from 'node:buffer'
import type { BodyHolder, BodySlabs } from './body-slabs'
import { EVENTS, IDENTIFIES, LIST_NAMES, NEEDS_MESSAGE_ID, PAGE_VIEWS, type Captured, type ListIndex } from './capture'
import { MESSAGE_ID_HEAD_LENGTH, MESSAGE_ID_PIECE_LENGTH, MESSAGE_ID_TEMPLATE, messageIdPiece, writeMessageIds } from './message-id'
import type { Route } from './route'

/**
 * A sealed bucket: one request body and what it takes to deliver it. The body is built once,
 * right after the bucket is sealed, and every retry sends it unchanged: a string, or for the
 * built-in transport bytes in a slab (see BodySlabs), copied out of it if the batch waits to be retried.
 */
export interface Batch extends BodyHolder {
  readonly route: Route
  readonly items: number
  readonly bytes: number
  attempts: number
  settled: boolean
  /**
   * Its place in the order batches reach the Sender, from 1: a flush() waits
   * for the unsettled batches up to a number, and the batch holds no list of
   * who waits for it.
   */
  seq: number
  /** Made by its first attempt. */
  tries: Tries | undefined
}

/**
 * What a batch's attempts need, apart from the batch: a backlog of batches not tried yet
 * (S2 holds one per person) holds none of it, which is ~80 bytes a batch less.
 */
export interface Tries {
  /** Clock time of the first attempt. */
  readonly firstAt: number
  /** When its approved retry may go (the shared pause's end), and how long it was told to wait. */
  retryAt: number
  retryWaitMs: number
  /** Aborts the attempt in flight. */
  abort: AbortController | undefined
  /** The latest attempt, settled once its outcome is handled (close() waits for aborted ones). */
  attempt: Promise<void> | undefined
}

/** A list that holds one item is the item itself (see Bucket). */
type List = string[] | string | undefined
type Lists = [List, List, List]

/** A bucket's items, taken out of it, before its body is built. */
export interface Taken {
  readonly route: Route
  readonly primary: string | undefined
  readonly secondary: string | undefined
  readonly lists: Lists
  readonly items: number
  readonly bytes: number
  /** Events and page views that came with a message_id of their own (identifies never carry one). */
  readonly ownIds: number
}

/**
 * Builds the request body of taken items: done once per batch (see buildBody), as bytes when given slabs.
 * With slabs, an item that needs a message_id gets a template in the text, and its id's hex digits are
 * written into the slab afterwards: no string per id. A body that is not all ASCII (rare: its bytes and
 * characters do not line up) is built again with the ids in the text.
 */
export function toBatch (t: Taken, slabs?: BodySlabs): Batch {
  const mixed = t.ownIds !== 0
  let text = buildBody(t.route, t.primary, t.secondary, t.lists, t.items, mixed, slabs !== undefined)
  const batch: Batch = {
    route: t.route,
    body: text,
    bodyAt: 0,
    bodyEnd: text.length,
    items: t.items,
    bytes: t.bytes,
    attempts: 0,
    settled: false,
    seq: 0,
    tries: undefined
  }
  if (slabs === undefined) return batch
  let bytes = Buffer.byteLength(text)
  if (holes === 0 || bytes === text.length) {
    slabs.place(text, batch, bytes)
    if (holes !== 0) writeMessageIds(batch.body as Buffer, batch.bodyAt, holeAt, holes)
    return batch
  }
  text = buildBody(t.route, t.primary, t.secondary, t.lists, t.items, mixed, false)
  bytes = Buffer.byteLength(text)
  slabs.place(text, batch, bytes)
  return batch
}

/** Where buildBody left templates for ids: character offsets of their first hex digit, and how many. */
let holeAt: Int32Array = new Int32Array(64)
let holes = 0

/**
 * The request body, by concatenating the JSON captured at call time. Items
 * captured without a message_id get theirs here, once: the body is built once
 * per batch and every retry sends it unchanged, so the id never changes.
 * It is built right after the bucket is sealed, not on the first attempt: a backlog of
 * one string per batch costs the GC far less than one string per item.
 * `templates`: leave a template where an id goes, and its place in holeAt (see toBatch).
 */
function buildBody (route: Route, primary: string | undefined, secondary: string | undefined, lists: Lists, items: number,
  mixed: boolean, templates: boolean): string {
  // One flat array of flat pieces and one join: joining strings built with `+`
  // would make V8 flatten each of them first (a copy and an allocation per item).
  // Sized once for the most it can take, not grown push by push: 22 for the braces, the two ids and three
  // lists' brackets, and a comma, an id and the item per item.
  const out = new Array<string>(22 + 3 * items)
  let n = 0
  let chars = 0
  holes = 0
  out[n++] = '{'
  chars++
  if (primary !== undefined) {
    const id = JSON.stringify(primary)
    out[n++] = '"'; out[n++] = route.primaryField; out[n++] = '":'; out[n++] = id
    chars += 3 + route.primaryField.length + id.length
  }
  if (secondary !== undefined) {
    const open = n > 1 ? ',"' : '"'
    const id = JSON.stringify(secondary)
    out[n++] = open; out[n++] = route.secondaryField; out[n++] = '":'; out[n++] = id
    chars += open.length + route.secondaryField.length + 2 + id.length
  }
  for (let i = 0 as ListIndex; i < 3; i++) {
    const list = lists[i]
    if (list === undefined) continue
    const open = n > 1 ? ',"' : '"'
    out[n++] = open; out[n++] = LIST_NAMES[i]; out[n++] = '":['
    chars += open.length + LIST_NAMES[i].length + 3
    const one = typeof list === 'string'
    const count = one ? 1 : list.length
    for (let j = 0; j < count; j++) {
      const item = one ? list : list[j]
      if (j > 0) {
        out[n++] = ','
        chars++
      }
      // Identifies take no id. Without events or page views of their own ids (mixed), every other item needs one:
      // no need to read the item, which would flatten it.
      if (i !== IDENTIFIES && (!mixed || item.charCodeAt(0) === NEEDS_MESSAGE_ID)) {
        if (templates) {
          if (holes === holeAt.length) holeAt = grown(holeAt)
          holeAt[holes++] = chars + MESSAGE_ID_HEAD_LENGTH
          out[n++] = MESSAGE_ID_TEMPLATE
        } else {
          out[n++] = messageIdPiece()
        }
        chars += MESSAGE_ID_PIECE_LENGTH
      }
      out[n++] = item
      chars += item.length
    }
    out[n++] = ']'
    chars++
  }
  out[n++] = '}'
  out.length = n
  return out.join('')
}

function grown (a: Int32Array): Int32Array {
  const b = new Int32Array(a.length * 2)
  b.set(a)
  return b
}

/** Adds an item to a list (see Bucket): the item alone, then an array from the second on. */
function append (list: List, item: string): string[] | string {
  if (list === undefined) return item
  if (typeof list === 'string') return [list, item]
  list.push(item)
  return list
}

const count = (list: string[] | string): number => typeof list === 'string' ? 1 : list.length

/**
 * One person's (or account's) unsent items, as JSON strings per array. Taking
 * them empties it for the person's next calls (see Batcher).
 */
export class Bucket {
  readonly primary: string | undefined
  /** Set by the first call that brings one; cleared when sealed. */
  secondary: string | undefined
  // A bucket per person, up to maxBuckets of them, is most of what a process
  // tracking many people holds, and many of them hold a single item: so one field per
  // list rather than a tuple, a list of one item is the item itself, and the
  // bucket keeps neither its key nor its route (its cache knows both).
  #events: List
  #identifies: List
  #pageViews: List
  items = 0
  bytes = 0
  ownIds = 0

  constructor (primary: string | undefined, secondary: string | undefined) {
    this.primary = primary
    this.secondary = secondary
  }

  /** Adds an item; returns how many items its list now holds. */
  add (c: Captured): number {
    this.items++
    this.bytes += c.bytes
    if (!c.needsId && c.list !== IDENTIFIES) this.ownIds++
    switch (c.list) {
      case EVENTS: return count(this.#events = append(this.#events, c.json))
      case IDENTIFIES: return count(this.#identifies = append(this.#identifies, c.json))
      case PAGE_VIEWS: return count(this.#pageViews = append(this.#pageViews, c.json))
    }
  }

  /** Hands over what the bucket holds (cheap: no body is built) and empties it. */
  take (route: Route): Taken {
    const taken: Taken = {
      route,
      primary: this.primary,
      secondary: this.secondary,
      lists: [this.#events, this.#identifies, this.#pageViews],
      items: this.items,
      bytes: this.bytes,
      ownIds: this.ownIds
    }
    this.#events = this.#identifies = this.#pageViews = undefined
    this.items = 0
    this.bytes = 0
    this.ownIds = 0
    this.secondary = undefined
    return taken
  }
}
