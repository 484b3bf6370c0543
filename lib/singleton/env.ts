import { ConfigError } from '../shared/errors'
import { DEFAULTS, type TrackerOptions } from '../tracker'

/** The environment as Node gives it: `process.env`, or any plain record in tests. */
export type Env = Readonly<Record<string, string | undefined>>

/** `flushIntervalMs` -> `KOALA_FLUSH_INTERVAL_MS`: the one naming rule for every option. */
export function envName (option: string): string {
  return 'KOALA_' + option.replace(/[A-Z]/g, c => '_' + c).toUpperCase()
}

const NUMERIC = Object.keys(DEFAULTS).filter(k => typeof DEFAULTS[k as keyof typeof DEFAULTS] === 'number') as Array<keyof TrackerOptions>

/**
 * Reads tracker options from environment variables (`KOALA_PUBLIC_KEY`,
 * `KOALA_BASE_URL`, `KOALA_STRICT` and `KOALA_` + each numeric option in
 * SCREAMING_SNAKE_CASE). Pure: the caller passes the environment. Unset or
 * empty variables are left out; a value that is not a number (or a boolean for
 * KOALA_STRICT) throws a ConfigError naming the variable. Ranges are checked by
 * createTracker(), like any other option.
 */
export function optionsFromEnv (env: Env): Partial<TrackerOptions> {
  const out: Partial<TrackerOptions> = {}
  const read = (option: string): string | undefined => {
    const raw = env[envName(option)]
    return raw === undefined || raw.trim() === '' ? undefined : raw.trim()
  }
  const publicKey = read('publicKey')
  if (publicKey !== undefined) out.publicKey = publicKey
  const baseUrl = read('baseUrl')
  if (baseUrl !== undefined) out.baseUrl = baseUrl
  const strict = read('strict')
  if (strict !== undefined) {
    if (!/^(true|false|1|0)$/i.test(strict)) throw new ConfigError(envName('strict'), `must be true or false, got ${JSON.stringify(strict)}`)
    out.strict = /^(true|1)$/i.test(strict)
  }
  for (const option of NUMERIC) {
    const raw = read(option)
    if (raw === undefined) continue
    if (!/^[+-]?\d+$/.test(raw)) throw new ConfigError(envName(option), `must be an integer, got ${JSON.stringify(raw)}`)
    ;(out as Record<string, number>)[option] = Number(raw)
  }
  return out
}

/**
 * Renames a ConfigError about options that came from the environment so it
 * names the variable the operator has to fix, not the option.
 */
export function envConfigError (err: ConfigError): ConfigError {
  if (err.option.startsWith('KOALA_') || err.option === 'options') return err
  return new ConfigError(envName(err.option), `is invalid: ${err.message}`)
}
