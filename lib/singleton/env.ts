import { ConfigError } from '../shared/errors'
import { nearestName } from '../shared/near'
import { DEFAULTS, type TrackerOptions } from '../tracker'

/** The environment as Node gives it: `process.env`, or any plain record in tests. */
export type Env = Readonly<Record<string, string | undefined>>

/** `flushIntervalMs` -> `KOALA_FLUSH_INTERVAL_MS`: the one naming rule for every option. */
export function envName (option: string): string {
  return 'KOALA_' + option.replace(/[A-Z]/g, c => '_' + c).toUpperCase()
}

const NUMERIC = Object.keys(DEFAULTS).filter(k => typeof DEFAULTS[k as keyof typeof DEFAULTS] === 'number') as Array<keyof TrackerOptions>

/** Names other KOALA_ variables that belong to something else (comma-separated), so they are not taken for typos. */
const ALLOW_UNKNOWN_ENV = 'KOALA_ALLOW_UNKNOWN_ENV'

/** The spool's options, each read from KOALA_SPOOL_ + its name (KOALA_SPOOL_DIR, KOALA_SPOOL_MAX_BYTES...). */
const SPOOL_NUMERIC = ['maxBytes', 'segmentBytes', 'fsyncIntervalMs'] as const
const SPOOL_OPTIONS = ['dir', 'fsync', ...SPOOL_NUMERIC]
const spoolName = (option: string): string => 'spool' + option[0].toUpperCase() + option.slice(1)

/** Every KOALA_ variable koala-tracker reads, by the name it is derived from: the options, the deletion command's key, the escape. */
/** Fleet mode: KOALA_REDIS_URL turns it on, KOALA_REDIS_STREAM names the stream. */
const REDIS_OPTIONS = ['redisUrl', 'redisStream']

const KNOWN = ['publicKey', 'baseUrl', 'strict', 'sendOnExit', ...NUMERIC, ...SPOOL_OPTIONS.map(spoolName), ...REDIS_OPTIONS, 'secretKey', 'allowUnknownEnv']
const KNOWN_VARIABLES = new Set(KNOWN.map(envName))

/**
 * A misspelt variable (`KOALA_BASEURL`) would be ignored and its default used: events sent to
 * production from a laptop. So any other KOALA_ variable that is set is refused, with the name it
 * was probably meant to be.
 */
function checkNoUnknownVariables (env: Env): void {
  const allowed = new Set((env[ALLOW_UNKNOWN_ENV] ?? '').split(',').map(name => name.trim()))
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('KOALA_') || KNOWN_VARIABLES.has(name) || allowed.has(name) || (value ?? '').trim() === '') continue
    // Compared without underscores, so KOALA_BASEURL finds baseUrl.
    const near = nearestName(name.slice('KOALA_'.length).replace(/_/g, ''), KNOWN)
    throw new ConfigError(name, `is not a koala-tracker variable${near === undefined ? '' : ` (did you mean ${envName(near)}?)`}; ` +
      `if it is meant for something else, name it in ${ALLOW_UNKNOWN_ENV} (comma-separated)`)
  }
}

/**
 * Reads tracker options from environment variables (`KOALA_PUBLIC_KEY`,
 * `KOALA_BASE_URL`, `KOALA_STRICT` and `KOALA_` + each numeric option in
 * SCREAMING_SNAKE_CASE). Pure: the caller passes the environment. Unset or
 * empty variables are left out; a value that is not a number (or a boolean for
 * KOALA_STRICT), or a KOALA_ variable koala-tracker does not know (unless named
 * in KOALA_ALLOW_UNKNOWN_ENV), throws a ConfigError naming the variable. Ranges
 * are checked by createTracker(), like any other option.
 */
export function optionsFromEnv (env: Env): Partial<TrackerOptions> {
  checkNoUnknownVariables(env)
  const out: Partial<TrackerOptions> = {}
  const read = (option: string): string | undefined => {
    const raw = env[envName(option)]
    return raw === undefined || raw.trim() === '' ? undefined : raw.trim()
  }
  const publicKey = read('publicKey')
  if (publicKey !== undefined) out.publicKey = publicKey
  const baseUrl = read('baseUrl')
  if (baseUrl !== undefined) out.baseUrl = baseUrl
  for (const option of ['strict', 'sendOnExit'] as const) {
    const raw = read(option)
    if (raw === undefined) continue
    if (!/^(true|false|1|0)$/i.test(raw)) throw new ConfigError(envName(option), `must be true or false, got ${JSON.stringify(raw)}`)
    out[option] = /^(true|1)$/i.test(raw)
  }
  const integer = (option: string): number | undefined => {
    const raw = read(option)
    if (raw === undefined) return undefined
    if (!/^[+-]?\d+$/.test(raw)) throw new ConfigError(envName(option), `must be an integer, got ${JSON.stringify(raw)}`)
    return Number(raw)
  }
  for (const option of NUMERIC) {
    const n = integer(option)
    if (n !== undefined) (out as Record<string, number>)[option] = n
  }
  const spool: Record<string, unknown> = {}
  for (const option of SPOOL_NUMERIC) spool[option] = integer(spoolName(option))
  spool.fsync = read(spoolName('fsync'))
  spool.dir = read(spoolName('dir'))
  if (spool.dir !== undefined) {
    out.spool = Object.fromEntries(Object.entries(spool).filter(([, v]) => v !== undefined)) as unknown as TrackerOptions['spool']
  } else {
    const stray = Object.keys(spool).find(k => spool[k] !== undefined)
    if (stray !== undefined) throw new ConfigError(envName(spoolName(stray)), `is set but ${envName('spoolDir')} is not: the spool needs a directory`)
  }
  const redisUrl = read('redisUrl')
  const redisStream = read('redisStream')
  if (redisUrl !== undefined) out.redis = redisStream === undefined ? { url: redisUrl } : { url: redisUrl, stream: redisStream }
  else if (redisStream !== undefined) throw new ConfigError(envName('redisStream'), `is set but ${envName('redisUrl')} is not`)
  return out
}

/**
 * Renames a ConfigError about options that came from the environment so it
 * names the variable the operator has to fix, not the option.
 */
export function envConfigError (err: ConfigError): ConfigError {
  if (err.option.startsWith('KOALA_') || err.option === 'options') return err
  // spool.fsync -> spoolFsync; the spool or redis object itself -> the variable that turns it on.
  const [part, field = part === 'spool' ? 'dir' : 'url'] = err.option.split('.')
  const option = part === 'spool' || part === 'redis' ? part + field[0].toUpperCase() + field.slice(1) : err.option
  return new ConfigError(envName(option), `is invalid: ${err.message}`)
}
