import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { SourceMap } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ts from 'typescript'
import { ROOT } from './helpers/child'

interface RawMap { version: number, sources: string[], names: string[], mappings: string }
// eslint-disable-next-line @typescript-eslint/no-require-imports
const bundle = require('../scripts/bundle-core.cjs') as {
  bundleCore(libDir: string, entry?: string): string[]
  makeCodeCache(libDir: string, warmUp: string): string
  cacheName(v8?: string): string
  mergeMaps(file: string, parts: Array<{ line: number, map: RawMap }>): RawMap
}

/**
 * Runs `source` as a script file in a fresh Node process and returns its stdout. A file, not `node -e`:
 * a process started with options does not try the code cache (scripts/bundle-core.cjs).
 */
function runScript (source: string, args: string[] = [], env: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'koala-script-'))
  try {
    writeFileSync(join(dir, 'script.cjs'), source)
    return execFileSync(process.execPath, [...args, join(dir, 'script.cjs')], { env: { ...process.env, ...env } }).toString()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Real tsc output: code and its source map. */
function compile (name: string, source: string): { code: string, map: RawMap } {
  const out = ts.transpileModule(source, { fileName: `${name}.ts`, compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, sourceMap: true } })
  return { code: out.outputText, map: JSON.parse(out.sourceMapText as string) as RawMap }
}

const A = compile('a', "import { b } from './sub/b'\nexport function a (n: number): number {\n  const twice = (x: number): number => x * 2\n  return twice(b(n))\n}\n")
const B = compile('sub/b', "export const b = (n: number): number => {\n  if (n < 0) throw new Error('negative')\n  return n + 1\n}\nexport class Named { readonly name = 'b' }\n")

describe('mergeMaps', () => {
  test('every position of every input map maps to the same original position in the merged map, shifted by its line', () => {
    const parts = [{ line: 3, map: A.map }, { line: 40, map: B.map }]
    const merged = new SourceMap(bundle.mergeMaps('out.js', parts) as never)
    let checked = 0
    for (const { line, map } of parts) {
      const original = new SourceMap(map as never)
      const lines = map.mappings.split(';').length
      for (let l = 0; l < lines; l++) {
        for (let c = 0; c < 80; c++) {
          const want = original.findEntry(l, c) as { originalSource?: string, originalLine?: number, originalColumn?: number }
          if (want.originalSource === undefined) continue
          const got = merged.findEntry(l + line, c) as typeof want
          expect([got.originalSource, got.originalLine, got.originalColumn]).toEqual([want.originalSource, want.originalLine, want.originalColumn])
          checked++
        }
      }
    }
    expect(checked).toBeGreaterThan(100)
  })

  test('lines between the packed modules map to nothing', () => {
    const merged = new SourceMap(bundle.mergeMaps('out.js', [{ line: 3, map: A.map }]) as never)
    expect((merged.findEntry(1, 0) as { originalSource?: string }).originalSource).toBeUndefined()
  })
})

describe('bundleCore', () => {
  let dir: string
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'koala-bundle-'))
    writeFileSync(join(dir, 'index.js'), "'use strict'\nconst a = require('./a')\nexports.run = (n) => a.a(n)\nexports.b = require('./sub/b')\n")
    writeFileSync(join(dir, 'a.js'), A.code.replace(/\/\/# sourceMappingURL=.*/, '//# sourceMappingURL=a.js.map'))
    writeFileSync(join(dir, 'a.js.map'), JSON.stringify({ ...A.map, sources: ['../src/a.ts'] }))
    mkdirSync(join(dir, 'sub'))
    writeFileSync(join(dir, 'sub/b.js'), B.code.replace(/\/\/# sourceMappingURL=.*/, '//# sourceMappingURL=b.js.map') + "\n// A computed path is not seen when packing: it is loaded from its file.\nexports.load = (name) => require('../' + name)\n")
    writeFileSync(join(dir, 'sub/b.js.map'), JSON.stringify({ ...B.map, sources: ['../../src/sub/b.ts'] }))
    // Not reachable from index.js: stays a file of its own (as another entry point does), and shares b through its stub.
    writeFileSync(join(dir, 'other.js'), "'use strict'\nexports.sameB = require('./sub/b')\n")
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  /** Runs the packed modules in a fresh process: what they compute, what got loaded, how _core.js was compiled. */
  const run = (args: string[] = [], env: Record<string, string> = {}): Record<string, unknown> => {
    const script = `
      const index = require(${JSON.stringify(join(dir, 'index.js'))})
      const b = require(${JSON.stringify(join(dir, 'sub/b.js'))})
      let stack = ''
      try { index.run(-5) } catch (e) { stack = e.stack }
      process.stdout.write(JSON.stringify({
        result: index.run(4), sameB: b === index.b && b.load('other').sameB === b && require(${JSON.stringify(join(dir, 'other.js'))}).sameB === b, name: new b.Named().name,
        loaded: Object.keys(require.cache).filter((f) => f.startsWith(${JSON.stringify(dir + '/')})).map((f) => f.slice(${JSON.stringify(dir.length + 1)})).sort(),
        codeCache: require(${JSON.stringify(join(dir, '_load.js'))}).codeCache,
        frame: stack.split('\\n')[1]
      }))`
    return JSON.parse(runScript(script, args, env)) as Record<string, unknown>
  }

  test('packs what index.js reaches, runs it as Node would, keeps one copy per module and maps stack traces to the sources', () => {
    expect(bundle.bundleCore(dir).sort()).toEqual(['a', 'index', 'sub/b'])
    expect(existsSync(join(dir, 'a.js.map'))).toBe(false)
    expect(readFileSync(join(dir, 'sub/b.js'), 'utf8')).toContain("require('../_load.js')\nmodule.exports = load(\"sub/b\")")
    const out = run()
    expect(out.result).toBe(10)
    expect(out.sameB).toBe(true)
    expect(out.name).toBe('b')
    // No code cache was made: _load.js requires _core.js as any module.
    expect(out.codeCache).toBe('missing')
    expect(out.loaded).toEqual(['_core.js', '_load.js', 'index.js', 'other.js', 'sub/b.js'])
    // `throw new Error('negative')` is line 2, column 14 of src/sub/b.ts.
    expect(run(['--enable-source-maps']).frame).toMatch(/src\/sub\/b\.ts:2:\d+\)$/)
  })

  test('refuses to pack a module with a character beyond ASCII, naming the module and its line', () => {
    writeFileSync(join(dir, 'sub/b.js'), "'use strict'\nexports.b = (n) => n + 1\nexports.dots = '\u2026'\n")
    expect(() => bundle.bundleCore(dir)).toThrow('sub/b.js line 3: non-ASCII character "\u2026"; write it as a \\u escape (it is packed into _core.js)')
    expect(existsSync(join(dir, '_core.js'))).toBe(false)
  })

  describe('with a code cache', () => {
    let cacheFile: string
    beforeEach(() => {
      bundle.bundleCore(dir)
      // The warm-up runs in the child that makes the cache: what it calls is compiled into the cache.
      cacheFile = bundle.makeCodeCache(dir, "(load) => { if (load('index').run(4) !== 10) throw new Error('warm-up') }")
    })

    test('compiles _core.js from the cache made for this V8, and it runs as before: one copy per module', () => {
      expect(cacheFile).toBe(join(dir, `_core.${process.versions.v8}.cache`))
      expect(statSync(cacheFile).size).toBeGreaterThan(0)
      const out = run()
      expect(out.codeCache).toBe('used')
      expect(out.result).toBe(10)
      expect(out.sameB).toBe(true)
      expect(out.name).toBe('b')
      // _core.js was compiled by _load.js, not required: one copy, and it is not in require.cache.
      expect(out.loaded).toEqual(['_load.js', 'index.js', 'other.js', 'sub/b.js'])
      // Without source maps, stack traces name _core.js, as a plain require does.
      expect(out.frame).toMatch(/_core\.js:\d+:\d+\)$/)
    })

    test.each([
      ['source maps are on (Node 20 does not apply them to vm scripts)', 'off', () => ({ args: ['--enable-source-maps'] })],
      ['the process was started with an option (V8 would reject the cache, at a cost)', 'off', () => ({ args: ['--max-old-space-size=256'] })],
      ['NODE_OPTIONS is set', 'off', () => ({ env: { NODE_OPTIONS: '--max-old-space-size=256' } })],
      ['KOALA_TRACKER_CODE_CACHE=off', 'off', () => ({ env: { KOALA_TRACKER_CODE_CACHE: 'off' } })],
      ['_core.js is not the source the cache was made from (a patch of the same length, which V8 would take)', 'stale', () => {
        const core = join(dir, '_core.js')
        const source = readFileSync(core, 'utf8')
        expect(source).toContain('return n + 1')
        writeFileSync(core, source.replace('return n + 1', 'return n + 2'))
        return { result: 12 }
      }],
      ['the cache is not one V8 can use', 'rejected', () => {
        // The source copy at its head still matches: only V8's part is garbage.
        const cache = readFileSync(cacheFile)
        const head = 4 + cache.readUInt32LE(0)
        writeFileSync(cacheFile, Buffer.concat([cache.subarray(0, head), Buffer.alloc(cache.length - head, 7)]))
        return {}
      }],
      ['there is only a cache for another V8', 'missing', () => {
        renameSync(cacheFile, join(dir, bundle.cacheName('0.0.0-other')))
        return {}
      }],
      ['the cache opens but cannot be read (a directory in its place)', 'unreadable', () => {
        rmSync(cacheFile)
        mkdirSync(cacheFile)
        return {}
      }]
    ])('falls back to compiling _core.js when %s', (_, status, arrange) => {
      const { args, env, result } = arrange() as { args?: string[], env?: Record<string, string>, result?: number }
      const out = run(args, env)
      expect(out.codeCache).toBe(status)
      expect(out.result).toBe(result ?? 10)
      expect(out.sameB).toBe(true)
      if (args?.includes('--enable-source-maps') === true) expect(out.frame).toMatch(/src\/sub\/b\.ts:2:\d+\)$/)
    })

    test("under another module system (this test runner's), it is required as any module, in the caller's realm", () => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const index = require(join(dir, 'index.js')) as { run(n: number): number }
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      expect((require(join(dir, '_load.js')) as { codeCache: string }).codeCache).toBe('off')
      expect(index.run(4)).toBe(10)
      let err: unknown
      try { index.run(-5) } catch (e) { err = e }
      expect(err).toBeInstanceOf(Error)
    })
  })
})

test('the built package loads its main entry from one packed file, compiled from its code cache, and reaches it from every other entry point', () => {
  if (!existsSync(join(ROOT, 'dist/cjs/lib/_core.js'))) throw new Error('dist/ is missing: run `npm run build` (npm test does it for you)')
  const script = `
    // The package by its own name, as from inside it.
    require = require('node:module').createRequire(${JSON.stringify(join(ROOT, 'package.json'))})
    const main = require('koala-tracker')
    const ours = () => Object.keys(require.cache).filter((f) => f.includes('/dist/cjs/'))
    const atStart = ours().length
    const express = require('koala-tracker/express')
    const errors = require(${JSON.stringify(join(ROOT, 'dist/cjs/lib/errors.js'))})
    const codeCache = require(${JSON.stringify(join(ROOT, 'dist/cjs/lib/_load.js'))}).codeCache
    process.stdout.write(JSON.stringify({ atStart, codeCache, shared: errors.KoalaError === main.KoalaError && express.gracefulShutdown === main.gracefulShutdown }))`
  const out = JSON.parse(runScript(script)) as { atStart: number, codeCache: string, shared: boolean }
  // index.js (a stub) and _load.js, which compiled _core.js from the code cache the build made.
  expect(out.atStart).toBe(2)
  expect(out.codeCache).toBe('used')
  expect(out.shared).toBe(true)
})

test('the built JavaScript carries no comments (a cold start reads and parses every byte), its declarations keep their docs, and stack traces still reach the sources', () => {
  if (!existsSync(join(ROOT, 'dist/cjs/lib/_core.js'))) throw new Error('dist/ is missing: run `npm run build` (npm test does it for you)')
  const core = readFileSync(join(ROOT, 'dist/cjs/lib/_core.js'), 'utf8')
  // The only comment lines are the bundler's own header and the map reference; validators are copied as generated.
  const packed = core.slice(0, core.indexOf('"generated/validators": function'))
  expect(packed.split('\n').filter((l) => /^\s*(\/\/|\/\*)/.test(l))).toEqual(['// Generated by scripts/bundle-core.cjs from the modules beside it. Do not edit.'])
  expect(readFileSync(join(ROOT, 'dist/cjs/lib/tracker.d.ts'), 'utf8')).toMatch(/\/\*\*[^]*Never throws unless `strict`/)
  const script = `
    try { require('koala-tracker').createTracker({}) } catch (e) { process.stdout.write(e.stack.split('\\n')[1]) }`
  const frame = execFileSync(process.execPath, ['--enable-source-maps', '-e', script], { cwd: ROOT }).toString()
  // The line of the throw in lib/options.ts, as the sources have it.
  const line = readFileSync(join(ROOT, 'lib/options.ts'), 'utf8').split('\n').findIndex((l) => l.includes("new ConfigError('publicKey', 'is required")) + 1
  expect(frame).toMatch(new RegExp(`lib/options\\.ts:${line}:\\d+\\)$`))
})
