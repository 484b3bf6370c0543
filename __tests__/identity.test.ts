import { conflicts, normalizeDomain, secondaryKey } from '../lib/tracker/identity'

test.each([
  ['Example.COM', 'example.com'],
  ['  acme.io ', 'acme.io'],
  ['https://www.acme.io/pricing?x=1#top', 'www.acme.io'],
  ['http://user:pw@acme.co.uk:8443/', 'acme.co.uk'],
  ['acme.io.', 'acme.io'],
  ['ACME.io/path', 'acme.io'],
  ['bücher.de', 'xn--bcher-kva.de'],
  ['acme.com。', 'acme.com'], // an ideographic full stop at the end is a trailing dot too
  ['', '']
])('normalizeDomain(%j) is %j', (input, out) => {
  expect(normalizeDomain(input)).toBe(out)
})

test('email keys ignore case, account_id keys do not, and neither can meet a profile_id key', () => {
  expect(secondaryKey('Ada@Example.com', true)).toBe(secondaryKey('ada@example.com', true))
  expect(secondaryKey('ada@example.com', true).startsWith('#')).toBe(true)
  expect(secondaryKey('0015g00000AbCdE', false)).not.toBe(secondaryKey('0015g00000abcde', false))
})

test.each([
  [undefined, 'a@x.io', true, false], ['a@x.io', undefined, true, false], ['a@x.io', 'A@X.io', true, false], ['a@x.io', 'b@x.io', true, true],
  ['Acct-1', 'Acct-1', false, false], ['Acct-1', 'acct-1', false, true]
])('conflicts(%j, %j, caseless %s) is %s', (held, incoming, caseless, out) => {
  expect(conflicts(held, incoming, caseless)).toBe(out)
})

