import { startCollector, type Collector } from '../lib/collector'
import { ConfigError } from '../lib/shared/errors'
import { koalaMiddleware } from '../lib/express'
import { configuredTracker, getTracker, init, koala } from '../lib/singleton'
import { EXPRESS_VERSIONS, listen } from './helpers/express'
import { person } from './helpers/setup'
import { resetSingleton } from './helpers/singleton'

let collector: Collector
beforeEach(async () => {
  await resetSingleton()
  collector = await startCollector()
})
afterEach(async () => {
  await resetSingleton()
  await collector.close()
})

const thrown = (fn: () => unknown): unknown => { try { fn(); return undefined } catch (e) { return e } }

describe('init()', () => {
  test('configures the one tracker that koala, getTracker() and configuredTracker() all use', async () => {
    expect(koala.configured).toBe(false)
    expect(configuredTracker()).toBeUndefined()
    const tracker = init({ publicKey: 'pk_test', baseUrl: collector.url })
    expect(getTracker()).toBe(tracker)
    expect(configuredTracker()).toBe(tracker)
    expect(koala.configured).toBe(true)
    koala.track({ email: 'ada@example.com', event: 'Signed Up' })
    koala.trackAccount({ domain: 'acme.com', event: 'Upgraded' })
    expect(await koala.flush()).toMatchObject({ delivered: 2, failed: 0 })
    expect(collector.stats()).toMatchObject({ profiles: { events: 1 }, accounts: { events: 1 } })
    expect(koala.stats()).toMatchObject({ state: 'open', accepted: 2, sent: 2, droppedBy: { unconfigured: 0 } })
  })

  test('twice with the same options returns the same tracker; with different ones, a ConfigError names the option', () => {
    const onError = (): void => {}
    const tracker = init({ publicKey: 'pk_test', baseUrl: collector.url, flushIntervalMs: 500, onError })
    expect(init({ onError, flushIntervalMs: 500, baseUrl: collector.url, publicKey: 'pk_test', strict: undefined })).toBe(tracker)
    const err = thrown(() => init({ publicKey: 'pk_test', baseUrl: collector.url, flushIntervalMs: 1000, onError }))
    expect(err).toBeInstanceOf(ConfigError)
    expect(err).toMatchObject({ code: 'KOALA_ERR_INVALID_OPTION', option: 'flushIntervalMs' })
    expect((err as Error).message).toMatch(/first configured with \(from init\(\)\)/)
    // A new function is a different option, even if it does the same.
    expect(thrown(() => init({ publicKey: 'pk_test', baseUrl: collector.url, flushIntervalMs: 500, onError: () => {} })))
      .toMatchObject({ option: 'onError' })
    expect(configuredTracker()).toBe(tracker)
  })

  test('bad options throw and leave the singleton unconfigured, so a corrected init() still works', () => {
    expect(thrown(() => init({ publicKey: 'pk_test', flushAt: 0 }))).toMatchObject({ option: 'flushAt' })
    expect(thrown(() => init(null as never))).toMatchObject({ option: 'options' })
    expect(koala.configured).toBe(false)
    expect(init({ publicKey: 'pk_test', baseUrl: collector.url })).toBe(configuredTracker())
  })

  test('with no argument it reads the environment, and names the variable that is missing or wrong', () => {
    expect(thrown(() => init())).toMatchObject({ option: 'KOALA_PUBLIC_KEY', message: expect.stringContaining('is not set') })
    process.env.KOALA_PUBLIC_KEY = 'pk_test'
    process.env.KOALA_BASE_URL = collector.url
    process.env.KOALA_FLUSH_INTERVAL_MS = '0'
    expect(thrown(() => init())).toMatchObject({ option: 'KOALA_FLUSH_INTERVAL_MS', message: expect.stringContaining('between 1 and') })
    process.env.KOALA_FLUSH_INTERVAL_MS = '250'
    expect(init().stats().state).toBe('open')
  })

  test('with no argument and no KOALA_PUBLIC_KEY, once configured in code, it returns that tracker', () => {
    const tracker = init({ publicKey: 'pk_test', baseUrl: collector.url })
    expect(init()).toBe(tracker)
  })
})

describe('configured lazily from the environment', () => {
  test('the first call creates the tracker from KOALA_* variables; init() with the same options agrees, other options conflict', async () => {
    process.env.KOALA_PUBLIC_KEY = 'pk_env'
    process.env.KOALA_BASE_URL = collector.url
    koala.identify({ email: 'env@example.com', traits: { source: 'env' } })
    expect(koala.configured).toBe(true)
    expect(await koala.flush()).toMatchObject({ delivered: 1 })
    expect(collector.received[0].projectKey).toBe('pk_env')
    expect(init()).toBe(configuredTracker())
    expect(thrown(() => init({ publicKey: 'pk_other', baseUrl: collector.url })))
      .toMatchObject({ option: 'publicKey', message: expect.stringContaining('from the environment') })
  })

  test('getTracker() is the start-up check: it throws when neither init() nor KOALA_PUBLIC_KEY configured anything', () => {
    expect(thrown(() => getTracker())).toMatchObject({ code: 'KOALA_ERR_INVALID_OPTION', option: 'KOALA_PUBLIC_KEY' })
    expect(koala.stats()).toMatchObject({ state: 'unconfigured', accepted: 0, dropped: 0 })
  })

  test('flush() and close() on an unconfigured singleton resolve at once with nothing done', async () => {
    expect(await koala.flush()).toEqual({ delivered: 0, failed: 0, pending: 0, timedOut: false })
    expect(await koala.close()).toEqual({ delivered: 0, failed: 0, abandoned: 0, unknown: 0, spooled: 0, timedOut: false })
  })
})

test('listeners added with koala.on() before the tracker exists are attached to it, and can be removed', async () => {
  const sent: number[] = []
  const removed: number[] = []
  koala.on('sent', (e) => { sent.push(e.items) })
  const off = koala.on('sent', (e) => { removed.push(e.items) })
  off()
  init({ publicKey: 'pk_test', baseUrl: collector.url })
  koala.track({ email: 'ada@example.com', event: 'x' })
  koala.track({ email: 'ada@example.com', event: 'y' })
  await koala.flush()
  expect(sent).toEqual([2])
  expect(removed).toEqual([])
})

test('two copies of the module (as with two copies of the package) share one tracker', () => {
  let copy: typeof import('../lib/singleton') | undefined
  jest.isolateModules(() => { copy = jest.requireActual<typeof import('../lib/singleton')>('../lib/singleton') })
  expect(copy?.init).not.toBe(init)
  const tracker = init({ publicKey: 'pk_test', baseUrl: collector.url })
  expect(copy?.configuredTracker()).toBe(tracker)
  copy?.koala.track({ email: 'twin@example.com', event: 'From the copy' })
  expect(tracker.stats().accepted).toBe(1)
})

test.each(EXPRESS_VERSIONS)('koalaMiddleware() without a tracker sends through the singleton (%s)', async (_name, express) => {
  init({ publicKey: 'pk_test', baseUrl: collector.url })
  const app = express()
  app.use(koalaMiddleware())
  app.get('/', (req, res) => { req.koala.track('Visited'); res.end() })
  const running = await listen(app)
  const id = person()
  try {
    await running.get('/', { cookie: `ko_id=${id}` })
  } finally {
    await running.close()
  }
  await koala.flush()
  expect(collector.received[0].body).toMatchObject({ profile_id: id, events: [{ event: 'Visited' }] })
})
