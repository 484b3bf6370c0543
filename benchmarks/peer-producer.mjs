// One peer-SDK measurement in a fresh process (see peers.mjs). Prints one JSON line.
//   node --expose-gc peer-producer.mjs <segment|posthog> <scenario> <port> <run|heap> [options JSON]
// Same calls, same sink, same yielding producer as producer.mjs; each SDK with
// its default options except where it has to be pointed at the sink (and
// PostHog's compression, off so that the sink can count its items), plus the
// options given (peers.mjs runs PostHog a second time with a queue that holds every call).
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { closedPort, heapPerItem, peakRssBytes, sameStart } from './heap.mjs'
import { plan, TRACK } from './scenarios.mjs'

const [sdk, scenario, port, kind, extra = '{}'] = process.argv.slice(2)
const options = JSON.parse(extra)
const require = createRequire(join(dirname(fileURLToPath(import.meta.url)), '.peers', 'package.json'))
let baseUrl = `http://127.0.0.1:${port}`
const tick = () => new Promise((resolve) => setImmediate(resolve))
const out = (r) => process.stdout.write(JSON.stringify({ sdk, scenario, kind, ...r, maxRssBytes: peakRssBytes() }) + '\n')

/** The SDK's module, loaded before any clock starts, as producer.mjs loads the tracker's. */
const loadSdk = () => sdk === 'segment' ? require('@segment/analytics-node') : require('posthog-node')

/** The same track as the tracker's (4 properties, a UUID per person), in each SDK's shape. */
function client (buffered = false) {
  if (sdk === 'segment') {
    const { Analytics } = loadSdk()
    const a = new Analytics({ writeKey: 'wk_bench', host: baseUrl, ...options, ...(buffered ? { flushInterval: 2 ** 31 - 1, maxEventsInBatch: 2 ** 30 } : {}) })
    return {
      track: (id, seq) => a.track({ userId: id, event: 'Viewed Pricing', properties: { plan: 'pro', seats: 12, trial: true, seq } }),
      close: () => a.closeAndFlush({ timeout: 300_000 })
    }
  }
  const { PostHog } = loadSdk()
  // Compression off so that the sink can count the items (it costs PostHog CPU when on).
  const p = new PostHog('phc_bench', {
    host: baseUrl,
    disableCompression: true,
    ...options,
    ...(buffered ? { flushAt: 2 ** 30, flushInterval: 2 ** 31 - 1, maxQueueSize: 2 ** 30 } : {})
  })
  return {
    track: (id, seq) => p.capture({ distinctId: id, event: 'Viewed Pricing', properties: { plan: 'pro', seats: 12, trial: true, seq } }),
    close: () => p.shutdown(300_000)
  }
}

async function run () {
  const p = plan(scenario)
  if (p.kind.some((k) => k !== TRACK)) throw new Error('peers are measured on track-only scenarios')
  loadSdk()
  sameStart(p, { keep: false })
  const t0 = process.hrtime.bigint()
  const cpu0 = process.cpuUsage()
  const c = client()
  let callNs = 0n
  for (let start = 0; start < p.calls; start += 1_000) {
    const end = Math.min(start + 1_000, p.calls)
    const c0 = process.hrtime.bigint()
    for (let i = start; i < end; i++) c.track(p.ids[p.person[i]], i)
    callNs += process.hrtime.bigint() - c0
    await tick()
  }
  await c.close()
  const cpu = process.cpuUsage(cpu0)
  out({ calls: p.calls, callNs: Number(callNs) / p.calls, wallMs: Number(process.hrtime.bigint() - t0) / 1e6, cpuMicros: cpu.user + cpu.system })
}

/**
 * Heap held per buffered event, exactly as producer.mjs measures the tracker's
 * (benchmarks/heap.mjs: the client made and warmed up before the baseline, the
 * heap read once the GC has settled), with batching pushed out of reach and an
 * endpoint that refuses connections: Segment cuts a batch at 500 KB whatever
 * maxEventsInBatch says, and what it cannot send it holds to retry, as the
 * tracker does. Settling also lets PostHog move its events from pending
 * promises into its queue. 20,000 items rather than 100,000: at several KB
 * each, the peers' heaps would otherwise be the machine's memory.
 */
async function heap () {
  const n = 20_000
  const p = plan(scenario, n + 1)
  baseUrl = `http://127.0.0.1:${await closedPort()}`
  const r = await heapPerItem(n, () => client(true), (c, i) => c.track(p.ids[p.person[i]], i))
  out({ items: n, bytesPerItem: r.bytesPerItem, held: typeof r.client })
  process.exit(0)
}

await (kind === 'heap' ? heap() : run())
