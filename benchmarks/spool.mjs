// The local disk spool: what `spool: { dir }` costs against the tracker in memory, in the same run.
//   npm run bench -- --spool [options]      or      node benchmarks/spool.mjs [options]
//   --dist PATH         the build to measure (a dist directory; default ./dist)
//   --repeat 3          runs of each variant (medians are reported)
//   --rates 5000,20000  the steady load's calls per second; --people 10000; --seconds 15
//   --smoke             scaled down, once, nothing written; fails on loss, duplicates or anything left in the spool
// S1–S3 (producer.mjs, the tracker with a yielding producer) and the steady load (steady-producer.mjs), each run
// twice per repeat, interleaved (which goes first alternates): in memory, and with `spool: { dir }` in a fresh
// temporary directory, deleted after the run (every other spool option its default: fsync 'interval' every 1 s,
// 8 MiB segments). CPU is the producer's, until close() resolves, per item the sink received. Disk bytes are what
// the spool handed to write() for its segment files (framed records and headers) and its .ack files (util.mjs).
// Writes benchmarks/results/spool.json.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { DEFAULT_DIST } from './load-build.mjs'
import { exactlyOnce, startSink } from './sink-process.mjs'
import { applySmokeScale, log, machine, median, parseArgs, writeResults } from './util.mjs'

const here = dirname(fileURLToPath(import.meta.url))

export const SPOOL_TARGETS = { cpuRatio: 1.5, delayMaxMs: 20, delayP99Ms: 5 }

const f = (x, d = 2) => x === undefined ? '–' : x.toFixed(d)

/** One run, with a fresh spool directory (or none); what the spool left in it is counted before it is deleted. */
async function withSpool (spooled, measure) {
  if (!spooled) return measure(undefined)
  const dir = mkdtempSync(join(tmpdir(), 'koala-bench-spool-'))
  try {
    const r = await measure(dir)
    r.spool.filesLeft = readdirSync(dir).length
    return r
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** A burst scenario: one producer.mjs process in its 'tracker' mode. */
async function burst (sink, SCENARIOS, name, dist, spoolDir) {
  const expected = SCENARIOS[name].calls
  await sink.reset(expected)
  const env = { ...process.env, KOALA_DIST: dist, ...(spoolDir && { BENCH_SPOOL_DIR: spoolDir }) }
  const out = execFileSync(process.execPath, ['--expose-gc', join(here, 'producer.mjs'), 'tracker', name, String(sink.port), 'yield'], { encoding: 'utf8', env, maxBuffer: 1 << 24 })
  const r = JSON.parse(out.trim().split('\n').pop())
  const s = await sink.report()
  return { cpuPerItemUs: r.cpuMicros / s.items, wallMs: r.wallMs, delivered: s.items, clean: exactlyOnce(s, expected) && r.dropped === 0 && r.failed === 0, spool: r.spool }
}

/** The steady load: one steady-producer.mjs process (steady.mjs's run, which checks the sink). */
async function steady (steadyRun, sink, config, spoolDir) {
  const r = await steadyRun(sink, { ...config, spoolDir })
  return { cpuPerItemUs: r.cpuWithCloseMicros / r.delivered, delay: r.eventLoopDelayMs, delivered: r.delivered, clean: r.lost === 0 && r.duplicates === 0 && r.refused === 0, spool: r.spool }
}

/** Whether a spooled run ended with nothing in the spool: every record settled, no error, an empty directory. */
const spoolClean = (s) => s.items === 0 && s.errors === 0 && s.corruptRecords === 0 && s.filesLeft === 0

function summarise (runs) {
  const x = {
    cpuPerItemUs: median(runs.map((r) => r.cpuPerItemUs)),
    cpuPerItemUsEach: runs.map((r) => +r.cpuPerItemUs.toFixed(2)),
    exactlyOnce: runs.every((r) => r.clean)
  }
  if (runs[0].delay !== undefined) {
    // p50 and p99 the medians of the runs, max the largest of any run.
    x.delayMs = { p50: median(runs.map((r) => r.delay.p50)), p99: median(runs.map((r) => r.delay.p99)), max: Math.max(...runs.map((r) => r.delay.max)) }
    x.delayMsEach = runs.map((r) => r.delay)
  }
  if (runs[0].spool !== undefined) {
    x.spoolClean = runs.every((r) => spoolClean(r.spool))
    x.diskBytesPerItem = median(runs.map((r) => r.spool.segmentBytes / r.delivered))
    x.ackBytesPerItem = median(runs.map((r) => r.spool.ackBytes / r.delivered))
    x.spoolEnd = runs.map((r) => r.spool)
  }
  return x
}

function verdict (row) {
  const t = SPOOL_TARGETS
  const misses = []
  if (!row.memory.exactlyOnce || !row.spool.exactlyOnce || !row.spool.spoolClean) misses.push('loss, duplicates or a spool not emptied')
  if (row.ratio > t.cpuRatio) misses.push(`CPU ${f(row.ratio)}×`)
  const d = row.spool.delayMs
  if (d !== undefined && d.max > t.delayMaxMs) misses.push(`max ${f(d.max, 1)} ms`)
  if (d !== undefined && d.p99 > t.delayP99Ms) misses.push(`p99 ${f(d.p99)} ms`)
  return misses.length === 0 ? 'met' : `**not met** (${misses.join(', ')})`
}

export function renderSpool (r) {
  const t = SPOOL_TARGETS
  const delay = (d) => d === undefined ? '–' : `${f(d.p50)} / ${f(d.p99)} / ${f(d.max, 1)}`
  const out = [`Spool against in memory, ${r.repeat} runs of each, interleaved; build ${r.dist}; ${r.machine.cores} cores (${r.machine.cpu}), Node ${r.machine.node}, ` +
    `load at start ${r.machine.loadAvg}; spool in ${r.tmpdir}. Targets with the spool: CPU per item ≤ ${t.cpuRatio}× in memory, every item exactly once, ` +
    `delay max ≤ ${t.delayMaxMs} ms and p99 ≤ ${t.delayP99Ms} ms.`, '']
  out.push('| Scenario | CPU µs/item, in memory | with spool | Spool / memory | Exactly once (memory, spool) | Delay p50 / p99 / max ms, in memory | with spool | Disk bytes/item (+ .ack) | Targets |')
  out.push('|---|---:|---:|---:|---|---|---|---:|---|')
  for (const [name, row] of Object.entries(r.scenarios)) {
    const m = row.memory
    const s = row.spool
    out.push(`| ${name} | ${f(m.cpuPerItemUs)} | ${f(s.cpuPerItemUs)} | ${f(row.ratio)}× | ${m.exactlyOnce ? 'yes' : 'NO'}, ${s.exactlyOnce && s.spoolClean ? 'yes' : 'NO'} | ` +
      `${delay(m.delayMs)} | ${delay(s.delayMs)} | ${f(s.diskBytesPerItem, 0)} (+ ${f(s.ackBytesPerItem, 1)}) | ${verdict(row)} |`)
  }
  return out.join('\n')
}

export async function main (argv) {
  const { flag, value, number } = parseArgs(argv)
  const smoke = flag('--smoke')
  applySmokeScale(smoke)
  // After the scale is set: steady.mjs loads scenarios.mjs too.
  const { SCENARIOS } = await import('./scenarios.mjs')
  const { run: steadyRun } = await import('./steady.mjs')
  const dist = resolve(value('--dist', DEFAULT_DIST))
  const repeat = smoke ? 1 : number('--repeat', 3)
  const rates = value('--rates', smoke ? '500,1000' : '5000,20000').split(',').map(Number)
  const people = number('--people', smoke ? 200 : 10_000)
  const seconds = number('--seconds', smoke ? 2 : 15)
  const results = { date: new Date().toISOString(), machine: machine(), dist, tmpdir: tmpdir(), repeat, people, seconds, scenarios: {} }
  log(`spool against in memory: ${dist}, ${repeat} run(s) of each`)
  const jobs = [
    ...Object.keys(SCENARIOS).map((name) => [name, SCENARIOS[name].title, (sink, dir) => burst(sink, SCENARIOS, name, dist, dir)]),
    ...rates.map((rate) => [`steady ${rate / 1000}k/s`, `${rate} calls/s over ${people} people for ${seconds} s`,
      (sink, dir) => steady(steadyRun, sink, { mode: 'steady', sdk: 'tracker', dist, rate, people, seconds }, dir)])
  ]
  const sink = await startSink()
  try {
    log('warming the sink up (one run in memory, not measured)')
    await jobs[0][2](sink, undefined)
    for (const [name, title, measure] of jobs) {
      log(`${name}: ${title}`)
      const runs = { memory: [], spool: [] }
      for (let i = 0; i < repeat; i++) {
        for (const spooled of i % 2 === 0 ? [false, true] : [true, false]) {
          const r = await withSpool(spooled, (dir) => measure(sink, dir))
          runs[spooled ? 'spool' : 'memory'].push(r)
          const d = r.delay === undefined ? '' : `, delay p50 ${f(r.delay.p50)} / p99 ${f(r.delay.p99)} / max ${f(r.delay.max, 1)} ms`
          const disk = r.spool === undefined ? '' : `, ${f(r.spool.segmentBytes / r.delivered, 0)} disk bytes/item, spool left ${r.spool.items} items, ${r.spool.filesLeft} files, ${r.spool.errors} errors`
          log(`  ${spooled ? 'spool' : 'memory'}: ${f(r.cpuPerItemUs)} µs CPU/item${d}${disk}, ${r.clean ? 'every item exactly once' : 'LOSS/DUPLICATES'}`)
        }
      }
      const row = results.scenarios[name] = { title, memory: summarise(runs.memory), spool: summarise(runs.spool) }
      row.ratio = row.spool.cpuPerItemUs / row.memory.cpuPerItemUs
    }
  } finally {
    sink.stop()
  }
  process.stdout.write(renderSpool(results) + '\n')
  const bad = Object.entries(results.scenarios).filter(([, row]) => !row.memory.exactlyOnce || !row.spool.exactlyOnce || !row.spool.spoolClean)
  if (bad.length > 0) {
    process.exitCode = 1
    log(`LOSS, DUPLICATES OR A SPOOL NOT EMPTIED in ${bad.map(([n]) => n).join(', ')}`)
    if (smoke) throw new Error('spool --smoke: loss, duplicates or a spool not emptied')
  }
  if (!smoke) writeResults('spool.json', results)
  return results
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) await main(process.argv.slice(2))
