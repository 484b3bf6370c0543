// Cold start in a fresh process: require → createTracker → first accepted call.
//   node cold.cjs [tracker|eager|trivial]
// The build is KOALA_DIST (a dist directory; default this repository's), entered through the
// "main" of the package.json beside it, as `require('koala-tracker')` would.
// `eager` is a reference: the same process requiring the tracker's lazily loaded
// dependencies up front. `trivial`: as many empty modules as the tracker loads.
'use strict'
const { readFileSync } = require('node:fs')
const { createRequire } = require('node:module')
const { dirname, join, resolve } = require('node:path')

const t0 = process.hrtime.bigint()
const ms = (a, b) => Number(b - a) / 1e6
const mode = process.argv[2] ?? 'tracker'
const out = (r) => { process.stdout.write(JSON.stringify({ mode, ...r }) + '\n'); process.exit(0) }

if (mode === 'trivial') {
  const { mkdtempSync, writeFileSync, rmSync } = require('node:fs')
  const dir = mkdtempSync(join(require('node:os').tmpdir(), 'koala-cold-'))
  const n = Number(process.argv[3] ?? 27)
  for (let i = 0; i < n; i++) writeFileSync(`${dir}/m${i}.js`, i + 1 < n ? `require('./m${i + 1}.js')\n` : '\n')
  const a = process.hrtime.bigint()
  require(`${dir}/m0.js`)
  const b = process.hrtime.bigint()
  rmSync(dir, { recursive: true })
  out({ modules: n, totalMs: Number(b - a) / 1e6 })
}

const root = dirname(resolve(process.env.KOALA_DIST ?? join(__dirname, '../dist')))
const main = join(root, JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).main)
if (mode === 'eager') {
  // Of undici, the Pool's own module, as the tracker's transport loads it (lib/transport/undici-pool.ts).
  const req = createRequire(join(root, 'package.json'))
  req('undici/lib/dispatcher/pool'); req('pino'); req('lru-cache'); require('node:crypto')
}
const tr = process.hrtime.bigint()
const { createTracker } = require(main)
const t1 = process.hrtime.bigint()
const tracker = createTracker({ publicKey: 'pk_bench', baseUrl: 'http://127.0.0.1:9', logger: { debug () {}, warn () {}, error () {} } })
const t2 = process.hrtime.bigint()
tracker.track({ profile_id: '6f1c1a4e-2b7d-4c3e-9f4a-1b2c3d4e5f60', event: 'Viewed Pricing', properties: { plan: 'pro', seats: 12, trial: true, seq: 0 } })
const t3 = process.hrtime.bigint()
if (tracker.stats().accepted !== 1) throw new Error('the first call was not accepted')
const modules = Object.keys(require.cache).length
// The first send, after the clock above: what the lazy loading moved there. flush() seals the bucket, and
// on microtasks the body is built and the request dispatched (undici loaded, the Pool made); the event loop
// is blocked until the next turn. Port 9 refuses it.
const t4 = process.hrtime.bigint()
tracker.flush({ timeoutMs: 0 })
setImmediate(() => {
  const t5 = process.hrtime.bigint()
  if (tracker.stats().requests.sent !== 1) throw new Error('the first send did not start')
  // process.exit: the item waits for a retry, and a tracker that sends on exit would keep the process up.
  out({ depsMs: ms(t0, tr), requireMs: ms(tr, t1), createMs: ms(t1, t2), firstCallMs: ms(t2, t3), totalMs: ms(tr, t3), modules, firstSendMs: ms(t4, t5) })
})
