import { ConfigError } from '../lib/shared/errors'
import { DEFAULTS, resolveOptions } from '../lib/tracker/options'
import { createTracker } from '../lib/tracker/tracker'

describe('resolveOptions', () => {
  test('fills every default and derives the project path', () => {
    const { options, warnings } = resolveOptions({ publicKey: 'pk_live/1 2' })
    expect(warnings).toEqual([])
    expect(options).toMatchObject({ ...DEFAULTS, origin: 'https://api2.getkoala.com', projectPath: '/web/projects/pk_live%2F1%202' })
    expect(Object.isFrozen(options)).toBe(true)
    expect(Object.isFrozen(DEFAULTS)).toBe(true)
  })

  test('keeps a path prefix in baseUrl (a proxy) and respects 0 where it is allowed', () => {
    const { options } = resolveOptions({ publicKey: 'pk', baseUrl: 'http://127.0.0.1:4010/koala/', retryBaseDelayMs: 0, maxRetryDurationMs: 0 })
    expect(options.origin).toBe('http://127.0.0.1:4010')
    expect(options.projectPath).toBe('/koala/web/projects/pk')
    expect(options.retryBaseDelayMs).toBe(0)
    expect(options.maxRetryDurationMs).toBe(0)
  })

  test.each([
    [{}, 'publicKey', 'publicKey is required: your Koala project public key (pk_...)'],
    [{ publicKey: '  ' }, 'publicKey', 'publicKey is required: your Koala project public key (pk_...)'],
    [{ publicKey: 'pk', flushIntervalMs: -1 }, 'flushIntervalMs', 'flushIntervalMs must be between 1 and 2147483647, got -1'],
    [{ publicKey: 'pk', flushAt: 0 }, 'flushAt', 'flushAt must be between 1 and 9007199254740991, got 0'],
    [{ publicKey: 'pk', requestTimeoutMs: 1.5 }, 'requestTimeoutMs', 'requestTimeoutMs must be an integer, got 1.5'],
    [{ publicKey: 'pk', maxBuckets: '10' }, 'maxBuckets', 'maxBuckets must be an integer, got string'],
    [{ publicKey: 'pk', baseUrl: 'api2.getkoala.com' }, 'baseUrl', 'baseUrl must be an absolute http(s) URL, got "api2.getkoala.com"'],
    [{ publicKey: 'pk', baseUrl: 'ftp://x.example' }, 'baseUrl', 'baseUrl must use http or https, got ftp:'],
    [{ publicKey: 'pk', baseUrl: 'https://x.example/?a=1' }, 'baseUrl', 'baseUrl must not have a query or fragment'],
    [{ publicKey: 'pk', strict: 'yes' }, 'strict', 'strict must be a boolean, got string'],
    [{ publicKey: 'pk', onError: 'log' }, 'onError', 'onError must be a function, got string'],
    [{ publicKey: 'pk', logger: console.log }, 'logger', 'logger must have debug(), warn() and error() methods (a pino logger works)'],
    [{ publicKey: 'pk', clock: { now: () => 0 } }, 'clock', 'clock must have now(), setTimeout() and clearTimeout()'],
    [{ publicKey: 'pk', transport: {} }, 'transport', 'transport must have a send() method'],
    [{ publicKey: 'pk', dispatcher: 'nope' }, 'dispatcher', 'dispatcher must be an undici Dispatcher (a Pool, Agent or MockAgent) with a dispatch() method'],
    [{ publicKey: 'pk', dispatcher: null }, 'dispatcher', 'dispatcher must be an undici Dispatcher (a Pool, Agent or MockAgent) with a dispatch() method'],
    // A misspelt option would otherwise leave its default in place without a word.
    [{ publicKey: 'pk', flushIntervalMS: 1000 }, 'flushIntervalMS', 'flushIntervalMS is not an option (did you mean flushIntervalMs?)'],
    [{ publicKey: 'pk', timeout: 1000 }, 'timeout', 'timeout is not an option'],
    // The longest start in common, not the first option that shares four letters (maxBuckets comes first).
    [{ publicKey: 'pk', maxBufferItems: 10 }, 'maxBufferItems', 'maxBufferItems is not an option (did you mean maxBufferedItems?)'],
    [{ publicKey: 'pk', flushInterval: 10 }, 'flushInterval', 'flushInterval is not an option (did you mean flushIntervalMs?)']
  ])('%j is refused with an exact message', (input, option, message) => {
    let caught: unknown
    try { resolveOptions(input as never) } catch (e) { caught = e }
    expect(caught).toBeInstanceOf(ConfigError)
    expect(caught).toMatchObject({ option, message, code: 'KOALA_ERR_INVALID_OPTION' })
  })

  test.each(['sk_live_0123456789abcdef', ' sk_test_0123456789abcdef'])('a secret key as publicKey (%j) is refused, pointing at the deletion client, and not repeated', (key) => {
    let err: unknown
    try {
      createTracker({ publicKey: key })
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(ConfigError)
    expect(err).toMatchObject({ code: 'KOALA_ERR_INVALID_OPTION', option: 'publicKey', message: expect.stringContaining('koala-tracker/deletion') })
    expect((err as Error).message).not.toContain('0123456789abcdef')
  })

  test('clamps soft conflicts and says so', () => {
    const { options, warnings } = resolveOptions({ publicKey: 'pk', flushAt: 50, retryBaseDelayMs: 2000, retryMaxDelayMs: 1000 })
    expect(options.flushAt).toBe(30)
    expect(options.retryMaxDelayMs).toBe(2000)
    expect(warnings).toEqual([
      "flushAt 50 is above Koala's limit of 30 per array; using 30",
      'retryMaxDelayMs 1000 is below retryBaseDelayMs 2000; using 2000'
    ])
  })

  test('createTracker throws the ConfigError synchronously and logs clamped options once', () => {
    expect(() => createTracker({ publicKey: '' })).toThrow(ConfigError)
    const lines: string[] = []
    const logger = { debug () {}, warn: (_: object, msg?: string) => { lines.push(msg ?? '') }, error () {} }
    const t = createTracker({ publicKey: 'pk', flushAt: 31, logger })
    expect(lines).toEqual(["flushAt 31 is above Koala's limit of 30 per array; using 30"])
    void t.close()
  })
})
