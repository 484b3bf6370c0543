import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { systemClock } from '../shared/clock'
import { readKoId, resolveCookieOptions, serializeKoId, type CookieOptions } from './cookie'
import { createDefaultLogger, Reporter, type LoggerLike } from '../shared/logger'
import { ConfigError } from '../shared/errors'
import { checkFunction, checkKnownKeys, checkLogger } from '../shared/checks'
import { DEFAULTS } from '../tracker'
import { koala } from '../singleton'
import { Visitor, type KoalaVisitor, type VisitorHooks, type VisitorTracker } from './visitor'

/*
 * Express integration. Nothing here requires 'express' at run time: the
 * middleware only uses Node's request and response, plus `req.secure` and
 * `req.originalUrl` when Express provides them, so it works with Express 4
 * and 5 (and plain node:http). The types below add `req.koala` to Express.
 */
declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** Set by koalaMiddleware(): the tracker's calls, bound to this visitor. */
      koala: KoalaVisitor
    }
  }
}

export interface KoalaMiddlewareOptions {
  /** Where calls go. Default: the process singleton (`koala`), configured by init() or the environment. */
  tracker?: VisitorTracker
  /** How a minted ko_id cookie is set. Checked when the middleware is created. */
  cookie?: CookieOptions
  /**
   * The visitor's known email, asked at each call, e.g. `req => req.user?.email`.
   * Return undefined when unknown. A resolver that throws is contained (logged) and the call goes without an email.
   */
  resolveEmail?(req: Express.Request & IncomingMessage): string | null | undefined
  /** Where a throwing resolveEmail is reported. Default: warnings to stderr. */
  logger?: LoggerLike
}

type Req = IncomingMessage & { koala?: KoalaVisitor, secure?: unknown, originalUrl?: unknown }

/** The connect-style middleware koalaMiddleware() returns; fits app.use() in Express 4 and 5. */
export type KoalaMiddleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void

function isSecure (req: Req): boolean {
  return req.secure === true || (req.socket as { encrypted?: unknown }).encrypted === true
}

function appendSetCookie (res: ServerResponse, cookie: string): void {
  const prev = res.getHeader('set-cookie')
  res.setHeader('set-cookie', prev === undefined ? cookie : Array.isArray(prev) ? [...prev, cookie] : [String(prev), cookie])
}

/**
 * Reads the visitor's `ko_id` cookie (parsing the Cookie header itself), mints
 * a UUID v4 and sets the cookie when it is missing or not a valid UUID, and
 * puts `req.koala` on the request. Throws a ConfigError at creation for bad
 * options; at request time it never throws.
 */
export function koalaMiddleware (options: KoalaMiddlewareOptions = {}): KoalaMiddleware {
  checkMiddlewareOptions(options)
  const cookie = resolveCookieOptions(options.cookie)
  const tracker = options.tracker ?? koala
  let reporter: Reporter | undefined
  const warn = (key: string, err: unknown, message: string): void => {
    reporter ??= new Reporter(options.logger ?? createDefaultLogger(), systemClock, DEFAULTS.logSummaryIntervalMs)
    reporter.note(key, 'warn', { err }, message)
  }
  const hooks: VisitorHooks<Req> = {
    resolveEmail: options.resolveEmail as VisitorHooks<Req>['resolveEmail'],
    onResolveError: (err) => { warn('resolveEmail', err, 'koala-tracker: resolveEmail threw; the call was recorded without an email') },
    onResolvePromise: () => {
      warn('resolveEmail:promise', undefined, 'koala-tracker: resolveEmail returned a Promise; it must return the email itself, ' +
        'so the call was recorded without an email')
    }
  }
  return function koalaTracker (request, res, next) {
    const req = request as Req
    if (req.koala === undefined) {
      let id = readKoId(req.headers.cookie)
      const isNew = id === undefined
      if (id === undefined) {
        id = randomUUID()
        if (res.headersSent) {
          warn('cookie:headersSent', undefined, 'koala-tracker: the response had begun before koalaMiddleware ran, so the ko_id cookie ' +
            'was not set and this visitor gets a new id on the next request; mount it before anything that responds')
        } else {
          try {
            appendSetCookie(res, serializeKoId(id, cookie, cookie.secure === 'auto' ? isSecure(req) : cookie.secure))
          } catch (err) {
            // A response object that refuses the header must not fail the request.
            warn('cookie:set', err, 'koala-tracker: the ko_id cookie could not be set')
          }
        }
      }
      const url = typeof req.originalUrl === 'string' ? req.originalUrl : req.url
      req.koala = new Visitor(tracker, id, isNew, req, url, hooks)
    }
    next()
  }
}

export type { CookieOptions } from './cookie'
export type { CallOptions, KoalaVisitor, VisitorIdentify, VisitorTracker } from './visitor'
export { KO_ID } from './cookie'
export { gracefulShutdown } from '../shutdown'
export type { ShutdownOptions, ShutdownHook, ShutdownResult } from '../shutdown'

/** Wrong options fail here, when the app starts, rather than in every request. */
function checkMiddlewareOptions (options: KoalaMiddlewareOptions): void {
  if (typeof options !== 'object' || options === null) throw new ConfigError('options', 'must be an object')
  checkKnownKeys(options, ['tracker', 'cookie', 'resolveEmail', 'logger'])
  const t = options.tracker as Partial<Record<keyof VisitorTracker, unknown>> | null | undefined
  if (t !== undefined && (typeof t !== 'object' || t === null || typeof t.track !== 'function' ||
    typeof t.identify !== 'function' || typeof t.page !== 'function')) {
    throw new ConfigError('tracker', 'must be a tracker (from createTracker(), or koala) with track(), identify() and page()')
  }
  checkFunction('resolveEmail', options.resolveEmail)
  checkLogger(options.logger)
}
