import { configuredTracker } from '../../lib/singleton'

const KOALA_VARS = /^KOALA_/

/**
 * Forgets the process singleton (closing its tracker) and any KOALA_*
 * variables a test set, so each test starts unconfigured. The slot's key is
 * the one lib/singleton.ts documents; tests are the only code that clears it.
 */
export async function resetSingleton (): Promise<void> {
  await configuredTracker()?.close({ timeoutMs: 5_000 })
  delete (globalThis as Record<symbol, unknown>)[Symbol.for('koala-tracker.singleton')]
  for (const k of Object.keys(process.env)) if (KOALA_VARS.test(k)) delete process.env[k]
}
