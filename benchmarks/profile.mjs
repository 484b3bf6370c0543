// Where the time goes in one benchmark variant: a CPU profile of its measured
// span (producer.mjs with PROFILE_TO, against the sink in its own process, as
// `npm run bench` runs it), drawn as a flame graph, with a table on stdout.
//   node benchmarks/profile.mjs [S1|S2|S3] [tracker|pool] [directory]
// Writes <directory>/<scenario>-<variant>.svg (default: a directory under the system's tmp) and
// the .cpuprofile beside it (for Chrome's DevTools). KOALA_DIST picks the build, as for producer.mjs.
// The profiler costs a little CPU of its own: read the shares, not the milliseconds.
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { callTree, renderFlame, summary } from './flame.mjs'
import { SCENARIOS } from './scenarios.mjs'
import { exactlyOnce, startSink } from './sink-process.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const [scenario = 'S1', mode = 'tracker', outDir = join(tmpdir(), 'koala-profiles')] = process.argv.slice(2)
if (SCENARIOS[scenario] === undefined || !['tracker', 'pool'].includes(mode)) {
  throw new Error('usage: node benchmarks/profile.mjs [S1|S2|S3] [tracker|pool] [directory]')
}

mkdirSync(outDir, { recursive: true })
const file = join(outDir, `${scenario}-${mode}.cpuprofile`)
const sink = await startSink()
let received
try {
  await sink.reset(SCENARIOS[scenario].calls)
  execFileSync(process.execPath, ['--expose-gc', join(here, 'producer.mjs'), mode, scenario, String(sink.port), 'yield'],
    { env: { ...process.env, PROFILE_TO: file }, stdio: ['ignore', 'ignore', 'inherit'] })
  received = await sink.report()
} finally {
  sink.stop()
}
if (!exactlyOnce(received, SCENARIOS[scenario].calls)) {
  throw new Error(`the sink did not receive every item exactly once: ${JSON.stringify(received)}`)
}
const profile = JSON.parse(readFileSync(file, 'utf8'))

const variant = mode === 'pool' ? 'raw Pool (floor)' : 'tracker, yields every 1,000 calls'
const tree = callTree(profile)
const s = summary(tree)
const out = join(outDir, `${scenario}-${mode}.svg`)
writeFileSync(out, renderFlame(tree, `${scenario} (${SCENARIOS[scenario].title}), ${variant}: main thread, from the clock's start to close()`))

const ms = (us) => (us / 1000).toFixed(0).padStart(6)
const pct = (x) => `${(100 * x).toFixed(1)}%`.padStart(6)
process.stdout.write(`${scenario}, ${variant}: ${ms(s.busyUs).trim()} ms busy on the main thread (idle left out)\n\n`)
for (const c of s.categories) process.stdout.write(`${ms(c.us)} ms ${pct(c.share)}  ${c.name}\n`)
process.stdout.write('\nmost self time:\n')
for (const f of s.top) process.stdout.write(`${ms(f.selfUs)} ms ${pct(f.share)}  ${f.name}  [${f.category}]\n`)
process.stdout.write(`\nflame graph: ${out}\nprofile: ${file}\n`)
