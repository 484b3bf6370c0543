import { classifyDeletionError, classifyDeletionResponse } from '../lib/deletion/policy'
import { planDeletion } from '../lib/deletion/plan'
import { emailProblem } from '../lib/shared/email'
import { parseEmailList } from '../lib/deletion/email-list'
import { emailsFor } from './helpers/deletion'

const NOW = Date.UTC(2026, 10, 26, 12, 0, 0)

describe('planDeletion', () => {
  test.each([[0, []], [1, [1]], [50, [50]], [51, [50, 1]], [120, [50, 50, 20]], [150, [50, 50, 50]]])('%i emails → requests of %j', (n, sizes) => {
    const plan = planDeletion(emailsFor(n))
    expect(plan.batches.map(b => b.length)).toEqual(sizes)
    expect(plan.batches.flat()).toEqual(emailsFor(n))
    expect(plan.emails).toBe(n)
  })

  test('never more than 50 per request, whatever is asked', () => {
    expect(planDeletion(emailsFor(120), 500).batches.map(b => b.length)).toEqual([50, 50, 20])
    expect(planDeletion(emailsFor(5), 2).batches.map(b => b.length)).toEqual([2, 2, 1])
  })

  test('duplicates are found without regard to case, after trimming; the first spelling is kept', () => {
    const plan = planDeletion(['Ada@Example.com', ' ada@example.com', 'ADA@EXAMPLE.COM\t', 'b@example.com'])
    expect(plan).toEqual({ batches: [['Ada@Example.com', 'b@example.com']], emails: 2, duplicates: 2, invalid: [] })
  })

  test.each([
    ['', 'must not be empty'],
    ['ada', 'is not an email address'],
    ['ada@', 'is not an email address'],
    ['@example.com', 'is not an email address'],
    ['ada lovelace@example.com', 'is not an email address'],
    ['ada@localhost', 'is not an email address'],
    ['ada@@example.com', 'is not an email address'],
    ['ada@example..com', 'is not an email address'],
    ['.ada@example.com', 'is not an email address'],
    ['ada\u0001@example.com', 'is not an email address'],
    [`${'a'.repeat(320)}@example.com`, 'is longer than 320 characters'],
    [null, 'must be a string, got null'],
    [{ email: 'a@example.com' }, 'must be a string, got an object']
  ])('%j: %s', (value, reason) => {
    expect(emailProblem(value)).toBe(reason)
    expect(planDeletion([value]).invalid).toEqual([{ index: 0, value, reason }])
  })
})

test.each([
  'ada@example.com',
  'first.last+tag@mail.example.co.uk',
  // What format email refuses but the pixel or an integration may have stored.
  'jörg@bücher.de',
  'user@bücher.de',
  '用户@例子.广告',
  '"john doe"@example.com',
  'ada@[192.168.0.1]'
])('%s can be sent for deletion', (value) => {
  expect(emailProblem(value)).toBeUndefined()
  expect(planDeletion([value]).batches).toEqual([[value]])
})

describe('parseEmailList', () => {
  test('one per line; blank lines, comments, CRLF and a BOM are skipped; line numbers kept', () => {
    expect(parseEmailList('\uFEFF# export of 2026-11-26\r\nada@example.com\r\n\r\n  grace@example.org  \n# done\nnot an email\n')).toEqual({
      emails: ['ada@example.com', 'grace@example.org', 'not an email'],
      lines: [2, 4, 6],
      column: undefined
    })
  })

  test('a lone "email" header line is skipped', () => {
    expect(parseEmailList('Email\nada@example.com\n').emails).toEqual(['ada@example.com'])
  })

  test('a CSV with an email column, quoted cells and commas inside quotes', () => {
    const csv = 'name,"E-mail Address",plan\n"Lovelace, Ada",ada@example.com,pro\n"Hopper, Grace","grace@example.org",free\n'
    expect(parseEmailList(csv)).toEqual({ emails: ['ada@example.com', 'grace@example.org'], lines: [2, 3], column: 1 })
  })

  test('a CSV without a header: the first column holding an email; semicolons and tabs work too', () => {
    expect(parseEmailList('7;ada@example.com;x\n8;grace@example.org;y')).toEqual({ emails: ['ada@example.com', 'grace@example.org'], lines: [1, 2], column: 1 })
    expect(parseEmailList('ada@example.com\tAda\n')).toMatchObject({ emails: ['ada@example.com'], column: 0 })
  })

  test('a short row gives an empty value (reported as invalid by the plan), not a shifted column', () => {
    const list = parseEmailList('id,email\n1,ada@example.com\n2\n')
    expect(list.emails).toEqual(['ada@example.com', ''])
    expect(planDeletion(list.emails).invalid).toEqual([{ index: 1, value: '', reason: 'must not be empty' }])
  })

  test('an empty file is an empty list', () => {
    expect(parseEmailList('\n# nothing\n')).toEqual({ emails: [], lines: [], column: undefined })
  })
})

describe('the deletion reading of the tracker\'s retry policy', () => {
  test.each([
    ['POST', 200, 'ok', undefined, undefined],
    ['POST', 429, 'retry', undefined, undefined],
    ['GET', 503, 'retry', undefined, undefined],
    ['POST', 401, 'fail', 'unauthorized', true],
    ['GET', 403, 'fail', 'unauthorized', true],
    // The tracker reads 404 as "project refused"; here it is an unknown id, or no API at baseUrl.
    ['GET', 404, 'fail', 'not_found', false],
    ['POST', 404, 'fail', 'not_found', true],
    ['POST', 400, 'fail', 'rejected', false],
    ['POST', 422, 'fail', 'rejected', false],
    ['POST', 301, 'fail', 'rejected', true],
    ['POST', 501, 'fail', 'rejected', true]
  ] as const)('%s %i → %s %s (fatal %s)', (method, status, kind, reason, fatal) => {
    const o = classifyDeletionResponse(method, status, {}, '', NOW)
    expect(o.kind).toBe(kind)
    if (o.kind === 'fail') expect([o.reason, o.fatal]).toEqual([reason, fatal])
  })

  test('"ingest suspended" is the ingestion API\'s word: here a 400 is just rejected', () => {
    expect(classifyDeletionResponse('POST', 400, {}, '{"error":"Koala ingest suspended"}', NOW)).toMatchObject({ kind: 'fail', reason: 'rejected', fatal: false })
  })

  test('network errors are retried; a request undici refuses to send, or an oversized answer, stops the run', () => {
    expect(classifyDeletionError(Object.assign(new Error('reset'), { code: 'ECONNRESET' })).kind).toBe('retry')
    expect(classifyDeletionError(Object.assign(new Error('bad'), { code: 'UND_ERR_INVALID_ARG' }))).toMatchObject({ kind: 'fail', reason: 'rejected', fatal: true })
    expect(classifyDeletionError(Object.assign(new Error('big'), { code: 'KOALA_RESPONSE_TOO_LARGE' }))).toMatchObject({ kind: 'fail', reason: 'bad_response', fatal: true })
  })
})
