// Small pieces shared by the benchmark scripts.
import { mkdirSync, promises, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cpus } from 'node:os'

/** `--name value` and `--flag` from an argv array. */
export function parseArgs (argv) {
  const flag = (name) => argv.includes(name)
  const value = (name, fallback) => {
    const i = argv.indexOf(name)
    return i !== -1 && argv[i + 1] !== undefined && !argv[i + 1].startsWith('--') ? argv[i + 1] : fallback
  }
  return { flag, value, number: (name, fallback) => Number(value(name, fallback)) }
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

/**
 * A smoke run shrinks every scenario (BENCH_SCALE, read by scenarios.mjs when it loads and by every
 * producer process); scaled-down figures must never reach the results files. Call before importing scenarios.mjs.
 */
export function applySmokeScale (smoke) {
  if (!smoke && process.env.BENCH_SCALE !== undefined) throw new Error('BENCH_SCALE is for --smoke runs only')
  if (smoke) process.env.BENCH_SCALE ??= '0.01'
}

export function machine () {
  const model = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? cpus()[0]?.model
  return { cpu: model, cores: cpus().length, node: process.version, loadAvg: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ') }
}

export const log = (...a) => process.stderr.write(a.join(' ') + '\n')

/** Flat strings, as a server gets them from a cookie header (randomUUID() returns a rope). */
export const uuids = (n, make) => Array.from({ length: n }, () => JSON.parse(JSON.stringify(make())))

/** A small deterministic PRNG (mulberry32): the same mix of calls, and the same faults, for the same seed. */
export function prng (seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const resultsDir = join(dirname(fileURLToPath(import.meta.url)), 'results')

/** Writes benchmarks/results/<file> and says so. */
export function writeResults (file, results) {
  mkdirSync(resultsDir, { recursive: true })
  writeFileSync(join(resultsDir, file), JSON.stringify(results, null, 2) + '\n')
  log(`wrote benchmarks/results/${file}`)
}

/**
 * The tracker's `spool` option for a producer given a spool directory (spool.mjs), or undefined without
 * one, and the bytes the spool hands to the OS: records and headers written to its segment files
 * and settled offsets appended to its .ack files, both by FileHandle.write, counted by wrapping it (a
 * handle opened on an .ack file counts as the latter): nothing else in a producer writes files.
 */
export async function spoolUnderTest (dir) {
  if (dir === undefined) return { options: undefined, written: undefined }
  const written = { segmentBytes: 0, ackBytes: 0 }
  const acks = new WeakSet()
  const open = promises.open
  promises.open = async (file, ...rest) => {
    const handle = await open(file, ...rest)
    if (String(file).endsWith('.ack')) acks.add(handle)
    return handle
  }
  const handle = await open('/dev/null')
  const proto = Object.getPrototypeOf(handle)
  await handle.close()
  const write = proto.write
  proto.write = async function (...a) {
    const r = await write.apply(this, a)
    if (acks.has(this)) written.ackBytes += r.bytesWritten
    else written.segmentBytes += r.bytesWritten
    return r
  }
  return { options: { dir }, written }
}
