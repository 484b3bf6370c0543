import { LIST_NAMES, type Captured, type ListIndex } from './capture'
import type { Route } from './route'

/** A sealed bucket: one request body and what it takes to deliver it. */
export interface Batch {
  readonly route: Route
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

/** One person's (or account's) unsent items, as JSON strings per array. */
export class Bucket {
  readonly key: string
  readonly route: Route
  readonly primary: string | undefined
  secondary: string | undefined
  readonly #lists: [string[] | undefined, string[] | undefined, string[] | undefined] = [undefined, undefined, undefined]
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

  /** The request body, built by concatenating the JSON captured at call time. */
  body (): string {
    const parts: string[] = []
    if (this.primary !== undefined) parts.push(`"${this.route.primaryField}":${JSON.stringify(this.primary)}`)
    if (this.secondary !== undefined) parts.push(`"${this.route.secondaryField}":${JSON.stringify(this.secondary)}`)
    for (let i = 0 as ListIndex; i < 3; i++) {
      const list = this.#lists[i]
      if (list !== undefined) parts.push(`"${LIST_NAMES[i]}":[${list.join(',')}]`)
    }
    return '{' + parts.join(',') + '}'
  }

  seal (): Batch {
    return {
      route: this.route,
      body: this.body(),
      items: this.items,
      bytes: this.bytes,
      attempts: 0,
      firstAttemptAt: Number.NaN,
      settled: false,
      waiters: undefined,
      abort: undefined
    }
  }
}
