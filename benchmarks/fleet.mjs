// Fleet mode (`redis: { url, stream }`): what it costs against the tracker in memory, in the same run.
//   npm run bench -- --fleet [options]      or      node benchmarks/fleet.mjs [options]
//   --dist PATH             the build to measure (a dist directory; default ./dist)
//   --repeat 3              runs of each variant (medians are reported)
//   --redis URL             a Redis to use (default: a redis-server started on a free port of 127.0.0.1, append-only
//                           file fsynced every second, stopped at the end)
//   --processes 4 --people 1000 --per-person 1,5   the shared-people runs
//   --smoke                 scaled down, once, nothing written; fails on loss, duplicates or entries left in the
//                           stream (skipped, saying so, where no redis-server is installed)
// Throughput: S1–S3 (scenarios.mjs) tracked by one process (fleet-producer.mjs, yielding every 1,000 calls), in
// memory, and in fleet mode: that process with `consume: false` plus one consumer process (`consume: true`)
// delivering to the sink, which ends with close() once it has read every entry. CPU is each process's own
// (process.cpuUsage, until close() resolves) and Redis's (INFO cpu), per item the sink received; items/s run
// from the producer's first call to the last close(). Shared people: --processes processes each track
// --per-person events for the same --people people at once, each batching alone (in memory) or through one
// consumer (fleet): sink requests per item. A fresh stream per run, deleted after it; runs interleaved (which
// goes first alternates). Writes benchmarks/results/fleet.json.
import { fork, spawn, spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import Redis from 'ioredis'
import { DEFAULT_DIST } from './load-build.mjs'
import { exactlyOnce, startSink } from './sink-process.mjs'
import { applySmokeScale, log, machine, median, parseArgs, writeResults } from './util.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const f = (x, d = 2) => x === undefined ? '–' : x.toFixed(d)
const int = (x) => Math.round(x).toLocaleString('en-US')
const sum = (xs) => xs.reduce((a, b) => a + b, 0)

/** A redis-server of our own on a free port, as the tests start one (__tests__/helpers/redis.ts). */
export async function startRedis () {
  const port = await new Promise((resolve) => { const s = createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)) }) })
  const dir = mkdtempSync(join(tmpdir(), 'koala-bench-redis-'))
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes',
    '--appendfsync', 'everysec', '--dir', dir, '--maxmemory-policy', 'noeviction'], { stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (d) => { out += d; if (out.includes('Ready to accept connections')) resolve() })
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${out}`)))
  })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  return { url: `redis://127.0.0.1:${port}`, stop: async () => { child.kill('SIGTERM'); await exited; rmSync(dir, { recursive: true, force: true }) } }
}

/** Forks one fleet-producer.mjs process; `message(type)` waits for its message of that type, or fails if it dies first. */
function start (config) {
  const child = fork(join(here, 'fleet-producer.mjs'), [JSON.stringify(config)], { env: { ...process.env, KOALA_DIST: config.dist } })
  const got = new Map()
  const box = (type) => got.get(type) ?? got.set(type, (() => { let r; const p = new Promise((resolve) => { r = resolve }); return { p, r } })()).get(type)
  child.on('message', (m) => box(m.type).r(m))
  // Messages come before 'exit'; a second later, one that never came is not coming.
  const died = new Promise((resolve) => child.once('exit', (code, signal) => setTimeout(resolve, 1000, signal ?? code)))
  return {
    send: (m) => child.send(m),
    message: (type) => Promise.race([box(type).p, died.then((c) => { throw new Error(`${config.role} exited (${c}) before '${type}'`) })])
  }
}

/** Redis's CPU so far (user + system, µs), from INFO cpu. */
async function redisCpu (client) {
  const info = await client.info('cpu')
  const get = (k) => Number(info.match(new RegExp(`${k}:([\\d.]+)`))[1])
  return (get('used_cpu_user') + get('used_cpu_sys')) * 1e6
}

/**
 * One run: the producers (one per config) in memory, or in fleet mode with one consumer. Returns the
 * throughput, the CPU of each side per item the sink received, and whether every item arrived exactly once
 * and the stream ended empty.
 */
async function run (ctx, producers, fleet, expected) {
  const { sink, client } = ctx
  await sink.reset(expected)
  const stream = `koala-bench:${randomUUID()}`
  const base = { dist: ctx.dist, port: sink.port, redis: ctx.url, stream }
  const consumer = fleet ? start({ ...base, role: 'consumer', expected }) : undefined
  await consumer?.message('ready')
  // Until its reader is up (its first XREADGROUP creates the group and the stream): a consumer just started fails its
  // first read (its blocking connection is still connecting) and tries again 500 ms later; a running relay does not.
  while (fleet && await client.exists(stream) === 0) await new Promise((resolve) => setTimeout(resolve, 10))
  const redis0 = await redisCpu(client)
  const done = await Promise.all(producers.map((p) => start({ ...base, ...p, role: fleet ? 'producer' : 'memory' }).message('done')))
  consumer?.send({ produced: sum(done.map((d) => d.redis.produced)) })
  const c = await consumer?.message('done')
  const redisMicros = await redisCpu(client) - redis0
  const s = await sink.report()
  const left = fleet ? await client.xlen(stream) + (await client.xpending(stream, 'koala-tracker'))[0] : 0
  await client.del(stream, `${stream}:pause`)
  const all = c === undefined ? done : [...done, c]
  const r = {
    items: s.items,
    requests: s.requests,
    requestsPerItem: s.requests / s.items,
    itemsPerSec: s.items / (((c ?? done[0]).endAt - Math.min(...done.map((d) => d.startAt))) / 1000),
    producerCpuPerItemUs: sum(done.map((d) => d.cpuMicros)) / s.items,
    consumerCpuPerItemUs: c && c.cpuMicros / s.items,
    redisCpuPerItemUs: fleet ? redisMicros / s.items : undefined,
    local: fleet ? sum(done.map((d) => d.redis.local)) : undefined,
    left,
    clean: exactlyOnce(s, expected) && left === 0 && all.every((d) => d.dropped === 0 && d.failed === 0) && (c === undefined || (c.redis.acked === c.redis.consumed && c.redis.held === 0))
  }
  r.cpuPerItemUs = r.producerCpuPerItemUs + (r.consumerCpuPerItemUs ?? 0)
  log(`  ${fleet ? 'fleet' : 'memory'}: ${int(r.itemsPerSec)} items/s, CPU µs/item ${fleet ? `producer ${f(r.producerCpuPerItemUs)} + consumer ${f(r.consumerCpuPerItemUs)}, Redis ${f(r.redisCpuPerItemUs)}` : f(r.producerCpuPerItemUs)}, ` +
    `${int(s.requests)} requests (${f(r.requestsPerItem, 3)}/item)${fleet ? `, ${r.local} local, ${left} left in the stream` : ''}, ` +
    `${r.clean ? 'every item exactly once' : `LOSS/DUPLICATES: ${JSON.stringify(s)} ${JSON.stringify(all.map((d) => ({ dropped: d.dropped, failed: d.failed, redis: d.redis })))}`}`)
  return r
}

function summarise (runs) {
  const x = { runs: runs.length, exactlyOnce: runs.every((r) => r.clean) }
  for (const k of ['itemsPerSec', 'cpuPerItemUs', 'producerCpuPerItemUs', 'consumerCpuPerItemUs', 'redisCpuPerItemUs', 'requestsPerItem', 'requests', 'local']) {
    if (runs[0][k] !== undefined) x[k] = median(runs.map((r) => r[k]))
  }
  x.cpuPerItemUsEach = runs.map((r) => +r.cpuPerItemUs.toFixed(2))
  return x
}

export function renderFleet (r) {
  const out = [`Fleet mode against in memory, ${r.repeat} runs of each, interleaved; build ${r.dist}; ${r.machine.cores} cores (${r.machine.cpu}), Node ${r.machine.node}, ` +
    `load at start ${r.machine.loadAvg}; Redis ${r.redisVersion} on 127.0.0.1 (appendonly, fsync everysec). CPU µs per item the sink received.`, '']
  out.push('| Scenario | Items/s: memory → fleet | CPU, memory | Fleet: producer | consumer | Redis | all three | Exactly once (memory, fleet) |')
  out.push('|---|---:|---:|---:|---:|---:|---:|---|')
  for (const [name, { memory: m, fleet: x }] of Object.entries(r.throughput)) {
    out.push(`| ${name} | ${int(m.itemsPerSec)} → ${int(x.itemsPerSec)} | ${f(m.cpuPerItemUs)} | ${f(x.producerCpuPerItemUs)} | ${f(x.consumerCpuPerItemUs)} | ${f(x.redisCpuPerItemUs)} | ${f(x.producerCpuPerItemUs + x.consumerCpuPerItemUs + x.redisCpuPerItemUs)} | ` +
      `${m.exactlyOnce ? 'yes' : 'NO'}, ${x.exactlyOnce ? 'yes' : 'NO'} |`)
  }
  out.push('', `${r.processes} processes tracking for the same ${int(r.people)} people at once:`, '')
  out.push('| Events per person per process | Items | Sink requests per item: memory → fleet | Exactly once (memory, fleet) |')
  out.push('|---:|---:|---|---|')
  for (const [n, { memory: m, fleet: x }] of Object.entries(r.shared)) {
    out.push(`| ${n} | ${int(r.processes * r.people * n)} | ${f(m.requestsPerItem, 3)} → ${f(x.requestsPerItem, 3)} | ${m.exactlyOnce ? 'yes' : 'NO'}, ${x.exactlyOnce ? 'yes' : 'NO'} |`)
  }
  return out.join('\n')
}

export async function main (argv) {
  const { flag, value, number } = parseArgs(argv)
  const smoke = flag('--smoke')
  applySmokeScale(smoke)
  let url = value('--redis', undefined)
  if (url === undefined && spawnSync('redis-server', ['--version']).status !== 0) {
    if (smoke) { log('fleet: skipped, no redis-server installed (or pass --redis URL)'); return }
    throw new Error('--fleet needs redis-server on the PATH, or --redis URL')
  }
  const { SCENARIOS } = await import('./scenarios.mjs')
  const dist = resolve(value('--dist', DEFAULT_DIST))
  const repeat = smoke ? 1 : number('--repeat', 3)
  const processes = number('--processes', 4)
  const people = number('--people', smoke ? 100 : 1_000)
  const perPerson = value('--per-person', '1,5').split(',').map(Number)
  const server = url === undefined ? await startRedis() : undefined
  url ??= server.url
  const client = new Redis(url)
  const sink = await startSink()
  const results = { date: new Date().toISOString(), machine: machine(), dist, repeat, processes, people, throughput: {}, shared: {} }
  try {
    results.redisVersion = (await client.info('server')).match(/redis_version:(\S+)/)[1]
    log(`fleet mode against in memory: ${dist}, Redis ${results.redisVersion} at ${url}, ${repeat} run(s) of each`)
    const ctx = { sink, client, url, dist }
    // The same people in every process: UUID v4s, as servers have them in a cookie.
    const ids = Array.from({ length: people }, () => randomUUID())
    const jobs = [
      ...Object.keys(SCENARIOS).map((name) => ['throughput', name, SCENARIOS[name].title, [{ scenario: name }], SCENARIOS[name].calls]),
      ...perPerson.map((n) => ['shared', n, `${processes} processes × ${people} people × ${n} tracks`,
        Array.from({ length: processes }, (_, k) => ({ shared: { ids, perPerson: n, offset: k * people * n } })), processes * people * n])
    ]
    log('warming the sink up (one run in memory, not measured)')
    await run(ctx, jobs[0][3], false, jobs[0][4])
    for (const [part, name, title, producers, expected] of jobs) {
      log(`${name}: ${title}`)
      const runs = { memory: [], fleet: [] }
      for (let i = 0; i < repeat; i++) {
        for (const fleet of i % 2 === 0 ? [false, true] : [true, false]) runs[fleet ? 'fleet' : 'memory'].push(await run(ctx, producers, fleet, expected))
      }
      results[part][name] = { title, memory: summarise(runs.memory), fleet: summarise(runs.fleet) }
    }
  } finally {
    sink.stop()
    client.disconnect()
    await server?.stop()
  }
  process.stdout.write(renderFleet(results) + '\n')
  const bad = [...Object.entries(results.throughput), ...Object.entries(results.shared)].filter(([, row]) => !row.memory.exactlyOnce || !row.fleet.exactlyOnce)
  if (bad.length > 0) {
    process.exitCode = 1
    log(`LOSS, DUPLICATES OR ENTRIES LEFT IN THE STREAM in ${bad.map(([n]) => n).join(', ')}`)
    if (smoke) throw new Error('fleet --smoke: loss, duplicates or entries left in the stream')
  }
  if (!smoke) writeResults('fleet.json', results)
  return results
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) await main(process.argv.slice(2))
