import { COOKIE_DEFAULTS, isValidKoId, readKoId, resolveCookieOptions, serializeKoId, type CookieOptions } from '../lib/express/cookie'
import { ConfigError } from '../lib/shared/errors'

const ID = '6f1c1c1e-4a4b-4c4d-8e8f-0a0b0c0d0e0f'
const OTHER = '0b7e5d52-1f0e-4c53-9d1e-2a6f3c8b9e10'

describe('readKoId', () => {
  test.each<[string, string | string[] | undefined, string | undefined]>([
    ['no header', undefined, undefined],
    ['an array (not what Node gives, but never trusted)', [`ko_id=${ID}`], undefined],
    ['only ko_id', `ko_id=${ID}`, ID],
    ['among other cookies, with spaces', `a=1;  ko_id = ${ID} ;b=2`, ID],
    ['upper-case hex, kept as given', `ko_id=${ID.toUpperCase()}`, ID.toUpperCase()],
    ['quoted', `ko_id="${ID}"`, ID],
    ['a longer name that ends in ko_id', `xko_id=${ID}`, undefined],
    ['a name that starts with ko_id', `ko_id2=${ID}`, undefined],
    ['inside another cookie\'s value', `ref=ko_id=${ID}`, undefined],
    ['after a value that mentions it', `ref=ko_id=x; ko_id=${OTHER}`, OTHER],
    ['a second ko_id after a malformed one', `ko_id=junk; ko_id=${OTHER}`, OTHER],
    ['the first of two valid ones (the browser sends the most specific first)', `ko_id=${ID}; ko_id=${OTHER}`, ID],
    ['not a UUID', 'ko_id=abc', undefined],
    ['URL-encoded', `ko_id=${ID.replace(/-/g, '%2D')}`, undefined],
    ['with a trailing attribute smuggled in', `ko_id=${ID},evil=1`, undefined],
    ['the nil UUID', 'ko_id=00000000-0000-0000-0000-000000000000', undefined],
    ['the max UUID', 'ko_id=FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF', undefined],
    ['no value', 'ko_id', undefined],
    ['huge', `ko_id=${'9'.repeat(10_000)}`, undefined]
  ])('%s', (_what, header, expected) => {
    expect(readKoId(header)).toBe(expected)
  })

  test('every UUID version Koala accepts is kept (the pixel may not mint v4)', () => {
    expect(isValidKoId('0190c1d2-7e3a-7b4c-8d5e-6f708192a3b4')).toBe(true) // v7
    expect(isValidKoId('6f1c1c1e-4a4b-1c4d-8e8f-0a0b0c0d0e0f')).toBe(true) // v1
  })
})

describe('serializeKoId', () => {
  test('defaults: one year, path /, SameSite=Lax, Secure only when asked, never HttpOnly', () => {
    const c = resolveCookieOptions()
    expect(serializeKoId(ID, c, false)).toBe(`ko_id=${ID}; Max-Age=31536000; Path=/; SameSite=Lax`)
    expect(serializeKoId(ID, c, true)).toBe(`ko_id=${ID}; Max-Age=31536000; Path=/; SameSite=Lax; Secure`)
    expect(COOKIE_DEFAULTS.maxAgeMs).toBe(365 * 86_400_000)
  })

  test('no combination of options produces HttpOnly', () => {
    for (const sameSite of ['lax', 'strict', 'none'] as const) {
      for (const secure of [true, false, 'auto'] as const) {
        if (sameSite === 'none' && secure !== true) continue
        const c = resolveCookieOptions({ sameSite, secure, domain: '.example.com' })
        expect(serializeKoId(ID, c, secure === true).toLowerCase()).not.toContain('httponly')
      }
    }
    // Asking for it is a mistake worth saying so, not something to ignore.
    expect(() => resolveCookieOptions({ httpOnly: true } as CookieOptions)).toThrow(expect.objectContaining({
      option: 'cookie.httpOnly', message: expect.stringContaining('the Koala pixel reads it from JavaScript')
    }))
  })
})

describe('resolveCookieOptions names the bad option', () => {
  test.each<[CookieOptions, string]>([
    [{ domain: 'example.com; HttpOnly' }, 'cookie.domain'],
    [{ domain: 'exa mple.com' }, 'cookie.domain'],
    [{ domain: '' }, 'cookie.domain'],
    [{ maxAgeMs: 999 }, 'cookie.maxAgeMs'],
    [{ maxAgeMs: 401 * 86_400_000 }, 'cookie.maxAgeMs'],
    [{ maxAgeMs: 1.5e6 + 0.5 }, 'cookie.maxAgeMs'],
    [{ sameSite: 'sometimes' as 'lax' }, 'cookie.sameSite'],
    [{ sameSite: 'none' }, 'cookie.sameSite'],
    [{ sameSite: 'none', secure: 'auto' }, 'cookie.sameSite'],
    [{ secure: 'yes' as unknown as boolean }, 'cookie.secure'],
    [{ path: 'app' }, 'cookie.path'],
    [{ path: '/a;b' }, 'cookie.path'],
    // Node refuses a header above \xff: accepted here, each new visitor's request would fail.
    [{ path: '/€' }, 'cookie.path'],
    [{ path: '/caf\u00e9' }, 'cookie.path'],
    [{ sameSite: 'constructor' as 'lax' }, 'cookie.sameSite'],
    [{ sameSite: '__proto__' as 'lax' }, 'cookie.sameSite'],
    [{ maxAge: 1000 } as CookieOptions, 'cookie.maxAge'],
    [{ domian: '.example.com' } as CookieOptions, 'cookie.domian']
  ])('%j', (options, option) => {
    const err = (() => { try { resolveCookieOptions(options); return undefined } catch (e) { return e } })()
    expect(err).toBeInstanceOf(ConfigError)
    expect(err).toMatchObject({ option, code: 'KOALA_ERR_INVALID_OPTION' })
  })

  test('accepted forms', () => {
    expect(serializeKoId(ID, resolveCookieOptions({ domain: '.Example.co.uk', sameSite: 'None' as 'none', secure: true, maxAgeMs: 1000 }), true))
      .toBe(`ko_id=${ID}; Max-Age=1; Path=/; Domain=.Example.co.uk; SameSite=None; Secure`)
    expect(serializeKoId(ID, resolveCookieOptions({ domain: 'localhost', path: '/app/' }), false))
      .toBe(`ko_id=${ID}; Max-Age=31536000; Path=/app/; Domain=localhost; SameSite=Lax`)
  })
})
