import { request } from 'undici'
import { startCollector, type Collector, type CollectorOptions, type Fault } from '../lib/collector'

let c: Collector
afterEach(async () => { await c.close() })

const UA = { 'content-type': 'application/json', 'user-agent': 'test/1.0' }

async function post (path: string, body: unknown, headers: Record<string, string> = UA): Promise<{ status: number, text: string }> {
  const res = await request(c.url + path, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) })
  return { status: res.statusCode, text: await res.body.text() }
}

async function start (options: CollectorOptions = {}): Promise<Collector> {
  c = await startCollector(options)
  return c
}

test('accepts a valid profile batch and an account batch, counting items and people', async () => {
  await start()
  const ok = await post('/web/projects/pk_1/batch', { email: 'a@example.com', events: [{ type: 'track', event: 'x', message_id: 'm1' }], page_views: [{ type: 'page' }] })
  expect(ok).toEqual({ status: 200, text: '{"ok":true}' })
  expect((await post('/web/projects/pk_1/accounts/batch', { domain: 'acme.io', identifies: [{ type: 'identify', traits: { plan: 'pro' } }] })).status).toBe(200)
  expect(c.stats()).toMatchObject({
    requests: 2,
    accepted: 2,
    profiles: { events: 1, page_views: 1, identifies: 0, people: 1 },
    accounts: { identifies: 1, accounts: 1 }
  })
  expect(c.received.map(r => [r.route, r.projectKey, r.userAgent])).toEqual([['profiles', 'pk_1', 'test/1.0'], ['accounts', 'pk_1', 'test/1.0']])
  expect(c.summary()).toContain('profiles: 1 person, 1 event, 0 identifies, 1 page view')
})

test.each([
  ['an invalid body', '/web/projects/pk/batch', { events: [] }, UA, 400, 'invalid batch'],
  ['31 events', '/web/projects/pk/batch', { email: 'a@example.com', events: Array.from({ length: 31 }, () => ({ type: 'track', event: 'x' })) }, UA, 400, 'must NOT have more than 30 items'],
  ['broken JSON', '/web/projects/pk/batch', '{"email":', UA, 400, 'not valid JSON'],
  ['a text body', '/web/projects/pk/batch', '{}', { 'content-type': 'text/plain', 'user-agent': 'x' }, 400, 'content-type must be application/json'],
  ['an unknown path', '/v1/batch', {}, UA, 404, 'not found']
])('answers %s with its status and reason', async (_name, path, body, headers, status, reason) => {
  await start()
  const res = await post(path, body, headers)
  expect(res.status).toBe(status)
  expect(JSON.parse(res.text).error).toContain(reason)
  expect(c.stats()).toMatchObject({ rejected: 1, accepted: 0 })
})

test('answers 404 for a project it does not know', async () => {
  await start({ projects: ['pk_known'] })
  expect((await post('/web/projects/pk_other/batch', { email: 'a@example.com' })).status).toBe(404)
  expect((await post('/web/projects/pk_known/batch', { email: 'a@example.com' })).status).toBe(200)
})

test('like Koala, drops a request without a User-Agent while answering 200', async () => {
  await start()
  const res = await post('/web/projects/pk/batch', { email: 'a@example.com', events: [{ type: 'track', event: 'x' }] }, { 'content-type': 'application/json', 'user-agent': '' })
  expect(res.status).toBe(200)
  expect(c.stats()).toMatchObject({ missingUserAgent: 1, profiles: { events: 0 } })
  expect(c.received).toEqual([])
})

test('counts repeated message_ids as duplicates', async () => {
  await start()
  const body = { email: 'a@example.com', events: [{ type: 'track', event: 'x', message_id: 'same' }] }
  await post('/web/projects/pk/batch', body)
  await post('/web/projects/pk/batch', body)
  expect(c.stats().duplicates).toBe(1)
  expect(c.messageIds().get('same')).toBe(2)
})

describe('faults on command', () => {
  const body = { email: 'a@example.com', events: [{ type: 'track', event: 'x', message_id: 'm' }] }
  test('a status fault answers with it, and records only when asked', async () => {
    const faults: Fault[] = [{ status: 503, headers: { 'retry-after': '3' } }, { status: 500, record: true }]
    await start({ fault: () => faults.shift() })
    const res1 = await request(c.url + '/web/projects/pk/batch', { method: 'POST', headers: UA, body: JSON.stringify(body) })
    expect(res1.statusCode).toBe(503)
    expect(res1.headers['retry-after']).toBe('3')
    await res1.body.dump()
    expect((await post('/web/projects/pk/batch', body)).status).toBe(500)
    expect((await post('/web/projects/pk/batch', body)).status).toBe(200)
    expect(c.stats()).toMatchObject({ requests: 3, faults: 2, accepted: 1, duplicates: 1 })
  })

  test('reset and truncate break the client\'s request; hang never answers', async () => {
    const faults: Fault[] = [{ kind: 'reset' }, { kind: 'truncate' }, { kind: 'hang' }]
    await start({ fault: () => faults.shift() })
    await expect(post('/web/projects/pk/batch', body)).rejects.toThrow()
    await expect(post('/web/projects/pk/batch', body)).rejects.toThrow()
    expect(c.stats().profiles.events).toBe(1)
    const ac = new AbortController()
    const hanging = post('/web/projects/pk/batch', body).catch((e: Error) => e.name)
    await c.waitFor(() => c.stats().requests === 3)
    ac.abort()
    await c.close()
    c = await startCollector() // for afterEach
    expect(await hanging).toMatch(/Error/)
  })

  test('a malformed percent-encoding in the path is a 404, and the collector carries on', async () => {
    await start()
    expect((await post('/web/projects/%E0%A4%A/batch', body)).status).toBe(404)
    const status = await request(c.url + '/api/v1/deletion-requests/%ZZ', { headers: { authorization: 'Bearer sk_test' } })
    expect(status.statusCode).toBe(404)
    await status.body.dump()
    expect((await post('/web/projects/pk/batch', body)).status).toBe(200)
  })

  test('stall stores the body and sends a 200 status line, then never finishes the body', async () => {
    await start({ fault: () => ({ kind: 'stall' }) })
    const res = await request(c.url + '/web/projects/pk/batch', { method: 'POST', headers: UA, body: JSON.stringify(body) })
    expect(res.statusCode).toBe(200)
    expect(c.stats()).toMatchObject({ requests: 1, faults: 1 })
    expect(c.stats().profiles.events).toBe(1)
    const rest = res.body.text()
    await c.close()
    c = await startCollector() // for afterEach
    await expect(rest).rejects.toThrow()
  })
})
