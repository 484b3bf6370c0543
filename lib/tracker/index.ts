// The tracker part's surface: what the package entry and the other parts (singleton, express, shutdown) use.
export { createTracker, Tracker } from './tracker'
export type { CloseResult, DeadlineOptions, FlushResult } from './tracker'
export { DEFAULTS } from './options'
export type { TrackerOptions } from './options'
export { isPlainObject } from './capture'
export type {
  AccountFields, AccountIdentifyCall, AccountTrackCall, IdentifyCall, JsonObject, PageCall, PersonFields, TrackCall
} from './capture'
export { addRoutes, RequestCounters, RouteCounters } from './stats'
export type { TrackerStats, RouteStats, DropReason } from './stats'
export type { TrackerEvents, EventName, Listener, RouteName } from './events'
export { normalizeDomain } from './identity'
