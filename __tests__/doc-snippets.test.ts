import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import ts from 'typescript'
import { ROOT } from './helpers/child'

/**
 * What a reader copies must compile. Every ```ts block is compiled as a module of its own, importing the
 * package by name ('koala-tracker' and 'koala-tracker/*' map to lib/ through tsconfig.json's paths). A
 * block that continues an earlier one, and so cannot compile alone, is fenced ```ts fragment.
 */
const DOCS = ['README.md', 'docs/express.md']

function snippets (): Map<string, string> {
  const files = new Map<string, string>()
  for (const doc of DOCS) {
    const text = readFileSync(join(ROOT, doc), 'utf8')
    for (const m of text.matchAll(/^```ts\n([\s\S]*?)^```$/gm)) {
      const line = text.slice(0, m.index).split('\n').length
      files.set(join(ROOT, '__snippets__', `${doc.replace(/\W/g, '_')}_line_${line}.ts`), m[1])
    }
  }
  return files
}

test('every TypeScript snippet in README.md and docs/express.md compiles against the package', () => {
  const files = snippets()
  expect(files.size).toBeGreaterThanOrEqual(5)
  const config = ts.getParsedCommandLineOfConfigFile(join(ROOT, 'tsconfig.json'), undefined, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} })
  if (config === undefined) throw new Error('tsconfig.json could not be read')
  const options: ts.CompilerOptions = {
    ...config.options,
    noEmit: true,
    // As readers run them: ES modules (top-level await), each file a module, no test globals.
    module: ts.ModuleKind.ES2022,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    moduleDetection: ts.ModuleDetectionKind.Force,
    types: ['node'],
    // A snippet may show a value it does not go on to use.
    noUnusedLocals: false,
    noUnusedParameters: false
  }
  const host = ts.createCompilerHost(options)
  const { getSourceFile, fileExists, readFile } = host
  // Parsed once for all the programs below.
  const parsed = new Map<string, ts.SourceFile | undefined>()
  host.getSourceFile = (name, language, ...rest) => {
    if (!parsed.has(name)) {
      const code = files.get(name)
      parsed.set(name, code === undefined ? getSourceFile(name, language, ...rest) : ts.createSourceFile(name, code, language))
    }
    return parsed.get(name)
  }
  host.fileExists = (name) => files.has(name) || fileExists(name)
  host.readFile = (name) => files.get(name) ?? readFile(name)
  const problems: string[] = []
  // One program per snippet: a `declare global` in one must not make another compile.
  for (const name of files.keys()) {
    const program = ts.createProgram([name], options, host)
    const file = program.getSourceFile(name)
    const diagnostics = [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)]
    for (const d of diagnostics) {
      const line = d.file === undefined || d.start === undefined ? '' : `:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}`
      problems.push(`${name.slice(ROOT.length + 1)}${line}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`)
    }
  }
  expect(problems).toEqual([])
}, 60_000)
