import { readFileSync } from 'node:fs'
import type { DeletionClientOptions } from '../deletion'

/** What the CLI touches of the outside world; tests pass their own. */
export interface CliIo {
  env: Readonly<Record<string, string | undefined>>
  /** One line of progress or results (stdout). */
  out(line: string): void
  /** One line about a problem (stderr). */
  err(line: string): void
  /** A file's text; `-` is standard input. */
  readFile(path: string): string
  /** Resolves when the operator asks a long-running command to stop. */
  stopRequested(): Promise<void>
  /** For tests: clock, dispatcher, random or transport for the deletion client. */
  client?: Partial<DeletionClientOptions>
}

export function nodeIo (): CliIo {
  return {
    env: process.env,
    out: (line) => { process.stdout.write(line + '\n') },
    err: (line) => { process.stderr.write(line + '\n') },
    readFile: (path) => readFileSync(path === '-' ? 0 : path, 'utf8'),
    stopRequested: async () => await new Promise<void>(resolve => {
      const stop = (): void => {
        process.off('SIGINT', stop)
        process.off('SIGTERM', stop)
        resolve()
      }
      process.on('SIGINT', stop)
      process.on('SIGTERM', stop)
    })
  }
}
