import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import * as validators from '../lib/generated/batch-validators'
import * as calls from '../lib/generated/validators'
import type { Validator } from '../lib/generated/validators'

// eslint-disable-next-line @typescript-eslint/no-require-imports
const codegen = require('../scripts/validators-codegen.cjs') as { generateValidatorsSource(file: string): string, OUT_DIR: string, FILES: Record<string, unknown> }

test.each(Object.keys(codegen.FILES))('lib/generated/%s is what schemas/ compiles to (run `npm run build:validators` after editing a schema)', (file) => {
  expect(readFileSync(join(codegen.OUT_DIR, file), 'utf8')).toBe(codegen.generateValidatorsSource(file))
})

test('the generated files need nothing from Ajv at run time but the lazily loaded formats', () => {
  for (const file of Object.keys(codegen.FILES)) {
    const requires = readFileSync(join(codegen.OUT_DIR, file), 'utf8').match(/require\("[^"]+"\)/g) ?? []
    expect(new Set(requires)).toEqual(new Set(requires.length === 0 ? [] : ['require("ajv-formats/dist/formats")']))
  }
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
