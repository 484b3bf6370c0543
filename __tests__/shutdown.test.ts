import { join } from 'node:path'
import { startCollector, type Collector } from '../lib/collector'
import { FIXTURES, startNode } from './helpers/child'

let collector: Collector
afterEach(async () => { await collector.close() })

test('a process that gets SIGTERM after tracking N events exits cleanly with all N delivered, retries included', async () => {
  const N = 3_000
  collector = await startCollector({ fault: (req) => req.seq % 5 === 0 ? { status: 503 } : undefined })
  const child = startNode([join(FIXTURES, 'sigterm.cjs')], { env: { KOALA_BASE_URL: collector.url, N: String(N) } })
  await child.waitForOutput(`tracked ${N}`)
  child.process.kill('SIGTERM')
  const { code, signal, stdout, stderr } = await child.exited
  expect({ code, signal, stderr }).toEqual({ code: 0, signal: null, stderr: '' })
  expect(stdout).toContain(`"abandoned":0,"unknown":0,"spooled":0,"timedOut":false} accepted ${N}`)
  expect(collector.stats().profiles.events).toBe(N)
  expect(collector.stats().duplicates).toBe(0)
  expect(collector.messageIds().size).toBe(N)
  expect(collector.stats().faults).toBeGreaterThan(0)
})

test('nothing from background work escapes: no unhandled rejection, no uncaught exception, no stdout', async () => {
  collector = await startCollector()
  const port = collector.port
  await collector.close()
  collector = await startCollector() // afterEach closes this one
  const { code, signal, stdout, stderr } = await startNode(['--unhandled-rejections=strict', join(FIXTURES, 'hostile.cjs')],
    { env: { KOALA_BASE_URL: `http://127.0.0.1:${port}` } }).exited
  expect({ code, signal, stdout }).toEqual({ code: 0, signal: null, stdout: '' })
  // Every item failed for good, most while close() waited (a batch that used up its attempts before is not close()'s).
  expect(stderr).toMatch(/closed \{"delivered":0,"failed":\d+,"abandoned":0,"unknown":0,"spooled":0,"timedOut":false\} \{"rejected":0,"retry_exhausted":100,/)
  // Logged as summaries, not once per event.
  expect(stderr.trim().split('\n').length).toBeLessThan(15)
})
