// Delivery when Koala misbehaves: random faults, a full outage, and a slow answer.
//   node benchmarks/delivery.mjs [options]      or      npm run bench -- --delivery [options]
//   --dist PATH        the build to measure (a dist directory; default ./dist)
//   --compare PATH     also that build, run after this one at each benchmark
//   --seed 1 --fault-rate 0.3 --people 2000 --per-person 8 --outage-ms 5000
//   --latency-people 20000 --delay-ms 50 --cap-ms 30000
//   --smoke            scaled down, shorter backoffs, nothing written; fails on loss or duplicates
// Each run is a fresh producer process (delivery-producer.mjs) against the sink (sink.mjs) in its own process:
//   faults    2,000 people × 8 tracks, then flush(): items/s until all are delivered, with the sink failing a
//             seeded 30% of requests (503, 429 without Retry-After, connection resets) and without faults.
//   outage    the same calls; the sink answers 503 to everything for 5 s from the first request.
//   latency   20,000 people, one track each; the sink answers after 50 ms (a timer per request).
// Every run checks delivery by seq and by message_id: a failed request stores nothing, so an id
// stored twice is a duplicate. Writes benchmarks/results/delivery.json (delivery-compare.json with --compare).
import { execFileSync } from 'node:child_process'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { DEFAULT_DIST } from './load-build.mjs'
import { startSink } from './sink-process.mjs'
import { log, machine, parseArgs, writeResults } from './util.mjs'

const here = dirname(fileURLToPath(import.meta.url))

export const DELIVERY_TARGETS = { faultShare: 0.5, requestsPerBackoff: 1, peoplePerSec: 2_000, cpuPerRequestRatio: 1.2 }

const f = (x, d = 1) => x === undefined || Number.isNaN(x) ? '–' : x.toFixed(d)
const int = (x) => x === undefined ? '–' : Math.round(x).toLocaleString('en-US')
const met = (ok) => ok ? 'met' : '**not met**'

/** One producer process against the sink configured by `sinkConfig`, and what the sink stored. */
async function run (sink, o, build, people, perPerson, sinkConfig, settleMs = o.settleMs) {
  const items = people * perPerson
  await sink.reset(items, sinkConfig)
  const config = { dist: build, port: sink.port, people, perPerson, capMs: o.capMs, settleMs, options: o.options }
  const r = JSON.parse(execFileSync(process.execPath, [join(here, 'delivery-producer.mjs'), JSON.stringify(config)],
    { encoding: 'utf8', maxBuffer: 1 << 24 }).trim().split('\n').pop())
  r.sink = await sink.report()
  // Never a duplicate; and every item, unless the run was cut at the cap and closed before the rest was sent.
  r.duplicates = r.sink.duplicated + r.sink.repeatedIds
  r.exactlyOnce = r.duplicates === 0 && r.sink.missing === 0 && r.sink.badSeq === 0 && r.sink.items === items
  r.itemsPerSec = r.deliveredAtEnd / (r.wallMs / 1000)
  return r
}

/**
 * The outage as the sink saw it: requests per second, the first wave (the requests of the first
 * `firstWave`, the limit on requests in flight a tracker starts with), and after it the most requests
 * in any window as long as the shortest backoff (retryBaseDelayMs / 2): one, if everyone waits and one probes.
 */
function outageShape (times, outageMs, backoffMs, firstWave) {
  const later = times.slice(firstWave)
  let most = 0
  for (let i = 0, j = 0; j < later.length; j++) {
    while (later[j] - later[i] >= backoffMs) i++
    most = Math.max(most, j - i + 1)
  }
  return { requests: times.length, perSec: times.length / (outageMs / 1000), firstWave: Math.min(firstWave, times.length), mostPerBackoff: most, backoffMs, times: times.map((t) => Math.round(t)) }
}

function describe (label, r) {
  log(`  ${label}: ${int(r.itemsPerSec)} items/s (${int(r.deliveredAtEnd)} of ${int(r.items)} in ${f(r.wallMs / 1000, 2)} s${r.capped ? ', CAPPED' : ''}), ` +
    `${f(r.attemptsPerBatch, 2)} attempts per batch (most ${r.maxAttempts}), ${r.requests.sent} requests, peak in flight ${r.peakInFlight}; ` +
    `sink: ${int(r.sink.items)} items, missing ${r.sink.missing}, duplicates ${r.duplicates}, faults ${JSON.stringify(r.sink.faults)}; failed ${r.failed}`)
}

export function renderDelivery (r) {
  const t = DELIVERY_TARGETS
  const out = []
  const labels = Object.keys(r.builds)
  out.push(`Delivery, ${r.date.slice(0, 16).replace('T', ' ')} UTC; ${labels.map((l) => `${l}: ${r.builds[l].dist}`).join(', ')}; ` +
    `${r.machine.cores} cores (${r.machine.cpu}), Node ${r.machine.node}, load at start ${r.machine.loadAvg}. ` +
    `Tracker options: ${JSON.stringify(r.options)} (the rest default).`)
  out.push('')
  out.push(`**Faults**: ${int(r.people)} people × ${r.perPerson} tracks, 1,000 calls per turn, then \`flush()\`; items/s until all are delivered ` +
    `(or the ${r.capMs / 1000} s cap). The sink fails ${Math.round(r.faultRate * 100)}% of requests (seed ${r.seed}): 503, 429 without Retry-After, connection resets in turn. ` +
    `Target: with faults, items delivered per second over the first 8 s (the issue's window) ≥ ${Math.round(t.faultShare * 100)}% of the fault-free run's, every item once. ` +
    'The time until all are delivered is bounded below by the unluckiest batch\'s backoff: with the default schedule a batch that fails ' +
    'n times in a row waits 0.25–0.5 s × (2ⁿ − 1) in all, and the most attempts column says how many times that was.')
  out.push('')
  out.push('| Build | Sink | Items/s until all delivered | Delivered within 8 s, % of fault-free | Until 50% delivered, s | Until 90%, s | Until all, s | Attempts per batch (most) | Requests | Faults (503, 429, reset) | Peak in flight | Exactly once | Target |')
  out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|')
  for (const l of labels) {
    const b = r.builds[l]
    for (const [kind, x] of [['fault-free', b.faultFree], ['faults', b.faults]]) {
      // Items delivered within the window (8 s), against the fault-free run's: the issue's measure of delivered items per second.
      const share = x.deliveredInWindow / b.faultFree.deliveredInWindow
      const faults = kind === 'faults' ? `${x.sink.faults[503]}, ${x.sink.faults[429]}, ${x.sink.faults.reset}` : '–'
      out.push(`| ${l} | ${kind} | ${int(x.itemsPerSec)} | ${kind === 'faults' ? `${Math.round(share * 100)}%` : '–'} | ${f(x.at50Ms / 1000, 2)} | ${f(x.at90Ms / 1000, 2)} | ` +
        `${x.capped ? `> ${r.capMs / 1000} (${f((x.allDeliveredAt - x.startedAt) / 1000, 1)})` : f(x.wallMs / 1000, 2)} | ${f(x.attemptsPerBatch, 2)} (${x.maxAttempts}) | ${int(x.requests.sent)} | ${faults} | ` +
        `${x.peakInFlight} | ${x.exactlyOnce ? 'yes' : `**no** (missing ${x.sink.missing}, duplicates ${x.duplicates}, failed ${x.failed})`} | ` +
        `${kind === 'faults' ? met(share >= t.faultShare && x.exactlyOnce) : '–'} |`)
    }
  }
  out.push('')
  out.push(`**Outage**: the same calls; the sink answers 503 to every request for ${r.outageMs / 1000} s from the first one. ` +
    `"First wave": the first ${r.firstWave} requests (the limit on requests in flight both builds start with). ` +
    `After it, the most requests in any ${r.backoffMs} ms (the shortest backoff, \`retryBaseDelayMs\` / 2). ` +
    `Target: at most ${t.requestsPerBackoff} there, every item once after recovery.`)
  out.push('')
  out.push('| Build | Requests during the outage | per second | After the first wave: most in one backoff | Arrival times, ms | First success after the outage, ms | All delivered after the outage, ms | Exactly once | Target |')
  out.push('|---|---:|---:|---:|---|---:|---:|---|---|')
  for (const l of labels) {
    const x = r.builds[l].outage
    const o = x.shape
    out.push(`| ${l} | ${o.requests} | ${f(o.perSec)} | ${o.mostPerBackoff} | ${o.times.join(', ')} | ${f(x.recovery.firstMs, 0)} | ${f(x.recovery.allMs, 0)} | ` +
      `${x.exactlyOnce ? 'yes' : `**no** (missing ${x.sink.missing}, duplicates ${x.duplicates})`} | ${met(o.mostPerBackoff <= t.requestsPerBackoff && x.exactlyOnce)} |`)
  }
  out.push('')
  const base = r.builds.other?.latency
  out.push(`**Latency**: ${int(r.latencyPeople)} people, one track each (one request per person), 1,000 calls per turn, then \`flush()\`; ` +
    `the sink answers after ${r.delayMs} ms. People delivered per second until all are (or the ${r.capMs / 1000} s cap), and the producer's CPU ` +
    `(user + system, from \`createTracker()\` to then) per request. Targets: ≥ ${int(t.peoplePerSec)} people/s` +
    `${base ? `, CPU per request ≤ ${t.cpuPerRequestRatio}× the other build's` : ''}.`)
  out.push('')
  out.push('| Build | People delivered/s | Delivered (of all) | Time, s | CPU µs per request | × other | Peak in flight | Peak limit | Duplicates | Target |')
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|')
  for (const l of labels) {
    const x = r.builds[l].latency
    const ratio = base ? x.cpuPerRequestUs / base.cpuPerRequestUs : undefined
    const ok = x.itemsPerSec >= t.peoplePerSec && x.duplicates === 0 && x.exactlyOnce && (l !== 'this' || ratio === undefined || ratio <= t.cpuPerRequestRatio)
    out.push(`| ${l} | ${int(x.itemsPerSec)} | ${int(x.deliveredAtEnd)} (${int(x.items)})${x.capped ? ', capped' : ''} | ${f(x.wallMs / 1000, 2)} | ${f(x.cpuPerRequestUs)} | ` +
      `${l === 'this' && ratio !== undefined ? f(ratio, 2) : '–'} | ${x.peakInFlight} | ${x.peakConcurrency ?? '–'} | ${x.duplicates} | ${l === 'this' ? met(ok) : '–'} |`)
  }
  return out.join('\n')
}

export async function main (argv) {
  const { flag, value, number } = parseArgs(argv)
  const smoke = flag('--smoke')
  const dist = resolve(value('--dist', DEFAULT_DIST))
  const compare = value('--compare', undefined) && resolve(value('--compare'))
  // The smoke shortens the backoffs so that a run takes seconds; the real run uses the defaults.
  const options = smoke ? { retryBaseDelayMs: 50 } : {}
  const o = {
    options,
    capMs: number('--cap-ms', 30_000),
    // After the cap, how long close() may take to deliver the rest: the loss and duplicates are judged then.
    // Long enough for a batch's full retry schedule; the latency runs only need what is in flight.
    settleMs: 150_000
  }
  const r = {
    date: new Date().toISOString(),
    machine: machine(),
    options,
    seed: number('--seed', 1),
    faultRate: number('--fault-rate', 0.3),
    people: number('--people', smoke ? 200 : 2_000),
    perPerson: number('--per-person', 8),
    outageMs: number('--outage-ms', smoke ? 1_000 : 5_000),
    latencyPeople: number('--latency-people', smoke ? 2_000 : 20_000),
    delayMs: number('--delay-ms', 50),
    capMs: o.capMs,
    // Both builds start with 10 requests in flight (the old one never had more).
    firstWave: 10,
    backoffMs: (options.retryBaseDelayMs ?? 500) / 2,
    builds: { this: { dist }, ...(compare === undefined ? {} : { other: { dist: compare } }) }
  }
  const builds = Object.entries(r.builds)
  const sink = await startSink()
  try {
    log(`faults: ${r.people} people × ${r.perPerson} tracks, ${Math.round(r.faultRate * 100)}% of requests failing, and fault-free`)
    for (const [label, b] of builds) {
      b.faultFree = await run(sink, o, b.dist, r.people, r.perPerson, {})
      describe(`${label}, fault-free`, b.faultFree)
      b.faults = await run(sink, o, b.dist, r.people, r.perPerson, { faultRate: r.faultRate, seed: r.seed })
      describe(`${label}, faults`, b.faults)
    }
    log(`outage: 503 to everything for ${r.outageMs} ms`)
    for (const [label, b] of builds) {
      const x = b.outage = await run(sink, o, b.dist, r.people, r.perPerson, { outageMs: r.outageMs })
      x.shape = outageShape(x.sink.outage?.times ?? [], r.outageMs, r.backoffMs, r.firstWave)
      const end = (x.sink.outage?.startedAt ?? 0) + r.outageMs
      x.recovery = { firstMs: x.firstSentAt - end, allMs: x.allDeliveredAt - end }
      describe(`${label}, outage`, x)
      log(`    ${x.shape.requests} requests during the outage (at ${x.shape.times.join(', ')} ms); after the first ${r.firstWave}, ` +
        `at most ${x.shape.mostPerBackoff} in ${r.backoffMs} ms; first success ${f(x.recovery.firstMs, 0)} ms after it, all delivered ${f(x.recovery.allMs, 0)} ms after it`)
    }
    log(`latency: ${r.latencyPeople} people, one track each, answers after ${r.delayMs} ms`)
    for (const [label, b] of builds) {
      const x = b.latency = await run(sink, o, b.dist, r.latencyPeople, 1, { delayMs: r.delayMs }, 1_000)
      x.cpuPerRequestUs = x.cpuMicros / x.requestsAtEnd
      describe(`${label}, latency`, x)
      log(`    ${f(x.cpuPerRequestUs)} µs CPU per request`)
    }
  } finally {
    sink.stop()
  }
  process.stdout.write(renderDelivery(r) + '\n')
  const runs = builds.flatMap(([, b]) => [b.faultFree, b.faults, b.outage, b.latency])
  if (smoke) {
    // The smoke checks that everything runs and delivers every item once; its timings mean nothing.
    const bad = runs.filter((x) => !x.exactlyOnce || x.failed !== 0 || x.dropped !== 0)
    if (bad.length > 0) throw new Error(`delivery --smoke: loss or duplicates in ${bad.length} run(s)`)
    return r
  }
  writeResults(compare === undefined ? 'delivery.json' : 'delivery-compare.json', r)
  // Duplicates are a bug in any build; loss in this one (the other build may be capped and closed).
  if (runs.some((x) => x.duplicates !== 0)) process.exitCode = 1
  return r
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) await main(process.argv.slice(2))
