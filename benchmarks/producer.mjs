// One measurement in a fresh process. Prints one JSON line on stdout.
//   node --expose-gc producer.mjs <mode> <scenario> <port> [tight]
// mode: tracker (the tracker with default options), pool (raw undici Pool,
// pre-built bodies: the floor), heap (heap held per buffered item), soak (soak.mjs).
// The build measured is KOALA_DIST (a dist directory; default this repository's),
// loaded through its package.json as an installed package would be (load-build.mjs).
// BENCH_SPOOL_DIR (spool.mjs): the tracker gets `spool: { dir }` there, every other spool option its default.
import crypto from 'node:crypto'
import { closeSync, openSync, readSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { PerformanceObserver, performance } from 'node:perf_hooks'
import { SCENARIOS, call, itemJson, plan } from './scenarios.mjs'
import { closedPort, heapPerItem, peakRssBytes, sameStart } from './heap.mjs'
import { loadBuild } from './load-build.mjs'
import { spoolUnderTest } from './util.mjs'

const [mode, scenario, port, loop = 'yield'] = process.argv.slice(2)
const baseUrl = `http://127.0.0.1:${port}`
const publicKey = 'pk_bench'
/** As a server yields between requests. */
const YIELD_EVERY = 1_000
const build = loadBuild()
const { DEFAULTS, VERSION, createTracker } = build.tracker()
const require = build.require
/**
 * The floor's connections. Not DEFAULTS.maxConcurrentRequests: that is now the ceiling of an adaptive
 * limit that starts at 10 (on loopback it climbs to 30-130 in a burst), not the connections in use.
 */
const FLOOR_CONNECTIONS = Number(process.env.FLOOR_CONNECTIONS ?? 10)

const tick = () => new Promise((resolve) => setImmediate(resolve))
// The peak RSS since sameStart() (see there), or over the process's life where nothing reset it.
const out = (r) => process.stdout.write(JSON.stringify({ mode, scenario, loop, ...r, maxRssBytes: peakRssBytes() }) + '\n')
/** Minor page faults so far: memory the process touches for the first time (see sameStart). */
const faults = () => process.resourceUsage().minorPageFault
const cpuMicros = (c) => c.user + c.system

/**
 * The nanoseconds this thread has spent runnable but waiting for a core (Linux's schedstat
 * run_delay, exact at each switch), or always 0 where there is none. Within the calls, that
 * is time taken by the sink, the kernel or V8's helper threads on the two cores, not by the calls.
 */
function waitClock () {
  let fd
  try {
    fd = openSync(`/proc/self/task/${process.pid}/schedstat`, 'r')
  } catch {
    return Object.assign(() => 0, { close () {} })
  }
  const buf = Buffer.alloc(128)
  const read = () => Number(buf.toString('latin1', 0, readSync(fd, buf, 0, buf.length, 0)).split(' ')[1])
  return Object.assign(read, { close: () => closeSync(fd) })
}

/** The main thread's GC pauses, as [start, end] in performance.now() time. */
function gcPauses () {
  const pauses = []
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) pauses.push([e.startTime, e.startTime + e.duration])
  })
  observer.observe({ entryTypes: ['gc'] })
  return { pauses, stop: () => observer.disconnect() }
}

/** Milliseconds of the pauses that fall within the windows (both lists of [start, end]). */
function overlapMs (windows, pauses) {
  let ms = 0
  for (const [a, b] of pauses) {
    for (const [c, d] of windows) ms += Math.max(0, Math.min(b, d) - Math.max(a, c))
  }
  return ms
}

/**
 * PROFILE_TO=file (benchmarks/profile.mjs): a CPU profile of the measured span
 * only, from the clock's start to close(), without the setup before it.
 */
async function profiler () {
  const file = process.env.PROFILE_TO
  if (file === undefined) return async () => {}
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: 200 })
  await session.post('Profiler.start')
  return async () => {
    const { profile } = await session.post('Profiler.stop')
    writeFileSync(file, JSON.stringify(profile))
    session.disconnect()
  }
}

async function runTracker () {
  const p = plan(scenario)
  // BENCH_OPTS (JSON) is for exploring other settings by hand; `npm run bench` never sets it.
  const spool = await spoolUnderTest(process.env.BENCH_SPOOL_DIR)
  const opts = { publicKey, baseUrl, ...(spool.options && { spool: spool.options }), ...JSON.parse(process.env.BENCH_OPTS ?? '{}') }
  if (loop === 'tight') {
    // A tight loop never lets a request out until it ends: give it room for every call.
    opts.maxBufferedItems = Math.max(DEFAULTS.maxBufferedItems, p.calls)
  }
  // Modules the tracker loads lazily are loaded here first, as the floor loads undici before
  // its clock starts: loading is a cost per process, measured by the cold start, not per item.
  require('undici')
  require('lru-cache')
  sameStart(p, { keep: false })
  const stopProfile = await profiler()
  const f0 = faults()
  const t0 = process.hrtime.bigint()
  const cpu0 = process.cpuUsage()
  const tracker = createTracker(opts)
  // Where the calls' time goes besides the calls: waiting for a core, and GC pauses.
  const waited = waitClock()
  const gc = gcPauses()
  const windows = []
  let callNs = 0n
  let callWaitNs = 0
  let peakBuffered = 0
  let peakInFlight = 0
  let peakSpoolBytes = 0
  for (let start = 0; start < p.calls; start += YIELD_EVERY) {
    const end = Math.min(start + YIELD_EVERY, p.calls)
    const w0 = waited()
    const p0 = performance.now()
    const c0 = process.hrtime.bigint()
    for (let i = start; i < end; i++) call(tracker, p, i)
    callNs += process.hrtime.bigint() - c0
    windows.push([p0, performance.now()])
    callWaitNs += waited() - w0
    if (loop === 'yield') {
      // Sampled once per 1,000 calls: how far the adaptive limit went, roughly.
      const s = tracker.stats()
      peakBuffered = Math.max(peakBuffered, s.bufferedItems)
      peakInFlight = Math.max(peakInFlight, s.inFlightRequests)
      peakSpoolBytes = Math.max(peakSpoolBytes, s.spool?.bytes ?? 0)
      await tick()
    }
  }
  const callsDoneNs = process.hrtime.bigint() - t0
  waited.close()
  // What left while the calls were made: the rest waits for the sink after them.
  const sentDuringCalls = tracker.stats().sent
  const closed = await tracker.close({ timeoutMs: 300_000 })
  const wallNs = process.hrtime.bigint() - t0
  const used = process.cpuUsage(cpu0)
  await stopProfile()
  const pageFaults = faults() - f0
  await tick() // the last GC entries are delivered on a later turn
  gc.stop()
  const cpu = cpuMicros(used)
  const cpuSys = used.system
  const s = tracker.stats()
  out({
    calls: p.calls,
    callNs: Number(callNs) / p.calls,
    callWaitNs: callWaitNs / p.calls,
    callGcNs: overlapMs(windows, gc.pauses) * 1e6 / p.calls,
    callsDoneMs: Number(callsDoneNs) / 1e6,
    sentDuringCalls,
    wallMs: Number(wallNs) / 1e6,
    cpuMicros: cpu,
    cpuSystemMicros: cpuSys,
    delivered: s.sent,
    accepted: s.accepted,
    dropped: s.dropped,
    failed: s.failed,
    requests: s.requests.sent,
    retried: s.requests.retried,
    peakBuffered,
    peakInFlight: loop === 'yield' ? peakInFlight : undefined,
    closed,
    pageFaults,
    spool: spool.options && { ...s.spool, ...spool.written, peakBytes: peakSpoolBytes }
  })
}

async function runPool () {
  const { Pool } = require('undici')
  const p = plan(scenario)
  const bodies = sameStart(p, { keep: true })
  const path = `/web/projects/${publicKey}/batch`
  const headers = { 'content-type': 'application/json', 'user-agent': `koala-tracker/${VERSION}` }
  const connections = FLOOR_CONNECTIONS
  const stopProfile = await profiler()
  const f0 = faults()
  const t0 = process.hrtime.bigint()
  const cpu0 = process.cpuUsage()
  const pool = new Pool(baseUrl, { connections, pipelining: 1, keepAliveTimeout: DEFAULTS.keepAliveTimeoutMs })
  let next = 0
  let failed = 0
  // dispatch() with a minimal handler: the cheapest way to use a Pool, and the
  // API the tracker's own transport uses, so the ratios measure the tracker.
  const post = (body) => new Promise((resolve, reject) => {
    let status = 0
    pool.dispatch({ path, method: 'POST', headers, body }, {
      // onRequestStart marks the handler as one of undici's current API.
      onRequestStart () {},
      onResponseStart (_c, statusCode) { status = statusCode },
      onResponseData () {},
      onResponseEnd () { resolve(status) },
      onResponseError (_c, err) { reject(err) }
    })
  })
  const worker = async () => {
    while (next < bodies.length) {
      if (await post(bodies[next++]) !== 200) failed++
    }
  }
  await Promise.all(Array.from({ length: connections }, worker))
  await pool.close()
  const wallNs = process.hrtime.bigint() - t0
  const used = process.cpuUsage(cpu0)
  await stopProfile()
  out({ calls: p.calls, wallMs: Number(wallNs) / 1e6, cpuMicros: cpuMicros(used), cpuSystemMicros: used.system, delivered: p.calls, requests: bodies.length, failed, pageFaults: faults() - f0 })
}

/**
 * Heap held per buffered item: N calls in one synchronous stretch, with a
 * flush interval that never fires and an endpoint that refuses connections
 * (so nothing leaves: sends fail and wait to be retried), `heapUsed` once the
 * GC has settled before and after, divided by N (benchmarks/heap.mjs, as for
 * the peers). Everything the tracker holds counts: buckets, sealed batches,
 * the LRU. The reference is an array of the same items as flat JSON strings
 * (message_id included), about the least any design that keeps its items as
 * JSON can hold.
 */
async function runHeap () {
  const n = Math.min(SCENARIOS[scenario].calls, Number(process.env.HEAP_ITEMS ?? 100_000))
  // Item 0 warms the client up (see heapPerItem); items 1..n are measured.
  const p = plan(scenario, n + 1)
  const refused = await closedPort()
  // Loaded by the first send and the 65th bucket: fixed costs, so before the baseline, as in runTracker.
  require('undici')
  require('lru-cache')
  const sentAt = new Date().toISOString()
  // Flat strings: a template literal and JSON.stringify may both return a rope, and
  // Buffer.byteLength flattens it in place (as capture does when it measures an item).
  const flat = (i) => { const s = JSON.stringify(JSON.parse(itemJson(p, i, sentAt))); Buffer.byteLength(s); return s }
  const ref = await heapPerItem(n, () => [], (a, i) => { a.push(flat(i)) })
  ref.client = undefined
  const quiet = { debug () {}, warn () {}, error () {} } // the refused connections are expected here
  const tr = await heapPerItem(n,
    () => createTracker({ publicKey, baseUrl: `http://127.0.0.1:${refused}`, flushIntervalMs: 2 ** 31 - 1, logger: quiet }),
    (tracker, i) => call(tracker, p, i))
  const s = tr.client.stats()
  out({ items: n, bytesPerItem: tr.bytesPerItem, jsonBytesPerItem: ref.bytesPerItem, buffered: s.bufferedItems, sent: s.sent, dropped: s.dropped })
  process.exit(0)
}

const SOAK_SAMPLE_MS = 7_000

/**
 * Soak: the S3 mix over 10k people at a steady rate (SOAK_RATE calls/s) for
 * SOAK_MINUTES, default options; heap (after a full GC) and RSS sampled every
 * 7 s. Memory is flat when the last minute looks like the second.
 */
async function runSoak () {
  const minutes = Number(process.env.SOAK_MINUTES ?? 10)
  const rate = Number(process.env.SOAK_RATE ?? 5_000)
  const total = Math.round(minutes * 60 * rate)
  const p = plan('S3', total)
  const people = 10_000
  for (let i = 0; i < total; i++) p.person[i] = i % people
  p.ids.length = people
  for (let i = 1_000; i < people; i++) p.ids[i] = JSON.parse(JSON.stringify(crypto.randomUUID()))
  const tracker = createTracker({ publicKey, baseUrl })
  const samples = []
  const t0 = Date.now()
  const sample = () => {
    global.gc()
    const m = process.memoryUsage()
    samples.push({ s: Math.round((Date.now() - t0) / 1000), heapMB: m.heapUsed / 2 ** 20, rssMB: m.rss / 2 ** 20, buffered: tracker.stats().bufferedItems })
  }
  sample()
  let next = 0
  const cpu0 = process.cpuUsage()
  await new Promise((resolve) => {
    // Every 10 ms, the calls due by now: a steady rate, whatever a turn costs.
    const tick = setInterval(() => {
      const due = Math.min(total, Math.round(((Date.now() - t0) / 1000) * rate))
      while (next < due) call(tracker, p, next++)
      if (next >= total) { clearInterval(tick); clearInterval(probe); resolve() }
    }, 10)
    // Not every 10 s: samples in step with the flush timer would each catch the backlog at the same phase.
    const probe = setInterval(sample, SOAK_SAMPLE_MS)
  })
  sample()
  const closed = await tracker.close({ timeoutMs: 60_000 })
  const s = tracker.stats()
  out({ calls: total, minutes, rate, sampleMs: SOAK_SAMPLE_MS, samples, closed, delivered: s.sent, dropped: s.dropped, failed: s.failed, cpuMicros: (({ user, system }) => user + system)(process.cpuUsage(cpu0)) })
}

const run = { tracker: runTracker, pool: runPool, heap: runHeap, soak: runSoak }[mode]
if (run === undefined) throw new Error(`unknown mode ${mode}`)
await run()
