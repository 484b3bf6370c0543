// A V8 CPU profile (.cpuprofile) as a call tree with times, a table of where
// the time goes, and a flame graph (an SVG drawn top-down). Pure functions:
// benchmarks/profile.mjs does the running and the writing.

/** What a frame belongs to, from its function name and script URL. */
export function categoryOf (frame) {
  const { functionName: name, url } = frame
  if (name === '(garbage collector)') return 'GC'
  if (name === '(idle)') return 'idle'
  if (/\/dist\/(cjs|esm)\/lib\//.test(url)) return 'koala-tracker'
  // undici's HTTP parser (llhttp) is the only WebAssembly these processes run.
  if (url.includes('/undici/') || url.startsWith('wasm://')) return 'undici'
  if (url.includes('/lru-cache/')) return 'lru-cache'
  if (url.includes('/benchmarks/')) return 'benchmark harness'
  if (url.startsWith('node:')) return "Node's JavaScript"
  // No script: V8's builtins and regexps, Node's C++ bindings (a socket's writev), wasm, (program).
  if (url === '') return 'native'
  return 'other'
}

const COLORS = {
  'koala-tracker': '#4e79a7',
  undici: '#f28e2b',
  'lru-cache': '#b07aa1',
  "Node's JavaScript": '#bab0ac',
  native: '#9c755f',
  GC: '#e15759',
  'benchmark harness': '#76b7b2',
  idle: '#eeeeee',
  other: '#edc948',
  all: '#d9d9d9'
}

/**
 * The profile as a tree of { name, where, category, selfUs, totalUs, children },
 * children largest first. Each sample's time (its delta) goes to the frame
 * that was running.
 */
export function callTree (profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const selfUs = new Map()
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, profile.timeDeltas[i] ?? 0))
  }
  const build = (node) => {
    const f = node.callFrame
    const children = (node.children ?? []).map((id) => build(byId.get(id))).sort((a, b) => b.totalUs - a.totalUs)
    const self = selfUs.get(node.id) ?? 0
    const file = f.url.split('/').pop()
    return {
      name: f.functionName || '(anonymous)',
      where: file ? `${file}:${f.lineNumber + 1}` : '',
      category: categoryOf(f),
      selfUs: self,
      totalUs: self + children.reduce((t, c) => t + c.totalUs, 0),
      children
    }
  }
  const root = profile.nodes.find((n) => !profile.nodes.some((m) => m.children?.includes(n.id))) ?? profile.nodes[0]
  return build(root)
}

function walk (node, visit) {
  visit(node)
  for (const c of node.children) walk(c, visit)
}

/** Self time per category, and the frames with the most self time (idle left out of both). */
export function summary (tree, top = 15) {
  const categories = new Map()
  const frames = new Map()
  walk(tree, (n) => {
    if (n.category === 'idle' || n.selfUs === 0) return
    categories.set(n.category, (categories.get(n.category) ?? 0) + n.selfUs)
    const key = `${n.name} ${n.where}`.trim()
    const f = frames.get(key) ?? { name: key, category: n.category, selfUs: 0 }
    f.selfUs += n.selfUs
    frames.set(key, f)
  })
  const busyUs = [...categories.values()].reduce((a, b) => a + b, 0)
  return {
    busyUs,
    categories: [...categories].map(([name, us]) => ({ name, us, share: us / busyUs })).sort((a, b) => b.us - a.us),
    top: [...frames.values()].sort((a, b) => b.selfUs - a.selfUs).slice(0, top).map((f) => ({ ...f, share: f.selfUs / busyUs }))
  }
}

const escape = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

/**
 * A flame graph drawn top-down: the root's busy time (idle left out) is the
 * full width, each frame sits under its caller with a width proportional to
 * its total time, coloured by category. Frames under `minShare` of the whole
 * are left out, which keeps the file small.
 */
export function renderFlame (tree, title, { width = 1200, row = 17, minShare = 0.001 } = {}) {
  const busy = { ...tree, children: tree.children.filter((c) => c.category !== 'idle') }
  busy.totalUs = busy.selfUs + busy.children.reduce((t, c) => t + c.totalUs, 0)
  const scale = width / Math.max(busy.totalUs, 1)
  const rects = []
  let depth = 0
  const draw = (node, x, d) => {
    if (node.totalUs < busy.totalUs * minShare) return
    depth = Math.max(depth, d)
    const w = node.totalUs * scale
    const label = `${node.name}${node.where ? ` (${node.where})` : ''}`
    const tip = `${label}: ${(node.totalUs / 1000).toFixed(1)} ms in all, ${(node.selfUs / 1000).toFixed(1)} ms itself, ${(100 * node.totalUs / busy.totalUs).toFixed(1)}% [${node.category}]`
    const chars = Math.floor((w - 4) / 6.5)
    const text = chars >= 3 ? (label.length <= chars ? label : label.slice(0, chars - 1) + '…') : ''
    rects.push(`<g><title>${escape(tip)}</title><rect x="${x.toFixed(2)}" y="${(d * row + 24).toFixed(0)}" width="${w.toFixed(2)}" height="${row - 1}" fill="${COLORS[node.category]}"/>` +
      (text ? `<text x="${(x + 3).toFixed(2)}" y="${(d * row + 24 + row - 5).toFixed(0)}">${escape(text)}</text>` : '') + '</g>')
    let cx = x
    for (const c of node.children) {
      draw(c, cx, d + 1)
      cx += c.totalUs * scale
    }
  }
  draw({ ...busy, name: `all (${(busy.totalUs / 1000).toFixed(0)} ms busy)`, where: '', category: 'all' }, 0, 0)
  const legendY = (depth + 1) * row + 40
  const legend = Object.entries(COLORS).filter(([k]) => k !== 'idle' && k !== 'all').map(([k, c], i) =>
    `<rect x="${i * 140}" y="${legendY}" width="12" height="12" fill="${c}"/><text x="${i * 140 + 16}" y="${legendY + 10}">${escape(k)}</text>`)
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${legendY + 20}" font-family="sans-serif" font-size="11">` +
    `<text x="0" y="14" font-size="13">${escape(title)}</text>${rects.join('')}${legend.join('')}</svg>\n`
}
