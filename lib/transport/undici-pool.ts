import type { buildConnector as BuildConnector, Pool } from 'undici'

type PoolClass = typeof Pool

let loaded: PoolClass | undefined
let connector: typeof BuildConnector | undefined

/**
 * undici's Pool class, required on first use. Its own module loads 22 of
 * undici's modules where `require('undici')` loads 110 (fetch, WebSocket,
 * caches and mock agents the tracker never uses), a third of the time for
 * which the first send blocks the event loop. It is the same
 * class `require('undici').Pool` returns (a test holds the two together); if a
 * later undici moves the file, the whole package is loaded instead.
 */
export function undiciPool (): PoolClass {
  if (loaded !== undefined) return loaded
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const pool = require('undici/lib/dispatcher/pool') as unknown
    if (typeof pool === 'function') return (loaded = pool as PoolClass)
  } catch {
    // Moved or hidden by an exports map: the public entry point below.
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (loaded = (require('undici') as typeof import('undici')).Pool)
}

/** undici's buildConnector, loaded the same way (its own module, else the package). */
export function undiciBuildConnector (): typeof BuildConnector {
  if (connector !== undefined) return connector
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const build = require('undici/lib/core/connect') as unknown
    if (typeof build === 'function') return (connector = build as typeof BuildConnector)
  } catch {
    // Moved or hidden by an exports map: the public entry point below.
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (connector = (require('undici') as typeof import('undici')).buildConnector)
}
