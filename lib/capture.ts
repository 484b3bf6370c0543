// Named imports: `import * as` compiles to CommonJS as a getter per export, read on every call.
import { account, accountIdentifyCall, identifyCall, pageView, person, trackEvent } from './generated/validators'
import type { Validator } from './generated/validators'
import { describeAjvError, typeName } from './describe-error'
import { InputError, type CallName } from './errors'
import { normalizeDomain, secondaryKey } from './identity'
import { isoTime } from './iso-time'

export type JsonObject = Record<string, unknown>

/** Who a profile call is about: profile_id (the ko_id cookie), email, or both. */
export interface PersonFields {
  profile_id?: string | null
  email?: string | null
}
/** Which account a call is about: domain (recommended), account_id, or both. */
export interface AccountFields {
  domain?: string | null
  account_id?: string | null
}
export interface TrackCall extends PersonFields {
  event: string
  properties?: JsonObject | null
  message_id?: string | null
  sent_at?: string | Date | null
}
export interface IdentifyCall extends PersonFields {
  traits?: JsonObject | null
  sent_at?: string | Date | null
}
export interface PageCall extends PersonFields {
  name?: string | null
  properties?: JsonObject | null
  message_id?: string | null
  sent_at?: string | Date | null
}
export interface AccountTrackCall extends AccountFields {
  event: string
  properties?: JsonObject | null
  message_id?: string | null
  sent_at?: string | Date | null
}
export interface AccountIdentifyCall extends AccountFields {
  /** Account traits; put `group_id` here to tell apart several groupings of one company. */
  traits?: JsonObject | null
  sent_at?: string | Date | null
}

/** Index of the array an item goes to, in body order. */
export const EVENTS = 0
export const IDENTIFIES = 1
export const PAGE_VIEWS = 2
export type ListIndex = typeof EVENTS | typeof IDENTIFIES | typeof PAGE_VIEWS
export const LIST_NAMES = ['events', 'identifies', 'page_views'] as const

/**
 * An item whose message_id is to be generated is captured without its
 * `{"message_id":"<uuid>"` head, so it starts with a comma; the body builder
 * adds the id when the body is built (see bucket.ts). This keeps node:crypto
 * off the first call, and the UUID off the calls.
 */
export const NEEDS_MESSAGE_ID = 0x2c // ','
const MESSAGE_ID_HEAD_BYTES = '{"message_id":""'.length + 36

/** A call turned into what the buffer holds: its key and its item as JSON. */
export interface Captured {
  key: string
  /** profile_id (lower case) or domain. */
  primary: string | undefined
  /** email or account_id, as given. */
  secondary: string | undefined
  list: ListIndex
  json: string
  bytes: number
}

/** A profile_id is a validated UUID: its only capitals can be A-F. */
const CAPITAL_HEX = /[A-F]/
const PERSON_FIELDS: [string, string] = ['profile_id', 'email']
const ACCOUNT_FIELDS: [string, string] = ['domain', 'account_id']

function fail (call: CallName, errors: Validator['errors'], data: unknown, ids: [string, string]): never {
  const [field, reason] = describeAjvError(errors, data, ids)
  throw new InputError(call, field, reason)
}

const absent = (v: unknown): v is null | undefined => v === undefined || v === null

/**
 * Validates calls and captures them as JSON at call time. Serialising now
 * (not at send time) is what makes later mutation of `properties` harmless,
 * catches cycles and BigInts while the caller is still on the stack, and leaves
 * only a flat string in memory; bodies are then built by concatenation.
 */
export class Capturer {
  readonly #now: () => number
  readonly #maxItemBytes: number
  #isoMs = Number.NaN
  #iso = ''

  constructor (now: () => number, maxItemBytes: number) {
    this.#now = now
    this.#maxItemBytes = maxItemBytes
  }

  track (call: TrackCall): Captured {
    const c = 'track'
    this.#checkObject(c, call)
    const [key, primary, secondary] = this.#person(c, call)
    return this.#event(c, call, key, primary, secondary)
  }

  page (call: PageCall): Captured {
    const c = 'page'
    this.#checkObject(c, call)
    const [key, primary, secondary] = this.#person(c, call)
    const sentAt = this.#sentAt(c, call.sent_at)
    const name = absent(call.name) ? undefined : call.name
    const properties = absent(call.properties) ? undefined : call.properties
    const messageId = absent(call.message_id) ? undefined : call.message_id
    const item = { type: 'page', name, properties, message_id: messageId, sent_at: sentAt }
    if (!pageView(item)) fail(c, pageView.errors, item, PERSON_FIELDS)
    const json = this.#messageIdHead(messageId) + ',"type":"page"' +
      (name === undefined ? '' : ',"name":' + JSON.stringify(name)) +
      ',"properties":' + this.#object(c, 'properties', properties) +
      ',"sent_at":' + this.#stamp(sentAt) + '}'
    return this.#captured(c, 'properties', key, primary, secondary, 2, json)
  }

  identify (call: IdentifyCall): Captured {
    const c = 'identify'
    this.#checkObject(c, call)
    const [key, primary, secondary] = this.#person(c, call)
    return this.#identify(c, call, identifyCall, key, primary, secondary)
  }

  trackAccount (call: AccountTrackCall): Captured {
    const c = 'trackAccount'
    this.#checkObject(c, call)
    const [key, primary, secondary] = this.#account(c, call)
    return this.#event(c, call, key, primary, secondary)
  }

  identifyAccount (call: AccountIdentifyCall): Captured {
    const c = 'identifyAccount'
    this.#checkObject(c, call)
    const [key, primary, secondary] = this.#account(c, call)
    return this.#identify(c, call, accountIdentifyCall, key, primary, secondary)
  }

  #event (c: CallName, call: TrackCall | AccountTrackCall, key: string, primary?: string, secondary?: string): Captured {
    const sentAt = this.#sentAt(c, call.sent_at)
    const properties = absent(call.properties) ? undefined : call.properties
    const messageId = absent(call.message_id) ? undefined : call.message_id
    const item = { type: 'track', event: call.event, properties, message_id: messageId, sent_at: sentAt }
    if (!trackEvent(item)) fail(c, trackEvent.errors, item, PERSON_FIELDS)
    const json = this.#messageIdHead(messageId) + ',"type":"track","event":' + JSON.stringify(call.event) +
      ',"properties":' + this.#object(c, 'properties', properties) +
      ',"sent_at":' + this.#stamp(sentAt) + '}'
    return this.#captured(c, 'properties', key, primary, secondary, 0, json)
  }

  #identify (c: CallName, call: IdentifyCall | AccountIdentifyCall, validate: Validator, key: string, primary?: string, secondary?: string): Captured {
    const sentAt = this.#sentAt(c, call.sent_at)
    const traits = absent(call.traits) ? undefined : call.traits
    const item = { type: 'identify', traits, sent_at: sentAt }
    if (!validate(item)) fail(c, validate.errors, item, PERSON_FIELDS)
    const json = '{"type":"identify","traits":' + this.#object(c, 'traits', traits) + ',"sent_at":' + this.#stamp(sentAt) + '}'
    return this.#captured(c, 'traits', key, primary, secondary, 1, json)
  }

  #checkObject (c: CallName, call: unknown): void {
    if (typeof call !== 'object' || call === null || Array.isArray(call)) {
      throw new InputError(c, 'call', `must be an object, got ${typeName(call)}`)
    }
  }

  #person (c: CallName, call: PersonFields): [key: string, primary: string | undefined, secondary: string | undefined] {
    const profileId = absent(call.profile_id) ? undefined : call.profile_id
    const email = absent(call.email) ? undefined : call.email
    const ids = { profile_id: profileId, email }
    if (!person(ids)) fail(c, person.errors, ids, PERSON_FIELDS)
    if (profileId !== undefined) {
      // toLowerCase() copies even a lower-case id, and the copy is held as the bucket's key.
      const id = CAPITAL_HEX.test(profileId) ? profileId.toLowerCase() : profileId
      return [id, id, email]
    }
    return [secondaryKey(email as string, true), undefined, email]
  }

  #account (c: CallName, call: AccountFields): [key: string, primary: string | undefined, secondary: string | undefined] {
    let domain = absent(call.domain) ? undefined : call.domain
    if (typeof domain === 'string') domain = normalizeDomain(domain)
    const accountId = absent(call.account_id) ? undefined : call.account_id
    const ids = { domain, account_id: accountId }
    if (!account(ids)) fail(c, account.errors, ids, ACCOUNT_FIELDS)
    if (domain !== undefined) return [domain, domain, accountId]
    return [secondaryKey(accountId as string, false), undefined, accountId]
  }

  #sentAt (c: CallName, value: unknown): string | undefined {
    if (absent(value)) return undefined
    if (value instanceof Date) {
      if (Number.isNaN(value.getTime())) throw new InputError(c, 'sent_at', 'is an invalid Date')
      return value.toISOString()
    }
    return value as string // checked by the item schema
  }

  #messageIdHead (given: string | undefined): string {
    return given === undefined ? '' : '{"message_id":' + JSON.stringify(given)
  }

  #stamp (given: string | undefined): string {
    if (given !== undefined) return JSON.stringify(given)
    // Calls within one millisecond share the string.
    const ms = this.#now()
    if (ms !== this.#isoMs) {
      this.#isoMs = ms
      this.#iso = '"' + isoTime(ms) + '"'
    }
    return this.#iso
  }

  #object (c: CallName, field: string, value: JsonObject | undefined): string {
    if (value === undefined) return '{}'
    const proto = Object.getPrototypeOf(value)
    // Plain objects only (any realm): a Map, class instance or Date would be sent as {} or a string.
    if (proto !== null && Object.getPrototypeOf(proto) !== null) {
      throw new InputError(c, field, `must be a plain JSON object, got ${typeName(value)}`)
    }
    try {
      return JSON.stringify(value)
    } catch (err) {
      const why = err instanceof Error ? err.message.split('\n')[0] : String(err)
      throw new InputError(c, field, `cannot be converted to JSON (${why})`, { cause: err })
    }
  }

  #captured (c: CallName, field: string, key: string, primary: string | undefined, secondary: string | undefined,
    list: ListIndex, json: string): Captured {
    const bytes = Buffer.byteLength(json) + (json.charCodeAt(0) === NEEDS_MESSAGE_ID ? MESSAGE_ID_HEAD_BYTES : 0)
    if (bytes > this.#maxItemBytes) {
      throw new InputError(c, field, `makes the item ${bytes} bytes of JSON; the limit (maxItemBytes) is ${this.#maxItemBytes}`)
    }
    return { key, primary, secondary, list, json, bytes }
  }
}
