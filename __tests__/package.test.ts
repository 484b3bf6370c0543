import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { VERSION } from '../lib/shared/version'
import { FIXTURES, ROOT, startNode } from './helpers/child'

// These run the built package (dist/), as a user's process would load it; `npm test` builds first.
beforeAll(() => {
  if (!existsSync(join(ROOT, 'dist/cjs/lib/index.js'))) throw new Error('dist/ is missing: run `npm run build` (npm test does it for you)')
})

test('the version in code matches package.json', () => {
  expect(VERSION).toBe(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version)
})

test.each([['import-esm.mjs', 'esm'], ['import-cjs.cjs', 'cjs']])('%s loads the package (tracker, collector and deletion entry points) and works through it', async (file, format) => {
  const { code, stdout, stderr } = await startNode([join(FIXTURES, file)]).exited
  expect(stderr).toBe('')
  expect(code).toBe(0)
  // Every entry point loads, re-exports share one object, and loading installs no signal handler.
  expect(JSON.parse(stdout)).toEqual({
    format, VERSION, delivered: 1, received: 1, deleted: 1, errorClass: 'function', entries: ['function', 'function', 'function'], shared: true, signalListeners: 0
  })
})

test.each([
  ['koala-tracker', 'Tracker'], ['koala-tracker/singleton', 'koala'], ['koala-tracker/express', 'koalaMiddleware'], ['koala-tracker/shutdown', 'gracefulShutdown'],
  ['koala-tracker/deletion', 'DeletionClient']
])('import and require of %s share one implementation (no dual-package hazard)', (entry, name) => {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e',
    `import { createRequire } from 'node:module'; import * as esm from '${entry}'; ` +
    `const cjs = createRequire(process.cwd() + '/x.js')('${entry}'); process.stdout.write(String(esm.${name} !== undefined && esm.${name} === cjs.${name}))`],
  { cwd: ROOT }).toString()
  expect(out).toBe('true')
})

test('the published types resolve for ESM and CommonJS consumers', () => {
  const tsc = require.resolve('typescript/bin/tsc')
  const run = (file: string): string => {
    try {
      return execFileSync(process.execPath, [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext',
        '--target', 'es2022', '--types', 'node', '--skipLibCheck', join(FIXTURES, file)], { cwd: ROOT }).toString()
    } catch (err) {
      return String((err as { stdout?: Buffer }).stdout ?? err)
    }
  }
  expect(run('types-esm.mts')).toBe('')
  expect(run('types-cjs.cts')).toBe('')
})

test('the subpath types also resolve for a CommonJS project on the older "node" module resolution (typesVersions)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'koala-node10-'))
  try {
    mkdirSync(join(dir, 'node_modules'))
    symlinkSync(ROOT, join(dir, 'node_modules', 'koala-tracker'), 'dir')
    writeFileSync(join(dir, 'index.ts'), [
      "import { createTracker } from 'koala-tracker'",
      "import { startCollector } from 'koala-tracker/collector'",
      "import { createDeletionClient } from 'koala-tracker/deletion'",
      "import { koalaMiddleware } from 'koala-tracker/express'",
      "import { gracefulShutdown } from 'koala-tracker/shutdown'",
      "import { koala } from 'koala-tracker/singleton'",
      'export const all = [createTracker, startCollector, createDeletionClient, koalaMiddleware, gracefulShutdown, koala]',
      ''
    ].join('\n'))
    const tsc = require.resolve('typescript/bin/tsc')
    let out = ''
    try {
      execFileSync(process.execPath, [tsc, '--noEmit', '--strict', '--module', 'commonjs', '--moduleResolution', 'node10', '--ignoreDeprecations', '5.0',
        '--target', 'es2022', '--types', 'node', '--typeRoots', join(ROOT, 'node_modules', '@types'), '--skipLibCheck', 'index.ts'], { cwd: dir })
    } catch (err) {
      out = String((err as { stdout?: Buffer }).stdout ?? err)
    }
    expect(out).toBe('')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

