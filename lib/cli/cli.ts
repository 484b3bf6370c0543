#!/usr/bin/env node
import { parseArgs } from 'node:util'
import { EXIT, readPlan, runDelete, runStatus, runWait, UsageError, type WaitSettings } from './delete'
import { nodeIo, type CliIo } from './io'
import { RELAY_HELP, runRelay } from './relay'
import { requestLine } from './request-line'
import { startCollector, type Collector } from '../collector'
import { createDeletionClient, DELETION_ID_RULE, isDeletionId, type DeletionClient } from '../deletion'
import { DELETION_DEFAULTS } from '../deletion'
import { isKoalaError } from '../shared/errors'
import { plural } from '../shared/plural'
import { redactSecrets } from '../shared/redact'
import { VERSION } from '../shared/version'

export { EXIT } from './delete'
export type { CliIo } from './io'

const COMMANDS = {
  delete: `  koala-tracker delete --emails-file FILE [--wait] [options]
      Ask Koala to delete everything it holds on each email in FILE (one per line, or a CSV
      with an "email" column; blank lines and # comments are skipped; - reads standard input).`,
  status: `  koala-tracker status ID... [--wait] [options]
      Show (or wait for) the status of earlier deletion requests.`,
  collector: `  koala-tracker collector [--port 4010] [--host 127.0.0.1] [--polls-until-completed 2] [--quiet]
      Run the embedded Koala-compatible collector (ingestion and deletion API) for local development.`,
  relay: `  koala-tracker relay --redis URL [--stream NAME] [--base-url URL]
      Deliver what a fleet of trackers adds to a Redis stream (fleet mode), without tracking anything.`
}

const KEY_HELP = `Options for delete and status:
  --wait                         Check every request until it is completed.
  --wait-timeout-seconds N       Give up waiting after N seconds (default ${DELETION_DEFAULTS.waitTimeoutMs / 1000}).
  --poll-interval-seconds N      Time between two checks of a request (default ${DELETION_DEFAULTS.pollIntervalMs / 1000}).
  --base-url URL                 Koala's app API (default ${DELETION_DEFAULTS.baseUrl}); http:// only for localhost.
  --secret-key-file FILE         Read the secret key from FILE instead of KOALA_SECRET_KEY.
  --dry-run                      (delete) Check the file and show the requests; send nothing, need no key.
  --skip-invalid                 (delete) Send the valid emails even if some lines are not email addresses.

The secret key (sk_..., Koala Settings → API Keys) comes from the KOALA_SECRET_KEY environment variable
or --secret-key-file. It is never taken as an argument: a command line is visible to other users (ps)
and kept in shell history.

Exit codes: 0 done; 1 a deletion request was not made or a check failed; 2 bad arguments, file or key
(nothing sent); 3 not every request completed before the deadline (or, for status, not completed yet).`

const COLLECTOR_HELP = `Options for collector:
  --port N                       Port to listen on (default 4010; 0 for any free one).
  --host HOST                    Address to listen on (default 127.0.0.1).
  --polls-until-completed N      Status checks before a fake deletion request is completed (default 2).
  --quiet                        Print no line per request, only the summary at the end.

It prints one line per request (status, route, who, counts) until Ctrl-C, then a summary, and exits 0.`

const USAGE = `koala-tracker ${VERSION}

Usage:
${COMMANDS.delete}
${COMMANDS.status}
${COMMANDS.collector}
${COMMANDS.relay}

Any command takes --help.

${KEY_HELP}

${COLLECTOR_HELP}

${RELAY_HELP}`

type Command = keyof typeof COMMANDS

function commandUsage (command: Command): string {
  const options = command === 'collector' ? COLLECTOR_HELP : command === 'relay' ? RELAY_HELP : KEY_HELP
  return `Usage:\n${COMMANDS[command]}\n\n${options}`
}

const isCommand = (name: string | undefined): name is Command => name !== undefined && Object.hasOwn(COMMANDS, name)

const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const

const KEY_OPTIONS = {
  ...HELP_OPTION,
  'base-url': { type: 'string' },
  'secret-key-file': { type: 'string' },
  // Declared only to refuse it with a reason instead of "unknown option".
  'secret-key': { type: 'string' },
  wait: { type: 'boolean' },
  'wait-timeout-seconds': { type: 'string' },
  'poll-interval-seconds': { type: 'string' }
} as const

/** Runs one command; resolves with the exit code. Everything printed passes through redaction. */
export async function main (argv: string[], rawIo: CliIo): Promise<number> {
  let key: string | undefined
  const io: CliIo = {
    ...rawIo,
    out: (line) => rawIo.out(redactSecrets(line, key)),
    err: (line) => rawIo.err(redactSecrets(line, key))
  }
  const [command, ...rest] = argv
  let client: DeletionClient | undefined
  try {
    switch (command) {
      case 'delete': {
        const { values, positionals } = parseArgs({
          args: rest,
          allowPositionals: true,
          options: { ...KEY_OPTIONS, 'emails-file': { type: 'string' }, 'dry-run': { type: 'boolean' }, 'skip-invalid': { type: 'boolean' } }
        })
        if (values.help === true) return help(io, command)
        if (positionals.length > 0) throw new UsageError(`delete takes no arguments besides options (got ${positionals.length}); did you mean --emails-file FILE?`)
        if (values['emails-file'] === undefined) throw new UsageError('delete needs --emails-file FILE (one email per line; - for standard input)')
        const wait = waitSettings(values)
        const plan = readPlan(io, values['emails-file'], values['skip-invalid'] === true)
        if (values['dry-run'] === true) {
          const sizes = plan.batches.map(n => plural(n, 'email')).join(', ')
          io.out(`Dry run: would send ${plural(plan.batches.length, 'deletion request')} (${sizes}) to ${values['base-url'] ?? DELETION_DEFAULTS.baseUrl}. Nothing was sent.`)
          return EXIT.ok
        }
        key = secretKey(io, values)
        client = makeClient(io, key, values, wait)
        io.out(`Requesting deletion of ${plural(plan.emails.length, 'email')} in ${plural(plan.batches.length, 'request')} (at most 50 each)...`)
        return await runDelete(io, client, plan.emails, wait)
      }
      case 'status': {
        const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: KEY_OPTIONS })
        if (values.help === true) return help(io, command)
        if (positionals.length === 0) throw new UsageError('status needs one or more deletion request ids')
        // Checked before anything is sent, so a bad id is a usage error with or without --wait.
        const bad = positionals.findIndex(id => !isDeletionId(id))
        if (bad !== -1) throw new UsageError(`status: argument ${bad + 1} is not ${DELETION_ID_RULE}`)
        const wait = waitSettings(values)
        key = secretKey(io, values)
        client = makeClient(io, key, values, wait)
        return wait.wait ? await runWait(io, client, positionals, wait) : await runStatus(io, client, positionals)
      }
      case 'collector':
        return await runCollector(io, rest)
      case 'relay':
        return await runRelay(io, rest, () => help(io, 'relay'))
      case 'help': case '--help': case '-h': case undefined:
        // `help delete` is `delete --help`.
        if (command === 'help' && isCommand(rest[0])) return help(io, rest[0])
        io.out(USAGE)
        return command === undefined ? EXIT.usage : EXIT.ok
      case '--version': case '-v':
        io.out(VERSION)
        return EXIT.ok
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}; try: koala-tracker help`)
    }
  } catch (err) {
    // Bad arguments, file or options (a ConfigError names the option); nothing was sent.
    if (err instanceof UsageError || isKoalaError(err) || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true) {
      io.err(`error: ${(err as Error).message}`)
      return EXIT.usage
    }
    throw err
  } finally {
    await client?.close()
  }
}

function help (io: CliIo, command: Command): number {
  io.out(commandUsage(command))
  return EXIT.ok
}

function waitSettings (values: { wait?: boolean, 'wait-timeout-seconds'?: string, 'poll-interval-seconds'?: string }): WaitSettings {
  return {
    wait: values.wait === true,
    timeoutMs: msFromSeconds('--wait-timeout-seconds', values['wait-timeout-seconds'], 0),
    pollIntervalMs: msFromSeconds('--poll-interval-seconds', values['poll-interval-seconds'], 1)
  }
}

function msFromSeconds (flag: string, value: string | undefined, minMs: number): number | undefined {
  if (value === undefined) return undefined
  const ms = Math.round(Number(value) * 1000)
  if (value.trim() === '' || !Number.isFinite(ms) || ms < minMs) throw new UsageError(`${flag} must be a number of seconds${minMs > 0 ? ' above 0' : ''}, got ${JSON.stringify(value)}`)
  return ms
}

function secretKey (io: CliIo, values: { 'secret-key'?: string, 'secret-key-file'?: string }): string {
  if (values['secret-key'] !== undefined) {
    throw new UsageError('--secret-key is not accepted: a command line is visible to other users (ps) and kept in shell history. ' +
      'Set KOALA_SECRET_KEY, or use --secret-key-file FILE.')
  }
  const file = values['secret-key-file']
  if (file !== undefined) {
    try {
      return io.readFile(file).trim()
    } catch (err) {
      throw new UsageError(`cannot read --secret-key-file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`)
    }
  }
  const fromEnv = io.env.KOALA_SECRET_KEY
  if (fromEnv === undefined || fromEnv.trim() === '') {
    throw new UsageError('no secret key: set KOALA_SECRET_KEY to your Koala secret key (sk_..., Settings → API Keys), or use --secret-key-file FILE')
  }
  return fromEnv
}

function makeClient (io: CliIo, key: string, values: { 'base-url'?: string }, wait: WaitSettings): DeletionClient {
  return createDeletionClient({
    ...io.client,
    secretKey: key,
    baseUrl: values['base-url'],
    pollIntervalMs: wait.pollIntervalMs,
    waitTimeoutMs: wait.timeoutMs,
    // The CLI reports everything on its own output.
    logger: { debug () {}, warn () {}, error () {} }
  })
}

async function runCollector (io: CliIo, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...HELP_OPTION, port: { type: 'string' }, host: { type: 'string' }, 'polls-until-completed': { type: 'string' }, quiet: { type: 'boolean' } }
  })
  if (values.help === true) return help(io, 'collector')
  if (positionals.length > 0) throw new UsageError('collector takes only options')
  const port = wholeNumber('--port', values.port ?? '4010', 0, 65_535)
  const polls = wholeNumber('--polls-until-completed', values['polls-until-completed'] ?? '2', 1, 1_000_000)
  const host = values.host ?? '127.0.0.1'
  let collector: Collector
  try {
    collector = await startCollector({ port, host, deletion: { pollsUntilCompleted: polls } })
  } catch (err) {
    // A port in use or not allowed is the operator's to fix, not an internal error.
    const code = (err as NodeJS.ErrnoException).code
    if (code === undefined) throw err
    io.err(`error: cannot listen on ${host}:${port} (${code})`)
    return EXIT.failed
  }
  if (values.quiet !== true) collector.on('request', (req, answer) => io.out(requestLine(req, answer)))
  io.out(`Koala collector listening on ${collector.url}`)
  io.out(`  ingestion: POST ${collector.url}/web/projects/<public key>/batch and /accounts/batch (createTracker({ baseUrl: '${collector.url}' }))`)
  io.out(`  deletion:  ${collector.url}/api/v1/deletion-requests, any sk_ key (koala-tracker delete --base-url ${collector.url})`)
  io.out('Stop with Ctrl-C.')
  await io.stopRequested()
  await collector.close()
  io.out(collector.summary())
  return EXIT.ok
}

function wholeNumber (flag: string, value: string, min: number, max: number): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`)
  return n
}

if (require.main === module) {
  main(process.argv.slice(2), nodeIo()).then(code => { process.exitCode = code }, (err: unknown) => {
    process.stderr.write(`koala-tracker: internal error, please report it: ${redactSecrets(err instanceof Error ? err.stack ?? err.message : String(err))}\n`)
    process.exitCode = 70
  })
}
