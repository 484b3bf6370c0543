import { randomUUID } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { DELETION_REQUESTS_PATH, MAX_EMAILS_PER_DELETION_REQUEST } from '../shared/constants'
import { emailProblem } from '../shared/email'

/**
 * The embedded collector's fake of Koala's GDPR deletion API:
 * POST /api/v1/deletion-requests and GET /api/v1/deletion-requests/:id,
 * behind a Bearer secret key. Like Koala it reads the first 50 emails and
 * ignores the rest (counted here). A request reads `pending` until it has
 * been polled pollsUntilCompleted times, then `completed` with a receipt.
 */

export interface DeletionEndpointOptions {
  /** The only key accepted. Default: any key that starts with `sk_`. */
  secretKey?: string
  /** The poll that first answers `completed` (1: the first). Default 2. */
  pollsUntilCompleted?: number
}

export interface FakeDeletionRequest {
  id: string
  /** The emails taken (at most 50). */
  emails: string[]
  /** Emails past the 50th, ignored as Koala does. */
  ignoredEmails: number
  userAgent: string
  polls: number
  createdAt: string
}

export interface DeletionEndpointStats {
  /** Deletion requests created. */
  requests: number
  emails: number
  ignoredEmails: number
  /** Status checks answered (known ids). */
  polls: number
  completed: number
  unauthorized: number
  notFound: number
}

/** What to answer, and what to store if the answer is committed. */
export interface Reply {
  status: number
  payload: unknown
  commit: () => void
}

const ITEM = new RegExp(`^${DELETION_REQUESTS_PATH}/([^/]+)/?$`)
const LIST = new RegExp(`^${DELETION_REQUESTS_PATH}/?$`)

/** A percent-encoded path segment, or undefined when its encoding is malformed (decodeURIComponent throws). */
export function decodeSegment (segment: string): string | undefined {
  try {
    return decodeURIComponent(segment)
  } catch {
    return undefined
  }
}

export function isDeletionPath (pathname: string): boolean {
  return LIST.test(pathname) || ITEM.test(pathname)
}

const refuse = (status: number, error: string, count?: () => void): Reply => ({ status, payload: { error }, commit: count ?? (() => {}) })

export class DeletionEndpoint {
  readonly requests: FakeDeletionRequest[] = []
  readonly #byId = new Map<string, FakeDeletionRequest>()
  readonly #secretKey: string | undefined
  readonly #pollsUntilCompleted: number
  readonly #stats: DeletionEndpointStats = { requests: 0, emails: 0, ignoredEmails: 0, polls: 0, completed: 0, unauthorized: 0, notFound: 0 }

  constructor (options: DeletionEndpointOptions = {}) {
    this.#secretKey = options.secretKey
    this.#pollsUntilCompleted = Math.max(1, options.pollsUntilCompleted ?? 2)
  }

  stats (): DeletionEndpointStats {
    return { ...this.#stats }
  }

  /** Decides the answer without changing anything; `commit` applies it. */
  reply (method: string, pathname: string, headers: IncomingHttpHeaders, raw: string): Reply {
    if (!this.#authorized(headers.authorization)) {
      return refuse(401, 'missing or invalid secret API key', () => { this.#stats.unauthorized++ })
    }
    const item = ITEM.exec(pathname)
    if (item !== null) return method === 'GET' ? this.#status(decodeSegment(item[1]) ?? '') : refuse(405, 'use GET')
    return method === 'POST' ? this.#create(headers, raw) : refuse(405, 'use POST')
  }

  #authorized (header: string | undefined): boolean {
    const m = /^Bearer\s+(\S+)$/i.exec(header ?? '')
    if (m === null) return false
    return this.#secretKey === undefined ? m[1].startsWith('sk_') : m[1] === this.#secretKey
  }

  #create (headers: IncomingHttpHeaders, raw: string): Reply {
    let body: unknown
    try {
      body = JSON.parse(raw)
    } catch {
      return refuse(400, 'body is not valid JSON')
    }
    const emails = (body as { emails?: unknown } | null)?.emails
    if (!Array.isArray(emails) || emails.length === 0) return refuse(400, 'emails must be a non-empty array')
    const taken = emails.slice(0, MAX_EMAILS_PER_DELETION_REQUEST)
    const bad = taken.findIndex(e => emailProblem(e) !== undefined)
    if (bad !== -1) return refuse(400, `emails[${bad}] ${emailProblem(taken[bad]) ?? ''}`)
    const request: FakeDeletionRequest = {
      id: randomUUID(),
      emails: taken as string[],
      ignoredEmails: emails.length - taken.length,
      userAgent: headers['user-agent'] ?? '',
      polls: 0,
      createdAt: new Date().toISOString()
    }
    return {
      status: 200,
      payload: { deletion_request_id: request.id },
      commit: () => {
        this.requests.push(request)
        this.#byId.set(request.id, request)
        this.#stats.requests++
        this.#stats.emails += request.emails.length
        this.#stats.ignoredEmails += request.ignoredEmails
      }
    }
  }

  #status (id: string): Reply {
    const request = this.#byId.get(id)
    if (request === undefined) return refuse(404, 'deletion request not found', () => { this.#stats.notFound++ })
    const polls = request.polls + 1
    const completed = polls >= this.#pollsUntilCompleted
    return {
      status: 200,
      payload: {
        id: request.id,
        project_id: '00000000-0000-4000-8000-000000000000',
        status: completed ? 'completed' : 'pending',
        input: request.emails,
        deleted_receipt: completed ? request.emails.map(email => ({ email, profiles: [], ips: [], events: 0, page_views: 0 })) : [],
        messages: [],
        created_at: request.createdAt,
        updated_at: new Date().toISOString(),
        created_by_id: null
      },
      commit: () => {
        request.polls = polls
        this.#stats.polls++
        if (polls === this.#pollsUntilCompleted) this.#stats.completed++
      }
    }
  }
}
