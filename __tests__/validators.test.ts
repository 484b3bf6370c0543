import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import * as validators from '../lib/generated/batch-validators'
import * as calls from '../lib/generated/validators'
import type { Validator } from '../lib/generated/validators'

// eslint-disable-next-line @typescript-eslint/no-require-imports
const codegen = require('../scripts/validators-codegen.cjs') as {
  generateValidatorsSource(file: string): string, parseSchema(name: string, text: string): unknown, OUT_DIR: string, FILES: Record<string, unknown>
}

test.each(Object.keys(codegen.FILES))('lib/generated/%s is what schemas/ compiles to (run `npm run build:validators` after editing a schema)', (file) => {
  expect(readFileSync(join(codegen.OUT_DIR, file), 'utf8')).toBe(codegen.generateValidatorsSource(file))
})

test('the generated files need nothing from Ajv at run time but the lazily loaded formats', () => {
  for (const file of Object.keys(codegen.FILES)) {
    const requires = readFileSync(join(codegen.OUT_DIR, file), 'utf8').match(/require\("[^"]+"\)/g) ?? []
    expect(new Set(requires)).toEqual(new Set(requires.length === 0 ? [] : ['require("ajv-formats/dist/formats")']))
  }
})

describe('the code generator', () => {
  test('refuses a schema that uses unevaluatedProperties or unevaluatedItems, which it compiles without tracking', () => {
    expect(codegen.parseSchema('a.json', '{"type":"object"}')).toEqual({ type: 'object' })
    expect(() => codegen.parseSchema('b.json', '{"type":"object","unevaluatedProperties":false}')).toThrow('b.json uses unevaluatedProperties/Items')
    expect(() => codegen.parseSchema('c.json', '{"unevaluatedItems":false}')).toThrow('c.json uses unevaluatedProperties/Items')
  })

  test('gives the call validators, which call no other, a context with instancePath only; the batch validators keep the whole of it', () => {
    const calls = readFileSync(join(codegen.OUT_DIR, 'validators.js'), 'utf8')
    const batches = readFileSync(join(codegen.OUT_DIR, 'batch-validators.js'), 'utf8')
    expect(calls).not.toMatch(/dynamicAnchors|rootData|parentData/)
    expect(calls.match(/^function validate\d+\(data, \{instancePath=""\}=\{\}\)\{$/gm)).toHaveLength(6)
    expect(batches).toMatch(/rootData,dynamicAnchors\}\)/) // a validator called by another, with the caller's context
  })

  test('compiles anyOf to stop at the first branch that passes (no error is built for the other)', () => {
    expect(calls.person({ profile_id: '8b0b6e3c-3c1b-4a8e-9d55-1c1f6a7b2a10' }, { instancePath: '' })).toBe(true)
    expect(calls.person.errors).toBeNull()
    expect(calls.person({ email: 'a@example.com' }, { instancePath: '' })).toBe(true)
    expect(calls.person({}, { instancePath: '' })).toBe(false)
    expect(calls.person.errors?.map(e => e.keyword)).toEqual(['required', 'required', 'anyOf'])
    const person = readFileSync(join(codegen.OUT_DIR, 'validators.js'), 'utf8').split('exports.trackEvent')[0]
    expect(person).toMatch(/valid0 = valid0 \|\| _valid0;\nif\(!valid0\)\{\nconst _errs3/)
  })
})

test('maxLength counts code points, as JSON Schema says: a surrogate pair is one character', () => {
  const emoji = '\u{1F428}' // two UTF-16 code units
  expect(calls.trackEvent({ type: 'track', event: emoji.repeat(1024) })).toBe(true)
  expect(calls.trackEvent({ type: 'track', event: emoji.repeat(1025) })).toBe(false)
  expect(calls.trackEvent.errors?.[0]).toMatchObject({ instancePath: '/event', keyword: 'maxLength' })
  // Lone surrogates count one each.
  expect(calls.trackEvent({ type: 'track', event: '\ud83d'.repeat(1024) })).toBe(true)
  expect(calls.trackEvent({ type: 'track', event: '\ud83d'.repeat(1025) })).toBe(false)
  expect(calls.trackEvent({ type: 'track', event: 'x' + emoji.repeat(1023) })).toBe(true)
  expect(calls.trackEvent({ type: 'track', event: 'xy' + emoji.repeat(1023) })).toBe(false)
})

test('length checks that look at the UTF-16 length first give the code-point count\'s answer near every limit', () => {
  // The generator skips counting code points when the length alone decides (cheapLengthChecks): check it
  // where it could go wrong, strings of n/2 to n code points around each limit, against a count of its own.
  const emoji = '\u{1F428}'
  const units = ['x', emoji, '\ud83d', '\udc28'] // one unit, a pair, and lone halves (one code point each)
  const codePoints = (s: string): number => [...s].length
  let checked = 0
  for (const [field, min, max] of [['event', 1, 1024], ['message_id', 1, 255]] as const) {
    for (const target of [0, 1, 2, 3, max - 1, max, max + 1, 2 * max - 1, 2 * max, 2 * max + 1]) {
      for (let mix = 0; mix < 6; mix++) {
        // Built to `target` UTF-16 units: all one kind, or alternating kinds, so the code points fall anywhere in [n/2, n].
        let s = ''
        for (let i = 0; s.length < target; i++) {
          const u = mix < 4 ? units[mix] : units[(i + mix) % 2]
          s += s.length + u.length > target ? 'x' : u
        }
        const n = codePoints(s)
        const item = { type: 'track', event: 'e', [field]: s }
        const expected = n >= min && n <= max && /\S/u.test(s)
        expect([field, s.length, n, calls.trackEvent(item)]).toEqual([field, s.length, n, expected])
        checked++
      }
    }
  }
  expect(checked).toBe(120)
  const source = readFileSync(join(codegen.OUT_DIR, 'validators.js'), 'utf8')
  expect(source).toMatch(/\(data\d\.length > 1024 && func1\(data\d\) > 1024\)/)
  expect(source).not.toMatch(/[^(&] func1\(\w+\) [<>]/)
})

test('the shipped example bodies from Koala\'s docs validate', () => {
  const dir = `${__dirname}/../../shared/koala-api`
  const read = (f: string): unknown => {
    try { return JSON.parse(readFileSync(`${dir}/${f}`, 'utf8')).value } catch { return undefined }
  }
  const track = read('koala-io-profile-batch-track-example.json')
  const identify = read('koala-io-profile-batch-identify-example.json')
  const account = read('koala-io-account-batch-event-example.json')
  // Reference data sits outside the repo; when it is absent (a bare clone) these fixtures stand in.
  const bodies: Array<[Validator, unknown]> = [
    [validators.profileBatch, track ?? { email: 'a@example.com', events: [{ message_id: 'm', type: 'track', event: 'Created Account', properties: {}, sent_at: '2022-11-09T23:57:14.776Z' }] }],
    [validators.profileBatch, identify ?? { profile_id: '3e6a2c18-3b02-40c4-b8d2-1842c193d3ba', email: 'user@example.org', identifies: [{ type: 'identify', traits: { vip: true } }] }],
    [validators.accountBatch, account ?? { domain: 'getkoala.com', events: [{ message_id: 'e', type: 'track', event: 'Workspace Created', properties: {} }] }]
  ]
  for (const [validate, body] of bodies) {
    expect(validate(body)).toBe(true)
  }
})

test.each([
  ['more than 30 events', { email: 'a@example.com', events: Array.from({ length: 31 }, () => ({ type: 'track', event: 'x' })) }, '/events'],
  ['neither id', { events: [] }, ''],
  ['an unknown top-level field', { email: 'a@example.com', person: 'x' }, ''],
  ['an event without a name', { email: 'a@example.com', events: [{ type: 'track' }] }, '/events/0'],
  ['a page view of the wrong type', { email: 'a@example.com', page_views: [{ type: 'track' }] }, '/page_views/0/type']
])('a profile batch with %s is invalid at %j', (_name, body, path) => {
  expect(validators.profileBatch(body)).toBe(false)
  expect(validators.profileBatch.errors?.[0].instancePath).toBe(path)
})
