import { EventEmitter } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { decodeSegment, DeletionEndpoint, isDeletionPath, type DeletionEndpointOptions, type DeletionEndpointStats, type FakeDeletionRequest, type Reply } from './deletion'
import * as validators from '../generated/batch-validators'
import { plural } from '../shared/plural'
import type { Validator } from '../generated/validators'

/**
 * A small Koala-compatible collector for local development, demos and tests.
 * It serves POST /web/projects/:key/batch and /accounts/batch, validates each
 * body against the same schemas as the tracker, and answers 200 or 400 with
 * the reason. Like Koala, it silently ignores requests without a User-Agent.
 * It also fakes the GDPR deletion API (see collector-deletion.ts).
 * A `fault` hook makes it misbehave on command (statuses, resets, hangs,
 * bodies cut short) for resilience tests.
 */

export type CollectorRoute = 'profiles' | 'accounts'

export interface CollectorRequest {
  route: CollectorRoute | 'deletion' | undefined
  projectKey: string | undefined
  method: string
  path: string
  /** 1-based count of requests so far, this one included. */
  seq: number
  headers: IncomingMessage['headers']
  body: string
}

export type Fault =
  /** Answer with this status instead (record: count the body as received first, as if the answer were lost after commit). */
  | { status: number, headers?: Record<string, string>, body?: string, record?: boolean }
  /** Destroy the connection without answering. */
  | { kind: 'reset', record?: boolean }
  /** Never answer (until the collector is closed). */
  | { kind: 'hang', record?: boolean }
  /** Store the body and answer 200, but cut the response body short. */
  | { kind: 'truncate' }
  /** Store the body and send the status line of a 200, but never finish the response body (until the collector is closed). */
  | { kind: 'stall' }

export interface CollectorOptions {
  /** Default 0 (any free port). */
  port?: number
  /** Default 127.0.0.1. */
  host?: string
  /** Only these project keys exist; others get 404. Default: any key. */
  projects?: string[]
  /** Keep every accepted body in `received`. Default true. */
  keepBodies?: boolean
  /** Largest body accepted, in bytes. Default 5 MiB. */
  maxBodyBytes?: number
  /** Handle every request this long after its body arrived, as a distant Koala would answer. Default 0. */
  latencyMs?: number
  /** Called for every request before it is handled; return a Fault to misbehave. */
  fault?: (req: CollectorRequest) => Fault | undefined
  /** The fake deletion API: which secret key it accepts, and when a request completes. */
  deletion?: DeletionEndpointOptions
}

export interface ReceivedBatch {
  route: CollectorRoute
  projectKey: string
  userAgent: string
  body: Record<string, unknown>
}

export interface CollectorStats {
  requests: number
  accepted: number
  rejected: number
  faults: number
  /** Requests dropped as bots because they had no User-Agent (Koala does the same, silently). */
  missingUserAgent: number
  profiles: { events: number, identifies: number, page_views: number, people: number }
  accounts: { events: number, identifies: number, accounts: number }
  /** Items whose message_id had been seen before. */
  duplicates: number
  deletion: DeletionEndpointStats
}

/** How the collector answered a request: `status` 0 when a fault left it unanswered. */
export interface CollectorAnswer {
  status: number
  fault: boolean
  /** Why it refused the request (its own 4xx), as its answer says. */
  error?: string
}

export interface Collector {
  readonly url: string
  readonly port: number
  readonly received: ReceivedBatch[]
  /** Deletion requests created through the fake GDPR API, in order. */
  readonly deletionRequests: readonly FakeDeletionRequest[]
  stats(): CollectorStats
  /** Every message_id seen, with how many times. */
  messageIds(): ReadonlyMap<string, number>
  /** Resolves once predicate() holds after some request (checked now, then after each request). */
  waitFor(predicate: () => boolean): Promise<void>
  /** A human-readable account of what was received. */
  summary(): string
  on(event: 'request', listener: (req: CollectorRequest, answer: CollectorAnswer) => void): this
  close(): Promise<void>
}

const ROUTE = /^\/web\/projects\/([^/]+)\/(batch|accounts\/batch)\/?$/

export async function startCollector (options: CollectorOptions = {}): Promise<Collector> {
  const keepBodies = options.keepBodies ?? true
  const latencyMs = options.latencyMs ?? 0
  const maxBodyBytes = options.maxBodyBytes ?? 5 * 1024 * 1024
  const projects = options.projects === undefined ? undefined : new Set(options.projects)
  const emitter = new EventEmitter()
  const received: ReceivedBatch[] = []
  const ids = new Map<string, number>()
  const people = new Set<string>()
  const accounts = new Set<string>()
  const sockets = new Set<Socket>()
  const deletion = new DeletionEndpoint(options.deletion)
  const stats: Omit<CollectorStats, 'deletion'> = {
    requests: 0,
    accepted: 0,
    rejected: 0,
    faults: 0,
    missingUserAgent: 0,
    profiles: { events: 0, identifies: 0, page_views: 0, people: 0 },
    accounts: { events: 0, identifies: 0, accounts: 0 },
    duplicates: 0
  }

  function record (route: CollectorRoute, projectKey: string, userAgent: string, body: Record<string, unknown>): void {
    const lists = route === 'profiles' ? (['events', 'identifies', 'page_views'] as const) : (['events', 'identifies'] as const)
    for (const name of lists) {
      const items = body[name] as Array<{ message_id?: string }> | undefined
      if (items === undefined) continue
      ;(stats[route] as Record<string, number>)[name] += items.length
      for (const item of items) {
        if (item.message_id === undefined) continue
        const seen = ids.get(item.message_id) ?? 0
        if (seen > 0) stats.duplicates++
        ids.set(item.message_id, seen + 1)
      }
    }
    if (route === 'profiles') {
      people.add(String(body.profile_id ?? body.email))
      stats.profiles.people = people.size
    } else {
      accounts.add(String(body.domain ?? body.account_id))
      stats.accounts.accounts = accounts.size
    }
    if (keepBodies) received.push({ route, projectKey, userAgent, body })
  }

  function answer (res: ServerResponse, status: number, payload: unknown, headers: Record<string, string> = {}): void {
    const text = typeof payload === 'string' ? payload : JSON.stringify(payload)
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers })
    res.end(text)
  }

  function handle (req: IncomingMessage, res: ServerResponse, raw: string, tooLarge: boolean): [CollectorRequest, CollectorAnswer] {
    stats.requests++
    const path = req.url ?? '/'
    const pathname = path.split('?')[0]
    const m = ROUTE.exec(pathname)
    const route: CollectorRequest['route'] = m !== null ? (m[2] === 'batch' ? 'profiles' : 'accounts') : isDeletionPath(pathname) ? 'deletion' : undefined
    // A malformed encoding names no project: 404, like any other unknown path.
    const projectKey = m === null ? undefined : decodeSegment(m[1])
    const info: CollectorRequest = { route, projectKey, method: req.method ?? 'GET', path, seq: stats.requests, headers: req.headers, body: raw }

    const fault = options.fault?.(info)
    // Decide first so a recorded fault stores only what a real server would have stored.
    const reply = route === 'deletion'
      ? deletion.reply(info.method, pathname, req.headers, raw)
      : batchReply(req, route, projectKey, raw, tooLarge)
    if (fault !== undefined) {
      stats.faults++
      if (('record' in fault && fault.record === true) || ('kind' in fault && (fault.kind === 'truncate' || fault.kind === 'stall'))) reply.commit()
      if ('status' in fault) {
        answer(res, fault.status, fault.body ?? { error: `fault injected: HTTP ${fault.status}` }, fault.headers)
        return [info, { status: fault.status, fault: true }]
      }
      if (fault.kind === 'reset') {
        req.socket.destroy()
      } else if (fault.kind === 'truncate' || fault.kind === 'stall') {
        // A 200 with the start of its body; truncate then cuts the connection once that is flushed.
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' })
        res.write('{"ok":')
        if (fault.kind === 'truncate') setImmediate(() => req.socket.destroy())
      }
      // 'hang': leave the request open; close() destroys the socket.
      return [info, { status: 0, fault: true }]
    }
    reply.commit()
    if (reply.status >= 400) stats.rejected++
    else stats.accepted++
    answer(res, reply.status, reply.payload)
    const error = (reply.payload as { error?: unknown } | null)?.error
    return [info, { status: reply.status, fault: false, ...(typeof error === 'string' ? { error } : {}) }]
  }

  function batchReply (req: IncomingMessage, route: CollectorRoute | undefined, projectKey: string | undefined, raw: string, tooLarge: boolean): Reply {
    const verdict = validate(req, route, projectKey, raw, tooLarge)
    if (!verdict.ok) return { status: verdict.status, payload: { error: verdict.error }, commit: () => {} }
    const userAgent = req.headers['user-agent'] ?? ''
    return {
      status: 200,
      payload: { ok: true },
      commit: () => {
        if (route === undefined || projectKey === undefined) return
        if (userAgent === '') stats.missingUserAgent++
        else record(route, projectKey, userAgent, verdict.body)
      }
    }
  }

  type Verdict = { ok: true, body: Record<string, unknown> } | { ok: false, status: number, error: string }

  function validate (req: IncomingMessage, route: CollectorRoute | undefined, projectKey: string | undefined, raw: string, tooLarge: boolean): Verdict {
    if (route === undefined || projectKey === undefined) return { ok: false, status: 404, error: 'not found' }
    if (projects !== undefined && !projects.has(projectKey)) return { ok: false, status: 404, error: `unknown project ${projectKey}` }
    if (req.method !== 'POST') return { ok: false, status: 405, error: 'use POST' }
    if (tooLarge) return { ok: false, status: 413, error: `body larger than ${plural(maxBodyBytes, 'byte')}` }
    if (!(req.headers['content-type'] ?? '').includes('application/json')) {
      return { ok: false, status: 400, error: 'content-type must be application/json' }
    }
    let body: unknown
    try {
      body = JSON.parse(raw)
    } catch {
      return { ok: false, status: 400, error: 'body is not valid JSON' }
    }
    const check: Validator = route === 'profiles' ? validators.profileBatch : validators.accountBatch
    if (!check(body)) {
      const e = check.errors?.[0]
      return { ok: false, status: 400, error: `invalid batch: ${e?.instancePath === '' ? '(body)' : e?.instancePath} ${e?.message ?? ''}`.trim() }
    }
    return { ok: true, body: body as Record<string, unknown> }
  }

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    let size = 0
    let tooLarge = false
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > maxBodyBytes) tooLarge = true
      else chunks.push(chunk)
    })
    req.on('end', () => {
      const respond = (): void => {
        const [info, outcome] = handle(req, res, Buffer.concat(chunks).toString('utf8'), tooLarge)
        emitter.emit('request', info, outcome)
      }
      if (latencyMs > 0) setTimeout(respond, latencyMs)
      else respond()
    })
    req.on('error', () => {})
  })
  server.keepAliveTimeout = 5_000
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  server.on('clientError', (_err, socket) => socket.destroy())

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve())
  })
  const address = server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  const url = `http://${host}:${address.port}`

  const collector: Collector = {
    url,
    port: address.port,
    received,
    deletionRequests: deletion.requests,
    stats: () => ({
      ...stats,
      profiles: { ...stats.profiles },
      accounts: { ...stats.accounts },
      deletion: deletion.stats()
    }),
    messageIds: () => ids,
    waitFor (predicate) {
      if (predicate()) return Promise.resolve()
      return new Promise(resolve => {
        const check = (): void => {
          if (predicate()) {
            emitter.off('request', check)
            resolve()
          }
        }
        emitter.on('request', check)
      })
    },
    summary () {
      const p = stats.profiles
      const a = stats.accounts
      const d = deletion.stats()
      return [
        `collector at ${url}`,
        `  requests: ${stats.requests} (${stats.accepted} accepted, ${stats.rejected} rejected, ${plural(stats.faults, 'fault')}, ${stats.missingUserAgent} without User-Agent)`,
        `  profiles: ${plural(p.people, 'person', 'people')}, ${plural(p.events, 'event')}, ${plural(p.identifies, 'identify', 'identifies')}, ${plural(p.page_views, 'page view')}`,
        `  accounts: ${plural(a.accounts, 'account')}, ${plural(a.events, 'event')}, ${plural(a.identifies, 'identify', 'identifies')}`,
        `  duplicate message_ids: ${stats.duplicates}`,
        `  deletion requests: ${d.requests} (${plural(d.emails, 'email')}, ${d.ignoredEmails} past the 50th ignored), ${plural(d.polls, 'status check')}, ${d.completed} completed`
      ].join('\n')
    },
    on (event, listener) {
      emitter.on(event, listener)
      return collector
    },
    async close () {
      for (const s of sockets) s.destroy()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
  return collector
}
