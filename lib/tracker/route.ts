import { ACCOUNT_BATCH_PATH, PROFILE_BATCH_PATH } from '../shared/constants'
import type { RouteName } from './events'
import { RouteCounters } from './stats'

/** One of Koala's two batch endpoints and what its body is keyed by. */
export interface Route {
  readonly name: RouteName
  readonly path: string
  /** Body field for Captured.primary / .secondary. */
  readonly primaryField: 'profile_id' | 'domain'
  readonly secondaryField: 'email' | 'account_id'
  /** Emails match whatever their case; account_ids exactly (see identity.ts). */
  readonly caselessSecondary: boolean
  readonly counters: RouteCounters
}

export function createRoutes (projectPath: string): { profiles: Route, accounts: Route } {
  return {
    profiles: {
      name: 'profiles',
      path: projectPath + PROFILE_BATCH_PATH,
      primaryField: 'profile_id',
      secondaryField: 'email',
      caselessSecondary: true,
      counters: new RouteCounters()
    },
    accounts: {
      name: 'accounts',
      path: projectPath + ACCOUNT_BATCH_PATH,
      primaryField: 'domain',
      secondaryField: 'account_id',
      caselessSecondary: false,
      counters: new RouteCounters()
    }
  }
}
