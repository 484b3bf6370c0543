import type { Tracker } from '../../lib/tracker/tracker'
import type { FakeClock } from './fake-clock'
import { tick } from './setup'

/**
 * Runs virtual time until `until` settles: lets real I/O finish first (no
 * request in flight), then jumps the fake clock to the next timer. Time never
 * moves while a request is in flight, so deadlines fire only when a test means them to.
 * Returns the clock jumps taken, in order.
 */
export async function driveUntil<T> (tracker: Tracker, clock: FakeClock, until: Promise<T>): Promise<{ value: T, jumps: number[] }> {
  return await driveClock(clock, until, () => tracker.stats().inFlightRequests > 0)
}

/** driveUntil for anything that can say whether it has a request in flight. */
export async function driveClock<T> (clock: FakeClock, until: Promise<T>, busy: () => boolean): Promise<{ value: T, jumps: number[] }> {
  let settled = false
  let value!: T
  void until.then(v => { value = v; settled = true })
  const jumps: number[] = []
  for (let idle = 0; !settled;) {
    await tick()
    if (settled) break
    if (busy()) continue
    const jump = clock.next()
    if (jump !== undefined) {
      jumps.push(jump)
      idle = 0
    } else if (++idle > 10_000) {
      throw new Error('driveClock: nothing in flight, no timer, and the promise never settled')
    }
  }
  return { value, jumps }
}
