import { Buffer } from 'node:buffer'
import { randomUUID } from 'node:crypto'
import { account, accountIdentifyCall, identifyCall, pageView, person, trackEvent } from '../generated/validators'
import type { Validator } from '../generated/validators'
import { describeAjvError, typeName } from '../shared/describe-error'
import { InputError, type CallName } from '../shared/errors'
import { normalizeDomain, profileKey, secondaryKey } from './identity'
import { nearestName } from '../shared/near'

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

/** Given to every validator: without it, its destructuring defaults allocate ~50 bytes a call. */
const ROOT = Object.freeze({ instancePath: '' })

/** A call turned into what the buffer holds: its key and its item as JSON. */
export interface Captured {
  key: string
  /** profile_id (lower case) or domain. */
  primary: string | undefined
  /** email or account_id, as given. */
  secondary: string | undefined
  list: ListIndex
  /** The item's JSON, message_id included: what the body will hold, unchanged on every retry. */
  json: string
  /** Its UTF-8 bytes. */
  bytes: number
  /** Its place in the spool (0 and up) or in the fleet's stream (-2 and down), or -1. */
  loc: number
}

const PERSON_FIELDS: [string, string] = ['profile_id', 'email']
const ACCOUNT_FIELDS: [string, string] = ['domain', 'account_id']

/** The fields each call takes; anything else is a caller's mistake (a typo loses its data). */
const FIELDS: Record<CallName, ReadonlySet<string>> = {
  track: new Set(['profile_id', 'email', 'event', 'properties', 'message_id', 'sent_at']),
  page: new Set(['profile_id', 'email', 'name', 'properties', 'message_id', 'sent_at']),
  identify: new Set(['profile_id', 'email', 'traits', 'sent_at']),
  trackAccount: new Set(['domain', 'account_id', 'event', 'properties', 'message_id', 'sent_at']),
  identifyAccount: new Set(['domain', 'account_id', 'traits', 'sent_at'])
}

function fail (call: CallName, errors: Validator['errors'], data: unknown, ids: [string, string]): never {
  const [field, reason] = describeAjvError(errors, data, ids)
  throw new InputError(call, field, reason)
}

/**
 * Runs an item validator. A revoked Proxy among the caller's values makes the validator itself throw
 * (Array.isArray cannot look through one): that is bad input, refused naming the field, not a tracker bug.
 */
function validItem (c: CallName, validate: Validator, item: Record<string, unknown>): boolean {
  try {
    return validate(item, ROOT)
  } catch (err) {
    throw new InputError(c, unreadableField(item), `could not be read (${message(err)})`, { cause: err })
  }
}

function unreadableField (item: Record<string, unknown>): string {
  for (const [field, value] of Object.entries(item)) {
    if (typeof value !== 'object' || value === null) continue
    try {
      Array.isArray(value)
    } catch {
      return field
    }
  }
  return 'call'
}

/** Array.isArray on the caller's value, which throws for a revoked Proxy: refused naming the field. */
function isArrayInput (c: CallName, field: string, value: object): boolean {
  try {
    return Array.isArray(value)
  } catch (err) {
    throw new InputError(c, field, `could not be read (${message(err)})`, { cause: err })
  }
}

/** A plain object, of any realm: not a Map, Date, array or class instance (which JSON would send as {} or a string). */
export function isPlainObject (value: object): boolean {
  const proto = Object.getPrototypeOf(value)
  // This realm's Object.prototype first: asking it for its own prototype is a runtime call.
  return proto === null || proto === Object.prototype || Object.getPrototypeOf(proto) === null
}

const message = (err: unknown): string => err instanceof Error ? err.message.split('\n')[0] : String(err)

/**
 * Fields are read once each (what is checked is what is sent), by name in one
 * try block per call: a getter that throws is the caller's mistake. Only then
 * are the call's fields read again, one by one, to name the one that throws.
 */
function unreadable (c: CallName, call: object, err: unknown): InputError {
  for (const field of FIELDS[c]) {
    try {
      void (call as Record<string, unknown>)[field]
    } catch (e) {
      return new InputError(c, field, `could not be read (${message(e)})`, { cause: e })
    }
  }
  return new InputError(c, 'call', `could not be read (${message(err)})`, { cause: err })
}

/** Unknown field names reported, at most: they come from the caller's objects, and each costs a log key for good. */
const MAX_UNKNOWN_FIELDS = 64
/** Traits the schemas type: checked as they will be serialised when they could answer differently (see #identify). */
const TYPED_TRAITS = ['email', 'group_id', 'billing_plan', 'vip', 'is_current_customer', 'headcount']

/**
 * Whether validating the live traits could see other values than JSON.stringify will: a toJSON() of
 * their own, a getter on a typed trait, or an object there (whose toJSON() could make it a string).
 */
function serialiseFirst (traits: object): boolean {
  if (Object.hasOwn(traits, 'toJSON')) return true
  for (const key of TYPED_TRAITS) {
    const d = Object.getOwnPropertyDescriptor(traits, key)
    if (d !== undefined && (d.get !== undefined || (typeof d.value === 'object' && d.value !== null))) return true
  }
  return false
}


/**
 * Validates calls and captures them as JSON at call time. Serialising now
 * (not at send time) is what makes later mutation of `properties` harmless,
 * catches cycles and BigInts while the caller is still on the stack, and leaves
 * only a flat string in memory; bodies are then built by concatenation. Each
 * field is read once, and what is validated is what is serialised: a getter or
 * a toJSON() that answered differently the second time would otherwise put in
 * the body what the schema never saw, and a body Koala refuses takes the
 * person's other events with it.
 */
export class Capturer {
  readonly #now: () => number
  readonly #maxItemBytes: number
  readonly #onUnknownField: (call: CallName, field: string, hint: string) => void
  /** Strict: a field the call does not take refuses the call (an InputError), every time. */
  readonly #strict: boolean
  /** Unknown field names already reported (each once), by call. */
  readonly #unknown = new Map<CallName, Set<string>>()
  #unknownCount = 0
  /** The last generated sent_at and its millisecond: calls in one millisecond share the string. */
  #nowMs = Number.NaN
  #nowIso = ''
  /**
   * The last profile_id that passed alone (no email), and what it keys: a person's calls come in runs
   * (one request's track and page), and the same id need not be checked and keyed again.
   */
  #lastProfileId: string | undefined
  #lastIds: readonly [string, string, undefined] = ['', '', undefined]

  /**
   * `onUnknownField` hears of a field the call does not take (it is left out): once per name, for
   * at most MAX_UNKNOWN_FIELDS names. With `strict` the call is refused instead.
   */
  constructor (now: () => number, maxItemBytes: number, onUnknownField: (call: CallName, field: string, hint: string) => void = () => {}, strict = false) {
    this.#now = now
    this.#maxItemBytes = maxItemBytes
    this.#onUnknownField = onUnknownField
    this.#strict = strict
  }

  track (call: TrackCall): Captured {
    const c = 'track'
    this.#checkCall(c, call)
    const [key, primary, secondary] = this.#person(c, call)
    return this.#event(c, call, key, primary, secondary)
  }

  page (call: PageCall): Captured {
    const c = 'page'
    this.#checkCall(c, call)
    const [key, primary, secondary] = this.#person(c, call)
    let sentAtIn, name, properties, messageId
    try {
      sentAtIn = call.sent_at; name = call.name; properties = call.properties; messageId = call.message_id
    } catch (err) {
      throw unreadable(c, call, err)
    }
    // null is absent.
    const sentAt = this.#sentAt(c, sentAtIn ?? undefined)
    name ??= undefined
    properties ??= undefined
    messageId ??= undefined
    const item = { type: 'page', name, properties, message_id: messageId, sent_at: sentAt }
    if (!validItem(c, pageView, item)) fail(c, pageView.errors, item, PERSON_FIELDS)
    const props = this.#object(c, 'properties', properties)
    const named = name === undefined ? '' : ',"name":' + JSON.stringify(name)
    const json = this.#head(messageId) + ',"type":"page"' + named + ',"properties":' + props + this.#tail(sentAt)
    return this.#captured(c, 'properties', props.length, key, primary, secondary, PAGE_VIEWS, json)
  }

  identify (call: IdentifyCall): Captured {
    const c = 'identify'
    this.#checkCall(c, call)
    const [key, primary, secondary] = this.#person(c, call)
    return this.#identify(c, call, identifyCall, key, primary, secondary)
  }

  trackAccount (call: AccountTrackCall): Captured {
    const c = 'trackAccount'
    this.#checkCall(c, call)
    const [key, primary, secondary] = this.#account(c, call)
    return this.#event(c, call, key, primary, secondary)
  }

  identifyAccount (call: AccountIdentifyCall): Captured {
    const c = 'identifyAccount'
    this.#checkCall(c, call)
    const [key, primary, secondary] = this.#account(c, call)
    return this.#identify(c, call, accountIdentifyCall, key, primary, secondary)
  }

  #event (c: CallName, call: TrackCall | AccountTrackCall, key: string, primary?: string, secondary?: string): Captured {
    let sentAtIn, event, properties, messageId
    try {
      sentAtIn = call.sent_at; event = call.event; properties = call.properties; messageId = call.message_id
    } catch (err) {
      throw unreadable(c, call, err)
    }
    const sentAt = this.#sentAt(c, sentAtIn ?? undefined)
    properties ??= undefined
    messageId ??= undefined
    const item = { type: 'track', event, properties, message_id: messageId, sent_at: sentAt }
    if (!validItem(c, trackEvent, item)) fail(c, trackEvent.errors, item, PERSON_FIELDS)
    const props = this.#object(c, 'properties', properties)
    // Validated: event is a string.
    const json = this.#head(messageId) + ',"type":"track","event":' + JSON.stringify(event) + ',"properties":' + props + this.#tail(sentAt)
    return this.#captured(c, 'properties', props.length, key, primary, secondary, EVENTS, json)
  }

  #identify (c: CallName, call: IdentifyCall | AccountIdentifyCall, validate: Validator, key: string, primary?: string, secondary?: string): Captured {
    let sentAtIn, given
    try {
      sentAtIn = call.sent_at; given = call.traits
    } catch (err) {
      throw unreadable(c, call, err)
    }
    const sentAt = this.#sentAt(c, sentAtIn ?? undefined)
    given ??= undefined
    // The schema looks inside traits (email, group_id, vip, ...). When the live object could show it
    // other values than JSON.stringify will see, it checks the JSON that is sent, parsed back (costly,
    // so only then). Anything but an object is left to the schema's own message.
    let traits: unknown = given
    let json: string | undefined
    if (typeof given === 'object' && !isArrayInput(c, 'traits', given) && serialiseFirst(given)) {
      json = this.#object(c, 'traits', given)
      traits = JSON.parse(json)
    }
    const item = { type: 'identify', traits, sent_at: sentAt }
    if (!validItem(c, validate, item)) fail(c, validate.errors, item, PERSON_FIELDS)
    json ??= this.#object(c, 'traits', given)
    // Identifies carry no message_id: Koala's schema has none for them.
    return this.#captured(c, 'traits', json.length, key, primary, secondary, IDENTIFIES, '{"type":"identify","traits":' + json + this.#tail(sentAt))
  }

  /** An object, with only the fields the call takes (others are reported, see onUnknownField). */
  #checkCall (c: CallName, call: unknown): void {
    if (typeof call !== 'object' || call === null || isArrayInput(c, 'call', call)) {
      throw new InputError(c, 'call', `must be an object, got ${typeName(call)}`)
    }
    const fields = FIELDS[c]
    // Cheap, and a misspelt field would otherwise lose its data without a word.
    try {
      for (const field in call as object) {
        if (!fields.has(field)) this.#unknownField(c, field, fields)
      }
    } catch (err) {
      if (err instanceof InputError) throw err
      throw new InputError(c, 'call', `could not be read (${message(err)})`, { cause: err })
    }
  }

  #unknownField (c: CallName, field: string, fields: ReadonlySet<string>): void {
    if (!this.#strict) {
      let seen = this.#unknown.get(c)
      if (seen === undefined) this.#unknown.set(c, seen = new Set())
      if (seen.has(field) || this.#unknownCount >= MAX_UNKNOWN_FIELDS) return
      seen.add(field)
      this.#unknownCount++
    }
    if (field.length > 64) field = field.slice(0, 64) + '\u2026'
    const near = nearestName(field, fields)
    const hint = near === undefined ? '' : ` (did you mean ${near}?)`
    if (this.#strict) throw new InputError(c, field, `is not a field of ${c}()${hint}`)
    this.#onUnknownField(c, field, hint)
  }

  #person (c: CallName, call: PersonFields): readonly [key: string, primary: string | undefined, secondary: string | undefined] {
    let profileId, email
    try {
      profileId = call.profile_id ?? undefined; email = call.email ?? undefined
    } catch (err) {
      throw unreadable(c, call, err)
    }
    if (email === undefined && profileId !== undefined && profileId === this.#lastProfileId) return this.#lastIds
    const ids = { profile_id: profileId, email }
    if (!person(ids, ROOT)) fail(c, person.errors, ids, PERSON_FIELDS)
    if (profileId !== undefined) {
      const id = profileKey(profileId)
      if (email !== undefined) return [id, id, email]
      this.#lastProfileId = profileId
      return (this.#lastIds = [id, id, undefined])
    }
    return [secondaryKey(email as string, true), undefined, email]
  }

  #account (c: CallName, call: AccountFields): [key: string, primary: string | undefined, secondary: string | undefined] {
    let domain, accountId
    try {
      domain = call.domain ?? undefined; accountId = call.account_id ?? undefined
    } catch (err) {
      throw unreadable(c, call, err)
    }
    if (typeof domain === 'string') domain = normalizeDomain(domain)
    const ids = { domain, account_id: accountId }
    if (!account(ids, ROOT)) fail(c, account.errors, ids, ACCOUNT_FIELDS)
    if (domain !== undefined) return [domain, domain, accountId]
    return [secondaryKey(accountId as string, false), undefined, accountId]
  }

  #sentAt (c: CallName, value: unknown): string | undefined {
    if (value === undefined) return undefined
    if (typeof value === 'string') return value // checked by the item schema
    // Any realm's Date (a vm context, a test runner's), not only this one's.
    let ms: number | undefined
    try {
      if (Object.prototype.toString.call(value) === '[object Date]') ms = Date.prototype.getTime.call(value)
    } catch (err) { // a Proxy, or an object that only says it is a Date
      throw new InputError(c, 'sent_at', `could not be read as a Date (${message(err)})`, { cause: err })
    }
    if (ms === undefined) return value as string // not a string: the item schema refuses it
    if (Number.isNaN(ms)) throw new InputError(c, 'sent_at', 'is an invalid Date')
    return new Date(ms).toISOString()
  }

  /** An event's or page view's start: its message_id, given or new. */
  #head (given: string | undefined): string {
    return '{"message_id":' + (given === undefined ? '"' + randomUUID() + '"' : JSON.stringify(given))
  }

  /** The item's end, `,"sent_at":<time>}`: given, or now. */
  #tail (given: string | undefined): string {
    if (given !== undefined) return ',"sent_at":' + JSON.stringify(given) + '}'
    // Whole milliseconds: a clock may give fractions.
    const ms = Math.floor(this.#now())
    if (ms !== this.#nowMs) {
      this.#nowMs = ms
      this.#nowIso = new Date(ms).toISOString()
    }
    return ',"sent_at":"' + this.#nowIso + '"}'
  }

  /** The JSON of properties or traits, which must be a plain object and serialise to one. */
  #object (c: CallName, field: string, value: JsonObject | undefined): string {
    if (value === undefined) return '{}'
    let json: string | undefined
    try {
      if (!isPlainObject(value)) throw new InputError(c, field, `must be a plain JSON object, got ${typeName(value)}`)
      json = JSON.stringify(value) as string | undefined
    } catch (err) {
      if (err instanceof InputError) throw err
      throw new InputError(c, field, `cannot be converted to JSON (${message(err)})`, { cause: err })
    }
    // A toJSON() of its own may turn it into anything, undefined included (not JSON at all).
    if (typeof json !== 'string' || json.charCodeAt(0) !== 0x7b /* { */) {
      throw new InputError(c, field, `must serialise to a JSON object, but its toJSON() gave ${json === undefined ? 'undefined' : json.slice(0, 40)}`)
    }
    return json
  }

  /** `field` (properties or traits) is named when its JSON is most of an item too large; otherwise the call is. */
  #captured (c: CallName, field: string, fieldChars: number, key: string, primary: string | undefined, secondary: string | undefined,
    list: ListIndex, json: string): Captured {
    const bytes = Buffer.byteLength(json)
    if (bytes > this.#maxItemBytes) {
      const culprit = fieldChars * 2 > json.length ? field : 'call'
      throw new InputError(c, culprit, `makes the item ${bytes} bytes of JSON; the limit (maxItemBytes) is ${this.#maxItemBytes}`)
    }
    return { key, primary, secondary, list, json, bytes, loc: -1 }
  }
}
