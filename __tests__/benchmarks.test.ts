import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT, startNode } from './helpers/child'

// `npm run bench` takes ~10 minutes and is never run by the tests; this runs every scenario and
// variant once, scaled down, so that the benchmark cannot rot unnoticed. Nothing here is timed:
// it checks that each run delivered every item exactly once and that nothing was written.
describe('the benchmark', () => {
  const written = ['benchmarks/results/latest.json', 'docs/benchmarks.md', 'docs/benchmarks.svg'].map(p => join(ROOT, p))

  test('a smoke run: every scenario and variant, each item received exactly once, nothing written', async () => {
    const before = written.map(p => readFileSync(p, 'utf8'))
    const run = startNode([join(ROOT, 'benchmarks/run.mjs'), '--smoke'], { env: { BENCH_SCALE: '0.01' }, guardMs: 110_000 })
    const { code, stdout, stderr } = await run.exited
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' })
    for (const scenario of ['S1', 'S2', 'S3']) {
      for (const variant of ['pool', 'tracker/yield', 'tracker/tight']) {
        expect(stderr).toMatch(new RegExp(`^ {2}${scenario} ${variant}: .*, every item exactly once$`, 'm'))
      }
      expect(stderr).toMatch(new RegExp(`^ {2}${scenario} heap: \\d+ bytes per buffered item`, 'm'))
    }
    expect(stdout).toContain('| zero loss, zero duplicates, default options | S1 yes, S2 yes, S3 yes | met |')
    // CPU per item, against the floor, the sink's CPU per item, then µs per call, and how much of it was
    // spent waiting for a core and in GC pauses.
    const row = /^\| S2 \| tracker, yields every 1,000 calls \| [\d,]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| ([\d.]+) \| ([\d.]+) \| ([\d.]+), ([\d.]+) \| 1,000 \|/m.exec(stdout)
    expect(row).not.toBeNull()
    const [sinkUs, callUs, waitUs, gcUs] = (row as RegExpExecArray).slice(1).map(Number)
    expect(sinkUs).toBeGreaterThan(0)
    expect(waitUs).toBeLessThanOrEqual(callUs)
    expect(gcUs).toBeLessThanOrEqual(callUs)
    // How far the calls outran the sink: the share of the run they took, and of the items delivered meanwhile.
    const phases = /S1: the calls took (\d+)% of the run, with (\d+)% of the items delivered by then; S2: .*; S3: /.exec(stdout)
    expect(phases).not.toBeNull()
    expect((phases as RegExpExecArray).slice(1).map(Number).every(p => p >= 0 && p <= 100)).toBe(true)
    // The share of the floor that the CPU of producer and sink predict, from the table's own columns.
    const cpus = (variant: string): number[] => {
      const m = new RegExp(`^\\| S1 \\| ${variant} \\| [\\d,]+ \\| [\\d.]+ \\| ([\\d.]+) \\| [\\d.]+ \\| ([\\d.]+) \\|`, 'm').exec(stdout)
      expect(m).not.toBeNull()
      return (m as RegExpExecArray).slice(1).map(Number)
    }
    const [floorCpu, floorSink] = cpus('raw Pool \\(floor\\)')
    const [trackerCpu, trackerSink] = cpus('tracker, yields every 1,000 calls')
    const predicted = /predicts S1 (\d+)% of the floor \(measured \d+%\), S2 \d+% of the floor \(measured \d+%\), S3 \d+% of the floor/.exec(stdout)
    expect(predicted).not.toBeNull()
    // Within a point: the table rounds each figure to two decimals.
    expect(Math.abs(Number((predicted as RegExpExecArray)[1]) - 100 * (floorCpu + floorSink) / (trackerCpu + trackerSink))).toBeLessThanOrEqual(1)
    // The cold start was measured with _core.js compiled from the build's code cache, beside a reference without it.
    expect(stdout).toMatch(/^\| [\d.]+ ms \| [\d.]+ ms \| [\d.]+ ms \| [\d.]+ ms \| 3 \| used \| [\d.]+ ms \| [\d.]+ ms \| [\d.]+ ms \|/m)
    expect(written.map(p => readFileSync(p, 'utf8'))).toEqual(before)
  }, 120_000)

  test('requests completed per turn while the calls are made: a histogram over every turn, every item received once', () => {
    const out = spawnSync(process.execPath, [join(ROOT, 'benchmarks/turns.mjs'), 'S1'],
      { cwd: ROOT, encoding: 'utf8', env: { ...process.env, BENCH_SCALE: '0.01' } })
    expect({ status: out.status, stderr: out.stderr }).toEqual({ status: 0, stderr: '' })
    // 2,000 calls: two turns of 1,000, counted into the histogram's 11 rows (0 to 10 requests).
    expect(out.stdout).toMatch(/^S1, 2 turns of 1,000 calls, 10 connections: [\d.]+ requests completed per turn on average$/m)
    const rows = [...out.stdout.matchAll(/^ +(\d+) requests: (\d+) turns$/gm)]
    expect(rows.map(r => Number(r[1]))).toEqual(Array.from({ length: 11 }, (_, k) => k))
    expect(rows.reduce((n, r) => n + Number(r[2]), 0)).toBe(2)
    expect(out.stdout).toMatch(/^the calls took \d+ of \d+ ms; the sink had \d+ of 2000 items by then$/m)
  }, 30_000)

  test('only the default run writes the results the docs are rendered from', () => {
    const script = "import('./benchmarks/report.mjs').then(({ resultsFile }) => process.stdout.write(JSON.stringify([" +
      "resultsFile({ writeDocs: true }), resultsFile({ writeDocs: false }), resultsFile({ compare: '/d', writeDocs: false })])))"
    const out = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8' })
    expect(JSON.parse(out.stdout)).toEqual(['latest.json', 'partial.json', 'compare.json'])
  })

  test('a profile of one variant: a flame graph whose frames nest within their callers, and where the time went', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'koala-profile-test-'))
    try {
      const run = startNode([join(ROOT, 'benchmarks/profile.mjs'), 'S2', 'tracker', dir], { env: { BENCH_SCALE: '0.01' }, guardMs: 50_000 })
      const { code, stdout, stderr } = await run.exited
      expect({ code, stderr }).toEqual({ code: 0, stderr: '' })
      expect(stdout).toMatch(/^S2, tracker, yields every 1,000 calls: \d+ ms busy on the main thread/)
      expect(stdout).toMatch(/^ +\d+ ms +[\d.]+% {2}koala-tracker$/m)
      const svg = readFileSync(join(dir, 'S2-tracker.svg'), 'utf8')
      const rects = [...svg.matchAll(/<rect x="([\d.]+)" y="(\d+)" width="([\d.]+)" height="16"/g)]
        .map(m => ({ x: Number(m[1]), y: Number(m[2]), w: Number(m[3]) }))
      expect(rects[0]).toEqual({ x: 0, y: 24, w: 1200 })
      expect(svg).toContain('<title>track (_core.js:')
      // Every frame lies within some frame of the row above (its caller), give or take the
      // rounding of four printed coordinates (0.005 px each).
      const slack = 0.03
      for (const r of rects.slice(1)) {
        const callers = rects.filter(p => p.y === r.y - 17 && p.x <= r.x + slack && r.x + r.w <= p.x + p.w + slack)
        expect([r, callers.length]).toEqual([r, 1])
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)

  test('instructions per item: a usage line for arguments it cannot run', async () => {
    const run = startNode([join(ROOT, 'benchmarks/instructions.mjs'), '--scales', '0.2,0.1', 'S1', 'tracker'], { guardMs: 20_000 })
    const { code, stdout, stderr } = await run.exited
    expect({ code, stdout }).toEqual({ code: 2, stdout: '' })
    expect(stderr).toMatch(/^usage: node benchmarks\/instructions\.mjs /)
  }, 30_000)

  // Only where valgrind is installed (the CI machine has none): ~90 s, most of it starting Node under callgrind.
  const valgrind = spawnSync('valgrind', ['--version']).status === 0
  ;(valgrind ? test : test.skip)('instructions per item under callgrind, every item received exactly once', async () => {
    const run = startNode([join(ROOT, 'benchmarks/instructions.mjs'), '--scales', '0.002,0.004', 'S1', 'tracker'], { guardMs: 230_000 })
    const { code, stdout, stderr } = await run.exited
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' })
    // At these tiny scales the setup's difference is mostly noise, and can come out below zero.
    expect(stdout).toMatch(/^S1 before every clock \(subtracted below\): -?[\d,]+ instructions per item\n/)
    const count = /\nS1 tracker: ([\d,]+) instructions per item\n$/.exec(stdout)
    expect(count).not.toBeNull()
    expect(Number(count?.[1].replaceAll(',', ''))).toBeGreaterThan(1_000)
  }, 240_000)

  test('a profile of the measured span by kind of work: a usage line for arguments it cannot run', async () => {
    const run = startNode([join(ROOT, 'benchmarks/window-profile.mjs'), 'S4', 'tracker'], { guardMs: 20_000 })
    const { code, stdout, stderr } = await run.exited
    expect({ code, stdout }).toEqual({ code: 2, stdout: '' })
    expect(stderr).toMatch(/^usage: node benchmarks\/window-profile\.mjs /)
  }, 30_000)

  // Only where Linux perf can sample (the CI machine has no perf): a few seconds.
  const perf = spawnSync('perf', ['record', '-e', 'cpu-clock', '-o', '/dev/null', 'true']).status === 0
  ;(perf ? test : test.skip)('a profile of the measured span by kind of work, every item received exactly once', async () => {
    const run = startNode([join(ROOT, 'benchmarks/window-profile.mjs'), 'S1', 'tracker', 'pool', '--top', '3'],
      { env: { BENCH_SCALE: '0.05' }, guardMs: 110_000 })
    const { code, stdout, stderr } = await run.exited
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' })
    // One column per variant; the kinds' samples add up to the total.
    const row = (kind: string): number[] => [...(new RegExp(`^ *${kind} +(\\d+) \\([\\d.]+%\\) +(\\d+) \\(`, 'm').exec(stdout) ?? [])].slice(1).map(Number)
    const total = row('total')
    expect(total).toHaveLength(2)
    expect(total.every(n => n > 100)).toBe(true)
    const kinds = ['compile', 'gc', 'kernel', 'kernel: page faults', 'json', 'strings', 'builtins', 'javascript', 'libc', 'other native']
    const sums = [0, 1].map(i => kinds.reduce((n, k) => n + (row(k)[i] ?? 0), 0))
    expect(sums).toEqual(total)
    // The raw Pool serialises nothing (a stray JSON.parse may show): JSON is the tracker's.
    const [json, poolJson] = row('json')
    expect(json).toBeGreaterThan(Math.max(10, 10 * poolJson))
    expect(stdout).toMatch(/\ntracker: the 3 symbols with most samples\n/)
  }, 120_000)
})
