// `npm run bench -- --soak [minutes]`: memory over a long run at a steady rate.
// Not part of the default run. Writes benchmarks/results/soak.json and prints a table.
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { soakFlat, TARGETS } from './report.mjs'
import { exactlyOnce, startSink } from './sink-process.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length

export async function soak (minutes, rate = 5_000, env = {}) {
  const sink = await startSink()
  const total = Math.round(minutes * 60 * rate)
  await sink.reset(total)
  process.stderr.write(`soak: ${minutes} min at ${rate} calls/s (S3 mix, 10k people), default options\n`)
  const out = execFileSync(process.execPath, ['--expose-gc', join(here, 'producer.mjs'), 'soak', 'S3', String(sink.port)],
    { encoding: 'utf8', env: { ...process.env, ...env, SOAK_MINUTES: String(minutes), SOAK_RATE: String(rate) }, maxBuffer: 1 << 24 })
  const r = JSON.parse(out.trim().split('\n').pop())
  const s = await sink.report()
  sink.stop()
  // Compare the second minute with the last one (the first fills the LRU and warms up).
  const window = (from, to) => r.samples.filter((x) => x.s >= from && x.s < to)
  const end = r.samples[r.samples.length - 1].s
  const early = window(60, 120)
  const late = window(end - 60, end + 1)
  const result = {
    date: new Date().toISOString(),
    minutes,
    rate,
    calls: total,
    exactlyOnce: exactlyOnce(s, total) && r.dropped === 0,
    heapMB: { secondMinute: mean(early.map((x) => x.heapMB)), lastMinute: mean(late.map((x) => x.heapMB)), max: Math.max(...r.samples.map((x) => x.heapMB)) },
    rssMB: { secondMinute: mean(early.map((x) => x.rssMB)), lastMinute: mean(late.map((x) => x.rssMB)), max: Math.max(...r.samples.map((x) => x.rssMB)) },
    maxBuffered: Math.max(...r.samples.map((x) => x.buffered)),
    received: s.items,
    // Per item the sink received, as everywhere else; the CPU includes the full GC before each sample.
    cpuPerItemUs: r.cpuMicros / Math.max(1, s.items),
    sampleMs: r.sampleMs,
    samples: r.samples
  }
  mkdirSync(join(here, 'results'), { recursive: true })
  writeFileSync(join(here, 'results', 'soak.json'), JSON.stringify(result, null, 2) + '\n')
  const text = renderSoak(result)
  process.stdout.write(text + '\n')
  return result
}

/** A soak result as markdown (`npm run bench -- --render` prints it again from soak.json). */
export function renderSoak (result) {
  const f = (x) => x.toFixed(1)
  const received = result.received ?? (result.exactlyOnce ? result.calls : 0)
  return [
    `Run finished ${result.date.slice(0, 16).replace('T', ' ')} UTC, \`npm run bench -- --soak ${result.minutes}\`: ${result.minutes} minutes at ${result.rate.toLocaleString('en-US')} calls/s ` +
      `(the S3 mix over 10,000 people), default options; heap after a full GC and RSS sampled every ${result.sampleMs / 1000} s.`,
    '',
    '| | Second minute (mean) | Last minute (mean) | Ratio | Max |',
    '|---|---:|---:|---:|---:|',
    `| Heap used, MB | ${f(result.heapMB.secondMinute)} | ${f(result.heapMB.lastMinute)} | ${(result.heapMB.lastMinute / result.heapMB.secondMinute).toFixed(2)} | ${f(result.heapMB.max)} |`,
    `| RSS, MB | ${f(result.rssMB.secondMinute)} | ${f(result.rssMB.lastMinute)} | ${(result.rssMB.lastMinute / result.rssMB.secondMinute).toFixed(2)} | ${f(result.rssMB.max)} |`,
    '',
    `Memory flat (the last minute's heap at most ${Math.round(TARGETS.soakDrift * 100)}% above the second minute's): ${soakFlat(result) ? 'yes' : '**no**'}. ` +
      `Items buffered, the most seen at a sample: ${result.maxBuffered.toLocaleString('en-US')}` +
      '. ' +
      `CPU per delivered item (divided by the items the sink received; it includes the full GC made for each sample): ${result.cpuPerItemUs.toFixed(2)} µs. ` +
      `Every item received exactly once: ${result.exactlyOnce ? 'yes' : 'NO'} (${received.toLocaleString('en-US')} of ${result.calls.toLocaleString('en-US')}).`
  ].join('\n')
}

