import type { FailureReason, RefusalReason } from '../shared/errors'
import type { FleetStats } from '../fleet'
import type { SpoolStats } from '../spool'

/** Why a call was refused before it was accepted. */
export type DropReason = 'invalid' | RefusalReason | 'error'

export interface RouteStats {
  /** Calls accepted into the buffer. accepted = sent + failed + bufferedItems. */
  accepted: number
  /** Items Koala answered 2xx for. */
  sent: number
  /** Accepted items that will never be delivered (sum of failedBy). */
  failed: number
  failedBy: Record<FailureReason, number>
  /** Calls refused at the door (sum of droppedBy). */
  dropped: number
  droppedBy: Record<DropReason, number>
  /** Accepted items not yet sent or failed: in buckets, waiting, or in flight. */
  bufferedItems: number
  /** Buckets currently open. */
  buckets: number
}

export interface TrackerStats extends RouteStats {
  bufferedBytes: number
  requests: {
    /** Attempts started. */
    sent: number
    /** Attempts answered 2xx. */
    succeeded: number
    /** Attempts that failed and were scheduled again. */
    retried: number
    /** Attempts that ended a batch without delivery. */
    failed: number
  }
  inFlightRequests: number
  /** Requests allowed in flight now: the adaptive limit, less one per failure in a row. */
  concurrency: number
  /** Batches sealed and waiting for a free slot or for their retry time (or, within the current tick, for their body to be built). */
  waitingBatches: number
  /** Until when sending is paused (429, Retry-After or backoff), epoch ms; 0 when not paused. */
  pausedUntil: number
  state: 'open' | 'closing' | 'closed' | 'disabled'
  /** The local spool, when one is configured (see docs/durability.md). */
  spool: SpoolStats | undefined
  /** Fleet mode, when configured (see docs/durability.md). */
  redis: FleetStats | undefined
  profiles: RouteStats
  accounts: RouteStats
}

export class RouteCounters {
  accepted = 0
  sent = 0
  bufferedItems = 0
  readonly failedBy: Record<FailureReason, number> = { rejected: 0, retry_exhausted: 0, disabled: 0, shutdown: 0, unknown: 0 }
  readonly droppedBy: Record<DropReason, number> = { invalid: 0, queue_full: 0, spool_full: 0, closed: 0, disabled: 0, unconfigured: 0, error: 0 }

  snapshot (buckets: number): RouteStats {
    return {
      accepted: this.accepted,
      sent: this.sent,
      failed: sum(this.failedBy),
      failedBy: { ...this.failedBy },
      dropped: sum(this.droppedBy),
      droppedBy: { ...this.droppedBy },
      bufferedItems: this.bufferedItems,
      buckets
    }
  }
}

export class RequestCounters {
  sent = 0
  succeeded = 0
  retried = 0
  failed = 0
}

function sum (record: Record<string, number>): number {
  let n = 0
  for (const k in record) n += record[k]
  return n
}

/** Adds per-route snapshots into totals. */
export function addRoutes (a: RouteStats, b: RouteStats): RouteStats {
  const add = <K extends string>(x: Record<K, number>, y: Record<K, number>): Record<K, number> => {
    const out = { ...x }
    for (const k in y) out[k] += y[k]
    return out
  }
  return {
    accepted: a.accepted + b.accepted,
    sent: a.sent + b.sent,
    failed: a.failed + b.failed,
    failedBy: add(a.failedBy, b.failedBy),
    dropped: a.dropped + b.dropped,
    droppedBy: add(a.droppedBy, b.droppedBy),
    bufferedItems: a.bufferedItems + b.bufferedItems,
    buckets: a.buckets + b.buckets
  }
}
