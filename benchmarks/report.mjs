// Turns the results of `npm run bench` (benchmarks/results/*.json) into markdown tables, printed on stdout.

const f = (x, d = 2) => x === undefined ? '–' : x.toFixed(d)
const int = (x) => x === undefined ? '–' : Math.round(x).toLocaleString('en-US')
const pct = (x) => `${Math.round(x * 100)}%`

export const TARGETS = {
  callUs: 3,
  cpuPerItemUsS1: 6,
  floorShare: 0.7,
  heapBytes: 700,
  coldStartMs: 25,
  /** With --compare: this build's CPU per delivered item at most this multiple of the other build's. */
  compareCpuRatio: 1.25,
  /** "Memory flat over a 10-minute soak": the last minute's mean heap at most this share above the second minute's. */
  soakDrift: 0.1
}

/** Whether a soak's heap stayed flat (see TARGETS.soakDrift). */
export const soakFlat = (soak) => soak.heapMB.lastMinute <= soak.heapMB.secondMinute * (1 + TARGETS.soakDrift)

/**
 * The results file a run writes: the default run's latest.json; a --compare run's compare.json;
 * any other (--scenarios) partial.json, git-ignored, so that a quick look at one scenario never
 * overwrites the last full run.
 */
export const resultsFile = ({ compare, partial }) => compare !== undefined ? 'compare.json' : partial ? 'partial.json' : 'latest.json'

/** Whether every item of a summarised variant reached the sink exactly once, and nothing was refused or failed. */
export const clean = (x) => x.exactlyOnce && x.dropped === 0 && x.failed === 0

export function targetRows (r) {
  const s = r.scenarios
  const rows = []
  const add = (what, measured, ok) => rows.push(`| ${what} | ${measured} | ${ok === undefined ? '–' : ok ? 'met' : '**not met**'} |`)
  add(`\`track()\` ≤ ${TARGETS.callUs} µs per call (yielding producer)`, Object.entries(s).map(([n, x]) => `${n} ${f(x.tracker.callUs)}`).join(', ') + ' µs',
    Object.values(s).every((x) => x.tracker.callUs <= TARGETS.callUs))
  if (s.S1) {
    add(`CPU per delivered item ≤ ${TARGETS.cpuPerItemUsS1} µs in S1`, `${f(s.S1.tracker.cpuPerItemUs)} µs (raw Pool: ${f(s.S1.pool.cpuPerItemUs)} µs)`,
      s.S1.tracker.cpuPerItemUs <= TARGETS.cpuPerItemUsS1)
  }
  for (const n of ['S1', 'S2']) {
    if (!s[n]) continue
    const share = s[n].tracker.itemsPerSec / s[n].pool.itemsPerSec
    add(`${n}: delivered items/s ≥ ${pct(TARGETS.floorShare)} of the raw Pool`, `${pct(share)} (${int(s[n].tracker.itemsPerSec)} vs ${int(s[n].pool.itemsPerSec)})`,
      share >= TARGETS.floorShare)
  }
  add(`heap held per buffered item ≤ ${TARGETS.heapBytes} bytes`, Object.entries(s).map(([n, x]) => `${n} ${int(x.heap.bytesPerItem)}`).join(', ') + ' bytes',
    Object.values(s).every((x) => x.heap.bytesPerItem <= TARGETS.heapBytes))
  if (Object.values(s).some((x) => x.other !== undefined)) {
    const ratios = Object.entries(s).filter(([, x]) => x.other !== undefined).map(([n, x]) => [n, x.tracker.cpuPerItemUs / x.other.cpuPerItemUs])
    add(`CPU per delivered item ≤ ${TARGETS.compareCpuRatio}× the other build's (--compare)`, ratios.map(([n, q]) => `${n} ${f(q)}×`).join(', '),
      ratios.every(([, q]) => q <= TARGETS.compareCpuRatio))
  }
  if (r.coldStart) {
    const c = r.coldStart
    add(`cold start to the first accepted call ≤ ${TARGETS.coldStartMs} ms`, `${f(c.totalMs, 1)} ms with \`require\`, ${f(c.importTotalMs, 1)} ms with \`import\``,
      Math.max(c.totalMs, c.importTotalMs) <= TARGETS.coldStartMs)
  }
  if (r.soak) {
    const k = r.soak
    add(`memory flat over a ${k.minutes}-minute soak (the last minute's heap at most ${pct(TARGETS.soakDrift)} above the second's)`,
      `${f(k.heapMB.secondMinute, 1)} → ${f(k.heapMB.lastMinute, 1)} MB (soak of ${k.date.slice(0, 16).replace('T', ' ')} UTC)`, soakFlat(k))
  }
  add('zero loss, zero duplicates, default options', Object.entries(s).map(([n, x]) => `${n} ${clean(x.tracker) && clean(x.tight) ? 'yes' : 'NO'}`).join(', '),
    Object.values(s).every((x) => clean(x.tracker) && clean(x.tight)))
  return rows
}

export function renderTable (r) {
  const out = []
  const m = r.machine
  out.push(`Run of ${r.date.slice(0, 16).replace('T', ' ')} UTC, build ${r.dist}${r.compare ? `, other build ${r.compare}` : ''}: ${m.cores} cores (${m.cpu}), ` +
    `Node ${m.node}, load average at start ${m.loadAvg}; medians of ${r.repeat} runs per variant, interleaved.`)
  out.push('')
  out.push('| Target | Measured | |')
  out.push('|---|---|---|')
  out.push(...targetRows(r))
  out.push('')
  out.push('"× floor": against the raw undici Pool sending pre-built bodies of the same items (same sink, 10 connections) in the same run. ' +
    'CPU is the producer process\'s (user + system), divided by the items the sink received.')
  out.push('')
  out.push('| Scenario | Variant | Delivered items/s | × floor | CPU µs per item | × floor | µs per call | Requests | Peak in flight ¹ | Peak RSS MB | Exactly once |')
  out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|')
  for (const [name, s] of Object.entries(r.scenarios)) {
    const row = (variant, x) => out.push(`| ${name} | ${variant} | ${int(x.itemsPerSec)} | ${f(x.itemsPerSec / s.pool.itemsPerSec)} | ` +
      `${f(x.cpuPerItemUs)} | ${f(x.cpuPerItemUs / s.pool.cpuPerItemUs)} | ${f(x.callUs)} | ${int(x.requests)} | ${int(x.peakInFlight)} | ${f(x.peakRssMB, 0)} | ` +
      `${clean(x) ? 'yes' : `**no** (dropped ${x.dropped}, failed ${x.failed})`} |`)
    row('raw Pool (floor)', s.pool)
    row('tracker, yields every 1,000 calls', s.tracker)
    row('tracker, tight loop ²', s.tight)
    if (s.other !== undefined) row('other build, yields', s.other)
  }
  out.push('')
  out.push('¹ `stats().inFlightRequests`, sampled once per 1,000 calls. ² A loop that never yields sends nothing before it ends; ' +
    'it runs with `maxBufferedItems` at least the number of calls.')
  if (Object.values(r.scenarios).some((s) => s.other !== undefined)) {
    out.push('')
    out.push('| Scenario | CPU µs per delivered item, this build | other build | ratio | Delivered items/s, ratio | Heap per item, ratio |')
    out.push('|---|---:|---:|---:|---:|---:|')
    for (const [name, s] of Object.entries(r.scenarios)) {
      if (s.other === undefined) continue
      out.push(`| ${name} | ${f(s.tracker.cpuPerItemUs)} | ${f(s.other.cpuPerItemUs)} | ${f(s.tracker.cpuPerItemUs / s.other.cpuPerItemUs)} | ` +
        `${f(s.tracker.itemsPerSec / s.other.itemsPerSec)} | ${s.otherHeap ? f(s.heap.bytesPerItem / s.otherHeap.bytesPerItem) : '–'} |`)
    }
  }
  out.push('')
  out.push('Heap held per buffered item (an endpoint that refuses connections, so everything stays; read once the GC has settled), ' +
    'against the same items as an array of JSON strings:')
  out.push('')
  out.push('| Scenario | Build | Items held | Bytes per item | The items as JSON strings | Ratio |')
  out.push('|---|---|---:|---:|---:|---:|')
  for (const [name, s] of Object.entries(r.scenarios)) {
    for (const [label, h] of [['this', s.heap], ['other', s.otherHeap]]) {
      if (h !== undefined) out.push(`| ${name} | ${label} | ${int(h.items)} | ${int(h.bytesPerItem)} | ${int(h.jsonBytesPerItem)} | ${f(h.bytesPerItem / h.jsonBytesPerItem)} |`)
    }
  }
  if (r.coldStart) {
    out.push('')
    out.push(`Cold start, median of ${r.coldStart.runs} fresh processes: \`require\` (or \`import\`) → \`createTracker()\` → first accepted \`track()\`. ` +
      '"First send": `flush()` after the first call and the turn it blocks (building the body, loading undici\'s Pool, dispatching), not part of the total.')
    out.push('')
    out.push('| Build | Total, `require` | require | createTracker | first call | Modules loaded | Total, `import` | First send | Reference: lazily loaded dependencies, loaded eagerly |')
    out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|')
    for (const [label, c] of [['this', r.coldStart], ['other', r.otherColdStart]]) {
      if (c === undefined) continue
      out.push(`| ${label} | ${f(c.totalMs, 1)} ms | ${f(c.requireMs, 1)} ms | ${f(c.createMs, 1)} ms | ${f(c.firstCallMs, 1)} ms | ${c.modules} | ` +
        `${f(c.importTotalMs, 1)} ms | ${f(c.firstSendMs, 1)} ms | ${f(c.eagerDepsMs, 1)} ms |`)
    }
  }
  if (r.peers) {
    out.push('')
    out.push('Peers (`--peers`): each SDK on the same sink with the same tracks and the same yielding producer, default options but for PostHog\'s ' +
      'compression (off, so that the sink can count its items). "×" divides by koala-tracker\'s figure above.')
    out.push('')
    out.push('| SDK | Scenario | µs per call | × | CPU µs per delivered item | × | Heap bytes per buffered item | × | Items received (missing, duplicated) | Requests |')
    out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|')
    for (const p of r.peers) {
      const k = r.scenarios[p.scenario]
      const heap = p.heapBytes === undefined ? '– | –' : `${int(p.heapBytes)} | ${f(p.heapBytes / k.heap.bytesPerItem, 1)}`
      out.push(`| ${p.sdk} | ${p.scenario} | ${f(p.callUs)} | ${f(p.callUs / k.tracker.callUs, 1)} | ${f(p.cpuPerItemUs)} | ${f(p.cpuPerItemUs / k.tracker.cpuPerItemUs, 1)} | ` +
        `${heap} | ${int(p.received)} of ${int(p.calls)} (${int(p.missing)}, ${int(p.duplicated)}) | ${int(p.requests)} |`)
    }
  }
  return out.join('\n')
}
