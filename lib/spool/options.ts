import * as path from 'node:path'
import { checkInt, checkKnownKeys } from '../shared/checks'
import { ConfigError } from '../shared/errors'

/** When appended records are forced to disk (fdatasync). Every policy survives a crash of the process. */
export type FsyncPolicy = 'interval' | 'batch' | 'never'

export interface SpoolOptions {
  /** Directory of the spool, created if missing; one live process per directory. Required. */
  dir: string
  /** Bytes of segment files kept at most; past it calls are refused (`spool_full`). Default: 1 GiB. */
  maxBytes?: number
  /** A segment file is closed and the next begun past this size; space is reclaimed a segment at a time. Default: 8 MiB. */
  segmentBytes?: number
  /**
   * 'interval' (default): synced every fsyncIntervalMs, so a power cut loses at most that much.
   * 'batch': synced after every write, before the next. 'never': left to the OS.
   */
  fsync?: FsyncPolicy
  /** For fsync 'interval'. Default: 1 000 ms. */
  fsyncIntervalMs?: number
}

export const SPOOL_DEFAULTS = Object.freeze({
  maxBytes: 1024 * 1024 * 1024,
  segmentBytes: 8 * 1024 * 1024,
  fsync: 'interval' as FsyncPolicy,
  fsyncIntervalMs: 1000
})

export type ResolvedSpoolOptions = Readonly<Required<SpoolOptions>>

const NAMES = ['dir', 'maxBytes', 'segmentBytes', 'fsync', 'fsyncIntervalMs']
const POLICIES: readonly FsyncPolicy[] = ['interval', 'batch', 'never']

/** Checks spool options (pure; throws ConfigError naming the field). */
export function resolveSpoolOptions (input: SpoolOptions): ResolvedSpoolOptions {
  if (typeof input !== 'object' || input === null) throw new ConfigError('spool', 'must be an object with a dir')
  checkKnownKeys(input, NAMES, 'spool.')
  if (typeof input.dir !== 'string' || input.dir.trim() === '') throw new ConfigError('spool.dir', 'is required: a directory for the spool')
  const segmentBytes = checkInt('spool.segmentBytes', input.segmentBytes ?? SPOOL_DEFAULTS.segmentBytes, [64 * 1024, 2 ** 31])
  const maxBytes = checkInt('spool.maxBytes', input.maxBytes ?? SPOOL_DEFAULTS.maxBytes, [2 * segmentBytes, Number.MAX_SAFE_INTEGER])
  const fsync = input.fsync ?? SPOOL_DEFAULTS.fsync
  if (!POLICIES.includes(fsync)) throw new ConfigError('spool.fsync', `must be one of ${POLICIES.join(', ')}, got ${JSON.stringify(fsync)}`)
  const fsyncIntervalMs = checkInt('spool.fsyncIntervalMs', input.fsyncIntervalMs ?? SPOOL_DEFAULTS.fsyncIntervalMs, [1, 2 ** 31 - 1])
  return Object.freeze({ dir: path.resolve(input.dir), maxBytes, segmentBytes, fsync, fsyncIntervalMs })
}
