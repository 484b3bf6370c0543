import { randomUUID } from 'node:crypto'
import { createServer } from 'node:net'
import { startCollector, type Collector, type CollectorOptions } from '../../lib/collector'
import type { EventName, TrackerEvents } from '../../lib/tracker/events'
import type { LoggerLike } from '../../lib/shared/logger'
import { createTracker, type Tracker } from '../../lib/tracker/tracker'
import type { TrackerOptions } from '../../lib/tracker/options'
import { FakeClock } from './fake-clock'

export const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

export interface LogLine { level: 'debug' | 'warn' | 'error', obj: Record<string, unknown>, msg: string | undefined }

/** A logger that keeps what it is given, for assertions. */
export function memoryLogger (): LoggerLike & { lines: LogLine[] } {
  const lines: LogLine[] = []
  const at = (level: LogLine['level']) => (obj: object, msg?: string) => { lines.push({ level, obj: obj as Record<string, unknown>, msg }) }
  return { lines, debug: at('debug'), warn: at('warn'), error: at('error') }
}

export const person = (): string => randomUUID()

export interface Harness {
  collector: Collector
  clock: FakeClock
  logger: ReturnType<typeof memoryLogger>
  errors: Error[]
  tracker: Tracker
  make(extra?: Partial<TrackerOptions>): Tracker
  done(): Promise<void>
}

/** A collector on 127.0.0.1, a fake clock, and a tracker pointed at both. */
export async function harness (options: Partial<TrackerOptions> = {}, collectorOptions: CollectorOptions = {}): Promise<Harness> {
  const collector = await startCollector(collectorOptions)
  const clock = new FakeClock()
  const logger = memoryLogger()
  const errors: Error[] = []
  const trackers: Tracker[] = []
  const make = (extra: Partial<TrackerOptions> = {}): Tracker => {
    const t = createTracker({
      publicKey: 'pk_test',
      baseUrl: collector.url,
      clock,
      logger,
      onError: (e) => { errors.push(e) },
      ...options,
      ...extra
    })
    trackers.push(t)
    return t
  }
  const tracker = make()
  return {
    collector,
    clock,
    logger,
    errors,
    tracker,
    make,
    async done () {
      // A zero deadline on the fake clock, fired at once: leftovers are abandoned, never awaited.
      for (const t of trackers) {
        const closing = t.close({ timeoutMs: 0 })
        clock.advance(0)
        await closing
      }
      await collector.close()
    }
  }
}

/** Resolves with the next `event` from the tracker that satisfies `accept`. */
export async function nextEvent<E extends EventName> (tracker: Tracker, event: E, accept: (p: TrackerEvents[E]) => boolean = () => true): Promise<TrackerEvents[E]> {
  return await new Promise(resolve => {
    const off = tracker.on(event, (payload) => {
      if (!accept(payload)) return
      off()
      resolve(payload)
    })
  })
}

/** Lets queued microtasks and I/O callbacks run once. */
export const tick = async (): Promise<void> => await new Promise(resolve => setImmediate(resolve))

/** A port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
export async function freePort (): Promise<number> {
  return await new Promise(resolve => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}
