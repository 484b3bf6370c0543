import { join } from 'node:path'
import { Pool } from 'undici'
import { startCollector, type Collector } from '../lib/collector'
import { FIXTURES, startNode } from './helpers/child'
import { person } from './helpers/setup'

let collector: Collector
afterEach(async () => { await collector.close() })

const N = 1_200
const SIGNAL_AFTER = 400
const CONCURRENCY = 16

describe.each([['express', 'Express 5'], ['express4', 'Express 4']])('%s', (module, name) => {
  test(`${name} under load gets SIGTERM mid-load and exits by the signal with every accepted event delivered`, async () => {
    // Every fourth request to the collector fails: what is buffered at the signal is delivered through retries.
    collector = await startCollector({ fault: (req) => req.seq % 4 === 0 ? { status: 503 } : undefined })
    const child = startNode([join(FIXTURES, 'express-load.cjs')], {
      env: { EXPRESS_MODULE: module, KOALA_PUBLIC_KEY: 'pk_test', KOALA_BASE_URL: collector.url, KOALA_RETRY_BASE_DELAY_MS: '10' }
    })
    await child.waitForOutput('listening ')
    const port = Number(/listening (\d+)/.exec(child.output())?.[1])
    const pool = new Pool(`http://127.0.0.1:${port}`, { connections: CONCURRENCY + 1 })
    const visitors = Array.from({ length: 40 }, () => person())

    // One request that the app answers only after the signal: certainly in flight during the shutdown.
    const slow = pool.request({ path: '/slow', method: 'POST' }).then(async r => [r.statusCode, await r.body.text()])
    await child.waitForOutput('slow started')

    const accepted = new Set<number>()
    let refused = 0
    let signalled = false
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < N) {
        const n = next++
        try {
          const r = await pool.request({ path: `/load/${n}`, method: 'POST', headers: { cookie: `ko_id=${visitors[n % visitors.length]}` } })
          await r.body.text()
          if (r.statusCode === 200) accepted.add(n)
        } catch {
          refused++ // the server stopped taking connections
        }
        if (!signalled && accepted.size >= SIGNAL_AFTER) {
          signalled = true
          child.process.kill('SIGTERM')
        }
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, worker))
    const { code, signal, stderr } = await child.exited
    await pool.destroy()

    expect({ code, signal, stderr }).toEqual({ code: null, signal: 'SIGTERM', stderr: '' })
    expect(await slow).toEqual([200, 'slow'])
    expect(accepted.size).toBeGreaterThanOrEqual(SIGNAL_AFTER)
    expect(refused).toBe(N - accepted.size)
    expect(refused).toBeGreaterThan(0)
    // Every request the app answered had its event delivered; nothing else was, and nothing twice.
    const expected = new Set([...accepted].map(n => `load-${n}`)).add('slow')
    expect(new Set(collector.messageIds().keys())).toEqual(expected)
    expect(collector.stats()).toMatchObject({ duplicates: 0, profiles: { events: expected.size } })
    expect(collector.stats().faults).toBeGreaterThan(0)
  })
})

test('an app with its own SIGTERM listener hears the signal the hook raises again, and ends the process its own way', async () => {
  collector = await startCollector() // for afterEach
  const child = startNode([join(FIXTURES, 'own-sigterm.cjs')])
  await child.waitForOutput('listening ')
  child.process.kill('SIGTERM')
  const { code, signal, stdout, stderr } = await child.exited
  expect({ code, signal, stderr }).toEqual({ code: 7, signal: null, stderr: '' })
  expect(stdout.split('\n').filter(l => l.startsWith('app heard'))).toEqual(['app heard SIGTERM 1', 'app heard SIGTERM 2'])
})

test('a new visitor per request and a Koala 40 ms away: SIGTERM after 3,000 answered requests, and every event is delivered within the default close deadline', async () => {
  // One person per request means one Koala request per event: at 40 ms each, a fixed 10 in flight
  // delivered ~250 people a second and lost most of these at the deadline.
  collector = await startCollector({ latencyMs: 40, keepBodies: false })
  const child = startNode([join(FIXTURES, 'express-load.cjs')], {
    env: { EXPRESS_MODULE: 'express', KOALA_PUBLIC_KEY: 'pk_test', KOALA_BASE_URL: collector.url }
  })
  await child.waitForOutput('listening ')
  const port = Number(/listening (\d+)/.exec(child.output())?.[1])
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 32 })
  const answered = new Set<number>()
  let next = 0
  let signalled = false
  const worker = async (): Promise<void> => {
    while (!signalled) {
      const n = next++
      try {
        // No cookie: the middleware mints a new ko_id, a new person.
        const r = await pool.request({ path: `/load/${n}`, method: 'POST' })
        await r.body.text()
        if (r.statusCode === 200) answered.add(n)
      } catch {
        break // the server stopped taking connections
      }
      if (!signalled && answered.size >= 3_000) {
        signalled = true
        child.process.kill('SIGTERM')
      }
    }
  }
  await Promise.all(Array.from({ length: 32 }, worker))
  const { code, signal, stderr } = await child.exited
  await pool.destroy()
  expect({ code, signal, stderr }).toEqual({ code: null, signal: 'SIGTERM', stderr: '' })
  const delivered = new Set(collector.messageIds().keys())
  expect([...answered].filter(n => !delivered.has(`load-${n}`))).toEqual([])
  expect(collector.stats()).toMatchObject({ duplicates: 0 })
  expect(collector.stats().profiles.people).toBeGreaterThanOrEqual(3_000)
}, 30_000)
