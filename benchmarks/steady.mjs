// Steady load and backlog flush: what the tracker does to its host's event loop.
//   node benchmarks/steady.mjs [options]      or      npm run bench -- --steady [options]
//   --dist PATH         the build to measure (a dist directory; default ./dist)
//   --compare PATH      also that build, interleaved (side by side)
//   --rates 5000,20000  calls per second; --people 10000; --seconds 15 (longer than one 10 s flush interval)
//   --backlog-items 200000 --backlog-people 10000
//   --no-peers          without posthog-node (installed on demand into benchmarks/.peers, as by peers.mjs)
//   --smoke             a couple of seconds at low rates, no peers, nothing written; fails on loss
// Each run is a fresh producer process against the sink in its own process. At each rate: the
// pacing loop alone (the producer's own event-loop delay), then the tracker, then posthog-node.
// Writes benchmarks/results/steady.json (steady-compare.json with --compare).
import { execFileSync } from 'node:child_process'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { DEFAULT_DIST } from './load-build.mjs'
import { install } from './peers.mjs'
import { startSink } from './sink-process.mjs'
import { log, machine, parseArgs, writeResults } from './util.mjs'

const here = dirname(fileURLToPath(import.meta.url))

export const STEADY_TARGETS = { refused: 0, lost: 0, delayMaxMs: 20, delayP99Ms: 5, backlogMaxMs: 20 }

const f = (x, d = 1) => x === undefined ? '–' : x.toFixed(d)
const int = (x) => x === undefined ? '–' : Math.round(x).toLocaleString('en-US')

/** One producer process, and what the sink received from it. */
export async function run (sink, config) {
  const expected = config.mode === 'backlog' ? config.items : Math.round(config.rate * config.seconds)
  await sink.reset(expected)
  const out = execFileSync(process.execPath, ['--expose-gc', join(here, 'steady-producer.mjs'), JSON.stringify({ ...config, port: sink.port })],
    { encoding: 'utf8', maxBuffer: 1 << 24 })
  const r = JSON.parse(out.trim().split('\n').pop())
  const s = await sink.report()
  if (config.sdk !== 'loop') {
    // Delivered: items received at least once. The tracker's refusals are not losses; any other SDK's drops are.
    r.delivered = expected - s.missing
    r.lost = (r.accepted ?? expected) - r.delivered
    r.duplicates = s.duplicated
    r.requests ??= s.requests
  }
  return r
}

function verdict (r, backlog = false) {
  const t = STEADY_TARGETS
  const misses = []
  if (!backlog && r.refused !== t.refused) misses.push(`refused ${int(r.refused)}`)
  if (r.lost !== t.lost || r.duplicates !== 0) misses.push(`lost ${int(r.lost)}, duplicates ${int(r.duplicates)}`)
  const d = r.eventLoopDelayMs
  if (d.max > (backlog ? t.backlogMaxMs : t.delayMaxMs)) misses.push(`max ${f(d.max)} ms`)
  if (!backlog && d.p99 > t.delayP99Ms) misses.push(`p99 ${f(d.p99)} ms`)
  return misses.length === 0 ? 'met' : `**not met** (${misses.join(', ')})`
}

function describe (label, r) {
  const d = r.eventLoopDelayMs
  const stalls = r.stalls?.length ? `, turns > 20 ms at ${r.stalls.slice(0, 6).map((s) => `${s.atS}s: ${s.ms}`).join(', ')}${r.stalls.length > 6 ? ', …' : ''} ms` : ''
  const delivery = r.delivered === undefined ? '' : `; accepted ${int(r.accepted ?? r.calls)}, refused ${int(r.refused)}, delivered ${int(r.delivered)}, lost ${int(r.lost)}, duplicates ${int(r.duplicates)}`
  log(`  ${label}: event-loop delay p50 ${f(d.p50, 2)} / p99 ${f(d.p99, 2)} / max ${f(d.max)} ms${stalls}${delivery}`)
}

export function renderSteady (r) {
  const out = []
  const t = STEADY_TARGETS
  out.push(`Steady load, ${int(r.people)} people (UUID v4 profile_ids, round-robin), ${r.seconds} s per run; ` +
    `build ${r.dist}${r.compare ? `, other build ${r.compare}` : ''}; ${r.machine.cores} cores (${r.machine.cpu}), Node ${r.machine.node}, load at start ${r.machine.loadAvg}. ` +
    'Event-loop delay: `monitorEventLoopDelay({ resolution: 1 })` in the producer while it makes its calls (an idle loop reads ~1.1 ms: the 1 ms sampling interval is in every figure). ' +
    `Targets for the tracker: refused ${t.refused}, lost ${t.lost}, delay max ≤ ${t.delayMaxMs} ms and p99 ≤ ${t.delayP99Ms} ms.`)
  out.push('')
  out.push('| Calls/s | Variant | Calls | Accepted | Refused (queue_full) | Delivered | Lost | Duplicates | Delay p50 ms | p99 ms | max ms | Turns > 20 ms | Producer CPU µs/call | Targets |')
  out.push('|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|')
  for (const row of r.steady) {
    for (const [label, x] of [['pacing loop alone', row.loop], ['tracker', row.tracker], ['other build (--compare)', row.other], ['posthog-node (defaults)', row.posthog]]) {
      if (x === undefined) continue
      const d = x.eventLoopDelayMs
      const sdk = x.sdk !== 'loop'
      out.push(`| ${int(row.rate)} | ${label} | ${int(x.calls)} | ${sdk ? int(x.accepted ?? x.calls) : '–'} | ${x.refused === undefined ? '–' : `${int(x.refused)} (${int(x.queueFull)})`} | ` +
        `${sdk ? int(x.delivered) : '–'} | ${sdk ? int(x.lost) : '–'} | ${sdk ? int(x.duplicates) : '–'} | ${f(d.p50, 2)} | ${f(d.p99, 2)} | ${f(d.max)} | ${x.stallCount} | ${f(x.cpuPerCallUs, 2)} | ` +
        `${x.sdk === 'tracker' ? verdict(x) : '–'} |`)
    }
  }
  out.push('')
  out.push(`Backlog flush: ${int(r.backlogItems)} items over ${int(r.backlogPeople)} people held (flushIntervalMs 600,000), then one \`flush()\`; ` +
    `the event loop measured from the call until it resolves. Target: the longest blocked turn ≤ ${t.backlogMaxMs} ms.`)
  out.push('')
  out.push('| Build | Buffered | flush() call, ms | until resolved, ms | Delay max ms | Longest timer gap ms (at ms) | Turns > 20 ms | Delivered | Lost | Duplicates | Target |')
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|')
  for (const [label, x] of Object.entries(r.backlog)) {
    out.push(`| ${label} | ${int(x.buffered)} | ${f(x.flushCallMs)} | ${f(x.flushMs, 0)} | ${f(x.eventLoopDelayMs.max)} | ${f(x.longestGap.ms)} (${f(x.longestGap.atMs, 0)}) | ${x.turnsOver20ms} | ` +
      `${int(x.delivered)} | ${int(x.lost)} | ${int(x.duplicates)} | ${verdict(x, true)} |`)
  }
  return out.join('\n')
}

export async function main (argv) {
  const { flag, value, number } = parseArgs(argv)
  const smoke = flag('--smoke')
  const dist = resolve(value('--dist', DEFAULT_DIST))
  const compare = value('--compare', undefined)
  const rates = value('--rates', smoke ? '500,1000' : '5000,20000').split(',').map(Number)
  const people = number('--people', smoke ? 200 : 10_000)
  const seconds = number('--seconds', smoke ? 2 : 15)
  const backlogItems = number('--backlog-items', smoke ? 2_000 : 200_000)
  const backlogPeople = number('--backlog-people', smoke ? 100 : 10_000)
  const posthog = flag('--peers') || (!smoke && !flag('--no-peers'))
  if (posthog) install()
  const builds = { tracker: dist, ...(compare === undefined ? {} : { other: resolve(compare) }) }
  const results = { date: new Date().toISOString(), machine: machine(), dist, compare, people, seconds, backlogItems, backlogPeople, steady: [], backlog: {} }
  const sink = await startSink()
  try {
    for (const rate of rates) {
      log(`steady load: ${rate} calls/s over ${people} people for ${seconds} s`)
      const base = { mode: 'steady', rate, people, seconds }
      const row = { rate }
      row.loop = await run(sink, { ...base, sdk: 'loop' })
      describe('pacing loop alone', row.loop)
      for (const [name, d] of Object.entries(builds)) {
        row[name] = await run(sink, { ...base, sdk: 'tracker', dist: d })
        describe(name === 'tracker' ? `tracker (${d})` : `other build (${d})`, row[name])
      }
      if (posthog) {
        row.posthog = await run(sink, { ...base, sdk: 'posthog' })
        describe('posthog-node', row.posthog)
      }
      results.steady.push(row)
    }
    log(`backlog flush: ${backlogItems} items over ${backlogPeople} people`)
    for (const [name, d] of Object.entries(builds)) {
      const x = results.backlog[name] = await run(sink, { mode: 'backlog', sdk: 'tracker', dist: d, items: backlogItems, people: backlogPeople })
      log(`  ${name}: flush() call ${f(x.flushCallMs)} ms, resolved after ${f(x.flushMs, 0)} ms, delay max ${f(x.eventLoopDelayMs.max)} ms, ` +
        `${x.turnsOver20ms} turns > 20 ms; delivered ${int(x.delivered)} of ${int(x.buffered)}, lost ${int(x.lost)}, duplicates ${int(x.duplicates)}`)
    }
  } finally {
    sink.stop()
  }
  process.stdout.write(renderSteady(results) + '\n')
  if (smoke) {
    // A smoke run checks that everything runs and delivers; its timings mean nothing.
    const tracked = [...results.steady.flatMap((row) => [row.tracker, row.other]), ...Object.values(results.backlog)].filter(Boolean)
    const bad = tracked.filter((x) => x.lost !== 0 || x.duplicates !== 0 || x.refused !== 0)
    if (bad.length > 0) throw new Error(`steady --smoke: loss, duplicates or refusals in ${bad.length} run(s)`)
    return results
  }
  writeResults(compare === undefined ? 'steady.json' : 'steady-compare.json', results)
  return results
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) await main(process.argv.slice(2))
