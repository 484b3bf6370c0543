// How many requests come back per turn of the event loop while the yielding producer makes its
// calls, against the sink as `npm run bench` runs it. It shows why a burst of calls outruns the
// sink (docs/benchmarks.md, tenth and eleventh rounds): undici's Pool hands a connection its next
// request only once the connection has drained, which undici signals from the check phase after
// the answer, and the request is then written in the next turn's check phase, after that turn's
// calls; so with a busy event loop each connection completes at most one request every third turn.
//   node benchmarks/turns.mjs [S1|S2|S3]
// BENCH_OPTS (JSON) adds tracker options, as for producer.mjs.
import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { sameStart } from './bodies.mjs'
import { SCENARIOS, call, plan } from './scenarios.mjs'
import { exactlyOnce, startSink } from './sink-process.mjs'

const [scenario = 'S1', port] = process.argv.slice(2)
if (SCENARIOS[scenario] === undefined) throw new Error('usage: node benchmarks/turns.mjs [S1|S2|S3]')

/** Requests completed per turn: a histogram, and the mean. */
function histogram (counts, max) {
  const h = Array.from({ length: max + 1 }, () => 0)
  for (const c of counts) h[Math.min(c, max)]++
  const mean = counts.reduce((a, b) => a + b, 0) / Math.max(1, counts.length)
  return { h, mean }
}

async function child () {
  const require = createRequire(import.meta.url)
  const dist = process.env.KOALA_DIST ?? new URL('../dist', import.meta.url).pathname
  const { DEFAULTS, createTracker } = require(`${dist}/cjs/lib/index.js`)
  require('undici')
  require('lru-cache')
  const p = plan(scenario)
  sameStart(p, { keep: false })
  const opts = { publicKey: 'pk_bench', baseUrl: `http://127.0.0.1:${port}`, ...JSON.parse(process.env.BENCH_OPTS ?? '{}') }
  const t0 = performance.now()
  const tracker = createTracker(opts)
  const perTurn = []
  let done = 0
  for (let start = 0; start < p.calls; start += 1_000) {
    for (let i = start; i < Math.min(start + 1_000, p.calls); i++) call(tracker, p, i)
    await new Promise((resolve) => setImmediate(resolve))
    const succeeded = tracker.stats().requests.succeeded
    perTurn.push(succeeded - done)
    done = succeeded
  }
  const callsMs = performance.now() - t0
  const sentDuringCalls = tracker.stats().sent
  await tracker.close({ timeoutMs: 300_000 })
  const connections = opts.maxConcurrentRequests ?? DEFAULTS.maxConcurrentRequests
  process.stdout.write(JSON.stringify({ perTurn, connections, callsMs, wallMs: performance.now() - t0, sentDuringCalls, calls: p.calls }) + '\n')
}

async function parent () {
  const sink = await startSink()
  try {
    await sink.reset(SCENARIOS[scenario].calls)
    const out = execFileSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), scenario, String(sink.port)], { encoding: 'utf8' })
    const r = JSON.parse(out.trim().split('\n').pop())
    const received = await sink.report()
    if (!exactlyOnce(received, r.calls)) throw new Error(`the sink did not receive every item exactly once: ${JSON.stringify(received)}`)
    const { h, mean } = histogram(r.perTurn, r.connections)
    process.stdout.write(`${scenario}, ${r.perTurn.length} turns of 1,000 calls, ${r.connections} connections: ` +
      `${mean.toFixed(1)} requests completed per turn on average\n`)
    process.stdout.write(h.map((n, k) => `  ${String(k).padStart(2)} requests: ${n} turns`).join('\n') + '\n')
    process.stdout.write(`the calls took ${r.callsMs.toFixed(0)} of ${r.wallMs.toFixed(0)} ms; the sink had ${r.sentDuringCalls} of ${r.calls} items by then\n`)
  } finally {
    sink.stop()
  }
}

if (port === undefined) await parent()
else await child()
