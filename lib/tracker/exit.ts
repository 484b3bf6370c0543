/** What a tracker does when its process is about to end. */
export interface ExitWatcher {
  /** The event loop is empty: the process would exit now. */
  beforeExit(): void
  /** The process is exiting (process.exit(), or a signal nobody else handles): say what is lost. */
  exiting(how: string): void
}

const SIGNALS = ['SIGTERM', 'SIGINT'] as const
type Signal = typeof SIGNALS[number]

const watchers = new Set<ExitWatcher>()
const onBeforeExit = (): void => { for (const w of watchers) w.beforeExit() }
const onExit = (code: number): void => { for (const w of watchers) w.exiting(`process.exit(${code})`) }
/** Marks our signal listeners, those of another copy of this module included (two installs, a test runner's registry). */
const OURS = Symbol.for('koala-tracker.exit-listener')
const mark = (fn: () => void): () => void => Object.assign(fn, { [OURS]: true })
const onSignal: Record<Signal, () => void> = {
  SIGTERM: mark(() => signalled('SIGTERM')),
  SIGINT: mark(() => signalled('SIGINT'))
}

/**
 * A signal nobody else listens for would have ended the process without a word:
 * report, then end it the way it would have ended (the signal again, with our
 * listeners gone). When the app handles the signal (gracefulShutdown, say), it
 * decides; whatever is left at the real exit is reported by onExit.
 */
function signalled (signal: Signal): void {
  if (process.listeners(signal).some(l => (l as { [OURS]?: boolean })[OURS] !== true)) return
  for (const w of watchers) w.exiting(signal)
  uninstall()
  process.kill(process.pid, signal)
}

function install (): void {
  process.on('beforeExit', onBeforeExit)
  process.on('exit', onExit)
  for (const s of SIGNALS) process.on(s, onSignal[s])
}

function uninstall (): void {
  process.off('beforeExit', onBeforeExit)
  process.off('exit', onExit)
  for (const s of SIGNALS) process.off(s, onSignal[s])
}

/** One set of process listeners for every tracker watching; returns the way to stop watching. */
export function watchExit (watcher: ExitWatcher): () => void {
  if (watchers.size === 0) install()
  watchers.add(watcher)
  return () => {
    if (watchers.delete(watcher) && watchers.size === 0) uninstall()
  }
}
