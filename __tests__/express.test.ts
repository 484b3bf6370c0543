import type { Express, Request } from 'express'
import { koalaMiddleware, type KoalaMiddlewareOptions } from '../lib/express'
import { EXPRESS_VERSIONS, koIdFrom, listen, type Running } from './helpers/express'
import { harness, memoryLogger, person, UUID_V4, type Harness } from './helpers/setup'

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request { user?: { email: string } }
  }
}

const nextTick = async (): Promise<void> => await new Promise(resolve => setImmediate(resolve))

describe.each(EXPRESS_VERSIONS)('%s', (_name, express) => {
  let h: Harness
  let app: Running

  afterEach(async () => {
    await app.close()
    await h.done()
  })

  /** An app with koalaMiddleware in front of a few routes that use req.koala. */
  async function start (options: Omit<KoalaMiddlewareOptions, 'tracker'> = {}, before?: (app: Express) => void): Promise<Running> {
    h = await harness({ flushIntervalMs: 60_000 })
    const a = express()
    before?.(a)
    // Stand-in for authentication: the x-user header logs the request in.
    a.use((req, _res, next) => {
      const user = req.headers['x-user']
      if (typeof user === 'string') req.user = { email: user }
      next()
    })
    a.use(koalaMiddleware({ tracker: h.tracker, ...options }))
    a.get('/whoami', (req, res) => { res.json({ profileId: req.koala.profileId, isNew: req.koala.isNew }) })
    a.post('/event/:name', async (req, res) => {
      await nextTick() // other requests run here: nothing may leak between them
      req.koala.track(req.params.name, { visitor: String(req.headers['x-visitor']) })
      res.json({ profileId: req.koala.profileId })
    })
    a.post('/login', (req, res) => {
      req.user = { email: String(req.headers['x-login']) }
      req.koala.identify({ traits: { plan: 'pro' } })
      res.end()
    })
    a.get('/raw', (req, res) => { // no res.json(): it would set headers, and these may have been sent
      req.koala.track('Raw')
      res.end(JSON.stringify({ profileId: req.koala.profileId, isNew: req.koala.isNew }))
    })
    a.post('/identify-blank', (req, res) => {
      req.koala.identify({ email: '', traits: { plan: 'free' } }) // an empty form field
      res.end()
    })
    a.get('/map-page', (req, res) => {
      req.koala.page('Map', new Map([['plan', 'pro']]) as never) // not a plain object: refused, not sent as { path }
      req.koala.page('Own toJSON', { toJSON: () => undefined } as never)
      res.end('ok')
    })
    a.get('/hostile-page', (req, res) => {
      const hostile = { get title (): string { throw new Error('lazy field failed') } }
      req.koala.page('Hostile', hostile)
      req.koala.track('After')
      res.end('ok')
    })
    a.get(/^\/page\//, (req, res) => {
      req.koala.page(typeof req.query.name === 'string' ? req.query.name : undefined, req.query.own === '1' ? { path: '/mine', x: 1 } : undefined)
      res.end()
    })
    app = await listen(a)
    return app
  }

  describe('the ko_id cookie', () => {
    test('absent: a UUID v4 is minted and set once (never HttpOnly), then reused on the next request', async () => {
      await start()
      const first = await app.get('/whoami')
      const id = koIdFrom(first.setCookie)
      expect(id).toMatch(UUID_V4)
      expect(first.setCookie).toEqual([`ko_id=${id}; Max-Age=31536000; Path=/; SameSite=Lax`])
      expect(JSON.parse(first.body)).toEqual({ profileId: id, isNew: true })

      const second = await app.get('/whoami', { cookie: `ko_id=${id}` })
      expect(second.setCookie).toEqual([])
      expect(JSON.parse(second.body)).toEqual({ profileId: id, isNew: false })
      await app.post('/event/Second%20Visit', { cookie: `ko_id=${id}` })
      await h.tracker.flush()
      expect(h.collector.received.map(r => r.body.profile_id)).toEqual([id])
    })

    test('present (set by the pixel, among other cookies): used as is, no Set-Cookie', async () => {
      await start()
      const pixel = person()
      const r = await app.post('/event/Signed%20Up', { cookie: `_ga=GA1.2.3; ko_id=${pixel}; theme=dark` })
      expect(r.setCookie).toEqual([])
      expect(JSON.parse(r.body)).toEqual({ profileId: pixel })
      await h.tracker.flush()
      expect(h.collector.received[0].body).toMatchObject({ profile_id: pixel, events: [{ event: 'Signed Up' }] })
    })

    test.each([
      ['not a UUID', 'not-a-uuid'],
      ['script', '<script>alert(1)</script>'],
      ['the nil UUID', '00000000-0000-0000-0000-000000000000'],
      ['a UUID with junk after it', `${'6f1c1c1e-4a4b-4c4d-8e8f-0a0b0c0d0e0f'}x`],
      ['very long', 'a'.repeat(4000)],
      ['empty', '']
    ])('malformed (%s): replaced with a new UUID and never sent', async (_what, bad) => {
      await start()
      const r = await app.post('/event/Visit', { cookie: `ko_id=${bad}` })
      const id = koIdFrom(r.setCookie)
      expect(id).toMatch(UUID_V4)
      expect(JSON.parse(r.body)).toEqual({ profileId: id })
      await h.tracker.flush()
      expect(h.collector.received.map(b => b.body.profile_id)).toEqual([id])
      if (bad !== '') expect(JSON.stringify(h.collector.received)).not.toContain(bad)
    })

    test('options: domain, max age, SameSite and Secure are applied; Set-Cookie headers set earlier are kept', async () => {
      await start({ cookie: { domain: '.example.com', maxAgeMs: 86_400_000, sameSite: 'strict', secure: true, path: '/app' } },
        (a) => a.use((_req, res, next) => { res.cookie('session', 'abc'); next() }))
      const r = await app.get('/whoami')
      const id = koIdFrom(r.setCookie)
      expect(r.setCookie).toEqual([expect.stringMatching(/^session=abc;/), `ko_id=${id}; Max-Age=86400; Path=/app; Domain=.example.com; SameSite=Strict; Secure`])
    })

    test('a response already begun: no cookie and one warning; the request is served and calls still work', async () => {
      const logger = memoryLogger()
      await start({ logger }, (a) => a.use((req, res, next) => {
        if (req.headers['x-early'] === '1') res.writeHead(200, { 'content-type': 'application/json' })
        next()
      }))
      for (let i = 0; i < 2; i++) {
        const r = await app.get('/raw', { 'x-early': '1' })
        expect([r.status, r.setCookie, JSON.parse(r.body)]).toEqual([200, [], { profileId: expect.stringMatching(UUID_V4), isNew: true }])
      }
      await h.tracker.flush()
      expect(h.collector.received.flatMap(r => r.body.events)).toEqual([expect.objectContaining({ event: 'Raw' }), expect.objectContaining({ event: 'Raw' })])
      expect(logger.lines.map(l => [l.level, l.msg])).toEqual([['warn', expect.stringContaining('the ko_id cookie was not set')]])
    })

    test('a response that refuses the Set-Cookie header does not fail the request; it is logged once', async () => {
      const logger = memoryLogger()
      await start({ logger }, (a) => a.use((_req, res, next) => {
        const setHeader = res.setHeader.bind(res)
        res.setHeader = (name: string, value: string | number | readonly string[]) => {
          if (name.toLowerCase() === 'set-cookie') throw new TypeError('refused by a proxy library')
          return setHeader(name, value)
        }
        next()
      }))
      for (let i = 0; i < 2; i++) {
        const r = await app.get('/whoami')
        expect(r.status).toBe(200)
        expect(JSON.parse(r.body)).toEqual({ profileId: expect.stringMatching(UUID_V4), isNew: true })
      }
      expect(logger.lines.map(l => [l.level, l.msg])).toEqual([['warn', expect.stringContaining('the ko_id cookie could not be set')]])
    })

    test('secure: auto sets Secure on HTTPS requests only, as Express sees them (trust proxy)', async () => {
      await start({}, (a) => a.set('trust proxy', 'loopback'))
      const plain = await app.get('/whoami')
      const https = await app.get('/whoami', { 'x-forwarded-proto': 'https' })
      expect(plain.setCookie[0]).not.toContain('Secure')
      expect(https.setCookie[0]).toMatch(/; SameSite=Lax; Secure$/)
    })
  })

  test('events from concurrent requests of different visitors are never mixed', async () => {
    await start({ resolveEmail: (req: Request) => req.user?.email })
    const visitors = Array.from({ length: 25 }, (_, i) => ({ i, id: person(), email: i % 2 === 0 ? `v${i}@example.com` : undefined }))
    await Promise.all(visitors.flatMap(v => Array.from({ length: 8 }, async () => {
      const headers: Record<string, string> = { cookie: `ko_id=${v.id}`, 'x-visitor': String(v.i) }
      if (v.email !== undefined) headers['x-user'] = v.email
      const r = await app.post('/event/Clicked', headers)
      expect(JSON.parse(r.body)).toEqual({ profileId: v.id })
    })))
    await h.tracker.flush()

    const byId = new Map(visitors.map(v => [v.id, v]))
    let events = 0
    for (const { body } of h.collector.received) {
      const v = byId.get(body.profile_id as string)
      expect(v).toBeDefined()
      expect(body.email).toBe(v?.email)
      for (const e of body.events as Array<{ properties: { visitor: string } }>) {
        expect(e.properties.visitor).toBe(String(v?.i))
        events++
      }
    }
    expect(events).toBe(25 * 8)
  })

  describe('the email resolver', () => {
    test('merges the email into that visitor\'s batch only; identify-on-login links the ko_id to the email', async () => {
      await start({ resolveEmail: (req: Request) => req.user?.email })
      const ada = person()
      const anon = person()
      const grace = person()
      await app.post('/event/Viewed', { cookie: `ko_id=${ada}`, 'x-user': 'ada@example.com', 'x-visitor': 'ada' })
      await app.post('/event/Viewed', { cookie: `ko_id=${anon}`, 'x-visitor': 'anon' })
      await app.post('/login', { cookie: `ko_id=${grace}`, 'x-login': 'grace@example.com' })
      await h.tracker.flush()

      const bodies = new Map(h.collector.received.map(r => [r.body.profile_id, r.body]))
      expect(bodies.get(ada)).toMatchObject({ email: 'ada@example.com', events: [{ properties: { visitor: 'ada' } }] })
      expect(bodies.get(anon)).not.toHaveProperty('email')
      expect(bodies.get(grace)).toMatchObject({ email: 'grace@example.com', identifies: [{ type: 'identify', traits: { plan: 'pro' } }] })
      expect(h.collector.received).toHaveLength(3)
    })

    test('an empty email from the resolver counts as none; one that is not an address is refused, naming email', async () => {
      await start({ resolveEmail: (req: Request) => req.user?.email })
      const blank = person()
      await app.post('/event/Viewed', { cookie: `ko_id=${blank}`, 'x-user': '  ' })
      await app.post('/event/Viewed', { cookie: `ko_id=${person()}`, 'x-user': 'not-an-address' })
      await h.tracker.flush()
      expect(h.collector.received.map(r => r.body)).toEqual([expect.objectContaining({ profile_id: blank })])
      expect(h.collector.received[0].body).not.toHaveProperty('email')
      expect(h.errors).toEqual([expect.objectContaining({ code: 'KOALA_ERR_INVALID_INPUT', field: 'email' })])
    })

    test('identify() with a blank email asks the resolver, as without one', async () => {
      await start({ resolveEmail: (req: Request) => req.user?.email })
      const id = person()
      await app.post('/identify-blank', { cookie: `ko_id=${id}`, 'x-user': 'ada@example.com' })
      await app.post('/identify-blank', { cookie: `ko_id=${person()}` })
      await h.tracker.flush()
      expect(h.errors).toEqual([])
      const bodies = new Map(h.collector.received.map(r => [r.body.profile_id, r.body]))
      expect(bodies.get(id)).toMatchObject({ email: 'ada@example.com', identifies: [{ traits: { plan: 'free' } }] })
      expect(h.collector.received).toHaveLength(2)
    })

    test('a resolver that returns a Promise: its rejection is caught, the event goes without an email, one warning is logged', async () => {
      const logger = memoryLogger()
      const handlers: unknown[] = []
      // A thenable that records whether anyone handles its rejection: an unhandled one would end the process.
      const pending = { then (_ok: unknown, fail: unknown) { handlers.push(fail) } }
      await start({ logger, resolveEmail: () => pending as never })
      const id = person()
      for (let i = 0; i < 2; i++) expect((await app.post('/event/Viewed', { cookie: `ko_id=${id}` })).status).toBe(200)
      await h.tracker.flush()
      expect(handlers).toEqual([expect.any(Function), expect.any(Function)])
      expect(h.collector.received[0].body).toMatchObject({ profile_id: id, events: [{}, {}] })
      expect(h.collector.received[0].body).not.toHaveProperty('email')
      expect(logger.lines.filter(l => l.level === 'warn').map(l => l.msg)).toEqual([expect.stringContaining('resolveEmail returned a Promise')])
    })

    test('a resolver that throws is contained: the event goes without an email and one warning is logged', async () => {
      const logger = memoryLogger()
      await start({ logger, resolveEmail: () => { throw new Error('session store down') } })
      const id = person()
      for (let i = 0; i < 3; i++) expect((await app.post('/event/Viewed', { cookie: `ko_id=${id}` })).status).toBe(200)
      await h.tracker.flush()
      expect(h.collector.received[0].body).toMatchObject({ profile_id: id, events: [{}, {}, {}] })
      expect(h.collector.received[0].body).not.toHaveProperty('email')
      expect(logger.lines.filter(l => l.level === 'warn').map(l => l.msg)).toEqual([expect.stringContaining('resolveEmail threw')])
    })
  })

  test('page(): properties.path is the request path without the query, unless the caller gives one', async () => {
    await start()
    const id = person()
    await app.get('/page/docs/install?token=secret&name=Install', { cookie: `ko_id=${id}` })
    await app.get('/page/x?own=1', { cookie: `ko_id=${id}` })
    await h.tracker.flush()
    expect(h.collector.received[0].body.page_views).toEqual([
      expect.objectContaining({ name: 'Install', properties: { path: '/page/docs/install' } }),
      expect.objectContaining({ properties: { path: '/mine', x: 1 } })
    ])
    expect(JSON.stringify(h.collector.received)).not.toContain('secret')
  })

  test('page() with properties whose getter throws: the request is served, the call is refused as invalid, the next call is kept', async () => {
    await start()
    const id = person()
    const r = await app.get('/hostile-page', { cookie: `ko_id=${id}` })
    expect([r.status, r.body]).toEqual([200, 'ok'])
    await h.tracker.flush()
    expect(h.tracker.stats().droppedBy.invalid).toBe(1)
    expect(h.errors).toEqual([expect.objectContaining({ code: 'KOALA_ERR_INVALID_INPUT', field: 'properties' })])
    expect(h.collector.received.map(b => b.body)).toEqual([expect.objectContaining({ profile_id: id, events: [expect.objectContaining({ event: 'After' })] })])
  })

  test('page() with properties that are not a plain object, or carry a toJSON(): refused as invalid, not sent changed', async () => {
    await start()
    const r = await app.get('/map-page', { cookie: `ko_id=${person()}` })
    expect([r.status, r.body]).toEqual([200, 'ok'])
    await h.tracker.flush()
    expect(h.collector.received).toEqual([])
    expect(h.errors.map(e => [(e as { field?: string }).field, (e as { reason?: string }).reason])).toEqual([
      ['properties', 'must be a plain JSON object, got a Map'],
      ['properties', expect.stringContaining('must serialise to a JSON object')]
    ])
  })

  test('when the tracker is closed, req.koala calls are refused and counted, and the request is served', async () => {
    await start()
    await h.tracker.close()
    const r = await app.post('/event/Late', { cookie: `ko_id=${person()}` })
    expect(r.status).toBe(200)
    expect(h.tracker.stats()).toMatchObject({ state: 'closed', accepted: 0, droppedBy: { closed: 1 } })
    expect(h.errors).toEqual([expect.objectContaining({ code: 'KOALA_ERR_REFUSED', reason: 'closed' })])
  })

  test('mounted twice, the middleware keeps the first handle and sets one cookie', async () => {
    await start({}, (a) => a.use(koalaMiddleware({ tracker: { track () {}, identify () {}, page () {} } })))
    const r = await app.get('/whoami')
    expect(r.setCookie).toHaveLength(1)
    expect(JSON.parse(r.body).profileId).toBe(koIdFrom(r.setCookie))
  })
})

test.each<[string, unknown, string]>([
  ['a tracker that is not one', { tracker: 5 }, 'tracker'],
  ['a tracker without page()', { tracker: { track () {}, identify () {} } }, 'tracker'],
  ['a resolveEmail that is not a function', { resolveEmail: 'user.email' }, 'resolveEmail'],
  ['a logger without warn()', { logger: { debug () {}, error () {} } }, 'logger'],
  ['options that are not an object', null, 'options'],
  ['a misspelt option', { resolveEmails: () => undefined }, 'resolveEmails']
])('koalaMiddleware() with %s is a ConfigError when the app starts, not a failure in every request', (_what, options, option) => {
  expect(() => koalaMiddleware(options as never)).toThrow(expect.objectContaining({ code: 'KOALA_ERR_INVALID_OPTION', option }))
})
