import { EventEmitter } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { Agent, Client, request } from 'undici'
import type { Closable, ShutdownOptions, ShutdownResult, SignalSource } from '../lib/shutdown'
import { gracefulShutdown } from '../lib/shutdown'
import { init, koala } from '../lib/singleton'
import { FakeClock } from './helpers/fake-clock'
import { harness, memoryLogger, type Harness } from './helpers/setup'
import { resetSingleton } from './helpers/singleton'

/** Stands in for `process`: signals are emitted by the test, kill() is recorded. */
class FakeProcess extends EventEmitter implements SignalSource {
  readonly pid = 4242
  readonly kills: Array<[number, NodeJS.Signals]> = []
  kill (pid: number, signal: NodeJS.Signals): void { this.kills.push([pid, signal]) }
  signal (name: NodeJS.Signals): void { this.emit(name, name) }
}

interface Gate { open(): void, wait: Promise<void> }
function gate (): Gate {
  let open!: () => void
  const wait = new Promise<void>(resolve => { open = resolve })
  return { open, wait }
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void
const servers: Server[] = []
async function serve (handler: Handler): Promise<{ server: Server, url: string }> {
  const server = createServer(handler)
  // Far longer than any test: a socket left open after its last response would hang the drain.
  server.keepAliveTimeout = 600_000
  servers.push(server)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }
}

let proc: FakeProcess
let clock: FakeClock
let agent: Agent
let exits: NodeJS.Signals[]
let exited: Promise<NodeJS.Signals>
let h: Harness | undefined

beforeEach(() => {
  proc = new FakeProcess()
  clock = new FakeClock()
  agent = new Agent({ keepAliveTimeout: 600_000 })
  exits = []
  let resolveExit!: (s: NodeJS.Signals) => void
  exited = new Promise(resolve => { resolveExit = resolve })
  const exit = (s: NodeJS.Signals): void => { exits.push(s); resolveExit(s) }
  base = { process: proc, clock, exit }
})
const sockets: Socket[] = []
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy()
  await agent.destroy()
  for (const s of servers.splice(0)) { s.closeAllConnections(); s.close() }
  await h?.done()
  h = undefined
  await resetSingleton()
})
let base: ShutdownOptions

const spyTracker = (): Closable & { calls: number } => {
  const t = { calls: 0, async close () { t.calls++; return { delivered: 0, failed: 0, abandoned: 0, unknown: 0, spooled: 0, timedOut: false } } }
  return t
}

test('nothing is installed on import, and nothing on the real process when a signal source is given', () => {
  const before = [process.listenerCount('SIGTERM'), process.listenerCount('SIGINT')]
  jest.isolateModules(() => {
    jest.requireActual('../lib')
    jest.requireActual('../lib/express')
    jest.requireActual('../lib/shutdown')
  })
  const hook = gracefulShutdown({ ...base })
  expect([process.listenerCount('SIGTERM'), process.listenerCount('SIGINT')]).toEqual(before)
  expect([proc.listenerCount('SIGTERM'), proc.listenerCount('SIGINT'), proc.listenerCount('SIGHUP')]).toEqual([1, 1, 0])
  hook.dispose()
  expect([proc.listenerCount('SIGTERM'), proc.listenerCount('SIGINT')]).toEqual([0, 0])
})

test('on SIGTERM: no new connections, the request in flight finishes, idle keep-alive sockets close, then the tracker delivers and the process exits', async () => {
  h = await harness({ flushIntervalMs: 60_000 })
  const tracker = h.tracker
  const release = gate()
  const started = gate()
  const { server, url } = await serve((req, res) => {
    if (req.url === '/slow') {
      started.open()
      void release.wait.then(() => {
        tracker.track({ email: 'late@example.com', event: 'Finished During Shutdown' })
        res.end('slow')
      })
    } else {
      tracker.track({ email: 'early@example.com', event: 'Before' })
      res.end('fast')
    }
  })
  gracefulShutdown({ ...base, server, tracker })
  await (await request(url + '/fast', { dispatcher: agent })).body.text() // leaves an idle keep-alive socket
  const slow = request(url + '/slow', { method: 'POST', dispatcher: agent })
  await started.wait

  proc.signal('SIGTERM')
  expect(server.listening).toBe(false)
  await expect(new Client(url).request({ path: '/fast', method: 'GET' })).rejects.toMatchObject({ code: 'ECONNREFUSED' })
  expect(tracker.stats().state).toBe('open') // not before the servers are drained
  expect(exits).toEqual([])

  release.open()
  const r = await slow
  expect([r.statusCode, r.headers.connection, await r.body.text()]).toEqual([200, 'close', 'slow'])
  expect(await exited).toBe('SIGTERM')
  expect(tracker.stats()).toMatchObject({ state: 'closed', accepted: 2, sent: 2 })
  expect(h.collector.stats().profiles.events).toBe(2)
  expect([proc.listenerCount('SIGTERM'), proc.listenerCount('SIGINT')]).toEqual([0, 0])
})

test('a response whose headers went out before the signal still ends its keep-alive socket when it finishes', async () => {
  const release = gate()
  const started = gate()
  const { server, url } = await serve((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.write('part 1,')
    started.open()
    void release.wait.then(() => res.end('part 2'))
  })
  const hook = gracefulShutdown({ ...base, server })
  const streaming = request(url, { dispatcher: agent })
  await started.wait
  proc.signal('SIGINT')
  release.open()
  const r = await streaming
  expect([r.headers.connection, await r.body.text()]).toEqual(['keep-alive', 'part 1,part 2'])
  expect(await exited).toBe('SIGINT')
  expect((await hook.shutdown()).servers).toEqual([{ forced: false }])
})

test('requests still running at drainTimeoutMs are cut, reported once, and the shutdown goes on', async () => {
  const logger = memoryLogger()
  const tracker = spyTracker()
  const started = gate()
  const { server, url } = await serve(() => { started.open() }) // never answers
  const hook = gracefulShutdown({ ...base, server, tracker, logger, drainTimeoutMs: 2_000 })
  const hanging = request(url, { dispatcher: agent })
  await started.wait
  proc.signal('SIGTERM')
  expect(clock.pending()).toEqual([{ inMs: 2_000, ms: 2_000, keepAlive: true }])
  clock.advance(2_000)
  await expect(hanging).rejects.toThrow()
  expect(await exited).toBe('SIGTERM')
  expect(await hook.shutdown()).toEqual({ signal: 'SIGTERM', servers: [{ forced: true }], trackers: [expect.anything()] })
  expect(tracker.calls).toBe(1)
  expect(logger.lines.map(l => l.msg)).toEqual([expect.stringContaining('still running after 2000 ms')])
})

test('two signals, a second gracefulShutdown() call and a manual shutdown() make one shutdown and one exit', async () => {
  const tracker = spyTracker()
  const a = await serve((_req, res) => res.end())
  const b = await serve((_req, res) => res.end())
  const hook = gracefulShutdown({ ...base, server: a.server, tracker })
  expect(gracefulShutdown({ ...base, server: b.server, tracker })).toBe(hook)
  expect(proc.listenerCount('SIGTERM')).toBe(1)

  const manual: ShutdownResult = await hook.shutdown()
  expect(manual).toEqual({ signal: undefined, servers: [{ forced: false }, { forced: false }], trackers: [expect.anything()] })
  expect(exits).toEqual([]) // a direct call never ends the process
  expect([a.server.listening, b.server.listening]).toEqual([false, false])

  proc.signal('SIGTERM')
  proc.signal('SIGTERM')
  proc.signal('SIGINT')
  expect(await exited).toBe('SIGTERM')
  expect(exits).toEqual(['SIGTERM'])
  expect(tracker.calls).toBe(1)
  expect(hook.shuttingDown).toBe(true)
})

test('by default the signal is raised again once the hook\'s listeners are gone, so the exit code is the usual one', async () => {
  const { exit: _ignored, ...noExit } = base
  gracefulShutdown(noExit)
  proc.signal('SIGINT')
  await new Promise(resolve => setImmediate(resolve))
  await new Promise(resolve => setImmediate(resolve))
  expect(proc.kills).toEqual([[4242, 'SIGINT']])
  expect(proc.listenerCount('SIGINT')).toBe(0)
})

test('an exit function that throws is contained and logged', async () => {
  const logger = memoryLogger()
  const thrown = gate()
  gracefulShutdown({ process: proc, logger, exit: () => { thrown.open(); throw new Error('exit broke') } })
  proc.signal('SIGTERM')
  await thrown.wait
  await new Promise(resolve => setImmediate(resolve))
  expect(logger.lines).toEqual([expect.objectContaining({ level: 'error', msg: expect.stringContaining('exit function threw') })])
})

test('the singleton, once configured, is closed too, without being named', async () => {
  const collector = await harness()
  h = collector
  init({ publicKey: 'pk_test', baseUrl: collector.collector.url })
  gracefulShutdown({ ...base })
  koala.track({ email: 'ada@example.com', event: 'Buffered' })
  proc.signal('SIGTERM')
  await exited
  expect(koala.stats()).toMatchObject({ state: 'closed', sent: 1 })
  expect(collector.collector.stats().profiles.events).toBe(1)
})

test.each<[ShutdownOptions, string]>([
  [{ drainTimeoutMs: -1 }, 'drainTimeoutMs'],
  [{ trackerTimeoutMs: 1.5 }, 'trackerTimeoutMs'],
  [{ server: {} as never }, 'server'],
  [{ tracker: { end () {} } as never }, 'tracker'],
  [{ signals: ['TERM' as NodeJS.Signals] }, 'signals'],
  [{ signals: ['SIGTREM' as NodeJS.Signals] }, 'signals'], // would never fire
  [{ signals: ['SIGTERM', 'SIGKILL'] }, 'signals'], // cannot be caught: listening throws
  [{ signals: ['SIGSTOP'] }, 'signals'],
  [{ signals: ['toString' as NodeJS.Signals] }, 'signals'],
  [{ server: { close () {}, on () {} } as never }, 'server'], // the hook could not be removed from it
  [{ servers: [] } as never, 'servers'], // the server named would never be drained
  [{ exit: 0 as never }, 'exit'],
  [{ logger: console.log as never }, 'logger'],
  [{ clock: { now: () => 0 } as never }, 'clock'],
  [{ process: {} as never }, 'process']
])('bad options are a ConfigError naming the option: %j', (options, option) => {
  expect(() => gracefulShutdown({ ...base, ...options })).toThrow(expect.objectContaining({ code: 'KOALA_ERR_INVALID_OPTION', option }))
  expect(proc.listenerCount('SIGTERM')).toBe(0)
})

test('an upgraded socket (a WebSocket) does not hold the shutdown past drainTimeoutMs', async () => {
  const tracker = spyTracker()
  const { server, url } = await serve((_req, res) => res.end())
  const upgraded = gate()
  server.on('upgrade', (_req, socket: Socket) => {
    sockets.push(socket)
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n')
    upgraded.open() // and keep it open, as a WebSocket would
  })
  const client = connect(Number(new URL(url).port), '127.0.0.1')
  sockets.push(client)
  client.write('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n')
  await upgraded.wait
  const hook = gracefulShutdown({ ...base, server, tracker, logger: memoryLogger() })
  proc.signal('SIGTERM')
  clock.advance(10_000)
  expect(await exited).toBe('SIGTERM')
  expect((await hook.shutdown()).servers).toEqual([{ forced: true }])
  expect(tracker.calls).toBe(1)
})

test('a server whose close() throws is reported, and the trackers are still closed and the process still exits', async () => {
  const logger = memoryLogger()
  const tracker = spyTracker()
  const broken = { on () {}, removeListener () {}, close () { throw new Error('close broke') } }
  const hook = gracefulShutdown({ ...base, server: broken, tracker, logger })
  proc.signal('SIGTERM')
  expect(await exited).toBe('SIGTERM')
  expect(await hook.shutdown()).toMatchObject({ servers: [{ forced: false }], trackers: [expect.anything()] })
  expect(tracker.calls).toBe(1)
  expect(clock.pending()).toEqual([]) // no deadline timer left to hold the process
  expect(logger.lines).toEqual([expect.objectContaining({ level: 'error', msg: expect.stringContaining('closing a server failed') })])
})

test('a signal that cannot be listened for is a ConfigError, and nothing stays installed', async () => {
  class Refusing extends FakeProcess {
    override on (event: string | symbol, listener: (...args: any[]) => void): this {
      if (event === 'SIGINT') throw new Error('uv_signal_start EINVAL')
      return super.on(event, listener)
    }
  }
  const refusing = new Refusing()
  const { server } = await serve((_req, res) => res.end())
  const before = server.listenerCount('request')
  expect(() => gracefulShutdown({ ...base, process: refusing, server })).toThrow(expect.objectContaining({
    code: 'KOALA_ERR_INVALID_OPTION', option: 'signals', message: expect.stringContaining('uv_signal_start EINVAL')
  }))
  expect([refusing.listenerCount('SIGTERM'), server.listenerCount('request')]).toEqual([0, before])
  // Nothing half-made was kept: a corrected call installs one hook.
  gracefulShutdown({ ...base, process: refusing, server, signals: ['SIGTERM'] })
  expect([refusing.listenerCount('SIGTERM'), server.listenerCount('request')]).toEqual([1, before + 1])
})

test('a server that will not let go of its listener still lets the process exit by the signal; it is logged', async () => {
  const logger = memoryLogger()
  const tracker = spyTracker()
  const stubborn = { on () {}, removeListener () { throw new Error('frozen emitter') }, close (cb: () => void) { setImmediate(cb) } }
  gracefulShutdown({ ...base, server: stubborn, tracker, logger })
  proc.signal('SIGTERM')
  expect(await exited).toBe('SIGTERM')
  expect(tracker.calls).toBe(1)
  expect(proc.listenerCount('SIGTERM')).toBe(0)
  expect(logger.lines).toEqual([expect.objectContaining({ level: 'warn', msg: expect.stringContaining('removing the shutdown hook from a server failed') })])
})
