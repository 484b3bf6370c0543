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

test('reads the key, the URL, strict and every numeric option in DEFAULTS', () => {
  const env: Record<string, string> = { KOALA_PUBLIC_KEY: ' pk_live ', KOALA_BASE_URL: 'https://proxy.example.com/koala', KOALA_STRICT: 'true' }
  const expected: Record<string, unknown> = { publicKey: 'pk_live', baseUrl: 'https://proxy.example.com/koala', strict: true }
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
    expect(optionsFromEnv({ KOALA_FLUSH_AT: '', KOALA_BASE_URL: '   ', PATH: '/bin', KOALA_UNKNOWN: '1' })).toEqual({})
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
