// One steady-load or backlog measurement in a fresh process (see steady.mjs). Prints one JSON line.
//   node --expose-gc steady-producer.mjs '<config JSON>'
// config: { mode: 'steady' | 'backlog', sdk: 'tracker' | 'posthog' | 'loop', port, dist, rate, people, seconds, items, spoolDir }
// spoolDir (spool.mjs): the tracker gets `spool: { dir: spoolDir }`, every other spool option its default.
// redis, stream (fleet.mjs): the tracker gets `redis: { url: redis, stream }`: it produces and consumes.
// 'loop' is the pacing loop alone, building the same call arguments but calling nothing:
// the event-loop delay the producer has without any SDK.
import { randomUUID } from 'node:crypto'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { loadBuild } from './load-build.mjs'
import { spoolUnderTest, uuids } from './util.mjs'

const config = JSON.parse(process.argv[2])
const baseUrl = `http://127.0.0.1:${config.port}`
/** Turns of the pacing loop this late are listed, with when they happened. */
const STALL_MS = 20
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const ms = (ns) => ns / 1e6
const delays = (h) => ({ p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max), mean: ms(h.mean), samples: h.count })

/** The same track in each SDK's shape; `close` sends what is left and returns the SDK's own counts. */
async function client (sdk, trackerOptions = {}) {
  if (sdk === 'tracker') {
    const spool = await spoolUnderTest(config.spoolDir)
    const build = loadBuild(config.dist)
    const { createTracker } = build.tracker()
    // Loaded by the first send otherwise (~50 ms once per process): a start-up cost, not the steady state's.
    build.require('undici')
    build.require('lru-cache')
    // redis (fleet.mjs): this process is producer and consumer of the stream, as every app process is by default.
    const fleet = config.redis && { redis: { url: config.redis, stream: config.stream } }
    const t = createTracker({ publicKey: 'pk_bench', baseUrl, ...(spool.options && { spool: spool.options }), ...fleet, ...trackerOptions })
    return {
      tracker: t,
      track: (id, seq) => t.track({ profile_id: id, event: 'Viewed Pricing', properties: { plan: 'pro', seats: 12, trial: true, seq } }),
      close: async () => {
        const closed = await t.close({ timeoutMs: 300_000 })
        const s = t.stats()
        return {
          accepted: s.accepted, refused: s.dropped, queueFull: s.droppedBy.queue_full, sent: s.sent, failed: s.failed, requests: s.requests.sent, closed,
          spool: spool.options && { ...s.spool, ...spool.written },
          redis: s.redis
        }
      }
    }
  }
  if (sdk === 'posthog') {
    const require = createRequire(join(dirname(fileURLToPath(import.meta.url)), '.peers', 'package.json'))
    const { PostHog } = require('posthog-node')
    // Compression off so that the sink can count the items, as in peer-producer.mjs; every other option its default.
    const p = new PostHog('phc_bench', { host: baseUrl, disableCompression: true })
    return {
      track: (id, seq) => p.capture({ distinctId: id, event: 'Viewed Pricing', properties: { plan: 'pro', seats: 12, trial: true, seq } }),
      close: async () => { await p.shutdown(300_000); return {} }
    }
  }
  // Kept in a variable that outlives the call, so that building the argument is not optimised away.
  let last
  return {
    track: (id, seq) => { last = { profile_id: id, event: 'Viewed Pricing', properties: { plan: 'pro', seats: 12, trial: true, seq } } },
    close: async () => ({ lastSeq: last?.properties.seq })
  }
}

/**
 * Every ~1 ms, the calls due by now (rate × elapsed), round-robin over the people:
 * a smooth rate that catches up after a blocked turn, as requests queued behind it would.
 */
async function steady () {
  const { sdk, rate, people, seconds } = config
  const ids = uuids(people, randomUUID)
  const total = Math.round(rate * seconds)
  const c = await client(sdk)
  globalThis.gc()
  await sleep(50)
  const h = monitorEventLoopDelay({ resolution: 1 })
  const stalls = []
  let stallCount = 0
  const cpu0 = process.cpuUsage()
  h.enable()
  const t0 = performance.now()
  let last = t0
  let next = 0
  await new Promise((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now()
      if (now - last > STALL_MS && stallCount++ < 100) stalls.push({ atS: +((last - t0) / 1000).toFixed(2), ms: Math.round(now - last) })
      last = now
      const due = Math.min(total, Math.floor((now - t0) * rate / 1000))
      while (next < due) { c.track(ids[next % people], next); next++ }
      if (next >= total) { clearInterval(timer); resolve() }
    }, 1)
  })
  h.disable()
  const loopMs = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  const c0 = performance.now()
  const counts = await c.close()
  // With close(), which sends what the flush timer had not yet: the CPU of every item, not only the calls'.
  const cpuAll = process.cpuUsage(cpu0)
  out({
    calls: total, loopMs, eventLoopDelayMs: delays(h), stalls, stallCount, cpuPerCallUs: (cpu.user + cpu.system) / total,
    cpuWithCloseMicros: cpuAll.user + cpuAll.system, closeMs: performance.now() - c0, ...counts
  })
}

/**
 * 200k items over 10k people held (a flush interval that never fires, and fewer than
 * flushAt items per person), then one flush(): the longest turn the event loop is
 * blocked for until flush() resolves. Filling is not measured.
 */
async function backlog () {
  const { items, people } = config
  const ids = uuids(people, randomUUID)
  const c = await client('tracker', { flushIntervalMs: 600_000 })
  for (let start = 0; start < items; start += 1_000) {
    for (let i = start; i < Math.min(start + 1_000, items); i++) c.track(ids[i % people], i)
    await new Promise((resolve) => setImmediate(resolve))
  }
  const before = c.tracker.stats()
  globalThis.gc()
  await sleep(50)
  const h = monitorEventLoopDelay({ resolution: 1 })
  // A second probe: gaps between timer turns, with the time of the longest (from the flush() call).
  let longest = { ms: 0, atMs: 0 }
  let blocked = 0
  let last = performance.now()
  let f0
  const probe = setInterval(() => {
    const now = performance.now()
    // Gaps that end before flush() is called (the sleep before it) are not its own.
    if (f0 !== undefined) {
      if (now - last > longest.ms) longest = { ms: now - last, atMs: last - f0 }
      if (now - last > STALL_MS) blocked++
    }
    last = now
  }, 1)
  h.enable()
  // The histogram records a turn only between two of its own samples: it must be running before the call.
  await sleep(20)
  f0 = performance.now()
  const pending = c.tracker.flush({ timeoutMs: 300_000 })
  // The synchronous part of flush() alone: a turn of its own.
  const flushCallMs = performance.now() - f0
  const flushed = await pending
  const flushMs = performance.now() - f0
  h.disable()
  clearInterval(probe)
  const counts = await c.close()
  out({ calls: items, buffered: before.bufferedItems, buckets: before.buckets, flushCallMs, flushMs, flushed, eventLoopDelayMs: delays(h), longestGap: longest, turnsOver20ms: blocked, ...counts })
}

const out = (r) => process.stdout.write(JSON.stringify({ ...config, ...r }) + '\n')
await (config.mode === 'backlog' ? backlog() : steady())
