// One peer-SDK measurement in a fresh process (see peers.mjs). Prints one JSON line.
//   node --expose-gc peer-producer.mjs <segment|posthog> <scenario> <port> <run|heap>
// Same calls, same sink, same yielding producer as producer.mjs; each SDK with
// its default options except where it has to be pointed at the sink.
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { sameStart } from './bodies.mjs'
import { plan, TRACK } from './scenarios.mjs'

const [sdk, scenario, port, kind] = process.argv.slice(2)
const require = createRequire(join(dirname(fileURLToPath(import.meta.url)), '.peers', 'package.json'))
const baseUrl = `http://127.0.0.1:${port}`
const tick = () => new Promise((resolve) => setImmediate(resolve))
const out = (r) => process.stdout.write(JSON.stringify({ sdk, scenario, kind, ...r, maxRssBytes: process.resourceUsage().maxRSS * 1024 }) + '\n')

/** The same track as the tracker's (4 properties, a UUID per person), in each SDK's shape. */
function client (buffered = false) {
  if (sdk === 'segment') {
    const { Analytics } = require('@segment/analytics-node')
    const a = new Analytics({ writeKey: 'wk_bench', host: baseUrl, ...(buffered ? { flushInterval: 2 ** 31 - 1, maxEventsInBatch: 2 ** 30 } : {}) })
    return {
      track: (id, seq) => a.track({ userId: id, event: 'Viewed Pricing', properties: { plan: 'pro', seats: 12, trial: true, seq } }),
      close: () => a.closeAndFlush({ timeout: 300_000 })
    }
  }
  const { PostHog } = require('posthog-node')
  // Compression off so that the sink can count the items (it costs PostHog CPU when on).
  const p = new PostHog('phc_bench', {
    host: baseUrl,
    disableCompression: true,
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
  sameStart(p)
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

/** Heap held per buffered event: as producer.mjs, with batching pushed out of reach. */
async function heap () {
  const n = 20_000
  const p = plan(scenario, n)
  global.gc(); global.gc()
  const h0 = process.memoryUsage().heapUsed
  const c = client(true)
  for (let i = 0; i < n; i++) c.track(p.ids[p.person[i]], i)
  global.gc(); global.gc()
  out({ items: n, bytesPerItem: (process.memoryUsage().heapUsed - h0) / n, held: typeof c })
  process.exit(0)
}

await (kind === 'heap' ? heap() : run())
