// The fleet part's surface: the tracker shares its items through a Redis stream when `redis` is configured.
export { Fleet } from './fleet'
export type { FleetHooks, FleetStats } from './fleet'
export { FLEET_DEFAULTS, resolveFleetOptions } from './options'
export type { FleetOptions, ResolvedFleetOptions } from './options'
