// Cold start through `import` (the ESM entry point) in a fresh process:
// import → createTracker → first accepted call. See cold.cjs for `require`.
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const dist = process.env.KOALA_DIST ?? join(fileURLToPath(new URL('.', import.meta.url)), '../dist')
const ms = (a, b) => Number(b - a) / 1e6
const t0 = process.hrtime.bigint()
const { createTracker } = await import(pathToFileURL(join(dist, 'esm/index.mjs')).href)
const t1 = process.hrtime.bigint()
const tracker = createTracker({ publicKey: 'pk_bench', baseUrl: 'http://127.0.0.1:9' })
const t2 = process.hrtime.bigint()
tracker.track({ profile_id: '6f1c1a4e-2b7d-4c3e-9f4a-1b2c3d4e5f60', event: 'Viewed Pricing', properties: { plan: 'pro', seats: 12, trial: true, seq: 0 } })
const t3 = process.hrtime.bigint()
if (tracker.stats().accepted !== 1) throw new Error('the first call was not accepted')
const { createRequire } = await import('node:module')
const codeCache = createRequire(import.meta.url).cache[join(dist, 'cjs/lib/_load.js')]?.exports.codeCache ?? 'none'
process.stdout.write(JSON.stringify({ mode: 'import', codeCache, importMs: ms(t0, t1), createMs: ms(t1, t2), firstCallMs: ms(t2, t3), totalMs: ms(t0, t3) }) + '\n')
