// Packs the modules that `require('koala-tracker')` loads into one file.
//
// Why: a cold start spends a quarter of a millisecond per module on resolving,
// reading and wrapping it, whatever its size; the main entry loads about 27.
// One file cuts that to one (benchmarks/cold.cjs measures it).
//
// How: every CommonJS module reachable from index.js through relative
// requires becomes a function in dist/cjs/lib/_core.js, run on first require
// as Node would run it, and its own file becomes a one-line stub that asks
// _core.js for it. Other entry points (collector, express, deletion...) stay
// separate files, and reach these modules through the stubs: one process
// always has one copy of each module, whichever door it came in by.
// The packed modules' source maps are merged into _core.js.map (a flat map:
// Node 20 cannot read index maps with `sections`).
//
// The stubs reach _core.js through _load.js, which compiles it with a V8 code
// cache made at build time by `makeCodeCache` (see LOADER_FILE below).
'use strict'
const { execFileSync } = require('node:child_process')
const { existsSync, readFileSync, rmSync, writeFileSync } = require('node:fs')
const { dirname, join, relative, resolve } = require('node:path')

const CORE = '_core.js'
const LOAD = '_load.js'
// The code cache is only good for the V8 that made it: other versions do not even read it.
// One rule for the build (cacheName) and for _load.js, which puts the running V8's version between these.
const CACHE_PREFIX = '_core.'
const CACHE_SUFFIX = '.cache'
const cacheName = (v8 = process.versions.v8) => CACHE_PREFIX + v8 + CACHE_SUFFIX
// _core.js compiled as Node compiles a CommonJS module. The loader and makeCodeCache must wrap it
// identically, or V8 rejects the cache.
const WRAP_HEAD = '(function (exports, require, module, __filename, __dirname) { '
const WRAP_TAIL = '\n})'
const RELATIVE_REQUIRE = /\brequire\((["'])(\.{1,2}\/[^"']+)\1\)/g
const MAP_COMMENT = /^\/\/# sourceMappingURL=.*$/m

/** Modules reachable from `entry` by relative requires, in the order they are first reached. */
function reachable (libDir, entry) {
  const found = new Map()
  const visit = (file) => {
    if (found.has(file)) return
    const source = readFileSync(file, 'utf8')
    found.set(file, source)
    for (const m of source.matchAll(RELATIVE_REQUIRE)) {
      const target = resolve(dirname(file), m[2])
      visit(target.endsWith('.js') ? target : `${target}.js`)
    }
  }
  visit(join(libDir, entry))
  return found
}

const keyOf = (libDir, file) => relative(libDir, file).replace(/\.js$/, '')

// The loader inside _core.js. `defs` maps a module key ("tracker",
// "generated/validators") to its wrapped code.
const LOADER = `
const cache = Object.create(null)
// Not require('./' + target) below: bundlers read that as "every file of this directory" (esbuild then
// fails on the .map files). Every module a static require reaches is packed; this is for computed paths.
const nodeRequire = require
function resolveKey (from, spec) {
  const parts = from.split('/').slice(0, -1)
  for (const p of spec.replace(/\\.js$/, '').split('/')) {
    if (p === '..') parts.pop()
    else if (p !== '.') parts.push(p)
  }
  return parts.join('/')
}
function load (key) {
  const cached = cache[key]
  if (cached !== undefined) return cached.exports
  const module = cache[key] = { exports: {} }
  const local = (spec) => {
    if (spec[0] !== '.') return require(spec)
    const target = resolveKey(key, spec)
    return target in defs ? load(target) : nodeRequire('./' + target)
  }
  defs[key].call(module.exports, module.exports, local, module)
  return module.exports
}
module.exports = load
`

// _load.js. Why: parsing and compiling _core.js, and compiling lazily the functions that the first
// createTracker() and track() run, were a fifth of a cold start (docs/benchmarks.md, ninth round). With
// the code cache V8 skips both. It falls back to a plain require, which is also what bundlers see, when:
// the module system is not Node's own (a bundler's or a test runner's, which may run it in another
// realm); source maps are on (Node 20 does not apply them to vm scripts); the process was started with
// options or NODE_OPTIONS (V8 rejects a cache made under other flags, --max-old-space-size included, and
// finding that out cost ~3 ms more than not trying); KOALA_TRACKER_CODE_CACHE=off; there is no cache for
// this V8; or _core.js is not the source the cache was made from (a patch: V8 itself compares only
// lengths, and would run the cached code of a same-length edit). If V8 still rejects the cache, it
// compiles the source as usual.
// Cheap on purpose, since each step is paid at every start:
// - Node's loader is recognised by its Module class and its cache, not by `instanceof` (requiring
//   node:module for that cost ~0.6 ms; a test runner's require.cache may hold its own module objects).
// - The cache file starts with a copy of the source, compared 16 KB at a time through one small buffer:
//   hashing needs node:crypto or node:zlib (4-8 ms to load) or a JS loop (3-5 ms cold), and reading the
//   copy whole touched 140 KB of fresh memory (~0.8 ms on the benchmark VMs).
// - The source is ASCII (bundleCore checks), so it is read as latin1: no UTF-8 decoding.
const LOADER_FILE = `'use strict'
// Generated by scripts/bundle-core.cjs. Loads ${CORE} with the V8 code cache the build made for it.
let codeCache = 'off'
function withCodeCache () {
  if (typeof module.constructor._load !== 'function' || require.cache[__filename] !== module || process.sourceMapsEnabled ||
    process.execArgv.length !== 0 || process.env.NODE_OPTIONS || process.env.KOALA_TRACKER_CODE_CACHE === 'off') return undefined
  const fs = require('node:fs')
  const file = __dirname + '/${CORE}'
  let fd, cachedData, source
  try {
    fd = fs.openSync(__dirname + '/' + ${JSON.stringify(CACHE_PREFIX)} + process.versions.v8 + ${JSON.stringify(CACHE_SUFFIX)}, 'r')
    const src = fs.readFileSync(file)
    const chunk = Buffer.allocUnsafe(16384)
    codeCache = 'stale'
    if (fs.readSync(fd, chunk, 0, 4, 0) !== 4 || chunk.readUInt32LE(0) !== src.length) return undefined
    for (let at = 0; at < src.length; at += chunk.length) {
      const n = Math.min(chunk.length, src.length - at)
      if (fs.readSync(fd, chunk, 0, n, 4 + at) !== n || chunk.compare(src, at, at + n, 0, n) !== 0) return undefined
    }
    cachedData = Buffer.allocUnsafe(fs.fstatSync(fd).size - 4 - src.length)
    fs.readSync(fd, cachedData, 0, cachedData.length, 4 + src.length)
    source = src.toString('latin1')
  } catch {
    // No cache for this V8, or one that opened and then could not be read.
    codeCache = fd === undefined ? 'missing' : 'unreadable'
    return undefined
  } finally {
    if (fd !== undefined) fs.closeSync(fd)
  }
  const { Script } = require('node:vm')
  const script = new Script(${JSON.stringify(WRAP_HEAD)} + source + ${JSON.stringify(WRAP_TAIL)}, { filename: file, cachedData })
  const m = { exports: {} }
  script.runInThisContext().call(m.exports, m.exports, require, m, file, __dirname)
  codeCache = script.cachedDataRejected === true ? 'rejected' : 'used'
  return m.exports
}
const load = withCodeCache() ?? require('./${CORE}')
// What happened, for tests and benchmarks: used, rejected, stale, unreadable, missing or off.
Object.defineProperty(load, 'codeCache', { value: codeCache })
module.exports = load
`

/** Writes _core.js (+ its map) and turns each packed module into a stub. Returns the packed keys. */
function bundleCore (libDir, entry = 'index.js') {
  const modules = reachable(libDir, entry)
  const lines = ["'use strict'", '// Generated by scripts/bundle-core.cjs from the modules beside it. Do not edit.', 'const defs = {']
  const maps = []
  for (const [file, source] of modules) {
    const key = keyOf(libDir, file)
    lines.push(`${JSON.stringify(key)}: function (exports, require, module) {`)
    const mapFile = `${file}.map`
    if (existsSync(mapFile)) {
      const map = JSON.parse(readFileSync(mapFile, 'utf8'))
      // The map's paths are relative to the module's directory; _core.js may sit higher up.
      map.sources = map.sources.map((s) => relative(libDir, resolve(dirname(file), map.sourceRoot ?? '', s)))
      delete map.sourceRoot
      maps.push({ line: lines.length, map })
    }
    const body = source.replace(MAP_COMMENT, '').replace(/\s+$/, '')
    // One byte per character: V8 keeps and parses a one-byte string, where one '…' made all of _core.js
    // two bytes per character (~0.4 ms more to read at a cold start), and _load.js reads it as latin1.
    const wide = body.search(/[^\x00-\x7f]/)
    if (wide !== -1) {
      throw new Error(`${relative(libDir, file)} line ${body.slice(0, wide).split('\n').length}: non-ASCII character ${JSON.stringify(body[wide])}; write it as a \\u escape (it is packed into ${CORE})`)
    }
    lines.push(...body.split('\n'), '},')
  }
  lines.push('}', ...LOADER.trim().split('\n'), `//# sourceMappingURL=${CORE}.map`)
  writeFileSync(join(libDir, CORE), lines.join('\n') + '\n')
  writeFileSync(join(libDir, LOAD), LOADER_FILE)
  writeFileSync(join(libDir, `${CORE}.map`), JSON.stringify(mergeMaps(CORE, maps)))
  for (const file of modules.keys()) {
    const up = relative(dirname(file), libDir) || '.'
    // Not `module.exports = require(...)(...)`: Node's ESM loader reads that as a re-export and
    // scans all of _core.js for export names (~30 ms) when the file is imported from ESM.
    writeFileSync(file, `'use strict'\n// Packed into ${CORE} by scripts/bundle-core.cjs.\nconst load = require('${up.startsWith('.') ? up : `./${up}`}/${LOAD}')\nmodule.exports = load(${JSON.stringify(keyOf(libDir, file))})\n`)
    rmSync(`${file}.map`, { force: true })
  }
  return [...modules.keys()].map((f) => keyOf(libDir, f))
}

// Source map mappings: base64 VLQ, each field relative to the one before it.
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
const B64_INDEX = new Map([...B64].map((c, i) => [c, i]))

function decodeSegment (text) {
  const fields = []
  let value = 0
  let shift = 0
  for (const c of text) {
    const digit = B64_INDEX.get(c)
    value += (digit & 31) << shift
    if (digit & 32) {
      shift += 5
    } else {
      fields.push(value & 1 ? -(value >>> 1) : value >>> 1)
      value = shift = 0
    }
  }
  return fields
}

function encodeField (n) {
  let v = n < 0 ? (-n << 1) | 1 : n << 1
  let out = ''
  do {
    const digit = v & 31
    v >>>= 5
    out += B64[v > 0 ? digit | 32 : digit]
  } while (v > 0)
  return out
}

/** One flat map from maps that each start at a given line of the generated file. */
function mergeMaps (file, parts) {
  const sources = []
  const names = []
  const lines = []
  for (const { line, map } of parts) {
    const src = map.sources.map((s) => { const i = sources.indexOf(s); return i === -1 ? sources.push(s) - 1 : i })
    const nm = (map.names ?? []).map((n) => { const i = names.indexOf(n); return i === -1 ? names.push(n) - 1 : i })
    let [s, ol, oc, n] = [0, 0, 0, 0]
    map.mappings.split(';').forEach((text, i) => {
      const segments = []
      let col = 0
      for (const seg of text === '' ? [] : text.split(',')) {
        const f = decodeSegment(seg)
        col += f[0]
        if (f.length === 1) { segments.push([col]); continue }
        s += f[1]; ol += f[2]; oc += f[3]
        if (f.length === 5) { n += f[4]; segments.push([col, src[s], ol, oc, nm[n]]) } else segments.push([col, src[s], ol, oc])
      }
      lines[line + i] = segments
    })
  }
  let [s, ol, oc, n] = [0, 0, 0, 0]
  const mappings = []
  for (let i = 0; i < lines.length; i++) {
    let col = 0
    mappings.push((lines[i] ?? []).map((f) => {
      let out = encodeField(f[0] - col)
      col = f[0]
      if (f.length > 1) {
        out += encodeField(f[1] - s) + encodeField(f[2] - ol) + encodeField(f[3] - oc)
        s = f[1]; ol = f[2]; oc = f[3]
        if (f.length === 5) { out += encodeField(f[4] - n); n = f[4] }
      }
      return out
    }).join(','))
  }
  return { version: 3, file, sources, names, mappings: mappings.join(';') }
}

/**
 * Writes the code cache of libDir's _core.js for this Node's V8: the source's length (4 bytes, little
 * endian), the source, then V8's data. Made in a fresh process with no NODE_OPTIONS (V8 rejects a cache
 * made under other flags). `warmUp` is the source of a function given the loader's `load`: the functions
 * it runs are compiled into the cache too, so that they are not compiled lazily on a server's first calls.
 */
function makeCodeCache (libDir, warmUp) {
  const file = join(libDir, CORE)
  const out = join(libDir, cacheName())
  const script = `
    const { Script } = require('node:vm')
    const { readFileSync, writeFileSync } = require('node:fs')
    const { createRequire } = require('node:module')
    const file = ${JSON.stringify(file)}
    const src = readFileSync(file)
    const script = new Script(${JSON.stringify(WRAP_HEAD)} + src.toString('latin1') + ${JSON.stringify(WRAP_TAIL)}, { filename: file })
    const m = { exports: {} }
    script.runInThisContext().call(m.exports, m.exports, createRequire(file), m, file, ${JSON.stringify(libDir)})
    ;(${warmUp})(m.exports)
    const length = Buffer.alloc(4)
    length.writeUInt32LE(src.length)
    writeFileSync(${JSON.stringify(out)}, Buffer.concat([length, src, script.createCachedData()]))
    process.exit(0)`
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  execFileSync(process.execPath, ['-e', script], { env, stdio: ['ignore', 'ignore', 'inherit'] })
  return out
}

module.exports = { bundleCore, makeCodeCache, mergeMaps, reachable, cacheName }
