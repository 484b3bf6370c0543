import { createTracker } from '../lib/tracker/tracker'
import type { TransportRequest } from '../lib/transport/transport'
import { memoryLogger } from './helpers/setup'

// In-process: what a tracker does when Node says the event loop is empty ('beforeExit').
// What happens in a real process that exits is in exit.test.ts (child processes).
const transport = (): { requests: TransportRequest[], send: (r: TransportRequest) => Promise<{ status: number, headers: {}, body: string }>, close: () => Promise<void>, destroy: () => Promise<void> } => {
  const requests: TransportRequest[] = []
  return { requests, send: async (r) => { requests.push(r); return { status: 200, headers: {}, body: '' } }, close: async () => {}, destroy: async () => {} }
}

test('an empty event loop with items buffered closes the tracker, which delivers them', async () => {
  const t = transport()
  const tracker = createTracker({ publicKey: 'pk_x', transport: t, logger: memoryLogger(), flushIntervalMs: 600_000 })
  tracker.track({ email: 'a@example.com', event: 'last words' })
  process.emit('beforeExit', 0)
  expect(tracker.stats().state).toBe('closing')
  await tracker.close()
  expect(t.requests).toHaveLength(1)
  expect(tracker.stats()).toMatchObject({ sent: 1, state: 'closed' })
})

test('nothing buffered, or sendOnExit: false: the tracker stays open', async () => {
  const idle = createTracker({ publicKey: 'pk_x', transport: transport(), logger: memoryLogger() })
  const off = createTracker({ publicKey: 'pk_x', transport: transport(), logger: memoryLogger(), sendOnExit: false, flushIntervalMs: 600_000 })
  off.track({ email: 'a@example.com', event: 'kept' })
  process.emit('beforeExit', 0)
  expect([idle.stats().state, off.stats().state]).toEqual(['open', 'open'])
  await Promise.all([idle.close(), off.close()])
})

test('a closed tracker no longer listens: beforeExit after close() does nothing', async () => {
  const before = process.listenerCount('beforeExit')
  const tracker = createTracker({ publicKey: 'pk_x', transport: transport(), logger: memoryLogger() })
  expect(process.listenerCount('beforeExit')).toBe(before + 1)
  await tracker.close()
  expect(process.listenerCount('beforeExit')).toBe(before)
})
