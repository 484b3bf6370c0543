// `npm run bench`: every measurement in a fresh process, against a sink in its
// own process on 127.0.0.1, with the raw undici Pool measured in the same run
// as the floor. Writes benchmarks/results/latest.json, the results section of
// docs/benchmarks.md and docs/benchmarks.svg.
//
//   npm run bench                      the default run (3 repeats)
//   npm run bench -- --repeat 5        more repeats (medians are reported)
//   npm run bench -- --scenarios S1    some scenarios only (docs are not rewritten; results in results/partial.json)
//   npm run bench -- --soak [minutes]  only the soak (default 10 minutes)
//   npm run bench -- --render          rewrite the docs from benchmarks/results/latest.json (no measuring)
//   npm run bench -- --peers           also Segment's and PostHog's SDKs (installs them into benchmarks/.peers)
//   npm run bench -- --compare /path/to/other/dist   also that build's tracker, interleaved (before/after ratios; docs are not rewritten)
//   BENCH_SCALE=0.01 node benchmarks/run.mjs --smoke   every scenario and variant once, scaled down; no cold start
//                                      repeats, no micro-benchmarks, nothing written (the tests run this)
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SCENARIOS } from './scenarios.mjs'
import { renderChart, renderTable, resultsFile } from './report.mjs'
import { exactlyOnce, startSink } from './sink-process.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..')
const args = process.argv.slice(2)
const flag = (name) => args.includes(name)
const value = (name, fallback) => {
  const i = args.indexOf(name)
  return i !== -1 && args[i + 1] !== undefined && !args[i + 1].startsWith('--') ? args[i + 1] : fallback
}
const smoke = flag('--smoke')
if (smoke && process.env.BENCH_SCALE === undefined) throw new Error('--smoke: set BENCH_SCALE (0.01, say) to scale the scenarios down')
// Scaled-down figures must never reach the docs or the results files.
if (!smoke && process.env.BENCH_SCALE !== undefined) throw new Error('BENCH_SCALE is for --smoke runs only')
const repeat = smoke ? 1 : Number(value('--repeat', 3))
const only = value('--scenarios', undefined)?.split(',')
const scenarios = only ?? Object.keys(SCENARIOS)
const compare = value('--compare', undefined)
const writeDocs = !smoke && !flag('--no-docs') && only === undefined && compare === undefined

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const log = (...a) => process.stderr.write(a.join(' ') + '\n')

/** Runs one producer process and checks what the sink received. */
async function measure (sink, mode, scenario, loop = 'yield', env = {}) {
  const expected = SCENARIOS[scenario].calls
  await sink.reset(expected)
  const out = execFileSync(process.execPath, ['--expose-gc', join(here, 'producer.mjs'), mode, scenario, String(sink.port), loop],
    { encoding: 'utf8', env: envOf(env), maxBuffer: 1 << 24 })
  const r = JSON.parse(out.trim().split('\n').pop())
  if (mode === 'heap') return r
  const s = await sink.report()
  r.sink = s
  r.exactlyOnce = exactlyOnce(s, expected)
  // Per delivered item: a run that lost items must not look cheaper for it.
  r.itemsPerSec = s.items / (r.wallMs / 1000)
  r.cpuPerItemUs = r.cpuMicros / s.items
  // System time: mostly the kernel's loopback TCP, for the sink's side of each request too.
  r.systemPerItemUs = r.cpuSystemMicros / s.items
  r.requestsMade = s.requests
  // The sink's CPU over the run: on two cores it shares the machine with the producer (see report.mjs, predictedShare).
  r.sinkCpuPerItemUs = s.cpuMicros === undefined ? undefined : s.cpuMicros / s.items
  r.faultsPerKItem = r.pageFaults === undefined ? undefined : r.pageFaults / s.items * 1000
  log(`  ${scenario} ${mode}${mode === 'tracker' ? `/${loop}` : ''}: ${Math.round(r.itemsPerSec)} items/s, ` +
    `${r.cpuPerItemUs.toFixed(2)} µs CPU/item${r.callNs !== undefined ? `, ${(r.callNs / 1000).toFixed(2)} µs/call` +
      ` (waiting for a core ${(r.callWaitNs / 1000).toFixed(2)}, GC ${(r.callGcNs / 1000).toFixed(2)})` +
      `, calls done at ${r.callsDoneMs.toFixed(0)} of ${r.wallMs.toFixed(0)} ms with ${r.sentDuringCalls} items delivered` : ''}, ` +
    `${s.requests} requests, ${r.exactlyOnce ? 'every item exactly once' : `LOSS/DUPLICATES: ${JSON.stringify(s)} dropped=${r.dropped}`}`)
  return r
}

function summarise (runs) {
  const pick = (k) => median(runs.map((r) => r[k]))
  return {
    runs: runs.length,
    itemsPerSec: pick('itemsPerSec'),
    cpuPerItemUs: pick('cpuPerItemUs'),
    systemPerItemUs: pick('systemPerItemUs'),
    sinkCpuPerItemUs: runs[0].sinkCpuPerItemUs === undefined ? undefined : pick('sinkCpuPerItemUs'),
    callUs: runs[0].callNs === undefined ? undefined : pick('callNs') / 1000,
    callWaitUs: runs[0].callWaitNs === undefined ? undefined : pick('callWaitNs') / 1000,
    callGcUs: runs[0].callGcNs === undefined ? undefined : pick('callGcNs') / 1000,
    requests: pick('requestsMade'),
    peakRssMB: pick('maxRssBytes') / 2 ** 20,
    faultsPerKItem: runs[0].faultsPerKItem === undefined ? undefined : pick('faultsPerKItem'),
    peakBuffered: runs[0].peakBuffered === undefined ? undefined : Math.max(...runs.map((r) => r.peakBuffered)),
    // The tracker's runs: how long the calls took, and the share of the items the sink had by then.
    callsDoneShare: runs[0].callsDoneMs === undefined ? undefined : median(runs.map((r) => r.callsDoneMs / r.wallMs)),
    sentDuringCallsShare: runs[0].sentDuringCalls === undefined ? undefined : median(runs.map((r) => r.sentDuringCalls / r.calls)),
    exactlyOnce: runs.every((r) => r.exactlyOnce),
    dropped: runs.reduce((n, r) => n + (r.dropped ?? 0), 0),
    failed: runs.reduce((n, r) => n + (r.failed ?? 0), 0)
  }
}

/**
 * The environment of a measured process. A build outside this repository (--compare)
 * resolves the packages it loads lazily (undici, lru-cache) from ours, as it would from its own.
 */
function envOf (env) {
  const all = { ...process.env, ...env }
  if (env.KOALA_DIST !== undefined) all.NODE_PATH = [join(here, '..', 'node_modules'), process.env.NODE_PATH].filter(Boolean).join(':')
  return all
}

function node (file, argv = [], env = {}) {
  return JSON.parse(execFileSync(process.execPath, [join(here, file), ...argv], { encoding: 'utf8', env: envOf(env) }).trim().split('\n').pop())
}

async function coldStart (n = 15, env = {}) {
  const runs = { tracker: [], eager: [], import: [], noCodeCache: [] }
  for (let i = 0; i < n; i++) {
    for (const mode of ['tracker', 'eager']) runs[mode].push(node('cold.cjs', [mode], env))
    runs.import.push(node('cold.mjs', [], env))
    // Reference: the same build with its code cache turned off (scripts/bundle-core.cjs).
    runs.noCodeCache.push(node('cold.cjs', ['tracker'], { ...env, KOALA_TRACKER_CODE_CACHE: 'off' }))
  }
  // Every measured process must have compiled _core.js the same way, and say which.
  const codeCache = [...new Set([...runs.tracker, ...runs.import].map((r) => r.codeCache))]
  if (codeCache.length !== 1) throw new Error(`cold start: _core.js was compiled in different ways: ${codeCache.join(', ')}`)
  const med = (mode, k) => median(runs[mode].map((r) => r[k]))
  const trivial = Array.from({ length: n }, () => node('cold.cjs', ['trivial']))
  return {
    runs: n,
    totalMs: med('tracker', 'totalMs'),
    requireMs: med('tracker', 'requireMs'),
    createMs: med('tracker', 'createMs'),
    firstCallMs: med('tracker', 'firstCallMs'),
    // What the lazy loading moved to the first send: the event loop blocked from flush() to the next turn.
    firstSendMs: med('tracker', 'firstSendMs'),
    modules: runs.tracker[0].modules,
    codeCache: codeCache[0],
    noCodeCacheTotalMs: med('noCodeCache', 'totalMs'),
    importTotalMs: med('import', 'totalMs'),
    importMs: med('import', 'importMs'),
    eagerDepsMs: med('eager', 'depsMs'),
    trivialModules: trivial[0].modules,
    trivialModulesMs: median(trivial.map((r) => r.totalMs))
  }
}

function machine () {
  const model = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? cpus()[0]?.model
  return { cpu: model, cores: cpus().length, node: process.version, platform: `${process.platform} ${process.arch}`, loadAvg: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ') }
}

/** Rewrites the results section and the chart from benchmarks/results/latest.json (after a change to report.mjs). */
function writeResults (results) {
  // The soak runs on its own (--soak); its latest result is the soak row of the targets.
  const soakFile = join(here, 'results', 'soak.json')
  const soak = existsSync(soakFile) ? JSON.parse(readFileSync(soakFile, 'utf8')) : undefined
  const table = renderTable({ ...results, soak })
  const doc = join(root, 'docs', 'benchmarks.md')
  const text = readFileSync(doc, 'utf8')
  const start = '<!-- results:start -->'
  const end = '<!-- results:end -->'
  const a = text.indexOf(start)
  const b = text.indexOf(end)
  if (a === -1 || b === -1) throw new Error('docs/benchmarks.md has no results markers')
  writeFileSync(doc, text.slice(0, a + start.length) + '\n' + table + '\n' + text.slice(b))
  writeFileSync(join(root, 'docs', 'benchmarks.svg'), renderChart(results))
  return table
}

async function main () {
  if (flag('--render')) {
    process.stdout.write(writeResults(JSON.parse(readFileSync(join(here, 'results', 'latest.json'), 'utf8'))) + '\n')
    const { renderSoak } = await import('./soak.mjs')
    process.stdout.write(renderSoak(JSON.parse(readFileSync(join(here, 'results', 'soak.json'), 'utf8'))) + '\n')
    return
  }
  if (flag('--soak')) {
    const { soak } = await import('./soak.mjs')
    await soak(Number(value('--soak', 10)))
    return
  }
  const started = new Date()
  const sink = await startSink()
  const results = { date: started.toISOString(), machine: machine(), repeat, scenarios: {} }
  log(`koala-tracker benchmark: ${results.machine.cores} cores, ${results.machine.cpu}, node ${results.machine.node}, load ${results.machine.loadAvg}`)
  try {
    log('warming the sink up (one run of the floor, not measured)')
    // One unmeasured run first: a fresh sink process compiles its code during its first run,
    // which made the first measured run of every benchmark ~20% slower than the others.
    await measure(sink, 'pool', scenarios[0])
    for (const name of scenarios) {
      log(`${name}: ${SCENARIOS[name].title}`)
      const runs = { pool: [], yield: [], tight: [], other: [] }
      for (let r = 0; r < repeat; r++) {
        // Interleaved, so that a noisy moment hits every variant alike.
        runs.pool.push(await measure(sink, 'pool', name))
        runs.yield.push(await measure(sink, 'tracker', name, 'yield'))
        runs.tight.push(await measure(sink, 'tracker', name, 'tight'))
        // The other build runs with this build's buffer cap, so that both hold every call.
        if (compare !== undefined) runs.other.push(await measure(sink, 'tracker', name, 'yield', { KOALA_DIST: compare, BENCH_OPTS: '{"maxBufferedItems":200000}' }))
      }
      const heap = await measure(sink, 'heap', name)
      // Every call of the heap run must be held (the warm-up call included): nothing sent, nothing dropped.
      if (heap.buffered !== heap.items + 1 || heap.sent !== 0 || heap.dropped !== 0) throw new Error(`${name} heap run: ${JSON.stringify(heap)}`)
      log(`  ${name} heap: ${heap.bytesPerItem.toFixed(0)} bytes per buffered item (the items as JSON strings: ${heap.jsonBytesPerItem.toFixed(0)})`)
      results.scenarios[name] = {
        title: SCENARIOS[name].title,
        calls: SCENARIOS[name].calls,
        pool: summarise(runs.pool),
        tracker: summarise(runs.yield),
        tight: summarise(runs.tight),
        heap
      }
      if (compare !== undefined) {
        results.scenarios[name].other = summarise(runs.other)
        results.scenarios[name].otherHeap = await measure(sink, 'heap', name, 'yield', { KOALA_DIST: compare })
      }
    }
  } finally {
    sink.stop()
  }
  log('cold start')
  results.coldStart = await coldStart(smoke ? 1 : 15)
  if (compare !== undefined) results.otherColdStart = await coldStart(15, { KOALA_DIST: compare })
  log(`  ${results.coldStart.totalMs.toFixed(1)} ms to the first accepted call with require (${results.coldStart.modules} modules), ${results.coldStart.importTotalMs.toFixed(1)} ms with import`)
  if (!smoke) {
    log('micro-benchmarks')
    results.micro = node('micro.cjs').micro
    for (const m of results.micro) log(`  ${m.name}: ${m.ns.toFixed(0)} ns (${m.ratio.toFixed(2)}× JSON.stringify)`)
  }
  if (flag('--peers') && !smoke) {
    const { peers } = await import('./peers.mjs')
    results.peers = await peers()
  }

  if (smoke) {
    process.stdout.write(renderTable(results) + '\n')
    return
  }
  mkdirSync(join(here, 'results'), { recursive: true })
  const file = resultsFile({ compare, writeDocs })
  writeFileSync(join(here, 'results', file), JSON.stringify(results, null, 2) + '\n')
  process.stdout.write(renderTable(results) + '\n')
  if (writeDocs) {
    writeResults(results)
    log('wrote docs/benchmarks.md (results section), docs/benchmarks.svg, benchmarks/results/latest.json')
  } else {
    log(`wrote benchmarks/results/${file}`)
  }
}

await main()
