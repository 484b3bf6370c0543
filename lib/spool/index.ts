// The spool part's surface: the tracker keeps accepted items here when `spool` is configured.
export { Spool, SPOOL_FULL, SPOOL_OFF } from './spool'
export type { SpoolHooks, SpoolProblem, SpoolStats } from './spool'
export { resolveSpoolOptions, SPOOL_DEFAULTS } from './options'
export { MAX_SPOOLED_ITEM_BYTES } from './format'
export type { FsyncPolicy, ResolvedSpoolOptions, SpoolOptions } from './options'
