// `npm run bench -- --peers`: Segment's and PostHog's Node SDKs on the same
// sink with the same calls. They are installed on demand into benchmarks/.peers
// (git-ignored), never into package.json. Not part of the default run.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SCENARIOS } from './scenarios.mjs'
import { startSink } from './sink-process.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const dir = join(here, '.peers')
export const PEERS = { segment: '@segment/analytics-node@3.1.0', posthog: 'posthog-node@5.70.0' }

export function install () {
  if (existsSync(join(dir, 'node_modules', '@segment', 'analytics-node')) && existsSync(join(dir, 'node_modules', 'posthog-node'))) return
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'package.json'), '{ "private": true }\n')
  process.stderr.write(`installing ${Object.values(PEERS).join(', ')} into benchmarks/.peers\n`)
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--no-save', ...Object.values(PEERS)], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] })
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]

/**
 * What is run. PostHog's default queue holds 1,000 events and drops the oldest
 * beyond that ("Queue is full, the oldest event is dropped"), so with its
 * defaults it delivers a small share of a burst; a second run with a queue
 * that holds every call shows what the same work costs it.
 */
const VARIANTS = [
  { sdk: 'segment', label: PEERS.segment, options: {} },
  { sdk: 'posthog', label: `${PEERS.posthog} (defaults)`, options: {} },
  { sdk: 'posthog', label: `${PEERS.posthog}, maxQueueSize 1,000,000`, options: { maxQueueSize: 1_000_000 }, heap: false }
]

export async function peers (scenarios = ['S1', 'S2'], repeat = 3) {
  install()
  const sink = await startSink()
  const results = []
  const produce = (v, scenario, kind) => JSON.parse(execFileSync(process.execPath,
    ['--expose-gc', join(here, 'peer-producer.mjs'), v.sdk, scenario, String(sink.port), kind, JSON.stringify(v.options)],
    { encoding: 'utf8', maxBuffer: 1 << 24 }).trim().split('\n').pop())
  try {
    for (const v of VARIANTS) {
      for (const scenario of scenarios) {
        const runs = []
        for (let r = 0; r < repeat; r++) {
          await sink.reset(SCENARIOS[scenario].calls)
          const o = produce(v, scenario, 'run')
          const s = await sink.report()
          runs.push({ ...o, received: s.items, missing: s.missing, duplicated: s.duplicated, requests: s.requests })
          process.stderr.write(`  ${v.label} ${scenario}: ${(o.callNs / 1000).toFixed(2)} µs/call, ${(o.cpuMicros / Math.max(1, s.items)).toFixed(1)} µs CPU/item, ` +
            `${s.items} of ${o.calls} items received (${s.missing} missing, ${s.duplicated} duplicated), ${s.requests} requests\n`)
        }
        results.push({
          sdk: v.label,
          scenario,
          calls: runs[0].calls,
          callUs: median(runs.map((x) => x.callNs)) / 1000,
          cpuPerItemUs: median(runs.map((x) => x.cpuMicros / Math.max(1, x.received))),
          received: median(runs.map((x) => x.received)),
          missing: median(runs.map((x) => x.missing)),
          duplicated: Math.max(...runs.map((x) => x.duplicated)),
          requests: median(runs.map((x) => x.requests)),
          heapBytes: v.heap === false ? undefined : produce(v, scenario, 'heap').bytesPerItem
        })
      }
    }
  } finally {
    sink.stop()
  }
  return results
}
