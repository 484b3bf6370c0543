import { request } from 'undici'
import { startCollector, type Collector, type CollectorOptions, type Fault } from '../lib/collector'
import { emailsFor } from './helpers/deletion'

let c: Collector
afterEach(async () => { await c.close() })

const KEY = 'sk_test_collector'
const HEADERS = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', 'user-agent': 'test/1.0' }

async function call (method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, headers: Record<string, string> = HEADERS): Promise<{ status: number, json: Record<string, unknown> }> {
  const res = await request(c.url + path, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) })
  return { status: res.statusCode, json: await res.body.json() as Record<string, unknown> }
}

async function start (options: CollectorOptions = {}): Promise<Collector> {
  c = await startCollector({ deletion: { secretKey: KEY }, ...options })
  return c
}

test('POST creates a deletion request; GET reads pending, then completed with a receipt on the configured poll', async () => {
  await start({ deletion: { secretKey: KEY, pollsUntilCompleted: 3 } })
  const created = await call('POST', '/api/v1/deletion-requests', { emails: ['ada@example.com', 'grace@example.org'] })
  expect(created.status).toBe(200)
  const id = created.json.deletion_request_id as string
  expect(id).toMatch(/^[0-9a-f-]{36}$/)
  const path = `/api/v1/deletion-requests/${id}`
  expect((await call('GET', path)).json).toMatchObject({ id, status: 'pending', input: ['ada@example.com', 'grace@example.org'], deleted_receipt: [], messages: [] })
  expect((await call('GET', path)).json.status).toBe('pending')
  const done = await call('GET', path)
  expect(done.json).toMatchObject({ status: 'completed', deleted_receipt: [{ email: 'ada@example.com' }, { email: 'grace@example.org' }] })
  expect((await call('GET', path)).json.status).toBe('completed')
  expect(c.deletionRequests).toEqual([expect.objectContaining({ id, emails: ['ada@example.com', 'grace@example.org'], ignoredEmails: 0, userAgent: 'test/1.0', polls: 4 })])
  expect(c.stats()).toMatchObject({ requests: 5, accepted: 5, rejected: 0, deletion: { requests: 1, emails: 2, polls: 4, completed: 1 } })
  expect(c.summary()).toContain('deletion requests: 1 (2 emails, 0 past the 50th ignored), 4 status checks, 1 completed')
})

test('like Koala, takes the first 50 emails and ignores the rest, counting them', async () => {
  await start()
  const res = await call('POST', '/api/v1/deletion-requests', { emails: emailsFor(70) })
  expect(res.status).toBe(200)
  expect(c.deletionRequests[0].emails).toEqual(emailsFor(50))
  expect(c.deletionRequests[0].ignoredEmails).toBe(20)
  expect(c.stats().deletion).toMatchObject({ requests: 1, emails: 50, ignoredEmails: 20 })
})

test.each([
  ['no Authorization', 'POST', '/api/v1/deletion-requests', { emails: ['a@example.com'] }, { 'content-type': 'application/json' }, 401, 'missing or invalid secret API key'],
  ['another key', 'POST', '/api/v1/deletion-requests', { emails: ['a@example.com'] }, { ...HEADERS, authorization: 'Bearer sk_other' }, 401, 'missing or invalid secret API key'],
  ['a key without Bearer', 'GET', '/api/v1/deletion-requests/x', undefined, { authorization: KEY }, 401, 'missing or invalid secret API key'],
  ['broken JSON', 'POST', '/api/v1/deletion-requests', '{"emails":', HEADERS, 400, 'body is not valid JSON'],
  ['no emails', 'POST', '/api/v1/deletion-requests', { emails: [] }, HEADERS, 400, 'emails must be a non-empty array'],
  ['a non-email', 'POST', '/api/v1/deletion-requests', { emails: ['a@example.com', 'nope'] }, HEADERS, 400, 'emails[1] is not an email address'],
  ['an unknown id', 'GET', '/api/v1/deletion-requests/0', undefined, HEADERS, 404, 'deletion request not found'],
  ['DELETE on the list', 'DELETE', '/api/v1/deletion-requests', undefined, HEADERS, 405, 'use POST'],
  ['POST on an item', 'POST', '/api/v1/deletion-requests/0', {}, HEADERS, 405, 'use GET']
] as const)('answers %s with %i', async (_name, method, path, body, headers, status, error) => {
  await start()
  const res = await call(method, path, body, headers)
  expect(res).toEqual({ status, json: { error } })
  expect(c.stats()).toMatchObject({ rejected: 1, accepted: 0, deletion: { requests: 0 } })
  expect(c.deletionRequests).toEqual([])
})

test('without a configured key, any sk_ key is accepted (for the CLI\'s collector), and nothing else', async () => {
  c = await startCollector()
  expect((await call('POST', '/api/v1/deletion-requests', { emails: ['a@example.com'] }, { ...HEADERS, authorization: 'Bearer sk_anything' })).status).toBe(200)
  expect((await call('POST', '/api/v1/deletion-requests', { emails: ['a@example.com'] }, { ...HEADERS, authorization: 'Bearer pk_public' })).status).toBe(401)
  expect(c.stats().deletion).toMatchObject({ requests: 1, unauthorized: 1 })
})

test('the fault hook sees deletion requests; a recorded fault creates the request though the answer is lost', async () => {
  const faults: Array<Fault | undefined> = [{ status: 503, record: true }, { kind: 'reset' }]
  const routes: unknown[] = []
  await start({ fault: req => { routes.push(req.route); return faults.shift() } })
  expect((await call('POST', '/api/v1/deletion-requests', { emails: ['a@example.com'] })).status).toBe(503)
  expect(c.deletionRequests).toHaveLength(1)
  await expect(call('GET', `/api/v1/deletion-requests/${c.deletionRequests[0].id}`)).rejects.toThrow()
  expect(c.deletionRequests[0].polls).toBe(0)
  expect(routes).toEqual(['deletion', 'deletion'])
  expect(c.stats()).toMatchObject({ requests: 2, faults: 2, deletion: { requests: 1, polls: 0 } })
})
