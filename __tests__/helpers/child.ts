import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'

export const ROOT = join(__dirname, '..', '..')
export const FIXTURES = join(__dirname, '..', 'fixtures')

export interface ChildResult { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

export interface Child {
  process: ChildProcess
  /** Resolves when the child has printed a line containing `text` on stdout. */
  waitForOutput(text: string): Promise<void>
  /** What the child has printed on stdout so far. */
  output(): string
  /** Resolves when the child exits. Kills it after guardMs so a hang fails the test instead of the suite. */
  exited: Promise<ChildResult>
}

export function startNode (args: string[], options: { env?: Record<string, string>, guardMs?: number } = {}): Child {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  const waiters: Array<{ text: string, resolve: () => void }> = []
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString()
    for (const w of waiters.slice()) {
      if (stdout.includes(w.text)) { waiters.splice(waiters.indexOf(w), 1); w.resolve() }
    }
  })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const guard = setTimeout(() => child.kill('SIGKILL'), options.guardMs ?? 20_000)
  const exited = new Promise<ChildResult>(resolve => {
    child.on('exit', (code, signal) => {
      clearTimeout(guard)
      // Let the pipes drain before reporting.
      setImmediate(() => resolve({ code, signal, stdout, stderr }))
    })
  })
  return {
    process: child,
    exited,
    output: () => stdout,
    waitForOutput: async (text) => {
      if (stdout.includes(text)) return
      await new Promise<void>((resolve, reject) => {
        waiters.push({ text, resolve })
        void exited.then(r => reject(new Error(`child exited (${r.code ?? r.signal}) before printing ${JSON.stringify(text)}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)))
      })
    }
  }
}
