import { checkInt, checkKnownKeys } from '../shared/checks'
import { ConfigError } from '../shared/errors'

export interface FleetOptions {
  /** `redis://[user:password@]host:port[/db]` (or `rediss://` for TLS). Required. */
  url: string
  /** The stream every process of the fleet shares. Default: `koala:<publicKey>:items`. */
  stream?: string
  /** Also read the stream and deliver to Koala (a consumer). `false`: only add to it (a producer). Default: true. */
  consume?: boolean
  /**
   * Entries a consumer has held this long without renewing its claim (it died) are taken over by another.
   * Live consumers renew theirs every third of it. Default: 30 000 ms.
   */
  claimIdleMs?: number
}

export const FLEET_DEFAULTS = Object.freeze({
  consume: true,
  claimIdleMs: 30_000
})

export interface ResolvedFleetOptions {
  readonly url: string
  readonly stream: string
  readonly group: string
  readonly consume: boolean
  readonly claimIdleMs: number
  /** The key that tells every process of the fleet to wait (a 429 with Retry-After seen by one of them). */
  readonly pauseKey: string
}

const NAMES = ['url', 'stream', 'consume', 'claimIdleMs']

/** Checks fleet options (pure; throws ConfigError naming the field). */
export function resolveFleetOptions (input: FleetOptions, publicKey: string): ResolvedFleetOptions {
  if (typeof input !== 'object' || input === null) throw new ConfigError('redis', 'must be an object with a url')
  checkKnownKeys(input, NAMES, 'redis.')
  if (typeof input.url !== 'string' || !/^rediss?:\/\/./.test(input.url)) {
    throw new ConfigError('redis.url', `must be a redis:// or rediss:// URL, got ${JSON.stringify(input.url)}`)
  }
  const stream = input.stream ?? `koala:${publicKey}:items`
  if (typeof stream !== 'string' || stream === '') throw new ConfigError('redis.stream', 'must be a non-empty string')
  if (input.consume !== undefined && typeof input.consume !== 'boolean') throw new ConfigError('redis.consume', `must be a boolean, got ${typeof input.consume}`)
  const claimIdleMs = checkInt('redis.claimIdleMs', input.claimIdleMs ?? FLEET_DEFAULTS.claimIdleMs, [300, 2 ** 31 - 1])
  return Object.freeze({
    url: input.url,
    stream,
    group: 'koala-tracker',
    consume: input.consume ?? FLEET_DEFAULTS.consume,
    claimIdleMs,
    pauseKey: `${stream}:pause`
  })
}
