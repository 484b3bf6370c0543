// One delivery measurement in a fresh process (see delivery.mjs). Prints one JSON line.
//   node delivery-producer.mjs '<config JSON>'
// config: { dist, port, people, perPerson, capMs, settleMs, options }
// `people × perPerson` tracks (item i is person i % people's, with seq i), 1,000 calls per
// turn of the event loop, then flush(): the time until every item is delivered, or capMs.
// The sink decides what goes wrong (faults, an outage, a delay); this process only watches.
import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { loadBuild } from './load-build.mjs'
import { uuids } from './util.mjs'

const config = JSON.parse(process.argv[2])
const { people, perPerson, capMs, settleMs } = config
const items = people * perPerson
const now = () => performance.timeOrigin + performance.now()
const turn = () => new Promise((resolve) => setImmediate(resolve))

const build = loadBuild(config.dist)
const { createTracker } = build.tracker()
// Loaded by the first send otherwise: a start-up cost, not delivery's.
build.require('undici')
build.require('lru-cache')
const ids = uuids(people, randomUUID)

// Warnings about failing requests are expected here; errors too, and counted by stats().
const quiet = { debug () {}, warn () {}, error () {} }
const cpu0 = process.cpuUsage()
const t0 = now()
const tracker = createTracker({ publicKey: 'pk_bench', baseUrl: `http://127.0.0.1:${config.port}`, logger: quiet, ...config.options })

// Delivery as the tracker reports it: items, and attempts per delivered batch.
const at = {}
let delivered = 0
let batches = 0
let attempts = 0
let maxAttempts = 0
let firstSentAt
let allAt
let allDelivered
const done = new Promise((resolve) => { allDelivered = resolve })
// The issue's own measure: how much of the work is delivered within 8 s of the first call.
const WINDOW_MS = 8_000
let deliveredInWindow = 0
tracker.on('sent', (e) => {
  firstSentAt ??= now()
  delivered += e.items
  batches++
  attempts += e.attempts
  maxAttempts = Math.max(maxAttempts, e.attempts)
  for (const share of [0.5, 0.9]) if (at[share] === undefined && delivered >= share * items) at[share] = now() - t0
  if (now() - t0 <= WINDOW_MS) deliveredInWindow = delivered
  if (delivered === items) {
    allAt = now()
    allDelivered()
  }
})

// Sampled rather than counted on every event, the same way for every build.
let peakInFlight = 0
let peakConcurrency
const sampler = setInterval(() => {
  const s = tracker.stats()
  peakInFlight = Math.max(peakInFlight, s.inFlightRequests)
  if (s.concurrency !== undefined) peakConcurrency = Math.max(peakConcurrency ?? 0, s.concurrency)
}, 5)

for (let start = 0; start < items; start += 1_000) {
  for (let i = start; i < Math.min(start + 1_000, items); i++) {
    tracker.track({ profile_id: ids[i % people], event: 'Viewed Pricing', properties: { plan: 'pro', seats: 12, trial: true, seq: i } })
  }
  await turn()
}
void tracker.flush({ timeoutMs: capMs })
let cap
await Promise.race([done, new Promise((resolve) => { cap = setTimeout(resolve, Math.max(0, capMs - (now() - t0))) })])
clearTimeout(cap)
const wallMs = (allAt ?? now()) - t0
const cpu = process.cpuUsage(cpu0)
clearInterval(sampler)
const s = tracker.stats()
const measured = { deliveredAtEnd: s.sent, requestsAtEnd: s.requests.sent, capped: s.sent < items }
// Past the cap, what is left may still be delivered: wait for it, so that loss and duplicates are
// judged on the whole run (the rate was measured above).
const closed = await tracker.close({ timeoutMs: settleMs })
const end = tracker.stats()
process.stdout.write(JSON.stringify({
  items,
  wallMs,
  startedAt: t0,
  firstSentAt,
  allDeliveredAt: allAt,
  at50Ms: at[0.5],
  at90Ms: at[0.9],
  deliveredInWindow,
  windowMs: WINDOW_MS,
  cpuMicros: cpu.user + cpu.system,
  ...measured,
  batches,
  attemptsPerBatch: attempts / batches,
  maxAttempts,
  peakInFlight,
  peakConcurrency,
  sent: end.sent,
  failed: end.failed,
  failedBy: end.failedBy,
  dropped: end.dropped,
  requests: end.requests,
  closed
}) + '\n')
