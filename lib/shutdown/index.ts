// Entry point `koala-tracker/shutdown`: graceful shutdown of HTTP servers and trackers.
export * from './shutdown'
export type { DrainableServer, DrainResult } from './drain'
