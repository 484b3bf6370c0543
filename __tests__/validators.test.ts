import { readFileSync } from 'node:fs'
import * as validators from '../lib/generated/validators'

// eslint-disable-next-line @typescript-eslint/no-require-imports
const codegen = require('../scripts/validators-codegen.cjs') as { generateValidatorsSource(): string, OUT: string }

test('lib/generated/validators.js is what schemas/ compiles to (run `npm run build:validators` after editing a schema)', () => {
  expect(readFileSync(codegen.OUT, 'utf8')).toBe(codegen.generateValidatorsSource())
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
  const bodies: Array<[validators.Validator, unknown]> = [
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
