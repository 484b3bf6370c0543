import type { CollectorAnswer, CollectorRequest } from '../collector'
import { plural } from '../shared/plural'

/**
 * What the standalone collector prints for each request, so a developer sees their calls arrive:
 * `200 profiles 3e6a2c18-… ada@example.com: 2 events, 1 identify, 2 page views`.
 */
export function requestLine (req: CollectorRequest, answer: CollectorAnswer): string {
  const status = answer.fault && answer.status === 0 ? 'no answer' : String(answer.status)
  const why = answer.error === undefined ? '' : ` (${answer.error})`
  if (req.route !== 'profiles' && req.route !== 'accounts') return `${status} ${req.route ?? 'unknown'} ${req.method} ${req.path}${why}`
  const body = parseObject(req.body)
  const ids = req.route === 'profiles' ? [body.profile_id, body.email] : [body.domain, body.account_id]
  const who = ids.filter(id => typeof id === 'string').join(' ')
  const counts = [plural(length(body.events), 'event'), plural(length(body.identifies), 'identify', 'identifies')]
  if (req.route === 'profiles') counts.push(plural(length(body.page_views), 'page view'))
  // Answered 200 but dropped, as Koala does: the one case where the status alone misleads.
  const ignored = answer.status === 200 && (req.headers['user-agent'] ?? '') === '' ? ' (no User-Agent: ignored, as Koala does)' : ''
  return `${status} ${req.route} ${who === '' ? '(no one)' : who}: ${counts.join(', ')}${why}${ignored}`
}

function parseObject (text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === 'object' && value !== null ? value as Record<string, unknown> : {}
  } catch {
    return {}
  }
}

const length = (list: unknown): number => Array.isArray(list) ? list.length : 0
