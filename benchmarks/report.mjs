// Turns benchmarks/results/*.json into the markdown results section and the SVG chart.

const f = (x, d = 2) => x === undefined ? '–' : x.toFixed(d)
const int = (x) => Math.round(x).toLocaleString('en-US')
const pct = (x) => `${Math.round(x * 100)}%`

export const TARGETS = {
  callUs: 3,
  cpuPerItemUsS1: 6,
  floorShare: 0.7,
  heapBytes: 700,
  coldStartMs: 15,
  /** "Memory flat over a 10-minute soak": the last minute's mean heap at most this share above the second minute's. */
  soakDrift: 0.1
}

/** Whether a soak's heap stayed flat (see TARGETS.soakDrift). */
export const soakFlat = (soak) => soak.heapMB.lastMinute <= soak.heapMB.secondMinute * (1 + TARGETS.soakDrift)

/**
 * The results file a run writes: the default run's is latest.json, which the docs are rendered from;
 * a --compare run's compare.json; any other (--scenarios, --no-docs) partial.json, git-ignored, so that
 * a quick look at one scenario never leaves latest.json disagreeing with the docs.
 */
export const resultsFile = ({ compare, writeDocs }) => compare !== undefined ? 'compare.json' : writeDocs ? 'latest.json' : 'partial.json'

export function targetRows (r) {
  const s = r.scenarios
  const rows = []
  const add = (what, measured, ok) => rows.push(`| ${what} | ${measured} | ${ok === undefined ? '–' : ok ? 'met' : '**not met**'} |`)
  const calls = Object.entries(s).map(([n, x]) => `${n} ${f(x.tracker.callUs)}`)
  const waits = Object.entries(s).filter(([, x]) => x.tracker.callWaitUs !== undefined).map(([n, x]) => `${n} ${f(x.tracker.callWaitUs)}`)
  add(`\`track()\` ≤ ${TARGETS.callUs} µs per call (yielding producer)`, calls.join(', ') + ' µs' +
    (waits.length === 0 ? '' : ` (of which waiting for a core: ${waits.join(', ')})`),
    Object.values(s).every((x) => x.tracker.callUs <= TARGETS.callUs))
  if (s.S1) {
    add(`CPU per delivered item ≤ ${TARGETS.cpuPerItemUsS1} µs in S1`, `${f(s.S1.tracker.cpuPerItemUs)} µs (raw Pool: ${f(s.S1.pool.cpuPerItemUs)} µs` +
      (s.S1.pool.systemPerItemUs === undefined ? ')' : `, of which ${f(s.S1.pool.systemPerItemUs)} µs in the kernel)`),
      s.S1.tracker.cpuPerItemUs <= TARGETS.cpuPerItemUsS1)
  }
  for (const n of ['S1', 'S2']) {
    if (!s[n]) continue
    const share = s[n].tracker.itemsPerSec / s[n].pool.itemsPerSec
    add(`${n}: delivered items/s ≥ ${pct(TARGETS.floorShare)} of the raw Pool`, `${pct(share)} (${int(s[n].tracker.itemsPerSec)} vs ${int(s[n].pool.itemsPerSec)})`,
      share >= TARGETS.floorShare)
  }
  const heaps = Object.entries(s).map(([n, x]) => `${n} ${int(x.heap.bytesPerItem)}`)
  add(`heap held per buffered item ≤ ${TARGETS.heapBytes} bytes`, heaps.join(', ') + ' bytes',
    Object.values(s).every((x) => x.heap.bytesPerItem <= TARGETS.heapBytes))
  if (r.coldStart) {
    const c = r.coldStart
    const worst = Math.max(c.totalMs, c.importTotalMs ?? 0)
    add(`cold start to the first accepted call ≤ ${TARGETS.coldStartMs} ms`,
      `${f(c.totalMs, 1)} ms with \`require\`` + (c.importTotalMs === undefined ? '' : `, ${f(c.importTotalMs, 1)} ms with \`import\``), worst <= TARGETS.coldStartMs)
  }
  if (r.soak) {
    const k = r.soak
    add(`memory flat over a ${k.minutes}-minute soak (the last minute's heap at most ${pct(TARGETS.soakDrift)} above the second's)`,
      `${(k.heapMB.secondMinute).toFixed(1)} → ${(k.heapMB.lastMinute).toFixed(1)} MB (soak of ${k.date.slice(0, 16).replace('T', ' ')} UTC, below)`, soakFlat(k))
  }
  add('zero loss, zero duplicates, default options', Object.entries(s).map(([n, x]) =>
    `${n} ${x.tracker.exactlyOnce && x.tracker.dropped === 0 ? 'yes' : 'NO'}`).join(', '),
  Object.values(s).every((x) => x.tracker.exactlyOnce && x.tracker.dropped === 0))
  return rows
}

/**
 * The tracker's items/s as a share of the floor's, predicted from CPU alone: what each variant costs
 * the machine per item (its producer and its sink), when both keep the two cores about as busy.
 */
export function predictedShare (s) {
  const cost = (x) => x.cpuPerItemUs + x.sinkCpuPerItemUs
  return s.pool.sinkCpuPerItemUs === undefined || s.tracker.sinkCpuPerItemUs === undefined ? undefined : cost(s.pool) / cost(s.tracker)
}

export function renderTable (r) {
  const out = []
  const m = r.machine
  out.push(`Run of ${r.date.slice(0, 16).replace('T', ' ')} UTC: ${m.cores} cores (${m.cpu}), Node ${m.node}, load average at start ${m.loadAvg}; ` +
    `medians of ${r.repeat} runs per variant. Produced by \`npm run bench\`; do not edit by hand.`)
  out.push('')
  out.push('### Targets')
  out.push('')
  out.push('| Target | Measured | |')
  out.push('|---|---|---|')
  out.push(...targetRows(r))
  out.push('')
  out.push('### Scenarios')
  out.push('')
  out.push('"× floor" compares with the raw undici Pool sending pre-built bodies of the same shape, same sink, same connections, in the same run.')
  out.push('')
  out.push('| Scenario | Variant | Delivered items/s | × floor | CPU µs per item | × floor | Sink CPU µs per item ³ | µs per call | of which waiting for a core, GC ² | Requests | Peak RSS MB | Page faults per 1,000 items | Exactly once |')
  out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|')
  for (const [name, s] of Object.entries(r.scenarios)) {
    const row = (variant, x) => out.push(`| ${name} | ${variant} | ${int(x.itemsPerSec)} | ${f(x.itemsPerSec / s.pool.itemsPerSec)} | ` +
      `${f(x.cpuPerItemUs)} | ${f(x.cpuPerItemUs / s.pool.cpuPerItemUs)} | ${f(x.sinkCpuPerItemUs)} | ${f(x.callUs)} | ${x.callWaitUs === undefined ? '–' : `${f(x.callWaitUs)}, ${f(x.callGcUs)}`} | ${int(x.requests)} | ${f(x.peakRssMB, 0)} | ${f(x.faultsPerKItem, 0)} | ` +
      `${x.exactlyOnce && x.dropped === 0 ? 'yes' : `**no** (dropped ${x.dropped})`} |`)
    row('raw Pool (floor)', s.pool)
    row('tracker, yields every 1,000 calls', s.tracker)
    row('tracker, tight loop ¹', s.tight)
    if (s.other !== undefined) row('other build (--compare), yields', s.other)
  }
  out.push('')
  out.push('¹ A loop that never yields cannot let a request out before it ends, so this variant raises `maxBufferedItems` to the number of calls if the default is lower (it is not: 200,000); every other option is the default.')
  out.push('')
  out.push('² Of the µs per call: the time the producer\'s main thread waited for a core while inside the calls (Linux\'s schedstat: the sink, the kernel\'s TCP and V8\'s helper threads share the two cores), and the GC pauses that fell inside them. The rest is the calls\' own work.')
  out.push('')
  out.push('³ The sink process\'s CPU (user and system) from its reset before the run to its report after it, per item received: the kernel\'s work for its side of each request included.')
  out.push('')
  const predicted = Object.entries(r.scenarios).map(([n, s]) => [n, s, predictedShare(s)]).filter(([, , p]) => p !== undefined)
  if (predicted.length > 0) {
    out.push('The producer and the sink share two cores, and the items/s follow the CPU the two processes spend per item: ' +
      '(floor\'s CPU + its sink\'s CPU) / (tracker\'s CPU + its sink\'s CPU) predicts ' +
      predicted.map(([n, s, p]) => `${n} ${pct(p)} of the floor (measured ${pct(s.tracker.itemsPerSec / s.pool.itemsPerSec)})`).join(', ') +
      ' (see "Where the time goes", eleventh round).')
    out.push('')
  }
  const phases = Object.entries(r.scenarios).filter(([, s]) => s.tracker.callsDoneShare !== undefined)
  if (phases.length > 0) {
    out.push('While the yielding producer made its calls, the sink received only part of the items; the rest waited for it after the last call (see "Where the time goes", tenth round): ' +
      phases.map(([n, s]) => `${n}: the calls took ${pct(s.tracker.callsDoneShare)} of the run, with ${pct(s.tracker.sentDuringCallsShare)} of the items delivered by then`).join('; ') + '.')
    out.push('')
  }
  out.push('### Heap held per buffered item')
  out.push('')
  out.push('| Scenario | Items held | Tracker, bytes per item | The same items as an array of JSON strings | Ratio |')
  out.push('|---|---:|---:|---:|---:|')
  for (const [name, s] of Object.entries(r.scenarios)) {
    out.push(`| ${name} | ${int(s.heap.items)} | ${int(s.heap.bytesPerItem)} | ${int(s.heap.jsonBytesPerItem)} | ${f(s.heap.bytesPerItem / s.heap.jsonBytesPerItem)} |`)
    if (s.otherHeap !== undefined) out.push(`| ${name}, other build | ${int(s.otherHeap.items)} | ${int(s.otherHeap.bytesPerItem)} | ${int(s.otherHeap.jsonBytesPerItem)} | ${f(s.otherHeap.bytesPerItem / s.otherHeap.jsonBytesPerItem)} |`)
  }
  if (r.coldStart) {
    const c = r.coldStart
    out.push('')
    out.push('### Cold start')
    out.push('')
    out.push(`Median of ${c.runs} fresh processes: \`require\` (or \`import\`) → \`createTracker()\` → first accepted \`track()\`. ` +
      '"Modules loaded" counts every CommonJS module in the process after the first call, the benchmark script included. ' +
      '"First send" is what the lazy loading moves there, not a part of the total: after the first call, `flush()` and the ' +
      'turn of the event loop it blocks (building the body, loading undici\'s Pool, dispatching the request). ' +
      '"Code cache" says how `_core.js` was compiled in the measured processes: "used" is from the V8 code cache the build made; ' +
      'the reference without it is the same build with `KOALA_TRACKER_CODE_CACHE=off`, interleaved.')
    out.push('')
    out.push('| Total, `require` | require | createTracker | first call | Modules loaded | Code cache | Total, `import` | of which import | Reference: total, `require`, without the code cache | Reference: ' +
      `${c.trivialModules ?? 27} empty modules | Reference: the lazily loaded dependencies, loaded eagerly | First send |`)
    out.push('|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|')
    const noCache = (x) => x.noCodeCacheTotalMs === undefined ? '–' : `${f(x.noCodeCacheTotalMs, 1)} ms`
    const esm = (x) => x.importTotalMs === undefined ? '– | –' : `${f(x.importTotalMs, 1)} ms | ${f(x.importMs, 1)} ms`
    out.push(`| ${f(c.totalMs, 1)} ms | ${f(c.requireMs, 1)} ms | ${f(c.createMs, 1)} ms | ${f(c.firstCallMs, 1)} ms | ${c.modules} | ${c.codeCache ?? '–'} | ${esm(c)} | ${noCache(c)} | ${f(c.trivialModulesMs, 1)} ms | ${f(c.eagerDepsMs, 1)} ms | ${c.firstSendMs === undefined ? '–' : `${f(c.firstSendMs, 1)} ms`} |`)
    const o = r.otherColdStart
    if (o !== undefined) out.push(`| other build: ${f(o.totalMs, 1)} ms | ${f(o.requireMs, 1)} ms | ${f(o.createMs, 1)} ms | ${f(o.firstCallMs, 1)} ms | ${o.modules} | ${o.codeCache ?? '–'} | ${esm(o)} | ${noCache(o)} | | | ${o.firstSendMs === undefined ? '–' : `${f(o.firstSendMs, 1)} ms`} |`)
  }
  if (r.micro) {
    out.push('')
    out.push('### Micro-benchmarks')
    out.push('')
    out.push('| Piece | ns | × `JSON.stringify` of the event |')
    out.push('|---|---:|---:|')
    for (const x of r.micro) out.push(`| ${x.name} | ${int(x.ns)} | ${f(x.ratio)} |`)
  }
  if (r.peers) {
    out.push('')
    out.push('### Peers (optional run, `--peers`)')
    out.push('')
    out.push('Each SDK pointed at the same sink, making the same tracks with the same yielding producer, with its default options ' +
      'but for PostHog\'s compression (off, so that the sink can count its items; compressing would cost it CPU). PostHog\'s default ' +
      'queue holds 1,000 events and drops the oldest beyond that, so it is also run with a queue that holds every call. ' +
      '"×" is the SDK\'s figure divided by koala-tracker\'s from the run above (a few minutes earlier: the peers run after it, not interleaved). ' +
      'CPU per call counts every call made; CPU per delivered item divides the same CPU by the items the sink received, so an SDK that ' +
      'drops items pays for them there. The SDKs batch across people (Segment 15 events a request, PostHog 100), where the tracker sends ' +
      'one request per person, so in S2 they make far fewer requests. Heap per buffered item is read as for the tracker: batching ' +
      'out of reach, an endpoint that refuses connections, the heap read once the GC has settled.')
    out.push('')
    out.push('| SDK | Scenario | µs per call | × | CPU µs per call | × | CPU µs per delivered item | × | Heap bytes per buffered item | × | Items received (missing, duplicated) | Requests |')
    out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    for (const p of r.peers) {
      const k = r.scenarios[p.scenario]
      const cpuPerCall = p.cpuPerItemUs * p.received / p.calls
      const heap = p.heapBytes === undefined ? '– | –' : `${int(p.heapBytes)} | ${f(p.heapBytes / k.heap.bytesPerItem, 1)}`
      const lost = p.missing === undefined ? '' : ` (${int(p.missing)}, ${int(p.duplicated)})`
      out.push(`| ${p.sdk} | ${p.scenario} | ${f(p.callUs)} | ${f(p.callUs / k.tracker.callUs, 1)} | ${f(cpuPerCall)} | ${f(cpuPerCall / k.tracker.cpuPerItemUs, 1)} | ` +
        `${f(p.cpuPerItemUs)} | ${f(p.cpuPerItemUs / k.tracker.cpuPerItemUs, 1)} | ${heap} | ${int(p.received)} of ${int(p.calls)}${lost} | ${p.requests === undefined ? '–' : int(p.requests)} |`)
    }
  }
  return out.join('\n')
}

/** Two panels of horizontal bars: delivered items/s and CPU per item, both as a share of the raw Pool floor. */
export function renderChart (r) {
  const names = Object.keys(r.scenarios)
  const W = 720
  const rowH = 18
  const left = 170
  const barW = W - left - 80
  const panels = [
    { title: 'Delivered items per second, as a share of the raw undici Pool (higher is better)', key: 'itemsPerSec', target: TARGETS.floorShare },
    { title: 'CPU per delivered item, as a multiple of the raw undici Pool (lower is better)', key: 'cpuPerItemUs' }
  ]
  const variants = [['pool', 'raw Pool (floor)', '#9aa5b1'], ['tracker', 'tracker, yielding', '#2f7d4a'], ['tight', 'tracker, tight loop', '#7fbf8f']]
  let y = 20
  const parts = []
  for (const p of panels) {
    parts.push(`<text x="10" y="${y}" font-weight="bold">${p.title}</text>`)
    y += 10
    const max = Math.max(1, ...names.flatMap((n) => variants.map(([v]) => r.scenarios[n][v][p.key] / r.scenarios[n].pool[p.key])))
    const top = y
    for (const n of names) {
      for (const [v, label, color] of variants) {
        const ratio = r.scenarios[n][v][p.key] / r.scenarios[n].pool[p.key]
        const w = Math.max(1, (ratio / max) * barW)
        parts.push(`<text x="10" y="${y + 13}">${n} ${label}</text>`)
        parts.push(`<rect x="${left}" y="${y + 2}" width="${w.toFixed(1)}" height="${rowH - 4}" fill="${color}"/>`)
        parts.push(`<text x="${(left + w + 6).toFixed(1)}" y="${y + 13}">${ratio.toFixed(2)}×</text>`)
        y += rowH
      }
      y += 6
    }
    if (p.target !== undefined) {
      const x = (left + (p.target / max) * barW).toFixed(1)
      parts.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${y - 4}" stroke="#c0392b" stroke-dasharray="4 3"/>`)
      parts.push(`<text x="${x}" y="${y + 8}" fill="#c0392b" text-anchor="middle">target ${p.target.toFixed(2)}×</text>`)
      y += 12
    }
    y += 16
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" font-family="sans-serif" font-size="12">\n` +
    `<rect width="100%" height="100%" fill="white"/>\n${parts.join('\n')}\n</svg>\n`
}
