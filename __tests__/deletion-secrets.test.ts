import { inspect } from 'node:util'
import type { CollectorRequest, Fault } from '../lib/collector'
import { createDeletionClient, type DeletionProgress } from '../lib/deletion/client'
import { redactSecrets } from '../lib/shared/redact'
import { deletionHarness, emailsFor, type DeletionHarness } from './helpers/deletion'

let h: DeletionHarness | undefined
afterEach(async () => {
  await h?.done()
  h = undefined
})

/** Everything reachable from `value`, own non-enumerable properties (message, stack, cause) included. */
function dump (value: unknown, seen = new Set<unknown>()): string {
  if (typeof value !== 'object' || value === null) return String(value)
  if (seen.has(value)) return ''
  seen.add(value)
  const parts = [inspect(value, { showHidden: true, depth: 6 })]
  for (const name of Object.getOwnPropertyNames(value)) parts.push(name, dump((value as Record<string, unknown>)[name], seen))
  return parts.join('\n')
}

/** Fails with the offending excerpt if any 8 characters of the key's secret part appear in `text`. */
function expectNoKey (text: string, key: string): void {
  const secret = key.slice('sk_live_'.length)
  for (let i = 0; i + 8 <= secret.length; i++) {
    const at = text.indexOf(secret.slice(i, i + 8))
    if (at !== -1) throw new Error(`a piece of the secret key leaked: ...${text.slice(Math.max(0, at - 80), at + 40)}...`)
  }
}

test('the secret key is in no log line, progress event, error message or error property, even when Koala echoes it back', async () => {
  const echoed: string[] = []
  // Answers that echo the Authorization header, as a misbehaving proxy might: in JSON, at the end of a truncated body, in an HTML page.
  const echo = (req: CollectorRequest, status: number, shape: (auth: string) => string): Fault => {
    const auth = String(req.headers.authorization)
    echoed.push(auth)
    return { status, body: shape(auth) }
  }
  const plan: Array<(req: CollectorRequest) => Fault | undefined> = [
    req => echo(req, 500, a => JSON.stringify({ error: 'upstream failed', headers: { authorization: a } })),
    req => echo(req, 400, a => 'x'.repeat(490) + a.replace('Bearer ', 'key=')), // the key straddles the 512-character cut
    req => echo(req, 200, a => `<html>You sent ${a}</html>`),
    req => echo(req, 404, a => `no such request for ${a.slice(7)}`),
    req => echo(req, 503, a => `retry later ${a}`),
    req => echo(req, 403, a => JSON.stringify({ error: `forbidden: ${a}` }))
  ]
  h = await deletionHarness({ maxAttempts: 2 }, { fault: req => plan.shift()?.(req) })
  const { key } = h
  const progress: DeletionProgress[] = []
  const onProgress = (e: DeletionProgress): void => { progress.push(e) }
  const captured: unknown[] = [progress, h.logger.lines]

  const first = await h.drive(h.client.requestDeletion(emailsFor(120), { onProgress })) // 500 then 400; then the 200 echo stops the run
  const second = await h.client.requestDeletion(emailsFor(10), { onProgress }) // 404
  captured.push(first.value, second)
  const waited = await h.drive(h.client.waitForCompletion(['id-1', 'id-2'], { onProgress })) // 503, then the 403 stops it
  captured.push(waited.value)
  const rejected = await h.client.getStatus('id-3').catch((e: unknown) => e) // an unknown id
  expect(rejected).toMatchObject({ reason: 'not_found' })
  captured.push(rejected)
  for (const options of [
    { secretKey: key, baseUrl: 'http://koala.example.com' },
    { secretKey: `${key} and more`, baseUrl: 'https://app.getkoala.com' },
    { secretKey: key.replace('sk_', 'pk_') }
  ]) {
    try {
      createDeletionClient(options)
    } catch (err) {
      captured.push(err)
    }
  }
  captured.push(h.client)

  // The echoes really carried the key, and the client really reported them.
  expect(echoed.length).toBe(6)
  expect(echoed.every(a => a === `Bearer ${key}`)).toBe(true)
  expect(first.value.failed.map(f => f.error.reason)).toEqual(['rejected', 'bad_response', 'skipped'])
  expect(second.failed[0].error.reason).toBe('not_found')
  expect(waited.value.failed.map(f => f.error.reason)).toEqual(['unauthorized', 'skipped'])
  expect(captured.filter(c => c instanceof Error)).toHaveLength(4)
  const text = captured.map(c => dump(c)).join('\n')
  expect(text).toContain('x'.repeat(490) + 'key=sk_[redacted]')
  expect(text).toContain('forbidden: Bearer [redacted]')
  expect(text).toContain('You sent Bearer [redacted]')
  expectNoKey(text, key)
})

test('a key echoed percent-encoded across the cut of an error body, or with characters a URL encodes, does not leak', async () => {
  for (const secretKey of [undefined, 'sk_live_ab+cd/ef:gh!ij0123456789xyz']) {
    const shapes = [
      (a: string) => '{"error":"forbidden","request":"' + 'h'.repeat(432) + '&authorization=' + encodeURIComponent(a) + ' trailing',
      (a: string) => 'h'.repeat(470) + 'token' + a.slice('Bearer '.length) + ' trailing',
      (a: string) => 'h'.repeat(500) + 'sent:' + encodeURIComponent(a.slice('Bearer '.length))
    ]
    h = await deletionHarness({ maxAttempts: 1, ...(secretKey === undefined ? {} : { secretKey }) }, {
      fault: req => { const shape = shapes.shift(); return shape === undefined ? undefined : { status: 400, body: shape(String(req.headers.authorization)) } }
    })
    const key = secretKey ?? h.key
    const results = []
    for (let i = 0; i < 3; i++) results.push(await h.client.requestDeletion(emailsFor(1)))
    expect(results.map(r => r.failed[0]?.error.reason)).toEqual(['rejected', 'rejected', 'rejected'])
    expectNoKey(dump([results, h.logger.lines]), key)
    await h.done()
    h = undefined
  }
})

test('a key echoed with its characters escaped (JSON, URL, HTML, escaped twice, upper case) does not leak in any form', async () => {
  const every = (escape: (c: string) => string) => (text: string): string => [...text].map(escape).join('')
  const hex = (c: string): string => c.charCodeAt(0).toString(16).padStart(2, '0')
  const underscore = (form: string) => (text: string): string => text.replace(/_/g, form)
  /** How a server or proxy might write the key back; each is applied to the whole key, and to any piece of it. */
  const forms: Array<[name: string, encode: (text: string) => string]> = [
    ['\\u005f', underscore('\\u005f')],
    ['%5F', underscore('%5F')],
    ['&#95;', underscore('&#95;')],
    ['&#x5f;', underscore('&#x5f;')],
    ['%255F', underscore('%255F')],
    ['\\\\u005f (escaped twice)', underscore('\\\\u005f')],
    ['&amp;#95; (escaped twice)', underscore('&amp;#95;')],
    ['&lowbar;', underscore('&lowbar;')],
    ['every character as %XX', every(c => `%${hex(c).toUpperCase()}`)],
    ['every character as \\u00xx', every(c => `\\u00${hex(c)}`)],
    ['every character as &#NNN;', every(c => `&#${c.charCodeAt(0)};`)],
    ['upper case', text => text.toUpperCase()]
  ]
  const pending = [...forms]
  h = await deletionHarness({ maxAttempts: 1 }, {
    fault: req => {
      const form = pending.shift()
      if (form === undefined) return undefined
      const key = String(req.headers.authorization).slice('Bearer '.length)
      // Written as is, not through JSON.stringify, which would escape the escapes once more.
      return { status: 400, body: `{"error":"bad request","you sent":"${form[1](key)}","as":"Authorization: Bearer ${form[1](key)}"}` }
    }
  })
  const progress: DeletionProgress[] = []
  const results = []
  for (let i = 0; i < forms.length; i++) results.push(await h.client.requestDeletion(emailsFor(1), { onProgress: e => { progress.push(e) } }))
  expect(results.map(r => r.failed[0]?.error.reason)).toEqual(forms.map(() => 'rejected'))
  const errors = results.map(r => r.failed[0].error)
  // The rest of the answer is still there to read.
  for (const e of errors) expect(e.body).toContain('"error":"bad request"')
  const text = dump([errors, progress, h.logger.lines])
  const secret = h.key.slice('sk_live_'.length)
  for (const [name, encode] of forms) {
    for (let i = 0; i + 8 <= secret.length; i++) {
      const piece = encode(secret.slice(i, i + 8))
      const at = text.toLowerCase().indexOf(piece.toLowerCase())
      if (at !== -1) throw new Error(`a piece of the secret key leaked, escaped as ${name}: ...${text.slice(Math.max(0, at - 80), at + 40)}...`)
    }
  }
  expectNoKey(text, h.key)
})

test('redactSecrets: the exact key, any sk_ token (also cut short), and Bearer credentials', () => {
  const key = 'sk_live_0123456789abcdef'
  expect(redactSecrets(`a ${key} b`, key)).toBe('a sk_[redacted] b')
  expect(redactSecrets('{"authorization":"Bearer abc.def"}')).toBe('{"authorization":"Bearer [redacted]"}')
  expect(redactSecrets('key=sk_live_01')).toBe('key=sk_[redacted]')
  expect(redactSecrets(`weird${key}`, key)).toBe('weirdsk_[redacted]')
  // Words and the placeholder in help texts are left alone.
  expect(redactSecrets('task_id sk_... risk_level')).toBe('task_id sk_... risk_level')
  // Percent-encoded, and cut short where it is glued to the text before it.
  expect(redactSecrets('auth=Bearer%20sk_live_0123')).toBe('auth=Bearer%20[redacted]')
  expect(redactSecrets('x=%22sk_live_01%22')).toBe('x=%22sk_[redacted]%22')
  expect(redactSecrets(`token${key.slice(0, 12)}`, key)).toBe('tokensk_[redacted]')
})
