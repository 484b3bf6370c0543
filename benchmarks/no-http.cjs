// The tracker's own cost per item, without HTTP: a transport that answers 200
// on the next turn of the event loop, so only the tracker's work (calls,
// buckets, bodies, the sender) and its GC are measured. For A/B runs of two
// builds; `npm run bench` does not run it.
//   node benchmarks/no-http.cjs [S1|S2|S3]
// KOALA_DIST=/other/dist measures another build; BENCH_OPTS (JSON) adds tracker options.
'use strict'
const { randomUUID } = require('node:crypto')
const { join } = require('node:path')
const dist = process.env.KOALA_DIST ?? join(__dirname, '..', 'dist')
const { createTracker } = require(`${dist}/cjs/lib/index.js`)

const scenario = process.argv[2] ?? 'S2'
const calls = scenario === 'S2' ? 100_000 : 200_000
const people = { S1: 1, S2: calls, S3: 1_000 }[scenario]
if (people === undefined) throw new Error(`unknown scenario ${scenario}`)
const ids = Array.from({ length: people }, () => JSON.parse(JSON.stringify(randomUUID())))
const call = (id, seq) => ({ profile_id: id, event: 'Viewed Pricing', properties: { plan: 'pro', seats: 12, trial: true, seq } })
const ok = { status: 200, headers: {}, body: '' }
const transport = {
  reusesSignals: true,
  send: () => new Promise((resolve) => setImmediate(resolve, ok)),
  close: async () => {},
  destroy: async () => {}
}
const tick = () => new Promise((resolve) => setImmediate(resolve))

async function main () {
  require('lru-cache') // loaded before the clock starts, as in producer.mjs
  const cpu0 = process.cpuUsage()
  const tracker = createTracker({ publicKey: 'pk_bench', baseUrl: 'http://127.0.0.1:9', transport, ...JSON.parse(process.env.BENCH_OPTS ?? '{}') })
  let callNs = 0n
  for (let start = 0; start < calls; start += 1_000) {
    const t0 = process.hrtime.bigint()
    for (let i = start; i < start + 1_000; i++) tracker.track(call(ids[i % people], i))
    callNs += process.hrtime.bigint() - t0
    await tick()
  }
  await tracker.close({ timeoutMs: 600_000 })
  const cpu = process.cpuUsage(cpu0)
  const s = tracker.stats()
  if (s.sent !== calls) throw new Error(`sent ${s.sent} of ${calls}`)
  process.stdout.write(JSON.stringify({ scenario, callUs: Number(callNs) / calls / 1000, cpuPerItemUs: (cpu.user + cpu.system) / calls }) + '\n')
}
main()
