import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { SourceMap } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ts from 'typescript'
import { ROOT } from './helpers/child'

interface RawMap { version: number, sources: string[], names: string[], mappings: string }
// eslint-disable-next-line @typescript-eslint/no-require-imports
const bundle = require('../scripts/bundle-core.cjs') as {
  bundleCore(libDir: string, entry?: string): string[]
  mergeMaps(file: string, parts: Array<{ line: number, map: RawMap }>): RawMap
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

  test('packs what index.js reaches, runs it as Node would, keeps one copy per module and maps stack traces to the sources', () => {
    expect(bundle.bundleCore(dir).sort()).toEqual(['a', 'index', 'sub/b'])
    expect(existsSync(join(dir, 'a.js.map'))).toBe(false)
    expect(readFileSync(join(dir, 'sub/b.js'), 'utf8')).toContain("require('../_core.js')\nmodule.exports = load(\"sub/b\")")
    const script = `
      const index = require(${JSON.stringify(join(dir, 'index.js'))})
      const b = require(${JSON.stringify(join(dir, 'sub/b.js'))})
      let stack = ''
      try { index.run(-5) } catch (e) { stack = e.stack }
      process.stdout.write(JSON.stringify({
        result: index.run(4), sameB: b === index.b && b.load('other').sameB === b && require(${JSON.stringify(join(dir, 'other.js'))}).sameB === b, name: new b.Named().name,
        loaded: Object.keys(require.cache).map((f) => f.slice(${JSON.stringify(dir.length + 1)})).sort(),
        frame: stack.split('\\n')[1]
      }))`
    const out = JSON.parse(execFileSync(process.execPath, ['--enable-source-maps', '-e', script]).toString()) as Record<string, unknown>
    expect(out.result).toBe(10)
    expect(out.sameB).toBe(true)
    expect(out.name).toBe('b')
    expect(out.loaded).toEqual(['_core.js', 'index.js', 'other.js', 'sub/b.js'])
    // `throw new Error('negative')` is line 2, column 14 of src/sub/b.ts.
    expect(out.frame).toMatch(/src\/sub\/b\.ts:2:\d+\)$/)
  })
})

test('the built package loads its main entry from one packed file, and reaches it from every other entry point', () => {
  if (!existsSync(join(ROOT, 'dist/cjs/lib/_core.js'))) throw new Error('dist/ is missing: run `npm run build` (npm test does it for you)')
  const script = `
    const main = require('koala-tracker')
    const ours = () => Object.keys(require.cache).filter((f) => f.includes('/dist/cjs/'))
    const atStart = ours().length
    const express = require('koala-tracker/express')
    const errors = require(${JSON.stringify(join(ROOT, 'dist/cjs/lib/errors.js'))})
    process.stdout.write(JSON.stringify({ atStart, shared: errors.KoalaError === main.KoalaError && express.gracefulShutdown === main.gracefulShutdown }))`
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: ROOT }).toString()) as { atStart: number, shared: boolean }
  // index.js (a stub) and _core.js.
  expect(out.atStart).toBe(2)
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
