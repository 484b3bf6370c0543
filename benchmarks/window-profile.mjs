// Where a variant's CPU goes inside its measured span, threads and kernel included, by kind of work:
// V8 compiling (TurboFan), the GC, the kernel (page faults apart), JSON, strings, builtins, JavaScript.
// `perf record` samples the producer (every thread, every ~50 µs of CPU) but records only from the
// clock's start to close() (producer.mjs tells it through --control FIFOs), so the setup before the
// clock is left out, as in `npm run bench`. Needs Linux perf (`apt-get install linux-perf`); not part
// of `npm run bench`. perf's own cost inflates every count a little: read the shares and differences.
//   node benchmarks/window-profile.mjs S1 tracker pool            this build's tracker and the raw Pool
//   node benchmarks/window-profile.mjs S1 tracker@/other/dist tracker --top 20   and the top symbols
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SCENARIOS } from './scenarios.mjs'
import { exactlyOnce, startSink } from './sink-process.mjs'

const here = fileURLToPath(new URL('.', import.meta.url))
const args = process.argv.slice(2)
const at = args.indexOf('--top')
const top = at === -1 ? 0 : Number(args.splice(at, 2)[1])
const [scenario, ...variants] = args
if (SCENARIOS[scenario] === undefined || variants.length === 0 || !(top >= 0)) {
  console.error('usage: node benchmarks/window-profile.mjs <S1|S2|S3> <tracker|pool>[@/path/to/dist] ... [--top N]')
  process.exit(2)
}

/** The kind of work a sample's innermost frame does (a pure function of its symbol and object). */
function kindOf (frame) {
  if (frame.includes('kernel.kallsyms')) return 'kernel'
  if (/Scaveng|Marking|MarkCompact|Sweep|Evacuat|ConcurrentMarking|RememberedSet|ArrayBufferSweeper|SemiSpace|Heap::/.test(frame)) return 'gc'
  if (/compiler::|Pipeline|OptimizedCompilationJob|RegisterAllocat|InstructionSelector/.test(frame)) return 'compile'
  // perf names part of JsonStringifier's code in Node 20's binary after the symbol before it.
  if (/Json|FlatStringReader::PostGarbageCollection/.test(frame)) return 'json'
  if (/String::|StringShape|ConsString|SeqString|Utf8|StringTable|ArrayJoin|FlatString/.test(frame)) return 'strings'
  if (/Builtins_/.test(frame)) return 'builtins'
  if (frame.includes('JS:')) return 'javascript'
  if (/libc\.so|libstdc\+\+/.test(frame)) return 'libc'
  return 'other native'
}

async function record (variant, dir, sink) {
  const cut = variant.indexOf('@')
  const mode = cut === -1 ? variant : variant.slice(0, cut)
  const env = { ...process.env }
  delete env.KOALA_DIST
  if (cut !== -1) {
    env.KOALA_DIST = variant.slice(cut + 1)
    env.NODE_PATH = [`${here}../node_modules`, process.env.NODE_PATH].filter(Boolean).join(':')
  }
  const ctl = join(dir, 'ctl')
  const ack = join(dir, 'ack')
  execFileSync('mkfifo', [ctl, ack])
  const data = join(dir, `${mode}.data`)
  await sink.reset(SCENARIOS[scenario].calls)
  const maps = () => readdirSync('/tmp').filter(f => /^perf-\d+\.map$/.test(f))
  const before = new Set(maps())
  const r = spawnSync('perf', ['record', '-e', 'cpu-clock', '-F', '20000', '-g', '-D', '-1', `--control=fifo:${ctl},${ack}`, '-o', data,
    process.execPath, '--perf-basic-prof', '--expose-gc', `${here}producer.mjs`, mode, scenario, String(sink.port), 'yield'],
  // In the temporary directory: --perf-basic-prof also makes V8 write an isolate-*-v8.log where it runs.
  { cwd: dir, env: { ...env, PERF_CTL: ctl, PERF_ACK: ack }, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  if (r.error !== undefined) throw new Error(`could not run perf (apt-get install linux-perf): ${r.error.message}`)
  const report = await sink.report()
  if (r.status !== 0 || !exactlyOnce(report, SCENARIOS[scenario].calls)) throw new Error(`${variant} failed (exit ${r.status}):\n${r.stderr.slice(-2000)}`)
  rmSync(ctl)
  rmSync(ack)
  const script = execFileSync('perf', ['script', '-i', data, '-F', 'ip,sym,dso'], { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'ignore'] })
  // The names of V8's compiled code, written by --perf-basic-prof for perf script: not needed after it.
  for (const f of maps()) if (!before.has(f)) rmSync(join('/tmp', f), { force: true })
  const kinds = new Map()
  const symbols = new Map()
  let samples = 0
  for (const block of script.split('\n\n')) {
    const frames = block.split('\n').map(l => l.trim()).filter(Boolean)
    if (frames.length === 0) continue
    samples++
    let kind = kindOf(frames[0])
    if (kind === 'kernel' && frames.some(f => f.includes('exc_page_fault'))) kind = 'kernel: page faults'
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1)
    const symbol = frames[0].split(' ').slice(1).join(' ').replace(/\(\/tmp\/perf-\d+\.map\)/, '').slice(0, 100)
    symbols.set(symbol, (symbols.get(symbol) ?? 0) + 1)
  }
  return { samples, kinds, symbols }
}

const dir = mkdtempSync(join(tmpdir(), 'koala-window-'))
const sink = await startSink()
const runs = []
try {
  for (const variant of variants) runs.push({ variant, ...(await record(variant, dir, sink)) })
} finally {
  sink.stop()
  rmSync(dir, { recursive: true, force: true })
}

const kinds = [...new Set(runs.flatMap(r => [...r.kinds.keys()]))].sort((a, b) => (runs[0].kinds.get(b) ?? 0) - (runs[0].kinds.get(a) ?? 0))
const pad = (s, n) => String(s).padStart(n)
console.log(`${scenario}: samples of ~50 µs of CPU inside the measured span (${SCENARIOS[scenario].calls.toLocaleString('en-US')} items)`)
console.log(pad('', 22) + runs.map(r => pad(r.variant.slice(0, 24), 26)).join(''))
for (const k of ['total', ...kinds]) {
  const cells = runs.map(r => {
    const n = k === 'total' ? r.samples : (r.kinds.get(k) ?? 0)
    return pad(`${n} (${(100 * n / r.samples).toFixed(1)}%)`, 26)
  })
  console.log(pad(k, 22) + cells.join(''))
}
for (const r of runs.slice(0, top > 0 ? runs.length : 0)) {
  console.log(`\n${r.variant}: the ${top} symbols with most samples`)
  for (const [s, n] of [...r.symbols].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(pad(n, 7) + '  ' + s)
}
