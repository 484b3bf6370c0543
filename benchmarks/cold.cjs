// Cold start in a fresh process: require → createTracker → first accepted call.
//   node cold.cjs [tracker|eager]
// `eager` is the reference: the same process requiring the tracker's heavy
// dependencies up front, as it would without lazy loading.
'use strict'
const t0 = process.hrtime.bigint()
const ms = (a, b) => Number(b - a) / 1e6
const mode = process.argv[2] ?? 'tracker'
if (mode === 'trivial') {
  // Reference: what loading as many modules as the tracker does costs here, each doing nothing.
  const { mkdtempSync, writeFileSync, rmSync } = require('node:fs')
  const dir = mkdtempSync(require('node:path').join(require('node:os').tmpdir(), 'koala-cold-'))
  const n = Number(process.argv[3] ?? 27)
  for (let i = 0; i < n; i++) writeFileSync(`${dir}/m${i}.js`, i + 1 < n ? `require('./m${i + 1}.js')\n` : '\n')
  const a = process.hrtime.bigint()
  require(`${dir}/m0.js`)
  const b = process.hrtime.bigint()
  rmSync(dir, { recursive: true })
  process.stdout.write(JSON.stringify({ mode, modules: n, totalMs: Number(b - a) / 1e6 }) + '\n')
  process.exit(0)
}
if (mode === 'eager') {
  // Reference: the same process with the dependencies the tracker loads lazily loaded up front.
  // (of undici, the Pool's own module, as the tracker's transport loads it: lib/undici-pool.ts)
  require('undici/lib/dispatcher/pool'); require('pino'); require('lru-cache'); require('node:crypto')
}
const lib = `${process.env.KOALA_DIST ?? require('node:path').join(__dirname, '../dist')}/cjs/lib`
const tr = process.hrtime.bigint()
const { createTracker } = require(`${lib}/index.js`)
const t1 = process.hrtime.bigint()
const tracker = createTracker({ publicKey: 'pk_bench', baseUrl: 'http://127.0.0.1:9' })
const t2 = process.hrtime.bigint()
tracker.track({ profile_id: '6f1c1a4e-2b7d-4c3e-9f4a-1b2c3d4e5f60', event: 'Viewed Pricing', properties: { plan: 'pro', seats: 12, trial: true, seq: 0 } })
const t3 = process.hrtime.bigint()
if (tracker.stats().accepted !== 1) throw new Error('the first call was not accepted')
const modules = Object.keys(require.cache).length
// How _core.js was compiled (scripts/bundle-core.cjs): from the build's code cache ("used") or not, and why.
const codeCache = require.cache[`${lib}/_load.js`]?.exports.codeCache ?? 'none'
// The first send, after the clock above: what the lazy loading moved there. flush() seals the bucket, and
// on microtasks the body is built and the request dispatched (undici loaded, the Pool made); the event loop
// is blocked until the next turn. Port 9 refuses it; the retry waits on an unref'd timer.
const t4 = process.hrtime.bigint()
tracker.flush({ timeoutMs: 0 })
setImmediate(() => {
  const t5 = process.hrtime.bigint()
  if (tracker.stats().requests.sent !== 1) throw new Error('the first send did not start')
  process.stdout.write(JSON.stringify({ mode, depsMs: ms(t0, tr), requireMs: ms(tr, t1), createMs: ms(t1, t2), firstCallMs: ms(t2, t3), totalMs: ms(tr, t3), modules, codeCache, firstSendMs: ms(t4, t5) }) + '\n')
})
// Nothing was sent: the process must exit by itself (no timer keeps it alive).
