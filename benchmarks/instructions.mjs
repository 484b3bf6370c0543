// Instructions per delivered item, counted by valgrind's callgrind: a figure that moves by a few percent between runs
// on a busy host, where times move by ±30%. Needs valgrind (`apt-get install valgrind`); not part of `npm run bench`.
//   node benchmarks/instructions.mjs S1 tracker pool            this build's tracker and the raw Pool
//   node benchmarks/instructions.mjs S2 tracker@/other/dist tracker   before/after against another build
// Each variant runs producer.mjs under callgrind twice, at two scales of the scenario; the difference of the
// two counts, divided by the difference of the items, leaves out what a process pays once (start-up,
// loading modules, JIT warm-up). What every variant does per item before its clock (the plan, and the
// bodies of sameStart in bodies.mjs) is counted the same way in a run that does only that, and subtracted.
// It counts the producer's user-space instructions only (the sink runs outside valgrind; the kernel's TCP
// is not counted), with V8 on one thread (`--single-threaded`), so the GC's work is counted whichever
// thread would have done it.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { exactlyOnce, startSink } from './sink-process.mjs'

const CALLS = { S1: 200_000, S2: 100_000, S3: 200_000 }
const here = fileURLToPath(new URL('.', import.meta.url))
const args = process.argv.slice(2)
// --scales a,b: the two scales (default 0.05,0.15; the tests use far smaller ones).
const at = args.indexOf('--scales')
const SCALES = (at === -1 ? '0.05,0.15' : args.splice(at, 2)[1] ?? '').split(',').map(Number)
const [scenario, ...variants] = args
if (CALLS[scenario] === undefined || variants.length === 0 || SCALES.length !== 2 || !(SCALES[0] > 0 && SCALES[0] < SCALES[1] && SCALES[1] <= 1)) {
  console.error('usage: node benchmarks/instructions.mjs [--scales 0.05,0.15] <S1|S2|S3> <tracker|pool>[@/path/to/dist] ...')
  process.exit(2)
}
const scaled = (scale) => Math.max(1, Math.round(CALLS[scenario] * scale))
const items = scaled(SCALES[1]) - scaled(SCALES[0])

async function instructions (variant, scale, sink) {
  // Only the first '@' separates a build's path, which may hold one too.
  const cut = variant.indexOf('@')
  const mode = cut === -1 ? variant : variant.slice(0, cut)
  const env = { ...process.env, BENCH_SCALE: String(scale) }
  // A KOALA_DIST of the caller's must not turn a plain `tracker` into another build.
  delete env.KOALA_DIST
  if (cut !== -1) {
    // A build outside this repository resolves undici and lru-cache from ours, as run.mjs --compare does.
    env.KOALA_DIST = variant.slice(cut + 1)
    env.NODE_PATH = [`${here}../node_modules`, process.env.NODE_PATH].filter(Boolean).join(':')
  }
  const sends = mode !== 'setup'
  if (sends) await sink.reset(scaled(scale))
  const r = spawnSync('valgrind', ['--tool=callgrind', '--callgrind-out-file=/dev/null', '--smc-check=all-non-file',
    process.execPath, '--expose-gc', '--single-threaded', `${here}producer.mjs`, mode, scenario, String(sink.port), 'yield'],
  { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  if (r.error !== undefined) throw new Error(`could not run valgrind (apt-get install valgrind): ${r.error.message}`)
  const collected = /Collected : (\d+)/.exec(r.stderr)
  const report = sends ? await sink.report() : undefined
  if (r.status !== 0 || collected === null || (sends && !exactlyOnce(report, scaled(scale)))) {
    throw new Error(`${variant} at scale ${scale} failed (exit ${r.status}):\n${JSON.stringify(report)}\n${r.stdout.slice(-1000)}${r.stderr.slice(-2000)}`)
  }
  return Number(collected[1])
}

const perItem = async (variant, sink) => {
  const a = await instructions(variant, SCALES[0], sink)
  const b = await instructions(variant, SCALES[1], sink)
  return (b - a) / items
}

const sink = await startSink()
try {
  const setup = await perItem('setup', sink)
  console.log(`${scenario} before every clock (subtracted below): ${Math.round(setup).toLocaleString('en-US')} instructions per item`)
  let first
  for (const variant of variants) {
    const own = (await perItem(variant, sink)) - setup
    first ??= own
    const ratio = variant === variants[0] ? '' : `  (×${(own / first).toFixed(3)} of ${variants[0]})`
    console.log(`${scenario} ${variant}: ${Math.round(own).toLocaleString('en-US')} instructions per item${ratio}`)
  }
} finally {
  sink.stop()
}
