import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { person } from '../lib/generated/validators'
import { LOWER_UUID, NOT_UUID, UPPER_UUID, conflicts, normalizeDomain, secondaryKey, uuidShape } from '../lib/identity'

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

describe('uuidShape stands in for the ProfileId pattern', () => {
  test('it implements the pattern the schema has (a schema change must change it too)', () => {
    const schema = JSON.parse(readFileSync(join(__dirname, '..', 'schemas', 'profile-batch.schema.json'), 'utf8'))
    expect(schema.$defs.ProfileId.pattern).toBe('^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$')
  })

  test.each([
    ['6f1c1a4e-2b7d-4c3e-9f4a-1b2c3d4e5f60', LOWER_UUID],
    ['6F1C1A4E-2B7D-4C3E-9F4A-1B2C3D4E5F60', UPPER_UUID],
    ['6f1c1a4e-2b7d-4c3e-9f4a-1b2c3d4e5F60', UPPER_UUID],
    ['6f1c1a4e-2b7d-4c3e-9f4a-1b2c3d4e5f6', NOT_UUID], // 35 characters
    ['6f1c1a4e-2b7d-4c3e-9f4a-1b2c3d4e5f600', NOT_UUID],
    ['6f1c1a4e2b7d-4c3e-9f4a-1b2c3d4e5f60-', NOT_UUID], // a dash out of place
    ['6f1c1a4e-2b7d-4c3e-9f4a-1b2c3d4e5g60', NOT_UUID],
    ['6f1c1a4e-2b7d-4c3e-9f4a-1b2c3d4e5G60', NOT_UUID],
    ['6f1c1a4e-2b7d-4c3e-9f4a-1b2c3d4e5f6\n', NOT_UUID],
    ['6f1c1a4e-2b7d-4c3e-9f4a-1b2c3d4e5f6\u0660', NOT_UUID], // an Arabic-Indic digit
    ['6f1c1a4e-2b7d-4c3e-9f4a-1b2c3d4e5f6:', NOT_UUID], // the code point after 9
    ['6f1c1a4e-2b7d-4c3e-9f4a-1b2c3d4e5f6/', NOT_UUID], // the code point before 0
    ['6f1c1a4e-2b7d-4c3e-9f4a-1b2c3d4e5f6@', NOT_UUID], // before A
    ['6f1c1a4e-2b7d-4c3e-9f4a-1b2c3d4e5f6`', NOT_UUID], // before a
    ['6f1c1a4e-2b7d-4c3e-9f4a-1b2c3d4e5f6\u00e1', NOT_UUID], // 0xe1: 'a' with the high bit set
    ['6f1c1a4e\u012d2b7d-4c3e-9f4a-1b2c3d4e5f60', NOT_UUID], // 0x12d: '-' with a high bit set
    ['------------------------------------', NOT_UUID],
    ['00000000-0000-0000-0000-000000000000', LOWER_UUID] // digits alone need no lower-casing
  ])('uuidShape(%j) is %d', (s, shape) => {
    expect(uuidShape(s)).toBe(shape)
  })

  test('agrees with the generated person validator on 20,000 near-UUIDs, and finds capitals as /[A-F]/ does', () => {
    // A seeded generator: the same strings every run, mostly UUID-shaped with one thing wrong.
    let seed = 7
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
    const alphabet = '0123456789abcdefABCDEF-gG:/@`\u0660 \n'
    let valid = 0
    for (let round = 0; round < 20_000; round++) {
      const chars = [...'0123456789abcdef0123456789abcdef0123'].map((_, i) => [8, 13, 18, 23].includes(i) ? '-' : '0123456789abcdefABCDEF'[rand(22)])
      for (let k = rand(3); k > 0; k--) chars[rand(36)] = alphabet[rand(alphabet.length)]
      if (rand(10) === 0) chars.splice(rand(36), 1)
      if (rand(10) === 0) chars.splice(rand(36), 0, alphabet[rand(alphabet.length)])
      const s = chars.join('')
      const shape = uuidShape(s)
      expect([s, shape !== NOT_UUID]).toEqual([s, person({ profile_id: s })])
      if (shape !== NOT_UUID) {
        valid++
        expect([s, shape === UPPER_UUID]).toEqual([s, /[A-F]/.test(s)])
      }
    }
    // Both answers were exercised many times.
    expect(valid).toBeGreaterThan(2_000)
    expect(valid).toBeLessThan(18_000)
  })
})
