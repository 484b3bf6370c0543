// `npm run bench`: every measurement in a fresh process, against a sink in its
// own process on 127.0.0.1, with the raw undici Pool measured in the same run
// as the floor. Writes benchmarks/results/*.json and prints markdown tables on stdout.
//
//   npm run bench                      S1–S3 against the floor, heap per buffered item, cold start (3 repeats)
//   npm run bench -- --repeat 5        more repeats (medians are reported)
//   npm run bench -- --scenarios S1    some scenarios only (results in results/partial.json)
//   npm run bench -- --dist PATH       the build to measure (a dist directory with its package.json one level up; default ./dist)
//   npm run bench -- --compare PATH    also that build's tracker, interleaved (before/after ratios; results/compare.json)
//   npm run bench -- --peers           also Segment's and PostHog's SDKs (installs them into benchmarks/.peers)
//   npm run bench -- --soak [minutes]  only the soak (default 10 minutes)
//   npm run bench -- --steady          only the steady load and the backlog flush (steady.mjs: its options there)
//   npm run bench -- --app             only the Express app benchmark (app.mjs: its options there)
//   npm run bench -- --delivery        only the delivery benchmarks: faults, outage, latency (delivery.mjs: its options there)
//   npm run bench -- --spool           only S1–S3 and the steady load in memory and with the disk spool (spool.mjs: its options there)
//   npm run bench -- --fleet           only S1–S3 in memory and in fleet mode through Redis, and one person from several processes (fleet.mjs)
//   npm run bench -- --render          print the tables of results/latest.json again (no measuring)
//   npm run bench:smoke                everything above but peers and soak, scaled down, once: fails on any loss,
//                                      duplicate or crash, writes nothing (node benchmarks/run.mjs --smoke;
//                                      with --steady, --app, --delivery, --spool or --fleet, only those, scaled down)
// --steady, --app and --delivery take --dist and --compare too; --spool and --fleet take --dist.
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DEFAULT_DIST } from './load-build.mjs'
import { clean, renderTable, resultsFile } from './report.mjs'
import { exactlyOnce, startSink } from './sink-process.mjs'
import { applySmokeScale, log, machine, median, parseArgs, writeResults } from './util.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const args = process.argv.slice(2)
const { flag, value } = parseArgs(args)
const smoke = flag('--smoke')
applySmokeScale(smoke)
const { SCENARIOS } = await import('./scenarios.mjs')
const repeat = smoke ? 1 : Number(value('--repeat', 3))
const only = value('--scenarios', undefined)?.split(',')
const scenarios = only ?? Object.keys(SCENARIOS)
const dist = resolve(value('--dist', DEFAULT_DIST))
const compare = value('--compare', undefined) && resolve(value('--compare'))
const modes = ['--steady', '--app', '--delivery', '--spool', '--fleet'].filter(flag)

/** Runs one producer process and checks what the sink received. */
async function measure (sink, mode, scenario, loop = 'yield', build = dist) {
  const expected = SCENARIOS[scenario].calls
  await sink.reset(expected)
  const out = execFileSync(process.execPath, ['--expose-gc', join(here, 'producer.mjs'), mode, scenario, String(sink.port), loop],
    { encoding: 'utf8', env: { ...process.env, KOALA_DIST: build }, maxBuffer: 1 << 24 })
  const r = JSON.parse(out.trim().split('\n').pop())
  if (mode === 'heap') return r
  const s = await sink.report()
  r.exactlyOnce = exactlyOnce(s, expected)
  // Per delivered item: a run that lost items must not look cheaper for it.
  r.itemsPerSec = s.items / (r.wallMs / 1000)
  r.cpuPerItemUs = r.cpuMicros / s.items
  r.requestsMade = s.requests
  log(`  ${scenario} ${mode}${mode === 'tracker' ? `/${loop}${build === dist ? '' : ' (other build)'}` : ''}: ${Math.round(r.itemsPerSec)} items/s, ` +
    `${r.cpuPerItemUs.toFixed(2)} µs CPU/item${r.callNs !== undefined ? `, ${(r.callNs / 1000).toFixed(2)} µs/call, peak in flight ${r.peakInFlight}` : ''}, ` +
    `${s.requests} requests, ${r.exactlyOnce && !r.dropped && !r.failed ? 'every item exactly once' : `LOSS/DUPLICATES: ${JSON.stringify(s)} dropped=${r.dropped} failed=${r.failed}`}`)
  return r
}

function summarise (runs) {
  const pick = (k) => runs[0][k] === undefined ? undefined : median(runs.map((r) => r[k]))
  return {
    runs: runs.length,
    itemsPerSec: pick('itemsPerSec'),
    cpuPerItemUs: pick('cpuPerItemUs'),
    callUs: runs[0].callNs === undefined ? undefined : pick('callNs') / 1000,
    requests: pick('requestsMade'),
    peakRssMB: pick('maxRssBytes') / 2 ** 20,
    peakInFlight: runs[0].peakInFlight === undefined ? undefined : Math.max(...runs.map((r) => r.peakInFlight)),
    cpuPerItemUsEach: runs.map((r) => +r.cpuPerItemUs.toFixed(2)),
    exactlyOnce: runs.every((r) => r.exactlyOnce),
    dropped: runs.reduce((n, r) => n + (r.dropped ?? 0), 0),
    failed: runs.reduce((n, r) => n + (r.failed ?? 0), 0)
  }
}

function node (file, argv = [], build = dist) {
  return JSON.parse(execFileSync(process.execPath, [join(here, file), ...argv], { encoding: 'utf8', env: { ...process.env, KOALA_DIST: build } }).trim().split('\n').pop())
}

async function coldStart (n, build) {
  const runs = { tracker: [], eager: [], import: [] }
  for (let i = 0; i < n; i++) {
    for (const mode of ['tracker', 'eager']) runs[mode].push(node('cold.cjs', [mode], build))
    runs.import.push(node('cold.mjs', [], build))
  }
  const med = (mode, k) => median(runs[mode].map((r) => r[k]))
  return {
    runs: n,
    totalMs: med('tracker', 'totalMs'),
    requireMs: med('tracker', 'requireMs'),
    createMs: med('tracker', 'createMs'),
    firstCallMs: med('tracker', 'firstCallMs'),
    // What the lazy loading moved to the first send: the event loop blocked from flush() to the next turn.
    firstSendMs: med('tracker', 'firstSendMs'),
    modules: runs.tracker[0].modules,
    importTotalMs: med('import', 'totalMs'),
    eagerDepsMs: med('eager', 'depsMs')
  }
}

/** S1–S3: the floor and the tracker interleaved, then the heap held per item. */
async function scenarioRuns () {
  const results = {}
  const sink = await startSink()
  try {
    log('warming the sink up (one run of the floor, not measured)')
    // A fresh sink process compiles its code during its first run, which made the
    // first measured run of every benchmark ~20% slower than the others.
    await measure(sink, 'pool', scenarios[0])
    for (const name of scenarios) {
      log(`${name}: ${SCENARIOS[name].title}`)
      const runs = { pool: [], yield: [], tight: [], other: [] }
      for (let r = 0; r < repeat; r++) {
        // Interleaved, so that a noisy moment hits every variant alike.
        runs.pool.push(await measure(sink, 'pool', name))
        runs.yield.push(await measure(sink, 'tracker', name, 'yield'))
        runs.tight.push(await measure(sink, 'tracker', name, 'tight'))
        if (compare !== undefined) runs.other.push(await measure(sink, 'tracker', name, 'yield', compare))
      }
      const x = results[name] = {
        title: SCENARIOS[name].title,
        calls: SCENARIOS[name].calls,
        pool: summarise(runs.pool),
        tracker: summarise(runs.yield),
        tight: summarise(runs.tight),
        heap: await heapRun(sink, name, dist)
      }
      if (compare !== undefined) {
        x.other = summarise(runs.other)
        x.otherHeap = await heapRun(sink, name, compare)
      }
    }
  } finally {
    sink.stop()
  }
  return results
}

async function heapRun (sink, name, build) {
  const heap = await measure(sink, 'heap', name, 'yield', build)
  // Every call of the heap run must be held (the warm-up call included): nothing sent, nothing dropped.
  if (heap.buffered !== heap.items + 1 || heap.sent !== 0 || heap.dropped !== 0) throw new Error(`${name} heap run: ${JSON.stringify(heap)}`)
  log(`  ${name} heap${build === dist ? '' : ' (other build)'}: ${heap.bytesPerItem.toFixed(0)} bytes per buffered item (the items as JSON strings: ${heap.jsonBytesPerItem.toFixed(0)})`)
  return heap
}

async function main () {
  if (flag('--render')) {
    const latest = JSON.parse(readFileSync(join(here, 'results', 'latest.json'), 'utf8'))
    const soakFile = join(here, 'results', 'soak.json')
    const soak = existsSync(soakFile) ? JSON.parse(readFileSync(soakFile, 'utf8')) : undefined
    process.stdout.write(renderTable({ ...latest, soak }) + '\n')
    if (soak !== undefined) process.stdout.write('\n' + (await import('./soak.mjs')).renderSoak(soak) + '\n')
    return
  }
  if (flag('--soak')) {
    await (await import('./soak.mjs')).soak(Number(value('--soak', 10)), undefined, { KOALA_DIST: dist })
    return
  }
  // The smoke covers every part; otherwise --steady, --app, --delivery, --spool or --fleet run those alone.
  if (modes.length > 0 || smoke) {
    const all = modes.length === 0
    const parts = { '--steady': './steady.mjs', '--app': './app.mjs', '--delivery': './delivery.mjs', '--spool': './spool.mjs', '--fleet': './fleet.mjs' }
    if (all) await scenariosAndColdStart()
    for (const [name, file] of Object.entries(parts)) {
      if (all || flag(name)) await (await import(file)).main(args)
    }
    if (smoke) log('smoke: every benchmark ran, nothing lost or duplicated')
    return
  }
  await scenariosAndColdStart()
}

async function scenariosAndColdStart () {
  const results = { date: new Date().toISOString(), machine: machine(), dist, compare, repeat }
  log(`koala-tracker benchmark of ${dist}: ${results.machine.cores} cores, ${results.machine.cpu}, node ${results.machine.node}, load ${results.machine.loadAvg}`)
  results.scenarios = await scenarioRuns()
  log('cold start')
  results.coldStart = await coldStart(smoke ? 1 : 15, dist)
  if (compare !== undefined) results.otherColdStart = await coldStart(15, compare)
  log(`  ${results.coldStart.totalMs.toFixed(1)} ms to the first accepted call with require (${results.coldStart.modules} modules), ${results.coldStart.importTotalMs.toFixed(1)} ms with import`)
  if (flag('--peers') && !smoke) {
    const { peers } = await import('./peers.mjs')
    // The peers are measured on the track-only scenarios, and compared with the tracker's figures of this run.
    results.peers = await peers(scenarios.filter((n) => n !== 'S3'))
  }
  process.stdout.write(renderTable(results) + '\n')
  const dirty = Object.entries(results.scenarios).filter(([, s]) => !clean(s.tracker) || !clean(s.tight) || (s.other !== undefined && !clean(s.other)))
  if (dirty.length > 0) {
    process.exitCode = 1
    log(`LOSS, DUPLICATES OR REFUSALS in ${dirty.map(([n]) => n).join(', ')}`)
  }
  if (smoke) {
    if (dirty.length > 0) throw new Error('smoke: the scenarios lost or duplicated items')
    return
  }
  writeResults(resultsFile({ compare, partial: only !== undefined }), results)
}

await main()
