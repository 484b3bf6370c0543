// What the tracker costs an Express app: the app's own CPU per request, with and without it.
//   node benchmarks/app.mjs [options]      or      npm run bench -- --app [options]
//   --dist PATH        the build to measure (a dist directory; default ./dist)
//   --compare PATH     also that build's tracker variants, interleaved
//   --seconds 10 --warmup 3 --connections 20 --visitors 2000 --repeat 3
//   --smoke            a couple of seconds, one repeat, nothing written; fails on loss
//   --breakdown        also, with returning visitors: the middleware over calls that do nothing, and the
//                      tracker with a transport that answers at once (no HTTP): where a call's cost goes
// The app (app-server.mjs) runs in its own process, its route making 3 tracker calls per request
// (req.koala.page, req.koala.track twice); autocannon drives it closed-loop from this process, and
// the sink takes the tracker's requests in a third. process.cpuUsage() in the app over the measured
// window (after a warm-up) charges the app alone, not the load generator nor the sink.
// Writes benchmarks/results/app.json (app-compare.json with --compare).
import { fork } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import autocannon from 'autocannon'
import { DEFAULT_DIST } from './load-build.mjs'
import { startSink } from './sink-process.mjs'
import { log, machine, median, parseArgs, uuids, writeResults } from './util.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const CALLS_PER_REQUEST = 3
export const APP_TARGETS = { trackerUsPerCall: 8 }

const f = (x, d = 1) => x === undefined ? '–' : x.toFixed(d)
const int = (x) => x === undefined ? '–' : Math.round(x).toLocaleString('en-US')

/**
 * The variants: the app alone (a req.koala that does nothing); the tracker with returning visitors
 * (a pool of ko_id cookies) and with a new visitor per request (no cookie: the middleware mints one);
 * and, for the latter, the floor: one small JSON body per request through a raw undici Pool.
 */
function variants (dist, compare, breakdown) {
  const list = [
    { key: 'none', label: 'no tracker', app: 'none', cookies: true },
    { key: 'returning', label: 'tracker, returning visitors', app: 'tracker', dist, cookies: true },
    { key: 'new', label: 'tracker, a new visitor per request', app: 'tracker', dist, cookies: false },
    { key: 'pool', label: 'raw undici Pool, one POST per request (floor for a new visitor)', app: 'pool', dist, cookies: false }
  ]
  if (breakdown) {
    list.push({ key: 'middleware', label: 'middleware only, calls that do nothing', app: 'middleware', dist, cookies: true },
      { key: 'noHttp', label: 'tracker, returning visitors, a transport that answers at once', app: 'nohttp', dist, cookies: true })
  }
  if (compare !== undefined) {
    list.push({ key: 'otherReturning', label: 'other build, returning visitors', app: 'tracker', dist: compare, cookies: true },
      { key: 'otherNew', label: 'other build, a new visitor per request', app: 'tracker', dist: compare, cookies: false })
  }
  return list
}

/** Whether the variant's calls reach the sink (and are checked there). */
const delivers = (v) => v.app === 'tracker' || v.app === 'pool'

/** One app process: warm-up, the measured window, then close() and the sink's count. */
async function measure (sink, v, o) {
  // The sink sizes its table of seqs at reset; the app's count is known only at the end (sink.report(upTo)).
  await sink.reset(CALLS_PER_REQUEST * 60_000 * (o.warmup + o.seconds))
  // APP_PROF=DIR: a CPU profile of each app process into DIR (where the app's time goes).
  const execArgv = process.env.APP_PROF === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.env.APP_PROF}`]
  const child = fork(join(here, 'app-server.mjs'), [JSON.stringify({ variant: v.app, dist: v.dist, sinkPort: sink.port })],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv })
  const ask = async (type) => {
    child.send({ type })
    for (;;) { const [m] = await once(child, 'message'); if (m.type === type) return m }
  }
  const [{ port }] = await once(child, 'message')
  let k = 0
  const request = { method: 'GET', path: '/pricing' }
  if (v.cookies) request.setupRequest = (req) => ({ ...req, headers: { ...req.headers, cookie: `ko_id=${o.ids[k++ % o.ids.length]}` } })
  const load = (duration) => autocannon({ url: `http://127.0.0.1:${port}`, connections: o.connections, duration, requests: [request] })
  await load(o.warmup)
  await ask('mark')
  const r = await load(o.seconds)
  const m = await ask('measure')
  const c = await ask('close')
  if (child.exitCode === null) await once(child, 'exit')
  const s = await sink.report(c.calls)
  const x = {
    requestsPerSec: r.requests.average,
    latencyP99Ms: r.latency.p99,
    errors: r.errors + r.non2xx,
    requests: m.requests,
    cpuPerRequestUs: m.cpuMicros / m.requests,
    systemPerRequestUs: m.cpuSystemMicros / m.requests,
    calls: c.calls,
    accepted: c.accepted,
    refused: c.refused
  }
  if (delivers(v)) {
    x.delivered = c.calls - s.missing
    x.lost = c.accepted - x.delivered
    x.duplicates = s.duplicated
    x.sinkRequests = s.requests
  }
  log(`  ${v.label}: ${int(x.requestsPerSec)} req/s, app CPU ${f(x.cpuPerRequestUs)} µs/request` +
    (!delivers(v) ? '' : `; ${int(x.calls)} calls, refused ${int(x.refused)}, delivered ${int(x.delivered)}, lost ${int(x.lost)}, duplicates ${int(x.duplicates)}, ${int(x.sinkRequests)} requests to the sink`) +
    (x.errors > 0 ? `; ${x.errors} errors or non-2xx answers` : ''))
  return x
}

function summarise (runs) {
  const pick = (k) => median(runs.map((r) => r[k]))
  return {
    runs: runs.length,
    requestsPerSec: pick('requestsPerSec'),
    latencyP99Ms: pick('latencyP99Ms'),
    cpuPerRequestUs: pick('cpuPerRequestUs'),
    systemPerRequestUs: pick('systemPerRequestUs'),
    errors: runs.reduce((n, r) => n + r.errors, 0),
    calls: runs.reduce((n, r) => n + r.calls, 0),
    refused: runs.reduce((n, r) => n + (r.refused ?? 0), 0),
    lost: runs[0].lost === undefined ? undefined : runs.reduce((n, r) => n + r.lost, 0),
    duplicates: runs[0].duplicates === undefined ? undefined : runs.reduce((n, r) => n + r.duplicates, 0),
    cpuPerRequestUsEach: runs.map((r) => +r.cpuPerRequestUs.toFixed(1))
  }
}

/** What one tracker call adds to a request's CPU: the variant's CPU per request above the app alone's, per call. */
const perCall = (r, key) => (r.variants[key].cpuPerRequestUs - r.variants.none.cpuPerRequestUs) / CALLS_PER_REQUEST

export function renderApp (r) {
  const out = []
  out.push(`Express ${r.express} app, 3 tracker calls per request (page, track, track), autocannon closed-loop with ${r.connections} connections for ${r.seconds} s ` +
    `after a ${r.warmup} s warm-up; returning visitors: ${int(r.visitors)} ko_id cookies in turn. Build ${r.dist}${r.compare ? `, other build ${r.compare}` : ''}; ` +
    `${r.machine.cores} cores (${r.machine.cpu}), Node ${r.machine.node}; medians of ${r.repeat} run(s). App CPU: the app process's user + system time ` +
    `over the measured window, per request. "µs per tracked call" = (app CPU per request − the same without the tracker) / 3. ` +
    `Target: ≤ ${APP_TARGETS.trackerUsPerCall} µs per tracked call with returning visitors.`)
  out.push('')
  out.push('| Variant | Requests/s | p99 latency ms | App CPU µs/request (runs) | µs per tracked call | Calls | Refused | Lost | Duplicates | Target |')
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|')
  for (const v of variants(r.dist, r.compare, r.breakdown)) {
    const x = r.variants[v.key]
    const us = x.usPerTrackedCall
    const target = v.key === 'returning' ? (us <= APP_TARGETS.trackerUsPerCall && x.refused === 0 && x.lost === 0 && x.duplicates === 0 ? 'met' : '**not met**') : '–'
    out.push(`| ${v.label} | ${int(x.requestsPerSec)} | ${f(x.latencyP99Ms)} | ${f(x.cpuPerRequestUs)} (${x.cpuPerRequestUsEach.join(', ')}) | ${f(us)} | ` +
      `${v.key === 'none' ? '–' : int(x.calls)} | ${v.key === 'none' ? '–' : int(x.refused)} | ${int(x.lost)} | ${int(x.duplicates)} | ${target} |`)
  }
  return out.join('\n')
}

export async function main (argv) {
  const { flag, value, number } = parseArgs(argv)
  const smoke = flag('--smoke')
  const dist = resolve(value('--dist', DEFAULT_DIST))
  const compare = value('--compare', undefined) && resolve(value('--compare'))
  const o = {
    seconds: number('--seconds', smoke ? 2 : 10),
    warmup: number('--warmup', smoke ? 1 : 3),
    connections: number('--connections', smoke ? 4 : 20),
    ids: uuids(number('--visitors', smoke ? 100 : 2_000), randomUUID)
  }
  const repeat = number('--repeat', smoke ? 1 : 3)
  const breakdown = flag('--breakdown')
  const list = variants(dist, compare, breakdown)
  const runs = Object.fromEntries(list.map((v) => [v.key, []]))
  const sink = await startSink()
  try {
    for (let i = 0; i < repeat; i++) {
      log(`app benchmark, round ${i + 1} of ${repeat}`)
      // Interleaved, so that a noisy moment hits every variant alike.
      for (const v of list) runs[v.key].push(await measure(sink, v, o))
    }
  } finally {
    sink.stop()
  }
  const results = {
    date: new Date().toISOString(),
    machine: machine(),
    express: createRequire(import.meta.url)('express/package.json').version,
    dist,
    compare,
    breakdown,
    seconds: o.seconds,
    warmup: o.warmup,
    connections: o.connections,
    visitors: o.ids.length,
    repeat,
    variants: Object.fromEntries(list.map((v) => [v.key, summarise(runs[v.key])]))
  }
  for (const v of list.filter((v) => v.key !== 'none')) results.variants[v.key].usPerTrackedCall = perCall(results, v.key)
  process.stdout.write(renderApp(results) + '\n')
  if (smoke) {
    const bad = list.filter((v) => delivers(v) && (results.variants[v.key].lost !== 0 || results.variants[v.key].duplicates !== 0 || results.variants[v.key].errors !== 0))
    if (bad.length > 0) throw new Error(`app --smoke: loss, duplicates or errors in ${bad.map((v) => v.key).join(', ')}`)
    return results
  }
  writeResults(compare === undefined ? 'app.json' : 'app-compare.json', results)
  return results
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) await main(process.argv.slice(2))
