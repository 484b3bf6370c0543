import { isPlainObject, type IdentifyCall, type JsonObject, type PageCall, type TrackCall } from '../tracker'

/** What a visitor handle needs from a tracker: a Tracker, or the singleton `koala`. */
export interface VisitorTracker {
  track(call: TrackCall): void
  identify(call: IdentifyCall): void
  page(call: PageCall): void
}

/** Per-call extras for track() and page(); both are filled in when not given. */
export interface CallOptions {
  message_id?: string | null
  sent_at?: string | Date | null
}

export interface VisitorIdentify {
  /** Default: the middleware's resolveEmail(req), also when this is blank (an empty form field). */
  email?: string | null
  traits?: JsonObject | null
  sent_at?: string | Date | null
}

/** `req.koala`: the tracker's calls, bound to this request's visitor (ko_id) and known email. */
export interface KoalaVisitor {
  /** The visitor's ko_id, as read from the cookie or minted for this request. */
  readonly profileId: string
  /** Whether this request minted the ko_id (and set the cookie, unless the response had already begun: that is logged). */
  readonly isNew: boolean
  /** Records a custom event, e.g. `track('Signed Up', { plan: 'pro' })`. */
  track(event: string, properties?: JsonObject | null, options?: CallOptions): void
  /** Sends traits and links this visitor with an email (given, or from resolveEmail). */
  identify(call?: VisitorIdentify): void
  /** Records a page view; `properties.path` defaults to the request's path, without the query. */
  page(name?: string | null, properties?: JsonObject | null, options?: CallOptions): void
}

/** Shared by every handle of one middleware. */
export interface VisitorHooks<Req> {
  resolveEmail: ((req: Req) => unknown) | undefined
  /** Called when resolveEmail throws; the call then goes without an email. */
  onResolveError: (err: unknown) => void
  /** Called when resolveEmail returns a Promise (it must be synchronous); the call goes without an email. */
  onResolvePromise: () => void
}

const blank = (v: unknown): boolean => v === undefined || v === null || (typeof v === 'string' && v.trim() === '')

/** A Map, Date or class instance is passed on as given, for the tracker to refuse. */
const isPlainJson = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && isPlainObject(v)

/** Holds only references: one small object per request, no closures. */
export class Visitor<Req> implements KoalaVisitor {
  readonly profileId: string
  readonly isNew: boolean
  readonly #tracker: VisitorTracker
  readonly #req: Req
  readonly #url: string | undefined
  readonly #hooks: VisitorHooks<Req>

  constructor (tracker: VisitorTracker, profileId: string, isNew: boolean, req: Req, url: string | undefined, hooks: VisitorHooks<Req>) {
    this.#tracker = tracker
    this.profileId = profileId
    this.isNew = isNew
    this.#req = req
    this.#url = url
    this.#hooks = hooks
  }

  track (event: string, properties?: JsonObject | null, options?: CallOptions): void {
    this.#tracker.track({
      profile_id: this.profileId, email: this.#email(), event, properties, message_id: options?.message_id, sent_at: options?.sent_at
    })
  }

  identify (call?: VisitorIdentify): void {
    // A blank email (an empty form field) is no email: resolveEmail is asked, as when none is given.
    const given = call?.email
    const email = blank(given) ? this.#email() : given
    this.#tracker.identify({ profile_id: this.profileId, email, traits: call?.traits, sent_at: call?.sent_at })
  }

  page (name?: string | null, properties?: JsonObject | null, options?: CallOptions): void {
    const path = this.#path()
    let props = properties
    // Spreading runs the caller's getters (and a Proxy's traps): one that throws must not reach the
    // request handler. The tracker then meets it while serialising, and reports the call as invalid.
    // Nor is a toJSON() of its own copied: the tracker is given the object itself, and checks what it becomes.
    try {
      if (path !== undefined && (properties == null || (isPlainJson(properties) && !Object.hasOwn(properties, 'toJSON')))) {
        props = { path, ...properties }
      }
    } catch {
      props = properties
    }
    this.#tracker.page({
      profile_id: this.profileId, email: this.#email(), name, properties: props, message_id: options?.message_id, sent_at: options?.sent_at
    })
  }

  /** Asked at each call, not once: a login handler sets req.user after this request began. */
  #email (): string | undefined {
    const resolve = this.#hooks.resolveEmail
    if (resolve === undefined) return undefined
    try {
      const email = resolve(this.#req)
      if (typeof email === 'string') return email.trim() !== '' ? email : undefined
      if (typeof (email as PromiseLike<unknown> | null)?.then === 'function') {
        // Nobody else holds this promise: its rejection would crash the process.
        (email as PromiseLike<unknown>).then(undefined, () => {})
        this.#hooks.onResolvePromise()
      }
      return undefined
    } catch (err) {
      this.#hooks.onResolveError(err)
      return undefined
    }
  }

  #path (): string | undefined {
    const url = this.#url
    if (url === undefined) return undefined
    const end = url.search(/[?#]/)
    return end === -1 ? url : url.slice(0, end)
  }
}
