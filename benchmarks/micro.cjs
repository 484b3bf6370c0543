// Micro-benchmarks of the hot pieces, each against JSON.stringify of the same
// event (the reference). Plain process.hrtime loops: a few rounds, median.
//   node micro.cjs  → one JSON line on stdout
'use strict'
const { randomUUID } = require('node:crypto')
const lib = (m) => require(`../dist/cjs/lib/${m}.js`)
const validators = lib('generated/validators')
const { Capturer } = lib('capture')
const { messageIdPiece } = lib('message-id')
const { Bucket, toBatch } = lib('bucket')
const { createRoutes } = lib('route')
const { createTracker } = lib('index')
const { LRUCache } = require('lru-cache')

const ID = '6f1c1a4e-2b7d-4c3e-9f4a-1b2c3d4e5f60'
const event = (seq) => ({ profile_id: ID, event: 'Viewed Pricing', properties: { plan: 'pro', seats: 12, trial: true, seq } })

let blackhole = 0
/** ns per op: `rounds` rounds of `n` ops, median round. */
function bench (fn, n = 100_000, rounds = 7) {
  for (let i = 0; i < n; i++) fn(i) // warm up (and let the JIT settle)
  const per = []
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < n; i++) fn(i)
    per.push(Number(process.hrtime.bigint() - t0) / n)
  }
  per.sort((a, b) => a - b)
  return per[rounds >> 1]
}

const results = {}
const run = (name, fn, n) => { results[name] = bench(fn, n) }

const ev = event(1)
run('JSON.stringify(event)', () => { blackhole += JSON.stringify(ev).length })
run('build the call object', (i) => { blackhole += event(i).properties.seq })
run('randomUUID()', () => { blackhole += randomUUID().length })
// What the tracker uses instead: the whole `{"message_id":"<UUID v4>"` head of an item.
run('message id head', () => { blackhole += messageIdPiece().length })
const item = { type: 'track', event: 'Viewed Pricing', properties: ev.properties, message_id: undefined, sent_at: undefined }
const ids = { profile_id: ID, email: undefined }
// With a context, as capture passes one: without it each validator's defaults allocate one a call.
const ROOT = Object.freeze({ instancePath: '' })
run('validate (person + track item)', () => { blackhole += validators.person(ids, ROOT) + validators.trackEvent(item, ROOT) })
const capturer = new Capturer(Date.now, 32 * 1024)
run('capture: validate + serialise', (i) => { blackhole += capturer.track(event(i)).bytes })
// A new person every call (S2): the id is checked, not remembered. Flat strings, as in scenarios.mjs.
const people = Array.from({ length: 20_000 }, () => JSON.parse(JSON.stringify(randomUUID())))
const eventFor = (i) => ({ profile_id: people[i % 20_000], event: 'Viewed Pricing', properties: { plan: 'pro', seats: 12, trial: true, seq: i } })
run('capture, a new person each call', (i) => { blackhole += capturer.track(eventFor(i)).bytes })
const captured = capturer.track(ev)
const { profiles } = createRoutes('/web/projects/pk')
let bucket = new Bucket(ID, undefined)
run('bucket insert', () => {
  if (bucket.add(captured) >= 30) bucket = new Bucket(ID, undefined)
})
const thirty = Array.from({ length: 30 }, (_, i) => capturer.track(event(i)))
// Taking 30 items out of a bucket and building their body (message ids included), per item.
results['seal + body of 30 items (per item)'] = bench(() => {
  const b = new Bucket(ID, undefined)
  for (const c of thirty) b.add(c)
  blackhole += toBatch(b.take(profiles)).body.length
}, 5_000) / 30
const lru = new LRUCache({ max: 10_000 })
lru.set(ID, 1)
run('LRUCache.get (hit)', () => { blackhole += lru.get(ID) })
const map = new Map([[ID, 1]])
run('Map.get (hit)', () => { blackhole += map.get(ID) })

// The whole synchronous call, with a transport that answers at once. 20k calls
// per round stay under the buffer cap; flush between rounds empties it.
const transport = { send: async () => ({ status: 200, headers: {}, body: '' }), close: async () => {}, destroy: async () => {} }
const tracker = createTracker({ publicKey: 'pk_bench', transport })
;(async () => {
  const per = []
  for (let r = 0; r < 9; r++) {
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < 20_000; i++) tracker.track(event(i))
    per.push(Number(process.hrtime.bigint() - t0) / 20_000)
    await tracker.flush()
  }
  per.sort((a, b) => a - b)
  results['tracker.track() (whole call)'] = per[4]
  await tracker.close()
  const ref = results['JSON.stringify(event)']
  const out = Object.entries(results).map(([name, ns]) => ({ name, ns, ratio: ns / ref }))
  process.stdout.write(JSON.stringify({ micro: out, blackhole: blackhole > 0 }) + '\n')
})()
