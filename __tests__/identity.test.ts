import { conflicts, normalizeDomain, secondaryKey } from '../lib/identity'

test.each([
  ['Example.COM', 'example.com'],
  ['  acme.io ', 'acme.io'],
  ['https://www.acme.io/pricing?x=1#top', 'www.acme.io'],
  ['http://user:pw@acme.co.uk:8443/', 'acme.co.uk'],
  ['acme.io.', 'acme.io'],
  ['ACME.io/path', 'acme.io'],
  ['bücher.de', 'xn--bcher-kva.de'],
  ['', '']
])('normalizeDomain(%j) is %j', (input, out) => {
  expect(normalizeDomain(input)).toBe(out)
})

test('email keys ignore case and cannot meet a profile_id key', () => {
  expect(secondaryKey('Ada@Example.com')).toBe(secondaryKey('ada@example.com'))
  expect(secondaryKey('ada@example.com').startsWith('#')).toBe(true)
})

test.each([
  [undefined, 'a@x.io', false], ['a@x.io', undefined, false], ['a@x.io', 'A@X.io', false], ['a@x.io', 'b@x.io', true]
])('conflicts(%j, %j) is %s', (held, incoming, out) => {
  expect(conflicts(held, incoming)).toBe(out)
})
