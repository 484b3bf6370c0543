import { MockAgent } from 'undici'
import type { Fault } from '../lib/collector'
import { DeletionClient, createDeletionClient, type DeletionProgress } from '../lib/deletion/client'
import { MAX_RESPONSE_BYTES } from '../lib/deletion/http'
import { DELETION_DEFAULTS } from '../lib/deletion/options'
import { ConfigError, DeletionError, InputError } from '../lib/shared/errors'
import { USER_AGENT } from '../lib/shared/version'
import { deletionHarness, deletionScript, emailsFor, makeKey, type DeletionHarness } from './helpers/deletion'
import { freePort, tick } from './helpers/setup'

let h: DeletionHarness | undefined
afterEach(async () => {
  await h?.done()
  h = undefined
})

const posts = (h: DeletionHarness) => h.seen.filter(r => r.method === 'POST')
const gets = (h: DeletionHarness) => h.seen.filter(r => r.method === 'GET')

describe('requestDeletion', () => {
  test('sends the emails as Koala documents them: exact body and headers', async () => {
    h = await deletionHarness()
    const result = await h.client.requestDeletion(['ada@example.com', 'grace@example.org'])
    expect(result).toEqual({
      submitted: [{ id: h.collector.deletionRequests[0].id, emails: ['ada@example.com', 'grace@example.org'] }],
      failed: [],
      invalid: [],
      duplicates: 0,
      timedOut: false
    })
    const [req] = h.seen
    expect(req).toMatchObject({ method: 'POST', path: '/api/v1/deletion-requests', route: 'deletion' })
    expect(req.body).toBe('{"emails":["ada@example.com","grace@example.org"]}')
    expect(req.headers).toMatchObject({
      authorization: `Bearer ${h.key}`,
      'content-type': 'application/json',
      accept: 'application/json',
      'user-agent': USER_AGENT
    })
    expect(USER_AGENT).toMatch(/^koala-tracker\/\d+\.\d+\.\d+/)
    expect(h.collector.stats().deletion).toMatchObject({ requests: 1, emails: 2, ignoredEmails: 0 })
  })

  test('splits 120 emails into requests of 50, 50 and 20, in order, and the collector took every one', async () => {
    h = await deletionHarness()
    const emails = emailsFor(120)
    const events: DeletionProgress[] = []
    const result = await h.client.requestDeletion(emails, { onProgress: e => events.push(e) })
    const bodies = posts(h).map(r => JSON.parse(r.body).emails as string[])
    expect(bodies.map(b => b.length)).toEqual([50, 50, 20])
    expect(bodies.flat()).toEqual(emails)
    expect(result.submitted.map(s => s.emails.length)).toEqual([50, 50, 20])
    expect(result.submitted.map(s => s.id)).toEqual(h.collector.deletionRequests.map(r => r.id))
    expect(events.map(e => e.type === 'submitted' && [e.request, e.of, e.emails])).toEqual([[1, 3, 50], [2, 3, 50], [3, 3, 20]])
    expect(h.collector.stats().deletion).toMatchObject({ requests: 3, emails: 120, ignoredEmails: 0 })
  })

  test('trims, drops repeats without regard to case (first spelling sent), and sets invalid entries aside by index', async () => {
    h = await deletionHarness()
    const result = await h.client.requestDeletion([' Ada@Example.com ', 'ada@example.com', 'not-an-email', 'grace@example.org', 42 as unknown as string, 'ADA@EXAMPLE.COM'])
    expect(posts(h).map(r => JSON.parse(r.body))).toEqual([{ emails: ['Ada@Example.com', 'grace@example.org'] }])
    expect(result.duplicates).toBe(2)
    expect(result.invalid).toEqual([
      { index: 2, value: 'not-an-email', reason: 'is not an email address' },
      { index: 4, value: 42, reason: 'must be a string, got a number' }
    ])
    // Counted, never the values: they may be personal data.
    expect(h.logger.lines).toEqual([expect.objectContaining({ level: 'warn', obj: expect.objectContaining({ invalid: 2 }) })])
    expect(JSON.stringify(h.logger.lines)).not.toContain('not-an-email')
  })

  test('nothing valid: no request at all', async () => {
    h = await deletionHarness()
    expect(await h.client.requestDeletion([])).toEqual({ submitted: [], failed: [], invalid: [], duplicates: 0, timedOut: false })
    expect(h.seen).toEqual([])
  })

  test('a caller mistake rejects with an InputError naming the field', async () => {
    h = await deletionHarness()
    await expect(h.client.requestDeletion('a@example.com' as unknown as string[])).rejects.toMatchObject({
      constructor: InputError, code: 'KOALA_ERR_INVALID_INPUT', call: 'requestDeletion', field: 'emails'
    })
    await expect(h.client.requestDeletion(['a@example.com'], { timeoutMs: -1 })).rejects.toMatchObject({ field: 'timeoutMs' })
    await expect(h.client.waitForCompletion(['ok', ''])).rejects.toMatchObject({ call: 'waitForCompletion', field: 'ids[1]' })
    await expect(h.client.getStatus(undefined as unknown as string)).rejects.toMatchObject({ call: 'getStatus', field: 'id' })
    expect(h.seen).toEqual([])
  })
})

describe('retries follow the tracker\'s rules', () => {
  // random() = 0.5 and retryBaseDelayMs 1000: exponential waits of 750, 1500, 3000 ms.
  test.each([
    ['429 with Retry-After: 7', [{ status: 429, headers: { 'retry-after': '7' } }], [7000]],
    ['503 twice', [{ status: 503 }, { status: 503 }], [750, 1500]],
    ['500 then 502 then 504', [{ status: 500 }, { status: 502 }, { status: 504 }], [750, 1500, 3000]],
    ['408', [{ status: 408 }], [750]],
    ['a reset connection', [{ kind: 'reset' as const }], [750]],
    ['a 503 with an HTTP-date Retry-After', [{ status: 503, headers: { 'retry-after': new Date(Date.UTC(2026, 10, 26, 12, 0, 20)).toUTCString() } }], [20_000]]
  ])('%s, then success', async (_name, faults, waits) => {
    h = await deletionHarness({}, { fault: deletionScript(...faults) })
    const events: DeletionProgress[] = []
    const { value, jumps } = await h.drive(h.client.requestDeletion(['ada@example.com'], { onProgress: e => events.push(e) }))
    expect(value.submitted).toHaveLength(1)
    expect(jumps).toEqual(waits)
    expect(events.filter(e => e.type === 'retry').map(e => e.type === 'retry' && e.delayMs)).toEqual(waits)
    // The same body every attempt; only the last one was stored.
    expect(new Set(posts(h).map(r => r.body)).size).toBe(1)
    expect(posts(h)).toHaveLength(waits.length + 1)
    expect(h.collector.deletionRequests).toHaveLength(1)
  })

  test('one failed attempt is logged at debug level; from the third on, a warning; emails never', async () => {
    h = await deletionHarness({}, { fault: deletionScript({ status: 500 }, { status: 500 }, { status: 500 }) })
    await h.drive(h.client.requestDeletion(['ada@example.com']))
    expect(h.logger.lines.map(l => [l.level, l.msg])).toEqual([
      ['debug', 'deletion request 1 of 1 (1 email): attempt 1 failed (HTTP 500); retrying in 750 ms'],
      ['debug', 'deletion request 1 of 1 (1 email): attempt 2 failed (HTTP 500); retrying in 1500 ms'],
      ['warn', 'deletion request 1 of 1 (1 email): attempt 3 failed (HTTP 500); retrying in 3000 ms']
    ])
    expect(JSON.stringify(h.logger.lines)).not.toContain('ada@')
  })

  test('a Retry-After longer than maxRetryAfterMs is clamped', async () => {
    h = await deletionHarness({ maxRetryAfterMs: 5_000 }, { fault: deletionScript({ status: 429, headers: { 'retry-after': '3600' } }) })
    const { jumps } = await h.drive(h.client.requestDeletion(['ada@example.com']))
    expect(jumps).toEqual([5_000])
  })

  test('status checks are retried the same way', async () => {
    const getFaults: Fault[] = []
    h = await deletionHarness({}, { deletion: { pollsUntilCompleted: 1 }, fault: req => req.method === 'GET' ? getFaults.shift() : undefined })
    const { submitted } = await h.client.requestDeletion(['ada@example.com'])
    const id = submitted[0].id
    // Retry-After lengthens the third wait (its backoff: 3000 ms); it would never shorten it.
    getFaults.push({ status: 503 }, { kind: 'reset' }, { status: 429, headers: { 'retry-after': '5' } })
    const events: DeletionProgress[] = []
    const { value, jumps } = await h.drive(h.client.waitForCompletion([id], { onProgress: e => events.push(e) }))
    expect(jumps).toEqual([750, 1500, 5000])
    expect(events.filter(e => e.type === 'retry')).toEqual([
      expect.objectContaining({ method: 'GET', id, attempt: 1, delayMs: 750, status: 503, detail: 'HTTP 503' }),
      expect.objectContaining({ method: 'GET', id, attempt: 2, delayMs: 1500, status: undefined }),
      expect.objectContaining({ method: 'GET', id, attempt: 3, delayMs: 5000, status: 429, detail: 'HTTP 429' })
    ])
    expect(value.completed.map(c => c.id)).toEqual([id])
    expect(gets(h)).toHaveLength(4)
    // A 429 is worth a warning at once; other single failures only at debug level.
    expect(h.logger.lines.filter(l => l.level === 'warn').map(l => l.msg)).toEqual([
      `status of deletion request ${id}: attempt 3 failed (HTTP 429); retrying in 5000 ms: Koala asked to slow down (HTTP 429)`
    ])
  })

  test('retries run out: maxAttempts, then the remaining requests are skipped, not hammered', async () => {
    h = await deletionHarness({ maxAttempts: 3 }, { fault: () => ({ status: 500, body: '{"error":"down"}' }) })
    const { value, jumps } = await h.drive(h.client.requestDeletion(emailsFor(120)))
    expect(jumps).toEqual([750, 1500])
    expect(posts(h)).toHaveLength(3)
    expect(value.submitted).toEqual([])
    expect(value.failed.map(f => [f.emails.length, f.error.reason, f.error.attempts])).toEqual([[50, 'retry_exhausted', 3], [50, 'skipped', 0], [20, 'skipped', 0]])
    expect(value.failed[0].error).toBeInstanceOf(DeletionError)
    expect(value.failed[0].error.message).toBe('deletion request 1 of 3 (50 emails) failed (retry_exhausted): gave up after 3 attempts; last: HTTP 500')
    expect(h.logger.lines.filter(l => l.level === 'error').map(l => l.msg)).toEqual([value.failed[0].error.message])
  })

  test('maxRetryDurationMs bounds the retries of one request', async () => {
    h = await deletionHarness({ maxRetryDurationMs: 2_000 }, { fault: () => ({ status: 503 }) })
    const { value, jumps } = await h.drive(h.client.requestDeletion(['ada@example.com']))
    // 750 then 1500 would end at 2250 > 2000: given up after two attempts.
    expect(jumps).toEqual([750])
    expect(value.failed[0].error).toMatchObject({ reason: 'retry_exhausted', attempts: 2 })
  })

  test('connection refused is retried, then reported', async () => {
    const port = await freePort()
    h = await deletionHarness()
    const client = createDeletionClient({ secretKey: h.key, baseUrl: `http://127.0.0.1:${port}`, clock: h.clock, random: () => 0.5, maxAttempts: 2, logger: h.logger })
    const done = client.requestDeletion(['ada@example.com'])
    // Real sockets, fake time: step the clock once the first attempt has failed.
    await untilTimer(h, 750)
    expect(h.clock.next()).toBe(750)
    const result = await done
    expect(result.failed[0].error).toMatchObject({ reason: 'retry_exhausted', attempts: 2 })
    expect(result.failed[0].error.message).toContain('ECONNREFUSED')
    await client.close()
  })
})

/** Lets real I/O run until the client has armed a timer of `ms`. */
async function untilTimer (h: DeletionHarness, ms: number): Promise<void> {
  while (!h.clock.pending().some(t => t.ms === ms)) await tick()
}

describe('refusals', () => {
  test('401: the key is refused; nothing more is sent', async () => {
    h = await deletionHarness()
    const client = h.make({ secretKey: makeKey() })
    const result = await client.requestDeletion(emailsFor(120))
    expect(posts(h)).toHaveLength(1)
    expect(result.failed.map(f => f.error.reason)).toEqual(['unauthorized', 'skipped', 'skipped'])
    expect(result.failed[0].error).toMatchObject({ status: 401, code: 'KOALA_ERR_DELETION' })
    expect(h.collector.stats().deletion.unauthorized).toBe(1)
  })

  test('400 on one request is that request\'s problem: the others are still made', async () => {
    h = await deletionHarness({}, { fault: deletionScript({ status: 400, body: '{"error":"bad emails"}' }) })
    const result = await h.client.requestDeletion(emailsFor(60))
    expect(result.failed.map(f => [f.emails.length, f.error.reason, f.error.status, f.error.body])).toEqual([[50, 'rejected', 400, '{"error":"bad emails"}']])
    expect(result.submitted.map(s => s.emails.length)).toEqual([10])
  })

  test('404 on POST means no deletion API at baseUrl, and stops', async () => {
    h = await deletionHarness()
    const client = h.make({ baseUrl: `${h.collector.url}/wrong-prefix` })
    const result = await client.requestDeletion(emailsFor(60))
    expect(result.failed.map(f => f.error.reason)).toEqual(['not_found', 'skipped'])
    expect(result.failed[0].error.message).toContain('no deletion API at this baseUrl (HTTP 404)')
  })

  test('a 2xx that is not Koala\'s answer is a bad_response, and stops', async () => {
    h = await deletionHarness({}, { fault: deletionScript({ status: 200, body: '<html>hello</html>' }) })
    const result = await h.client.requestDeletion(emailsFor(60))
    expect(result.failed.map(f => f.error.reason)).toEqual(['bad_response', 'skipped'])
    expect(result.failed[0].error.body).toBe('<html>hello</html>')
    expect(h.collector.deletionRequests).toHaveLength(0)
  })
})

describe('the default transport', () => {
  test('an undici Pool created on the first request, released by close(); no injected clock needed when nothing waits', async () => {
    h = await deletionHarness({}, { deletion: { pollsUntilCompleted: 1 } })
    const client = createDeletionClient({ secretKey: h.key, baseUrl: h.collector.url, logger: h.logger })
    const { submitted } = await client.requestDeletion(['ada@example.com'])
    const waited = await client.waitForCompletion(submitted.map(s => s.id))
    expect(waited.completed.map(c => c.status)).toEqual(['completed'])
    await client.close()
    await client.close()
    // A later call opens a new Pool.
    expect((await client.requestDeletion(['grace@example.org'])).submitted).toHaveLength(1)
    await client.close()
  })

  test('sends through a given dispatcher (here a MockAgent), which it never closes', async () => {
    const agent = new MockAgent()
    agent.disableNetConnect()
    const key = makeKey()
    agent.get('https://app.getkoala.com').intercept({ path: '/api/v1/deletion-requests', method: 'POST', headers: { authorization: `Bearer ${key}` } })
      .reply(200, { deletion_request_id: 'mock-1' })
    const client = createDeletionClient({ secretKey: key, dispatcher: agent })
    expect((await client.requestDeletion(['ada@example.com'])).submitted).toEqual([{ id: 'mock-1', emails: ['ada@example.com'] }])
    await client.close()
    agent.assertNoPendingInterceptors()
    await agent.close()
  })

  test('an answer larger than 4 MiB is refused, not buffered', async () => {
    h = await deletionHarness({}, { fault: deletionScript({ status: 200, body: 'x'.repeat(MAX_RESPONSE_BYTES + 1) }) })
    const result = await h.client.requestDeletion(['ada@example.com'])
    expect(result.failed[0].error).toMatchObject({ reason: 'bad_response' })
    expect(result.failed[0].error.message).toContain(`response body larger than ${MAX_RESPONSE_BYTES} bytes`)
  })
})

describe('waitForCompletion', () => {
  test('polls each request every pollIntervalMs until it reads completed', async () => {
    h = await deletionHarness({ pollIntervalMs: 5_000 }, { deletion: { pollsUntilCompleted: 3 } })
    const { submitted } = await h.client.requestDeletion(emailsFor(60))
    const ids = submitted.map(s => s.id)
    const events: DeletionProgress[] = []
    const { value, jumps } = await h.drive(h.client.waitForCompletion(ids, { onProgress: e => events.push(e) }))
    expect(jumps).toEqual([5_000, 5_000])
    expect(gets(h).map(r => r.path)).toEqual([...ids, ...ids, ...ids].map(id => `/api/v1/deletion-requests/${id}`))
    expect(gets(h)[0].headers).toMatchObject({ authorization: `Bearer ${h.key}`, 'user-agent': USER_AGENT })
    expect(value).toMatchObject({ pending: [], failed: [], timedOut: false })
    expect(value.completed.map(c => [c.id, c.status, c.deleted_receipt?.length])).toEqual([[ids[0], 'completed', 50], [ids[1], 'completed', 10]])
    expect(value.completed[0].input).toEqual(emailsFor(50))
    expect(events.filter(e => e.type === 'status').map(e => e.type === 'status' && e.status)).toEqual(['pending', 'pending', 'pending', 'pending', 'completed', 'completed'])
    expect(h.collector.stats().deletion).toMatchObject({ polls: 6, completed: 2 })
    // The caller is awaiting every wait: none may let the process exit under it.
    expect(h.clock.requested.filter(r => r.ms === 5_000)).toHaveLength(2)
    expect(h.clock.requested.every(r => r.keepAlive)).toBe(true)
  })

  test('the deadline: no check starts after it, and what is left is reported pending with its last status', async () => {
    h = await deletionHarness({ pollIntervalMs: 5_000 }, { deletion: { pollsUntilCompleted: 100 } })
    const { submitted } = await h.client.requestDeletion(['ada@example.com'])
    const { value, jumps } = await h.drive(h.client.waitForCompletion([submitted[0].id], { timeoutMs: 12_000 }))
    // Checks at 0, 5 s and 10 s; the next would start at 15 s, past the deadline.
    expect(jumps).toEqual([5_000, 5_000])
    expect(gets(h)).toHaveLength(3)
    expect(value).toEqual({ completed: [], failed: [], pending: [{ id: submitted[0].id, status: 'pending' }], timedOut: true })
    expect(h.logger.lines).toEqual([])
  })

  test('the deadline aborts a check in flight', async () => {
    let checks = 0
    h = await deletionHarness({ pollIntervalMs: 5_000 }, {
      deletion: { pollsUntilCompleted: 100 },
      fault: req => req.method === 'GET' && ++checks === 2 ? { kind: 'hang' } : undefined
    })
    const { submitted } = await h.client.requestDeletion(['ada@example.com'])
    const id = submitted[0].id
    const waiting = h.client.waitForCompletion([id], { timeoutMs: 8_000 })
    await untilTimer(h, 5_000)
    expect(h.clock.next()).toBe(5_000)
    await h.collector.waitFor(() => checks === 2)
    // The second check hangs at the server; its deadline is what is left of the 8 s.
    await untilTimer(h, 3_000)
    h.clock.advance(3_000)
    expect(await waiting).toEqual({ completed: [], failed: [], pending: [{ id, status: 'pending' }], timedOut: true })
    // Pending at the deadline is the caller's to report, not a logged error.
    expect(h.logger.lines.filter(l => l.level !== 'debug')).toEqual([])
  })

  test('an unknown id is that id\'s failure (not_found); the others complete', async () => {
    h = await deletionHarness({}, { deletion: { pollsUntilCompleted: 1 } })
    const { submitted } = await h.client.requestDeletion(['ada@example.com'])
    const events: DeletionProgress[] = []
    const value = await h.client.waitForCompletion(['00000000-0000-4000-8000-000000000000', submitted[0].id], { onProgress: e => events.push(e) })
    expect(value.completed.map(c => c.id)).toEqual([submitted[0].id])
    expect(value.failed.map(f => [f.id, f.error.reason, f.error.status, f.error.requestId])).toEqual([
      ['00000000-0000-4000-8000-000000000000', 'not_found', 404, '00000000-0000-4000-8000-000000000000']
    ])
    expect(value.timedOut).toBe(false)
    expect(h.collector.stats().deletion.notFound).toBe(1)
  })

  test('a refused key stops the checks; the rest are reported skipped', async () => {
    h = await deletionHarness({}, { deletion: { pollsUntilCompleted: 1 } })
    const client = h.make({ secretKey: makeKey() })
    const value = await client.waitForCompletion(['a', 'b', 'c'])
    expect(value.failed.map(f => [f.id, f.error.reason])).toEqual([['a', 'unauthorized'], ['b', 'skipped'], ['c', 'skipped']])
    expect(gets(h)).toHaveLength(1)
  })

  test('getStatus: one check, resolving with Koala\'s answer or rejecting with a DeletionError', async () => {
    h = await deletionHarness({}, { deletion: { pollsUntilCompleted: 2 } })
    const { submitted } = await h.client.requestDeletion(['ada@example.com'])
    await expect(h.client.getStatus(submitted[0].id)).resolves.toMatchObject({ id: submitted[0].id, status: 'pending', input: ['ada@example.com'], deleted_receipt: [] })
    await expect(h.client.getStatus(submitted[0].id)).resolves.toMatchObject({ status: 'completed', deleted_receipt: [{ email: 'ada@example.com' }] })
    await expect(h.client.getStatus('nope')).rejects.toMatchObject({ constructor: DeletionError, reason: 'not_found', requestId: 'nope' })
  })
})

describe('options', () => {
  test.each([
    ['https://app.getkoala.com', true], ['https://proxy.example.com/koala', true],
    ['http://localhost:4010', true], ['http://127.0.0.1:4010', true], ['http://[::1]:4010', true],
    ['http://app.getkoala.com', false], ['http://10.0.0.5:4010', false], ['http://localhost.example.com', false]
  ])('baseUrl %s allowed: %s', (baseUrl, allowed) => {
    const make = (): DeletionClient => createDeletionClient({ secretKey: 'sk_test_1', baseUrl, logger: { debug () {}, warn () {}, error () {} } })
    if (allowed) {
      expect(make()).toBeInstanceOf(DeletionClient)
    } else {
      expect(make).toThrow(ConfigError)
      expect(make).toThrow(/^baseUrl must use https: over http:\/\/ the secret key would cross the network in clear text/)
    }
  })

  test.each([
    [undefined, 'secretKey is required: a Koala secret key (sk_..., Settings → API Keys)'],
    ['pk_live_123', 'secretKey must be a secret key (sk_...), not the public project key (pk_...)'],
    ['sk_has space', 'secretKey does not look like a Koala secret key: expected sk_ followed by printable ASCII without spaces'],
    ['live_abc', 'secretKey does not look like a Koala secret key: expected sk_ followed by printable ASCII without spaces']
  ])('secretKey %j is refused with a message that does not echo it', (secretKey, message) => {
    expect(() => createDeletionClient({ secretKey: secretKey as string })).toThrow(message)
  })

  test('a key with surrounding whitespace (a file read as is) is trimmed', async () => {
    h = await deletionHarness()
    const client = h.make({ secretKey: `  ${h.key}\n` })
    expect((await client.requestDeletion(['ada@example.com'])).submitted).toHaveLength(1)
  })

  test('DELETION_DEFAULTS is frozen and numbers are checked like the tracker\'s', () => {
    expect(Object.isFrozen(DELETION_DEFAULTS)).toBe(true)
    expect(() => createDeletionClient({ secretKey: 'sk_x', pollIntervalMs: 0 })).toThrow('pollIntervalMs must be between 1 and 2147483647, got 0')
    expect(() => createDeletionClient({ secretKey: 'sk_x', maxAttempts: 1.5 })).toThrow('maxAttempts must be an integer, got 1.5')
    expect(() => createDeletionClient({ secretKey: 'sk_x', transport: {} as never })).toThrow('transport must have a request() method')
    expect(() => createDeletionClient({ secretKey: 'sk_x', pollIntervalMS: 10 } as never)).toThrow('pollIntervalMS is not an option (did you mean pollIntervalMs?)')
  })
})
