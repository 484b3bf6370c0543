// Fleet mode under steady load: the host's event-loop delay and CPU per item when every process is producer and
// consumer of the stream (the default), against the tracker in memory, in the same run.
//   node benchmarks/fleet-steady.mjs [--dist PATH] [--repeat 2] [--rates 5000,20000] [--seconds 10]
// One process per run (steady-producer.mjs, 10,000 people round-robin, calls paced every millisecond) against the
// sink, with `redis: { url, stream }` (a fresh stream on a redis-server of our own) or without; close() at the end
// reads what the stream still holds, so every item must reach the sink. Runs interleaved. Prints a table.
import { randomUUID } from 'node:crypto'
import { resolve } from 'node:path'
import { startRedis } from './fleet.mjs'
import { DEFAULT_DIST } from './load-build.mjs'
import { startSink } from './sink-process.mjs'
import { run } from './steady.mjs'
import { log, median, parseArgs } from './util.mjs'

const { value, number } = parseArgs(process.argv.slice(2))
const dist = resolve(value('--dist', DEFAULT_DIST))
const repeat = number('--repeat', 2)
const seconds = number('--seconds', 10)
const rates = value('--rates', '5000,20000').split(',').map(Number)
const redis = await startRedis()
const sink = await startSink()
const rows = []
try {
  for (const rate of rates) {
    const runs = { memory: [], fleet: [] }
    for (let i = 0; i < repeat; i++) {
      for (const fleet of i % 2 === 0 ? [false, true] : [true, false]) {
        const r = await run(sink, { mode: 'steady', sdk: 'tracker', rate, people: 10_000, seconds, dist, ...(fleet && { redis: redis.url, stream: `koala-bench:${randomUUID()}` }) })
        const x = { delay: r.eventLoopDelayMs, cpu: r.cpuWithCloseMicros / r.delivered, clean: r.lost === 0 && r.duplicates === 0 && r.refused === 0 }
        log(`  ${rate}/s ${fleet ? 'fleet' : 'memory'}: delay p99 ${x.delay.p99.toFixed(2)} max ${x.delay.max.toFixed(1)} ms, ${x.cpu.toFixed(1)} µs CPU/item, ${x.clean ? 'every item exactly once' : 'LOSS, DUPLICATES OR REFUSALS'}`)
        runs[fleet ? 'fleet' : 'memory'].push(x)
      }
    }
    const sum = (xs) => `${median(xs.map((x) => x.delay.p99)).toFixed(2)} / ${Math.max(...xs.map((x) => x.delay.max)).toFixed(1)} | ${median(xs.map((x) => x.cpu)).toFixed(1)}`
    rows.push(`| ${rate.toLocaleString('en')}/s | ${sum(runs.memory)} | ${sum(runs.fleet)} | ${[...runs.memory, ...runs.fleet].every((x) => x.clean) ? 'yes' : 'NO'} |`)
  }
} finally {
  sink.stop()
  await redis.stop()
}
process.stdout.write(['| Rate | In memory: delay p99 / max ms | µs CPU/item | Fleet: delay p99 / max ms | µs CPU/item | Exactly once |', '|---|---|---:|---|---:|---|', ...rows].join('\n') + '\n')
