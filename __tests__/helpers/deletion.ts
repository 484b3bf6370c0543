import { randomBytes } from 'node:crypto'
import { startCollector, type Collector, type CollectorOptions, type CollectorRequest, type Fault } from '../../lib/collector'
import { DeletionClient } from '../../lib/deletion/client'
import { createDeletionHttpTransport, type DeletionTransport } from '../../lib/deletion/http'
import type { DeletionClientOptions } from '../../lib/deletion/options'
import { driveClock } from './drive'
import { FakeClock } from './fake-clock'
import { memoryLogger } from './setup'

/** A fresh secret-looking key per test, long enough to search captured text for any piece of it. */
export const makeKey = (): string => `sk_live_${randomBytes(20).toString('hex')}`

export const emailsFor = (n: number, domain = 'example.com'): string[] => Array.from({ length: n }, (_, i) => `person${i}@${domain}`)

/** Collector faults for deletion requests, in order, then normal answers. */
export const deletionScript = (...faults: Array<Fault | undefined>) => (req: CollectorRequest) => req.route === 'deletion' ? faults.shift() : undefined

export interface DeletionHarness {
  key: string
  collector: Collector
  clock: FakeClock
  logger: ReturnType<typeof memoryLogger>
  client: DeletionClient
  /** Every request the collector saw, with headers and body. */
  seen: CollectorRequest[]
  make(extra?: Partial<DeletionClientOptions>): DeletionClient
  /** Runs the fake clock until `p` settles, never while a request is in flight. */
  drive<T>(p: Promise<T>): Promise<{ value: T, jumps: number[] }>
  done(): Promise<void>
}

/** A collector on 127.0.0.1, a fake clock, and a deletion client over the real undici transport, counting requests in flight. */
export async function deletionHarness (options: Partial<DeletionClientOptions> = {}, collectorOptions: CollectorOptions = {}): Promise<DeletionHarness> {
  const key = makeKey()
  const collector = await startCollector({ ...collectorOptions, deletion: { secretKey: key, ...collectorOptions.deletion } })
  const seen: CollectorRequest[] = []
  collector.on('request', req => seen.push(req))
  const clock = new FakeClock()
  const logger = memoryLogger()
  let inFlight = 0
  const transports: DeletionTransport[] = []
  const make = (extra: Partial<DeletionClientOptions> = {}): DeletionClient => {
    const inner = createDeletionHttpTransport({ origin: collector.url, requestTimeoutMs: 30_000 })
    transports.push(inner)
    return new DeletionClient({
      secretKey: key,
      baseUrl: collector.url,
      clock,
      logger,
      random: () => 0.5,
      transport: {
        async request (req) {
          inFlight++
          try {
            return await inner.request(req)
          } finally {
            inFlight--
          }
        },
        close: async () => await inner.close()
      },
      ...options,
      ...extra
    })
  }
  return {
    key,
    collector,
    clock,
    logger,
    client: make(),
    seen,
    make,
    drive: async (p) => await driveClock(clock, p, () => inFlight > 0),
    async done () {
      await collector.close()
      for (const t of transports) await t.close()
    }
  }
}
