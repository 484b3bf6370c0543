import { parseArgs } from 'node:util'
import { optionsFromEnv } from '../singleton'
import { createTracker } from '../tracker'
import { plural } from '../shared/plural'
import { EXIT, UsageError } from './delete'
import type { CliIo } from './io'

export const RELAY_HELP = `Options for relay:
  --redis URL                    The fleet's Redis (redis:// or rediss://); or KOALA_REDIS_URL.
  --stream NAME                  The stream (default koala:<public key>:items); or KOALA_REDIS_STREAM.
  --base-url URL                 Where to deliver (default Koala's; or KOALA_BASE_URL).

The public key (pk_...) comes from KOALA_PUBLIC_KEY; other options from KOALA_* variables, as for
the singleton (KOALA_FLUSH_INTERVAL_MS...). It delivers until Ctrl-C or SIGTERM, then
hands back what it holds (another consumer takes it) and prints what it delivered.`

/** `koala-tracker relay`: a consumer of the fleet's stream that tracks nothing itself. */
export async function runRelay (io: CliIo, args: string[], help: () => number): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { help: { type: 'boolean', short: 'h' }, redis: { type: 'string' }, stream: { type: 'string' }, 'base-url': { type: 'string' } }
  })
  if (values.help === true) return help()
  if (positionals.length > 0) throw new UsageError('relay takes only options')
  // Every other tracker option from the environment, as for the singleton (KOALA_FLUSH_INTERVAL_MS...).
  const env = optionsFromEnv(io.env)
  const url = values.redis ?? env.redis?.url
  if (url === undefined) throw new UsageError('relay needs --redis URL (or KOALA_REDIS_URL)')
  if (env.publicKey === undefined) throw new UsageError('relay needs KOALA_PUBLIC_KEY: your Koala project\'s public key (pk_...)')
  const tracker = createTracker({
    ...env,
    publicKey: env.publicKey,
    baseUrl: values['base-url'] ?? env.baseUrl,
    redis: { url, stream: values.stream ?? env.redis?.stream, consume: true },
    logger: { debug () {}, warn: (_obj, msg) => io.err(`warning: ${msg ?? ''}`), error: (_obj, msg) => io.err(`error: ${msg ?? ''}`) }
  })
  const stream = tracker.stats().redis?.stream ?? ''
  io.out(`Relaying ${stream} from ${url.replace(/\/\/[^@/]*@/, '//***@')} to Koala. Stop with Ctrl-C.`)
  // The tracker never keeps a process alive on its own; a relay is meant to live until it is stopped.
  const alive = setInterval(() => {}, 2 ** 30)
  await io.stopRequested()
  clearInterval(alive)
  const closed = await tracker.close()
  const s = tracker.stats()
  io.out(`Delivered ${plural(s.sent, 'item')} (${plural(s.failed, 'item')} failed for good); ${plural(closed.spooled, 'item')} left in the stream for another consumer.`)
  return s.failed > 0 ? EXIT.failed : EXIT.ok
}
