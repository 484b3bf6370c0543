import { Buffer } from 'node:buffer'
import type { Captured, ListIndex } from './capture'
import type { Route } from './route'

/**
 * An item as the spool keeps it: a JSON header (route, array, bucket key or
 * null when it is the primary, primary, secondary), a newline, then the item's
 * JSON exactly as it will be sent, message_id included. Item JSON never holds
 * a raw newline. The two parts stay apart until they are written: no joined copy.
 */
export function recordOf (route: Route, c: Captured): { head: string, body: string, bytes: number } {
  const key = c.key === c.primary ? 'null' : JSON.stringify(c.key)
  const head = `["${route.name}",${c.list},${key},${str(c.primary)},${str(c.secondary)}]\n`
  // The item's bytes are known: only the short header is measured.
  return { head, body: c.json, bytes: Buffer.byteLength(head) + c.bytes }
}

const str = (s: string | undefined): string => s === undefined ? 'null' : JSON.stringify(s)

/** The item a record holds, for the route it names. Throws on a record it cannot read. */
export function capturedOf (payload: string, routes: { profiles: Route, accounts: Route }): { route: Route, c: Captured } {
  const newline = payload.indexOf('\n')
  const head = JSON.parse(payload.slice(0, newline)) as unknown
  if (newline < 0 || !Array.isArray(head) || head.length !== 5) throw new Error('not a spooled item')
  const [routeName, list, key, primary, secondary] = head as [unknown, unknown, unknown, unknown, unknown]
  const route = routeName === 'profiles' ? routes.profiles : routeName === 'accounts' ? routes.accounts : undefined
  const bucketKey = key ?? primary
  if (route === undefined || (list !== 0 && list !== 1 && list !== 2) || typeof bucketKey !== 'string' || !optionalString(primary) || !optionalString(secondary)) {
    throw new Error('not a spooled item')
  }
  const json = payload.slice(newline + 1)
  return {
    route,
    c: { key: bucketKey, primary: primary ?? undefined, secondary: secondary ?? undefined, list: list as ListIndex, json, bytes: Buffer.byteLength(json), loc: -1 }
  }
}

function optionalString (v: unknown): v is string | null {
  return v === null || typeof v === 'string'
}
