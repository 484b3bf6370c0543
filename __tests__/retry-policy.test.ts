import { classifyError, classifyResponse, parseRetryAfter, retryBudgetSpent, retryDelayMs } from '../lib/shared/retry-policy'

const NOW = Date.UTC(2026, 10, 26, 12, 0, 0)

describe('classifyResponse', () => {
  test.each([
    [200, 'ok'], [202, 'ok'], [204, 'ok'],
    [408, 'retry'], [429, 'retry'], [500, 'retry'], [502, 'retry'], [503, 'retry'], [504, 'retry'], [599, 'retry'],
    [400, 'reject'], [409, 'reject'], [413, 'reject'], [422, 'reject'], [501, 'reject'], [505, 'reject'], [301, 'reject'], [100, 'reject'],
    [401, 'disable'], [403, 'disable'], [404, 'disable']
  ])('HTTP %i is %s', (status, kind) => {
    expect(classifyResponse(status, {}, '', NOW).kind).toBe(kind)
  })

  test('only Koala\'s own "ingest suspended" (a 400 whose JSON error is exactly its message) disables; the same words on a 5xx are retried', () => {
    expect(classifyResponse(400, {}, '{"error": "Koala ingest suspended"}', NOW)).toEqual({ kind: 'disable', status: 400, body: '{"error": "Koala ingest suspended"}' })
    expect(classifyResponse(503, {}, 'ingest suspended', NOW).kind).toBe('retry')
    expect(classifyResponse(400, {}, '{"error":"bad event"}', NOW).kind).toBe('reject')
  })

  test.each([
    ['plain text', 422, 'ingest is suspended for this workspace'],
    ['a 400 quoting an event name', 400, '{"error":"invalid event \\"Ingest Suspended\\""}'],
    ['the message outside the error field', 400, '{"error":"bad batch","detail":"Koala ingest suspended"}'],
    ['the message in another case', 400, '{"error":"koala ingest suspended"}'],
    ['the message with another 4xx', 422, '{"error":"Koala ingest suspended"}'],
    ['not JSON', 400, 'Koala ingest suspended']
  ])('a body that merely mentions a suspension only rejects its batch: %s', (_name, status, body) => {
    expect(classifyResponse(status, {}, body, NOW).kind).toBe('reject')
  })

  test('a 429 is marked rate-limited and carries its Retry-After', () => {
    expect(classifyResponse(429, { 'retry-after': '7' }, '', NOW)).toEqual({ kind: 'retry', status: 429, retryAfterMs: 7000, rateLimited: true, detail: 'HTTP 429' })
    expect(classifyResponse(503, { 'retry-after': '2' }, '', NOW)).toMatchObject({ retryAfterMs: 2000, rateLimited: false })
  })
})

describe('classifyError', () => {
  test.each(['ECONNREFUSED', 'ECONNRESET', 'UND_ERR_SOCKET', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_ABORTED'])('%s is retried', (code) => {
    expect(classifyError(Object.assign(new Error('boom'), { code }))).toMatchObject({ kind: 'retry', detail: `${code}: boom` })
  })
  test('an error without a code is retried; a malformed request is not', () => {
    expect(classifyError(new Error('other side closed')).kind).toBe('retry')
    expect(classifyError('weird').kind).toBe('retry')
    expect(classifyError(Object.assign(new Error('bad header'), { code: 'UND_ERR_INVALID_ARG' }))).toMatchObject({ kind: 'reject', status: 0 })
  })
})

describe('parseRetryAfter', () => {
  test.each([
    [undefined, undefined], ['', undefined], ['soon', undefined],
    ['0', 0], ['3', 3000], ['1.5', 1500], [' 10 ', 10_000], [['4', '9'], 4000],
    [new Date(NOW + 30_000).toUTCString(), 30_000],
    [new Date(NOW - 30_000).toUTCString(), 0],
    // RFC 9110's obsolete forms, which a recipient must still read.
    ['Sunday, 06-Nov-94 08:49:37 GMT', 0], // 1994: already past
    ['Sun Nov  6 08:49:37 2044', Date.UTC(2044, 10, 6, 8, 49, 37) - NOW],
    // Not HTTP dates, though Date.parse reads each as a day in 2001: no Retry-After at all.
    ['-1', undefined], ['1,2', undefined], ['5, 6', undefined], ['tomorrow', undefined], ['2044-01-01', undefined]
  ])('%j → %j ms', (value, ms) => {
    expect(parseRetryAfter(value as string | undefined, NOW)).toBe(ms)
  })
})

describe('retryDelayMs', () => {
  const opts = { retryBaseDelayMs: 500, retryMaxDelayMs: 30_000, maxRetryAfterMs: 120_000 }
  test('doubles per consecutive failure, between half and all of the step, up to the cap', () => {
    const low = (): number => 0
    const high = (): number => 0.999999
    expect([1, 2, 3, 4, 5, 6, 7, 8, 20].map(n => retryDelayMs(n, undefined, opts, low))).toEqual([250, 500, 1000, 2000, 4000, 8000, 15_000, 15_000, 15_000])
    expect([1, 2, 3, 7, 20].map(n => retryDelayMs(n, undefined, opts, high))).toEqual([500, 1000, 2000, 30_000, 30_000])
  })
  test('Retry-After lengthens the wait, clamped to maxRetryAfterMs, and never shortens the backoff', () => {
    expect(retryDelayMs(1, 5000, opts, () => 0.5)).toBe(5000)
    expect(retryDelayMs(1, 3_600_000, opts, () => 0.5)).toBe(120_000)
    // 0 (or a date already past) would retry at once, every time: the backoff stands.
    expect(retryDelayMs(1, 0, opts, () => 0)).toBe(250)
    expect(retryDelayMs(9, 0, opts, () => 0.5)).toBe(22_500)
    expect(retryDelayMs(9, 1000, opts, () => 0.5)).toBe(22_500)
  })
})

describe('retryBudgetSpent', () => {
  const opts = { maxAttempts: 3, maxRetryDurationMs: 60_000 }
  test.each([
    [1, 0, 1000, false], [2, 0, 1000, false], [3, 0, 1000, true],
    [1, 50_000, 10_000, false], [1, 50_000, 10_001, true]
  ])('attempts=%i elapsed=%i next wait=%i → spent=%s', (attempts, elapsed, wait, spent) => {
    expect(retryBudgetSpent(attempts, NOW - elapsed, NOW, wait, opts)).toBe(spent)
  })
})
