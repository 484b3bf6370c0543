/** Opaque handle returned by Clock.setTimeout. */
export type TimerHandle = unknown

/**
 * The tracker's only source of time. Tests pass a fake one; the default reads
 * the globals when called (not at import), so jest fake timers also reach it.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number
  /**
   * Runs fn after ms. Timers must not keep the process alive unless
   * keepAlive is true (used only while a caller awaits flush() or close()).
   */
  setTimeout(fn: () => void, ms: number, keepAlive?: boolean): TimerHandle
  clearTimeout(handle: TimerHandle): void
}

export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  setTimeout (fn: () => void, ms: number, keepAlive = false): TimerHandle {
    const t = globalThis.setTimeout(fn, ms)
    if (!keepAlive) t.unref()
    return t
  },
  clearTimeout (handle: TimerHandle): void {
    globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>)
  }
})
