import { envConfigError, envName, optionsFromEnv } from '../lib/singleton/env'
import { ConfigError } from '../lib/shared/errors'
import { DEFAULTS } from '../lib/tracker/options'

const thrown = (fn: () => unknown): unknown => { try { fn(); return undefined } catch (e) { return e } }

test('each option has one variable: KOALA_ + its name in SCREAMING_SNAKE_CASE', () => {
  expect(envName('publicKey')).toBe('KOALA_PUBLIC_KEY')
  expect(envName('baseUrl')).toBe('KOALA_BASE_URL')
  expect(envName('flushIntervalMs')).toBe('KOALA_FLUSH_INTERVAL_MS')
  expect(envName('maxBufferedBytes')).toBe('KOALA_MAX_BUFFERED_BYTES')
})

test('reads the key, the URL, strict, sendOnExit and every numeric option in DEFAULTS', () => {
  const env: Record<string, string> = { KOALA_PUBLIC_KEY: ' pk_live ', KOALA_BASE_URL: 'https://proxy.example.com/koala', KOALA_STRICT: 'true', KOALA_SEND_ON_EXIT: '0' }
  const expected: Record<string, unknown> = { publicKey: 'pk_live', baseUrl: 'https://proxy.example.com/koala', strict: true, sendOnExit: false }
  let n = 1
  for (const [name, value] of Object.entries(DEFAULTS)) {
    if (typeof value !== 'number') continue
    env[envName(name)] = String(++n)
    expected[name] = n
  }
  expect(Object.keys(expected).length).toBe(Object.keys(DEFAULTS).length + 1)
  expect(optionsFromEnv(env)).toEqual(expected)
})

test('unset and empty variables are left out, other variables are ignored, and process.env is never read', () => {
  process.env.KOALA_PUBLIC_KEY = 'pk_from_process_env'
  try {
    expect(optionsFromEnv({ KOALA_FLUSH_AT: '', KOALA_BASE_URL: '   ', PATH: '/bin', KOALA_UNKNOWN: '' })).toEqual({})
  } finally {
    delete process.env.KOALA_PUBLIC_KEY
  }
})

test.each([['1', true], ['TRUE', true], ['0', false], ['false', false]])('KOALA_STRICT=%s', (raw, strict) => {
  expect(optionsFromEnv({ KOALA_STRICT: raw })).toEqual({ strict })
})

test.each([
  ['KOALA_FLUSH_INTERVAL_MS', '10s', 'must be an integer, got "10s"'],
  ['KOALA_MAX_ATTEMPTS', '2.5', 'must be an integer, got "2.5"'],
  ['KOALA_STRICT', 'yes', 'must be true or false, got "yes"']
])('%s=%s is a ConfigError naming the variable', (name, raw, reason) => {
  const err = thrown(() => optionsFromEnv({ [name]: raw }))
  expect(err).toBeInstanceOf(ConfigError)
  expect(err).toMatchObject({ option: name, message: `${name} ${reason}` })
})

test('envConfigError renames an option error after its variable, and leaves others alone', () => {
  expect(envConfigError(new ConfigError('flushIntervalMs', 'must be between 1 and 2147483647, got 0')))
    .toMatchObject({ option: 'KOALA_FLUSH_INTERVAL_MS', message: 'KOALA_FLUSH_INTERVAL_MS is invalid: flushIntervalMs must be between 1 and 2147483647, got 0' })
  const named = new ConfigError('KOALA_STRICT', 'x')
  expect(envConfigError(named)).toBe(named)
})

test.each([
  ['KOALA_BASEURL', 'KOALA_BASE_URL'],
  ['KOALA_PUBLICKEY', 'KOALA_PUBLIC_KEY'],
  ['KOALA_FLUSH_INTERVAL', 'KOALA_FLUSH_INTERVAL_MS'],
  ['KOALA_MAX_BUFFERED_BYTE', 'KOALA_MAX_BUFFERED_BYTES'],
  ['KOALA_SECRETKEY', 'KOALA_SECRET_KEY'],
  ['KOALA_ALLOW_UNKNOWN', 'KOALA_ALLOW_UNKNOWN_ENV']
])('a misspelt %s is a ConfigError naming it and the variable it was probably meant to be (%s)', (name, meant) => {
  const err = thrown(() => optionsFromEnv({ KOALA_PUBLIC_KEY: 'pk_live', [name]: 'http://localhost:4010' }))
  expect(err).toBeInstanceOf(ConfigError)
  expect(err).toMatchObject({ option: name, message: expect.stringContaining(`${name} is not a koala-tracker variable (did you mean ${meant}?)`) })
})

test('an unknown KOALA_ variable like no option says how to keep it: name it in KOALA_ALLOW_UNKNOWN_ENV', () => {
  const env = { KOALA_PUBLIC_KEY: 'pk_live', KOALA_WIDGET_THEME: 'dark', KOALA_CRM_SYNC: '1' }
  expect(thrown(() => optionsFromEnv(env))).toMatchObject({
    option: 'KOALA_WIDGET_THEME',
    message: 'KOALA_WIDGET_THEME is not a koala-tracker variable; if it is meant for something else, name it in KOALA_ALLOW_UNKNOWN_ENV (comma-separated)'
  })
  expect(optionsFromEnv({ ...env, KOALA_ALLOW_UNKNOWN_ENV: 'KOALA_WIDGET_THEME, KOALA_CRM_SYNC' })).toEqual({ publicKey: 'pk_live' })
  expect(thrown(() => optionsFromEnv({ ...env, KOALA_ALLOW_UNKNOWN_ENV: 'KOALA_WIDGET_THEME' }))).toMatchObject({ option: 'KOALA_CRM_SYNC' })
  // The deletion command's key is koala-tracker's own.
  expect(optionsFromEnv({ KOALA_PUBLIC_KEY: 'pk_live', KOALA_SECRET_KEY: 'sk_live_x' })).toEqual({ publicKey: 'pk_live' })
})

test('KOALA_REDIS_URL turns fleet mode on (KOALA_REDIS_STREAM names the stream); a stream without a URL is refused', () => {
  expect(optionsFromEnv({ KOALA_REDIS_URL: 'redis://cache:6379' })).toEqual({ redis: { url: 'redis://cache:6379' } })
  expect(optionsFromEnv({ KOALA_REDIS_URL: 'redis://cache:6379', KOALA_REDIS_STREAM: 'events' })).toEqual({ redis: { url: 'redis://cache:6379', stream: 'events' } })
  expect(() => optionsFromEnv({ KOALA_REDIS_STREAM: 'events' })).toThrow(expect.objectContaining({ option: 'KOALA_REDIS_STREAM', message: expect.stringContaining('KOALA_REDIS_URL is not') }))
  expect(envConfigError(new ConfigError('redis.url', 'must be a redis:// or rediss:// URL'))).toMatchObject({ option: 'KOALA_REDIS_URL' })
  expect(envConfigError(new ConfigError('redis', 'and spool cannot be used together'))).toMatchObject({ option: 'KOALA_REDIS_URL' })
  expect(envConfigError(new ConfigError('spool', 'must be an object'))).toMatchObject({ option: 'KOALA_SPOOL_DIR' })
})
