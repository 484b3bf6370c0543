// The tracker's own cost per item, without HTTP: a transport that answers 200
// on the next turn of the event loop, so only the tracker's work (calls,
// buckets, bodies, the sender) and its GC are measured. For A/B runs of two
// builds; `npm run bench` does not run it.
//   node --expose-gc benchmarks/no-http.mjs [S1|S2|S3] [rounds]
// rounds > 1 runs the scenario again in the same process (a fresh tracker, a full GC between):
// the first round pays for compiling the tracker's code and growing the heap, the next ones do not.
// KOALA_DIST=/other/dist measures another build (outside this repository, with NODE_PATH=$PWD/node_modules
// so that it finds the packages it loads lazily); BENCH_OPTS (JSON) adds tracker options.
import { createRequire } from 'node:module'
import { sameStart } from './bodies.mjs'
import { SCENARIOS, call, plan } from './scenarios.mjs'

const require = createRequire(import.meta.url)
const dist = process.env.KOALA_DIST ?? new URL('../dist', import.meta.url).pathname
const { createTracker } = require(`${dist}/cjs/lib/index.js`)

const scenario = process.argv[2] ?? 'S2'
if (SCENARIOS[scenario] === undefined) throw new Error(`unknown scenario ${scenario}`)
const p = plan(scenario)
const ok = { status: 200, headers: {}, body: '' }
const transport = {
  reusesSignals: true,
  send: () => new Promise((resolve) => setImmediate(resolve, ok)),
  close: async () => {},
  destroy: async () => {}
}
const tick = () => new Promise((resolve) => setImmediate(resolve))

require('lru-cache') // loaded before the clock starts, as in producer.mjs
sameStart(p, { keep: false }) // the same heap to start from as producer.mjs's tracker
const rounds = Number(process.argv[3] ?? 1)
for (let round = 1; round <= rounds; round++) {
  if (round > 1) globalThis.gc()
  const cpu0 = process.cpuUsage()
  const tracker = createTracker({ publicKey: 'pk_bench', baseUrl: 'http://127.0.0.1:9', transport, ...JSON.parse(process.env.BENCH_OPTS ?? '{}') })
  let callNs = 0n
  for (let start = 0; start < p.calls; start += 1_000) {
    const end = Math.min(start + 1_000, p.calls)
    const t0 = process.hrtime.bigint()
    for (let i = start; i < end; i++) call(tracker, p, i)
    callNs += process.hrtime.bigint() - t0
    await tick()
  }
  const closed = await tracker.close({ timeoutMs: 600_000 })
  const cpu = process.cpuUsage(cpu0)
  const sent = tracker.stats().sent
  if (sent !== p.calls) throw new Error(`sent ${sent} of ${p.calls}: ${JSON.stringify({ closed, stats: tracker.stats() })}`)
  process.stdout.write(JSON.stringify({ scenario, round, callUs: Number(callNs) / p.calls / 1000, cpuPerItemUs: (cpu.user + cpu.system) / p.calls }) + '\n')
}
