export { createTracker, Tracker } from './tracker'
export type { CloseResult, DeadlineOptions, FlushResult } from './tracker'
export { DEFAULTS } from './options'
export type { TrackerOptions } from './options'
export type {
  AccountFields, AccountIdentifyCall, AccountTrackCall, IdentifyCall, JsonObject, PageCall, PersonFields, TrackCall
} from './capture'
export type { TrackerStats, RouteStats, DropReason } from './stats'
export type { TrackerEvents, EventName, RouteName } from './events'
export {
  KoalaError, ConfigError, InputError, RefusedError, DeliveryError, IngestDisabledError, isKoalaError
} from './errors'
export type { KoalaErrorCode, FailureReason, RefusalReason, CallName } from './errors'
export type { Clock, TimerHandle } from './clock'
export { systemClock } from './clock'
export type { Transport, TransportRequest, TransportResponse } from './transport'
export type { LoggerLike } from './logger'
export { normalizeDomain } from './identity'
export { VERSION } from './version'
