import { getEventListeners } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { MAX_ERROR_BODY_CHARS } from '../lib/shared/constants'
import { createPoolTransport, type Transport } from '../lib/transport/transport'
import { undiciPool } from '../lib/transport/undici-pool'
import { startNode } from './helpers/child'

// The built-in transport against a real HTTP server on 127.0.0.1.
let server: Server
let transport: Transport
let received: string[]
let answer: (req: IncomingMessage, res: ServerResponse, body: string) => void
const transportOrigin = (): string => `http://127.0.0.1:${(server.address() as AddressInfo).port}`

beforeEach(async () => {
  received = []
  server = createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => { body += c.toString() })
    req.on('end', () => { received.push(body); answer(req, res, body) })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  transport = createPoolTransport({ origin: transportOrigin(), connections: 1, keepAliveTimeoutMs: 1_000, requestTimeoutMs: 5_000 })
})
afterEach(async () => {
  await transport.destroy()
  server.closeAllConnections()
  await new Promise(resolve => server.close(resolve))
})

test('sends the body with the JSON content type and the User-Agent, and returns status and headers of a 2xx with an empty body', async () => {
  let seen: IncomingMessage | undefined
  answer = (req, res) => { seen = req; res.writeHead(202, { 'x-koala': 'yes' }).end('{"ok":true}') }
  const ac = new AbortController()
  const res = await transport.send({ path: '/web/projects/pk/batch', body: '{"email":"a@b.co"}', signal: ac.signal })
  expect(res).toEqual({ status: 202, headers: expect.objectContaining({ 'x-koala': 'yes' }), body: '' })
  expect(received).toEqual(['{"email":"a@b.co"}'])
  expect(seen?.method).toBe('POST')
  expect(seen?.url).toBe('/web/projects/pk/batch')
  expect(seen?.headers['content-type']).toBe('application/json')
  expect(seen?.headers['user-agent']).toMatch(/^koala-tracker\//)
})

test('two requests in flight on one signal are both aborted, and neither leaves a listener behind', async () => {
  transport = createPoolTransport({ origin: transportOrigin(), connections: 2, keepAliveTimeoutMs: 1_000, requestTimeoutMs: 5_000 })
  const hanging: ServerResponse[] = []
  answer = (_req, res) => { hanging.push(res) }
  const ac = new AbortController()
  const a = transport.send({ path: '/b', body: 'a', signal: ac.signal })
  const b = transport.send({ path: '/b', body: 'b', signal: ac.signal })
  while (hanging.length < 2) await new Promise(resolve => setImmediate(resolve))
  expect(getEventListeners(ac.signal, 'abort')).toHaveLength(2)
  ac.abort(new Error('both'))
  await expect(a).rejects.toThrow('both')
  await expect(b).rejects.toThrow('both')
  expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0)
  for (const res of hanging) res.destroy()

  // Settled normally, too: each request's listener is removed.
  answer = (_req, res) => { res.end('{}') }
  const shared = new AbortController()
  await Promise.all([
    transport.send({ path: '/b', body: 'c', signal: shared.signal }),
    transport.send({ path: '/b', body: 'd', signal: shared.signal })
  ])
  expect(getEventListeners(shared.signal, 'abort')).toHaveLength(0)
})

test(`an error answer keeps the first ${MAX_ERROR_BODY_CHARS} characters of its body, and the socket is not left stuck`, async () => {
  answer = (_req, res) => { res.writeHead(500, { 'retry-after': '7' }).end(' ' + 'e'.repeat(20_000)) }
  const res = await transport.send({ path: '/b', body: '{}', signal: new AbortController().signal })
  expect(res.status).toBe(500)
  expect(res.headers['retry-after']).toBe('7')
  expect(res.body).toBe('e'.repeat(MAX_ERROR_BODY_CHARS - 1))
  // The next request goes through on the one connection.
  answer = (_req, r) => { r.end('{}') }
  await expect(transport.send({ path: '/b', body: '{}', signal: new AbortController().signal })).resolves.toMatchObject({ status: 200 })
})

test('once the status has arrived it decides: a body that breaks off leaves the status and what arrived', async () => {
  answer = (_req, res) => {
    res.writeHead(503, { 'content-length': '1000' })
    res.write('partial', () => res.destroy())
  }
  await expect(transport.send({ path: '/b', body: '{}', signal: new AbortController().signal })).resolves.toEqual(expect.objectContaining({ status: 503, body: 'partial' }))
  answer = (_req, res) => {
    res.writeHead(200, { 'content-length': '1000' })
    res.write('{"partial":', () => res.destroy())
  }
  await expect(transport.send({ path: '/b', body: '{}', signal: new AbortController().signal })).resolves.toEqual(expect.objectContaining({ status: 200, body: '' }))
})

test('an informational 1xx is not the answer: a break after it rejects as a network error, a deadline as the abort', async () => {
  answer = (req, res) => { res.writeEarlyHints({ link: '</a.css>; rel=preload' }, () => req.socket.destroy()) }
  await expect(transport.send({ path: '/b', body: '{}', signal: new AbortController().signal })).rejects.toMatchObject({ code: expect.stringMatching(/^(UND_ERR_SOCKET|ECONNRESET)$/) })
  const deadline = new AbortController()
  const why = new Error('deadline')
  answer = (_req, res) => { res.writeProcessing(); deadline.abort(why) }
  await expect(transport.send({ path: '/b', body: '{}', signal: deadline.signal })).rejects.toBe(why)
  answer = (_req, res) => { res.writeEarlyHints({ link: '</b.css>; rel=preload' }, () => res.writeHead(201).end()) }
  await expect(transport.send({ path: '/b', body: '{}', signal: new AbortController().signal })).resolves.toMatchObject({ status: 201 })
})

test('a connection that breaks before any answer rejects with the network error', async () => {
  answer = (req) => { req.socket.destroy() }
  await expect(transport.send({ path: '/b', body: '{}', signal: new AbortController().signal })).rejects.toMatchObject({ code: expect.stringMatching(/^(UND_ERR_SOCKET|ECONNRESET)$/) })
})

test('an aborted signal: nothing is sent; aborting in flight rejects at once; aborting a request queued behind another stops it before it is written', async () => {
  const before = new AbortController()
  before.abort()
  await expect(transport.send({ path: '/b', body: 'never', signal: before.signal })).rejects.toThrow()

  // One connection: the first request hangs, the second waits in the Pool.
  const hanging: ServerResponse[] = []
  answer = (_req, res) => { hanging.push(res) }
  const first = new AbortController()
  const second = new AbortController()
  const a = transport.send({ path: '/b', body: 'first', signal: first.signal })
  const b = transport.send({ path: '/b', body: 'second', signal: second.signal })
  while (received.length === 0) await new Promise(resolve => setImmediate(resolve))
  second.abort()
  await expect(b).rejects.toThrow()
  first.abort()
  await expect(a).rejects.toThrow()
  // A third request gets a connection; the aborted second one was never written.
  answer = (_req, res) => { res.end('{}') }
  await expect(transport.send({ path: '/b', body: 'third', signal: new AbortController().signal })).resolves.toMatchObject({ status: 200 })
  expect(received).toEqual(['first', 'third'])
  for (const res of hanging) res.destroy()
})

test('the Pool is undici\'s own class, and a tracker\'s first send loads it without the rest of undici', async () => {
  // If a new undici moves the file, undiciPool() falls back to the whole package and this says so.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  expect(undiciPool()).toBe((require('undici') as typeof import('undici')).Pool)
  const script = `
    const http = require('node:http')
    const { createTracker } = require('./dist/cjs/lib/index.js')
    const server = http.createServer((req, res) => { req.resume(); req.on('end', () => res.end('{}')) })
    server.listen(0, '127.0.0.1', async () => {
      const t = createTracker({ publicKey: 'pk_test', baseUrl: 'http://127.0.0.1:' + server.address().port })
      t.track({ email: 'a@example.com', event: 'x' })
      const flushed = await t.flush()
      const undici = Object.keys(require.cache).filter((k) => k.includes('/node_modules/undici/'))
      console.log(JSON.stringify({ flushed, modules: undici.length, index: undici.some((k) => k.endsWith('/undici/index.js')) }))
      await t.close()
      server.close()
    })`
  const { code, stdout } = await startNode(['-e', script]).exited
  expect(code).toBe(0)
  const out = JSON.parse(stdout) as { flushed: { delivered: number }, modules: number, index: boolean }
  expect(out.flushed.delivered).toBe(1)
  expect(out.index).toBe(false)
  expect(out.modules).toBeLessThan(40) // the whole package is ~110
})
