import { startCollector, type Collector } from '../lib/collector'
import { FIXTURES, startNode } from './helpers/child'
import { join } from 'node:path'

// Real child processes: what a process that ends without close() sends and says.
let collector: Collector
beforeEach(async () => { collector = await startCollector() })
afterEach(async () => { await collector.close() })

const run = async (how: string, env: Record<string, string> = {}, baseUrl = collector.url): ReturnType<typeof startNode>['exited'] =>
  await startNode([join(FIXTURES, 'exit.cjs')], { env: { KOALA_BASE_URL: baseUrl, EXIT_HOW: how, ...env } }).exited

const errorLines = (stderr: string): Array<{ msg: string }> =>
  stderr.trim().split('\n').filter(l => l !== '').map(l => JSON.parse(l) as { msg: string })

test('a script that ends without close() has what it buffered sent before it exits, and says nothing', async () => {
  const { code, signal, stdout, stderr } = await run('natural')
  expect({ code, signal, stdout, stderr }).toEqual({ code: 0, signal: null, stdout: '', stderr: '' })
  expect(collector.stats().profiles.events).toBe(31)
  expect(collector.stats().duplicates).toBe(0)
})

test('with sendOnExit: false it exits at once, and what was lost is logged once with its count', async () => {
  const { code, stderr } = await run('natural', { SEND_ON_EXIT: 'false' })
  expect(code).toBe(0)
  const lines = errorLines(stderr)
  expect(lines).toHaveLength(1)
  expect(lines[0].msg).toMatch(/exiting \(process\.exit\(0\)\) with \d+ items? undelivered; they are lost \(sendOnExit is off\)/)
})

test('process.exit() with events buffered: one line with the count, on stderr', async () => {
  const { code, stdout, stderr } = await run('exit')
  expect({ code, stdout }).toEqual({ code: 0, stdout: '' })
  expect(errorLines(stderr).map(l => l.msg)).toEqual([
    'koala-tracker: the process is exiting (process.exit(0)) with 5 items undelivered; they are lost (call close() before exiting (or use gracefulShutdown))'
  ])
  expect(collector.stats().requests).toBe(0)
})

test('a signal the app does not handle: one line with the count, then the process ends by that signal as it would have', async () => {
  const { code, signal, stderr } = await run('signal')
  expect({ code, signal }).toEqual({ code: null, signal: 'SIGTERM' })
  expect(errorLines(stderr).map(l => l.msg)).toEqual([expect.stringContaining('exiting (SIGTERM) with 5 items undelivered')])
})

test('a flush() deadline bounds the process: with Koala not answering it exits at closeTimeoutMs after the script ends, not at requestTimeoutMs', async () => {
  const hanging = await startCollector({ fault: () => ({ kind: 'hang' }) })
  try {
    // requestTimeoutMs is 60 s, past this test's own timeout: only the deadlines can end the process in time.
    const { code, stdout, stderr } = await run('flush', { CLOSE_TIMEOUT_MS: '1000' }, hanging.url)
    expect(code).toBe(0)
    expect(stdout).toBe('flush {"delivered":0,"failed":0,"pending":31,"timedOut":true}\n')
    // Sent, never answered: unknown, not lost for sure.
    expect(errorLines(stderr).map(l => l.msg)).toEqual([expect.stringMatching(/close\(\): the 1000 ms deadline passed with 31 items undelivered: 0 never sent \(lost\), 31 sent without an answer/)])
  } finally {
    await hanging.close()
  }
})

test('close() with nothing else keeping the process alive works off a long deadline queue in slices, and delivers everything', async () => {
  // Most of the 3,000 queue entries are stale (their buckets were pushed out and sent): several slices of
  // work, each on the next turn of an otherwise idle event loop.
  const { code, stdout, stderr } = await run('backlog')
  expect({ code, stderr }).toEqual({ code: 0, stderr: '' })
  expect(stdout).toMatch(/^closed \{"delivered":\d+,"failed":0,"abandoned":0,"unknown":0,"spooled":0,"timedOut":false\}\n$/)
  expect(collector.stats().profiles.events).toBe(3_000)
})
