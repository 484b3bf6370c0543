// Cold start through `import` (the ESM entry point) in a fresh process:
// import → createTracker → first accepted call. See cold.cjs for `require`.
import { readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = dirname(resolve(process.env.KOALA_DIST ?? join(fileURLToPath(new URL('.', import.meta.url)), '../dist')))
// The "import" condition of the package's "." export, as `import 'koala-tracker'` would resolve it.
const entry = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).exports['.'].import
const file = join(root, typeof entry === 'string' ? entry : entry.default)
const ms = (a, b) => Number(b - a) / 1e6
const t0 = process.hrtime.bigint()
const { createTracker } = await import(pathToFileURL(file).href)
const t1 = process.hrtime.bigint()
const tracker = createTracker({ publicKey: 'pk_bench', baseUrl: 'http://127.0.0.1:9', logger: { debug () {}, warn () {}, error () {} } })
const t2 = process.hrtime.bigint()
tracker.track({ profile_id: '6f1c1a4e-2b7d-4c3e-9f4a-1b2c3d4e5f60', event: 'Viewed Pricing', properties: { plan: 'pro', seats: 12, trial: true, seq: 0 } })
const t3 = process.hrtime.bigint()
if (tracker.stats().accepted !== 1) throw new Error('the first call was not accepted')
process.stdout.write(JSON.stringify({ mode: 'import', importMs: ms(t0, t1), createMs: ms(t1, t2), firstCallMs: ms(t2, t3), totalMs: ms(t0, t3) }) + '\n')
// Nothing was sent; a tracker that sends on exit would try to, so end here.
process.exit(0)
