// One process of the fleet benchmark (fleet.mjs), forked with an IPC channel: it sends {type: 'done', ...}
// (a consumer first sends {type: 'ready'} once connected, and takes {produced} from the parent).
//   node fleet-producer.mjs '<config JSON>'
// config.role: 'memory' (the tracker, no redis), 'producer' (redis, consume: false) or 'consumer' (consume: true)
// config.scenario: S1–S3 (scenarios.mjs), or config.shared: { ids, perPerson, offset } (tracks, seq from offset)
// The build measured is KOALA_DIST (load-build.mjs). Times are epoch ms, so processes can be compared.
import { performance } from 'node:perf_hooks'
import { call, plan, trackCall } from './scenarios.mjs'
import { loadBuild } from './load-build.mjs'

const config = JSON.parse(process.argv[2])
const build = loadBuild()
const { createTracker } = build.tracker()
// Loaded before the clock, as producer.mjs does: loading is a cost per process, not per item.
for (const m of ['undici', 'lru-cache', ...(config.role === 'memory' ? [] : ['ioredis'])]) build.require(m)

const now = () => performance.timeOrigin + performance.now()
const tick = () => new Promise((resolve) => setImmediate(resolve))
const cpuMicros = ({ user, system }) => user + system
const YIELD_EVERY = 1_000
const quiet = { debug () {}, warn: (o, m) => process.stderr.write(`warn: ${m}\n`), error: (o, m) => process.stderr.write(`error: ${m}\n`) }

/** Polls `done()` every 5 ms. */
const until = (done, timeoutMs = 600_000) => new Promise((resolve, reject) => {
  const t0 = Date.now()
  const timer = setInterval(() => {
    if (done()) { clearInterval(timer); resolve() } else if (Date.now() - t0 > timeoutMs) { clearInterval(timer); reject(new Error(`${config.role}: timed out`)) }
  }, 5)
})

const redis = config.role === 'memory' ? undefined : { url: config.redis, stream: config.stream, consume: config.role === 'consumer' }
const tracker = createTracker({ publicKey: 'pk_bench', baseUrl: `http://127.0.0.1:${config.port}`, logger: quiet, ...(redis && { redis }) })
// Calls made before the connection is up are delivered by the process itself (stats().redis.local).
if (redis !== undefined) await until(() => tracker.stats().redis.connected, 10_000)

let startAt, cpu0
if (config.role === 'consumer') {
  let target = config.expected
  // What the producers added, once they are done (less than expected if some calls were delivered locally).
  process.on('message', (m) => { target = m.produced })
  process.send({ type: 'ready' })
  startAt = now()
  cpu0 = process.cpuUsage()
  await until(() => tracker.stats().redis.consumed >= target)
} else {
  const p = config.scenario === undefined ? undefined : plan(config.scenario)
  const { ids, perPerson, offset } = config.shared ?? {}
  const calls = p?.calls ?? ids.length * perPerson
  startAt = now()
  cpu0 = process.cpuUsage()
  for (let start = 0; start < calls; start += YIELD_EVERY) {
    const end = Math.min(start + YIELD_EVERY, calls)
    if (p !== undefined) for (let i = start; i < end; i++) call(tracker, p, i)
    else for (let i = start; i < end; i++) tracker.track(trackCall(ids[i % ids.length], offset + i))
    await tick()
  }
}
const closed = await tracker.close({ timeoutMs: 300_000 })
const endAt = now()
const cpu = cpuMicros(process.cpuUsage(cpu0))
const s = tracker.stats()
process.send({ type: 'done', role: config.role, startAt, endAt, cpuMicros: cpu, accepted: s.accepted, dropped: s.dropped, failed: s.failed, sent: s.sent, requests: s.requests.sent, closed, redis: s.redis },
  () => process.disconnect())
