import { join } from 'node:path'
import { Reporter } from '../lib/shared/logger'
import { FIXTURES, startNode } from './helpers/child'
import { FakeClock } from './helpers/fake-clock'
import { memoryLogger } from './helpers/setup'

test('Reporter logs the first of a kind, sums repeats per interval, and reports the rest at close', () => {
  const clock = new FakeClock()
  const logger = memoryLogger()
  const r = new Reporter(logger, clock, 1000)
  for (let i = 0; i < 5; i++) r.note('a', 'warn', { n: i }, 'problem a')
  r.note('b', 'error', {}, 'problem b')
  expect(logger.lines.map(l => [l.level, l.msg])).toEqual([['warn', 'problem a'], ['error', 'problem b']])
  clock.advance(1000)
  r.note('a', 'warn', { n: 5 }, 'problem a')
  expect(logger.lines[2]).toEqual({ level: 'warn', obj: { n: 5, kind: 'a', repeated: 5 }, msg: 'problem a (5 times since the last report)' })
  r.note('a', 'warn', {}, 'problem a')
  r.flushSummaries()
  expect(logger.lines[3]).toEqual({ level: 'warn', obj: { kind: 'a', repeated: 1 }, msg: 'problem a (1 more time since the last report)' })
  r.flushSummaries()
  expect(logger.lines).toHaveLength(4)
  clock.advance(1000)
  r.note('a', 'warn', {}, 'problem a')
  expect(logger.lines[4].msg).toBe('problem a (1 time since the last report)')
})

test('a logger that throws is contained', () => {
  const boom = (): never => { throw new Error('logger down') }
  const r = new Reporter({ debug: boom, warn: boom, error: boom }, new FakeClock(), 0)
  expect(() => r.note('x', 'warn', {}, 'msg')).not.toThrow()
})

test('the default logger writes warnings as JSON to stderr, sums repeats up at close, and writes nothing to stdout', async () => {
  const { code, stdout, stderr } = await startNode([join(FIXTURES, 'default-logger.cjs')]).exited
  expect(code).toBe(0)
  expect(stdout).toBe('')
  const lines = stderr.trim().split('\n').map(l => JSON.parse(l))
  expect(lines).toHaveLength(2)
  expect(lines[0]).toMatchObject({ level: 40, name: 'koala-tracker', msg: 'track(): event must not be empty', field: 'event' })
  expect(lines[1]).toMatchObject({ level: 40, repeated: 2 })
  expect(stderr).not.toContain('secret@example.com')
})
