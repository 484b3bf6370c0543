import { execFileSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { main, EXIT, type CliIo } from '../lib/cli/cli'
import { nodeIo } from '../lib/cli/io'
import { startCollector, type Collector, type CollectorOptions } from '../lib/collector'
import { createDeletionClient } from '../lib/deletion/client'
import { createTracker } from '../lib/tracker'
import { VERSION } from '../lib/shared/version'
import { ROOT, startNode } from './helpers/child'
import { emailsFor, makeKey } from './helpers/deletion'

const CLI = join(ROOT, 'dist/cjs/lib/cli/cli.js')

let collector: Collector | undefined
let dir: string
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'koala-cli-')) })
afterEach(async () => {
  await collector?.close()
  collector = undefined
  rmSync(dir, { recursive: true, force: true })
})

async function start (options: CollectorOptions = {}): Promise<Collector> {
  collector = await startCollector(options)
  return collector
}

function file (name: string, text: string): string {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

/** Runs main() in this process with captured output. */
async function run (argv: string[], env: Record<string, string> = {}, client: CliIo['client'] = {}): Promise<{ code: number, out: string, err: string }> {
  const out: string[] = []
  const err: string[] = []
  const code = await main(argv, {
    env,
    out: l => out.push(l),
    err: l => err.push(l),
    readFile: p => readFileSync(p, 'utf8'),
    stopRequested: async () => {},
    client
  })
  return { code, out: out.join('\n'), err: err.join('\n') }
}

describe('the koala-tracker binary (child processes against a collector in this process)', () => {
  test('delete --wait: progress on stdout, every request made and completed, exit 0', async () => {
    const key = makeKey()
    const c = await start({ deletion: { secretKey: key, pollsUntilCompleted: 1 } })
    const list = file('emails.txt', `# GDPR requests, week 48\n${emailsFor(120).join('\n')}\nPERSON0@example.com\n\n`)
    const { code, stdout, stderr } = await startNode([CLI, 'delete', '--emails-file', list, '--base-url', c.url, '--wait'], { env: { KOALA_SECRET_KEY: key } }).exited
    expect(stderr).toBe('')
    expect(code).toBe(EXIT.ok)
    const ids = c.deletionRequests.map(r => r.id)
    expect(c.deletionRequests.map(r => r.emails.length)).toEqual([50, 50, 20])
    expect(stdout.split('\n')).toEqual([
      `Read 121 entries from ${list}: 120 unique emails, 1 duplicate, 0 invalid.`,
      'Requesting deletion of 120 emails in 3 requests (at most 50 each)...',
      `  [1/3] 50 emails: deletion request ${ids[0]}`,
      `  [2/3] 50 emails: deletion request ${ids[1]}`,
      `  [3/3] 20 emails: deletion request ${ids[2]}`,
      'Requested deletion of 120 emails in 3 requests.',
      'Waiting for 3 deletion requests to complete (checking every 5 s, for at most 600 s)...',
      ...ids.map(id => `  ${id}: completed`),
      'All 3 deletion requests completed.',
      ''
    ])
    // The operator's terminal shows counts and ids, never the emails.
    expect(stdout).not.toContain('person1@example.com')
  })

  test('a refused key: exit 1, the reason on stderr, the key nowhere', async () => {
    const c = await start({ deletion: { secretKey: makeKey() } })
    const key = makeKey()
    const list = file('emails.txt', emailsFor(60).join('\n'))
    const { code, stdout, stderr } = await startNode([CLI, 'delete', '--emails-file', list, '--base-url', c.url], { env: { KOALA_SECRET_KEY: key } }).exited
    expect(code).toBe(EXIT.failed)
    expect(stdout).toContain('  [1/2] 50 emails: NOT requested: deletion request 1 of 2 (50 emails) failed (unauthorized): Koala refused the secret key (HTTP 401)')
    expect(stdout).toContain('  [2/2] 10 emails: NOT requested: deletion request 2 of 2 (10 emails) failed (skipped)')
    expect(stderr).toMatch(/^error: 2 of 2 deletion requests \(60 emails\) were not made: .*Requesting deletion again is safe/)
    expect(stdout + stderr).not.toContain(key.slice(8))
  })

  test('--wait with a deadline shorter than the poll interval: exit 3 at once, with the ids to check later', async () => {
    const key = makeKey()
    const c = await start({ deletion: { secretKey: key, pollsUntilCompleted: 100 } })
    const list = file('emails.txt', 'ada@example.com\n')
    const { code, stdout, stderr } = await startNode([CLI, 'delete', '--emails-file', list, '--base-url', c.url, '--wait', '--wait-timeout-seconds', '0.5'],
      { env: { KOALA_SECRET_KEY: key } }).exited
    const [id] = c.deletionRequests.map(r => r.id)
    expect(code).toBe(EXIT.pending)
    expect(stdout).toContain(`  ${id}: pending\n`)
    expect(stderr).toBe(`error: 1 of 1 deletion request was not completed before the deadline (last status: pending). Check later with: koala-tracker status ${id}\n`)
    expect(c.stats().deletion.polls).toBe(1)
  })

  test('--emails-file - reads standard input', () => {
    const out = execFileSync(process.execPath, [CLI, 'delete', '--emails-file', '-', '--dry-run'], { input: 'ada@example.com\ngrace@example.org\n' }).toString()
    expect(out).toBe('Read 2 entries from standard input: 2 unique emails, 0 duplicates, 0 invalid.\n' +
      'Dry run: would send 1 deletion request (2 emails) to https://app.getkoala.com. Nothing was sent.\n')
  })

  test('the key is refused as an argument, and not echoed', async () => {
    const key = makeKey()
    const list = file('emails.txt', 'ada@example.com\n')
    const { code, stdout, stderr } = await startNode([CLI, 'delete', '--emails-file', list, `--secret-key=${key}`]).exited
    expect(code).toBe(EXIT.usage)
    expect(stderr).toContain('error: --secret-key is not accepted: a command line is visible to other users (ps)')
    expect(stdout + stderr).not.toContain(key.slice(8))
  })

  test('the bin is an executable file with a shebang, and npx finds it', () => {
    const bin = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).bin['koala-tracker'] as string
    expect(join(ROOT, bin)).toBe(CLI)
    expect(execFileSync(CLI, ['--version']).toString()).toBe(`${VERSION}\n`)
    // --offline: resolved from this package, never fetched from a registry.
    expect(execFileSync('npm', ['exec', '--offline', '--', 'koala-tracker', '--version'], { cwd: ROOT }).toString()).toBe(`${VERSION}\n`)
  })

  test('collector on a port already in use: exit 1 with the address, not an internal error', async () => {
    const busy = await start()
    const port = new URL(busy.url).port
    const { code, stdout, stderr } = await startNode([CLI, 'collector', '--port', port]).exited
    expect(code).toBe(EXIT.failed)
    expect(stderr).toBe(`error: cannot listen on 127.0.0.1:${port} (EADDRINUSE)\n`)
    expect(stdout).toBe('')
  })

  test('an error no handler expects: exit 70, a request to report it on stderr, the secret key redacted', async () => {
    const key = 'sk_test_internal_0123456789'
    const preload = join(ROOT, '__tests__/fixtures/cli-internal-error.cjs')
    const { code, stdout, stderr } = await startNode(['-r', preload, CLI, 'status', 'r_1'], { env: { KOALA_SECRET_KEY: key } }).exited
    expect(code).toBe(70)
    expect(stderr).toMatch(/^koala-tracker: internal error, please report it: TypeError: unexpected: sk_\[redacted\]\n/)
    expect(stderr).not.toContain(key)
    expect(stdout).toBe('')
  })

  test('collector: one line per request on stdout (status, route, who, counts, why refused); --quiet prints none', async () => {
    for (const quiet of [false, true]) {
      const child = startNode([CLI, 'collector', '--port', '0', ...(quiet ? ['--quiet'] : [])])
      await child.waitForOutput('Stop with Ctrl-C.')
      const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(child.output())?.[1] as string
      const tracker = createTracker({ publicKey: 'pk_dev', baseUrl: url })
      const pid = randomUUID()
      tracker.track({ profile_id: pid, email: 'ada@example.com', event: 'Signed Up' })
      tracker.page({ profile_id: pid, name: 'Home' })
      tracker.page({ profile_id: pid, name: 'Pricing' })
      tracker.identifyAccount({ domain: 'acme.com', traits: { plan: 'pro' } })
      expect(await tracker.close()).toMatchObject({ delivered: 4 })
      const refused = await request(`${url}/web/projects/pk_dev/batch`, {
        method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'test/1.0' }, body: JSON.stringify({ email: 'grace@example.com', events: [{ type: 'track', event: '' }] })
      })
      expect(refused.statusCode).toBe(400)
      await refused.body.dump()
      const anonymous = await request(`${url}/web/projects/pk_dev/batch`, {
        method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': '' }, body: JSON.stringify({ email: 'bot@example.com', events: [{ type: 'track', event: 'x' }] })
      })
      await anonymous.body.dump()
      child.process.kill('SIGTERM')
      const { code, stdout } = await child.exited
      expect(code).toBe(0)
      const lines = stdout.split('\n').filter(l => /^\d{3} /.test(l))
      expect(lines).toHaveLength(quiet ? 0 : 4)
      if (!quiet) expect(lines).toEqual(expect.arrayContaining([
        '200 accounts acme.com: 0 events, 1 identify',
        `200 profiles ${pid} ada@example.com: 1 event, 0 identifies, 2 page views`,
        '200 profiles bot@example.com: 1 event, 0 identifies, 0 page views (no User-Agent: ignored, as Koala does)',
        expect.stringMatching(/^400 profiles grace@example\.com: 1 event, 0 identifies, 0 page views \(invalid batch: \/events\/0\/event .+\)$/)
      ]))
    }
  })

  test('collector: serves both APIs until SIGTERM, then prints its summary and exits 0', async () => {
    const child = startNode([CLI, 'collector', '--port', '0', '--polls-until-completed', '1'])
    let stdout = ''
    child.process.stdout?.on('data', (d: Buffer) => { stdout += d.toString() })
    await child.waitForOutput('Stop with Ctrl-C.')
    const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)?.[1] as string
    const client = createDeletionClient({ secretKey: 'sk_dev', baseUrl: url })
    const { submitted } = await client.requestDeletion(['ada@example.com'])
    expect((await client.waitForCompletion([submitted[0].id])).completed).toHaveLength(1)
    await client.close()
    const batch = await request(`${url}/web/projects/pk_dev/batch`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'test/1.0' }, body: JSON.stringify({ email: 'ada@example.com', events: [{ type: 'track', event: 'x' }] })
    })
    expect(batch.statusCode).toBe(200)
    await batch.body.dump()
    child.process.kill('SIGTERM')
    const result = await child.exited
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('profiles: 1 person, 1 event')
    expect(result.stdout).toContain('deletion requests: 1 (1 email, 0 past the 50th ignored), 1 status check, 1 completed')
  })
})

describe('main() in process', () => {
  const KEY = 'sk_test_cli_key_0123456789'

  test('invalid lines: listed with their line numbers on stderr, nothing sent, exit 2; --skip-invalid sends the rest', async () => {
    const c = await start({ deletion: { secretKey: KEY } })
    const list = file('emails.txt', 'ada@example.com\nnot an email\n\ngrace@example\n')
    const refused = await run(['delete', '--emails-file', list, '--base-url', c.url], { KOALA_SECRET_KEY: KEY })
    expect(refused.code).toBe(EXIT.usage)
    expect(refused.err).toBe([
      '  line 2: "not an email" is not an email address',
      '  line 4: "grace@example" is not an email address',
      'error: 2 lines are not email addresses; nothing was sent. Fix them, or pass --skip-invalid to send the rest.'
    ].join('\n'))
    expect(c.stats().requests).toBe(0)
    const skipped = await run(['delete', '--emails-file', list, '--base-url', c.url, '--skip-invalid'], { KOALA_SECRET_KEY: KEY })
    expect(skipped.code).toBe(EXIT.ok)
    expect(c.deletionRequests.map(r => r.emails)).toEqual([['ada@example.com']])
    expect(skipped.out).toContain('Koala deletes in the background. Check with: koala-tracker status ')
  })

  test('counts of one read as one: 1 line, 1 entry, 1 email, 1 request', async () => {
    const refused = await run(['delete', '--emails-file', file('one-bad.txt', 'ada@example.com\nnot an email\n'), '--dry-run'])
    expect(refused.err.split('\n').pop()).toBe('error: 1 line is not an email address; nothing was sent. Fix it, or pass --skip-invalid to send the rest.')
    const one = await run(['delete', '--emails-file', file('one.txt', 'ada@example.com\n'), '--dry-run'])
    expect(one.out).toBe(`Read 1 entry from ${join(dir, 'one.txt')}: 1 unique email, 0 duplicates, 0 invalid.\n` +
      'Dry run: would send 1 deletion request (1 email) to https://app.getkoala.com. Nothing was sent.')
  })

  test('--dry-run needs no key and sends nothing', async () => {
    const list = file('emails.csv', `name,email\n${emailsFor(51).map((e, i) => `n${i},${e}`).join('\n')}\n`)
    const { code, out, err } = await run(['delete', '--emails-file', list, '--dry-run'])
    expect([code, err]).toEqual([EXIT.ok, ''])
    expect(out).toBe(`Read 51 entries from ${list} (CSV column 2): 51 unique emails, 0 duplicates, 0 invalid.\n` +
      'Dry run: would send 2 deletion requests (50 emails, 1 email) to https://app.getkoala.com. Nothing was sent.')
  })

  test('a key from --secret-key-file; retries shown as progress', async () => {
    const c = await start({ deletion: { secretKey: KEY }, fault: req => req.seq === 1 ? { status: 503 } : undefined })
    const list = file('emails.txt', 'ada@example.com\n')
    const keyFile = file('key', `${KEY}\n`)
    const { code, out } = await run(['delete', '--emails-file', list, '--base-url', c.url, '--secret-key-file', keyFile], {}, { retryBaseDelayMs: 0 })
    expect(code).toBe(EXIT.ok)
    expect(out).toContain('  [1/1] attempt 1 failed (HTTP 503); retrying in 0 s')
    expect(out).toContain(`  [1/1] 1 email: deletion request ${c.deletionRequests[0].id}`)
  })

  test('status: pending is exit 3, completed 0, unknown 1; --wait waits', async () => {
    const c = await start({ deletion: { secretKey: KEY, pollsUntilCompleted: 2 } })
    const client = createDeletionClient({ secretKey: KEY, baseUrl: c.url })
    const { submitted: [{ id }] } = await client.requestDeletion(['ada@example.com'])
    await client.close()
    const env = { KOALA_SECRET_KEY: KEY }
    expect(await run(['status', id, '--base-url', c.url], env)).toEqual({ code: EXIT.pending, out: `${id}: pending`, err: '' })
    expect(await run(['status', id, '--base-url', c.url], env)).toEqual({ code: EXIT.ok, out: `${id}: completed (receipt for 1 email)`, err: '' })
    const unknown = await run(['status', 'nope', '--base-url', c.url], env)
    expect(unknown.code).toBe(EXIT.failed)
    expect(unknown.err).toBe('nope: status of deletion request nope failed (not_found): Koala knows no deletion request with this id (HTTP 404): {"error":"deletion request not found"}')
    const waited = await run(['status', id, '--wait', '--base-url', c.url], env)
    expect(waited.code).toBe(EXIT.ok)
    expect(waited.out).toContain('The deletion request completed.')
  })

  test('a request not made outranks one not completed: exit 1, not 3', async () => {
    const c = await start({ deletion: { secretKey: KEY, pollsUntilCompleted: 100 }, fault: req => req.seq === 1 ? { status: 400 } : undefined })
    const list = file('emails.txt', emailsFor(60).join('\n'))
    const { code, out, err } = await run(['delete', '--emails-file', list, '--base-url', c.url, '--wait', '--wait-timeout-seconds', '1'], { KOALA_SECRET_KEY: KEY })
    expect(code).toBe(EXIT.failed)
    expect(out).toContain('  [1/2] 50 emails: NOT requested: deletion request 1 of 2 (50 emails) failed (rejected): Koala rejected the request (HTTP 400)')
    expect(out).toContain(`  ${c.deletionRequests[0].id}: pending`)
    expect(err).toContain('1 of 1 deletion request was not completed before the deadline')
  })

  test('a secret key echoed back by a server is redacted from everything printed', async () => {
    const c = await start({ fault: req => ({ status: 401, body: `bad key: ${String(req.headers.authorization)}` }) })
    const list = file('emails.txt', 'ada@example.com\n')
    const key = makeKey()
    const { code, out, err } = await run(['delete', '--emails-file', list, '--base-url', c.url], { KOALA_SECRET_KEY: key })
    expect(code).toBe(EXIT.failed)
    expect(out + err).toContain('bad key: Bearer [redacted]')
    expect(out + err).not.toContain(key.slice(8))
  })

  test.each([
    [['delete', '--emails-file', 'FILE', '--base-url', 'http://koala.example.com'], { KOALA_SECRET_KEY: 'sk_x' }, 'error: baseUrl must use https: over http://'],
    [['delete', '--emails-file', 'FILE'], {}, 'error: no secret key: set KOALA_SECRET_KEY'],
    [['delete', '--emails-file', 'FILE'], { KOALA_SECRET_KEY: 'pk_public' }, 'error: secretKey must be a secret key (sk_...), not the public project key'],
    [['delete'], {}, 'error: delete needs --emails-file FILE'],
    [['delete', 'emails.txt'], {}, 'error: delete takes no arguments besides options (got 1)'],
    [['delete', '--emails-file', 'missing.txt'], {}, 'error: cannot read missing.txt: ENOENT'],
    [['delete', '--emails-file', 'FILE', '--wait-timeout-seconds', 'soon'], {}, 'error: --wait-timeout-seconds must be a number of seconds, got "soon"'],
    [['delete', '--emails-file', 'FILE', '--poll-interval-seconds', '0'], {}, 'error: --poll-interval-seconds must be a number of seconds above 0, got "0"'],
    [['delete', '--emails', 'x'], {}, "error: Unknown option '--emails'"],
    [['status'], { KOALA_SECRET_KEY: 'sk_x' }, 'error: status needs one or more deletion request ids'],
    [['collector', '--port', 'x'], {}, 'error: --port must be a whole number from 0 to 65535, got "x"'],
    [['erase'], {}, 'error: unknown command "erase"; try: koala-tracker help']
  ])('%j with env %j → exit 2: %s', async (argv, env, message) => {
    const real = file('emails.txt', 'ada@example.com\n')
    const args = argv.map(a => a === 'FILE' ? real : a)
    const { code, err } = await run(args, env)
    expect(code).toBe(EXIT.usage)
    expect(err.startsWith(message)).toBe(true)
  })

  test('a malformed deletion id is a usage error (exit 2) with or without --wait, before anything is sent or printed', async () => {
    const c = await start({ deletion: { secretKey: KEY } })
    const env = { KOALA_SECRET_KEY: KEY }
    const long = 'x'.repeat(201)
    for (const args of [['status', 'r_1', long], ['status', long, '--wait']]) {
      const { code, out, err } = await run([...args, '--base-url', c.url], env)
      expect({ code, out }).toEqual({ code: EXIT.usage, out: '' })
      expect(err).toMatch(/^error: status: argument \d is not a deletion request id \(a non-empty string of at most 200 characters\)/)
    }
    expect(c.stats().requests).toBe(0)
  })

  test('the process io: files, output lines, and a stop on SIGINT or SIGTERM that leaves no listener behind', async () => {
    const io = nodeIo()
    expect(io.readFile(file('emails.txt', 'ada@example.com\n'))).toBe('ada@example.com\n')
    const written: string[] = []
    const out = jest.spyOn(process.stdout, 'write').mockImplementation(chunk => { written.push(String(chunk)); return true })
    const err = jest.spyOn(process.stderr, 'write').mockImplementation(chunk => { written.push(String(chunk)); return true })
    try {
      io.out('progress')
      io.err('problem')
    } finally {
      out.mockRestore()
      err.mockRestore()
    }
    expect(written).toEqual(['progress\n', 'problem\n'])
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const before = [process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')]
      const stopped = io.stopRequested()
      process.emit(signal)
      await stopped
      expect([process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')]).toEqual(before)
    }
  })

  test('collector in process: a line per request as it arrives (who, counts, refusals), then the summary at stop', async () => {
    const out: string[] = []
    let stop!: () => void
    const stopped = new Promise<void>(resolve => { stop = resolve })
    const listening = new Promise<string>(resolve => {
      void main(['collector', '--port', '0'], {
        env: {},
        out: l => { out.push(l); const m = /listening on (\S+)/.exec(l); if (m !== null) resolve(m[1]) },
        err: l => out.push(`err: ${l}`),
        readFile: p => readFileSync(p, 'utf8'),
        stopRequested: async () => await stopped,
        client: {}
      }).then(code => out.push(`exit ${code}`))
    })
    const url = await listening
    const tracker = createTracker({ publicKey: 'pk_cli', baseUrl: url })
    const pid = '6f1c3d2e-8a4b-4c5d-9e6f-7a8b9c0d1e2f'
    tracker.track({ profile_id: pid, event: 'a' })
    tracker.page({ profile_id: pid, name: 'Home' })
    tracker.identifyAccount({ domain: 'acme.com', traits: { plan: 'pro' } })
    await tracker.close()
    const bad = await fetch(`${url}/web/projects/pk_cli/batch`, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 't' }, body: '{"events":[]}' })
    expect(bad.status).toBe(400)
    await fetch(`${url}/web/projects/pk_cli/batch`, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': '' }, body: `{"profile_id":"${pid}","events":[]}` })
    stop()
    await new Promise(resolve => setImmediate(resolve))
    while (!out.some(l => l.startsWith('exit '))) await new Promise(resolve => setImmediate(resolve))
    const lines = out.filter(l => /^\d{3} /.test(l))
    expect(lines).toEqual(expect.arrayContaining([
      `200 profiles ${pid}: 1 event, 0 identifies, 1 page view`,
      '200 accounts acme.com: 0 events, 1 identify',
      expect.stringMatching(/^400 profiles \(no one\): 0 events, 0 identifies, 0 page views \(.+\)$/)
    ]))
    expect(lines.some(l => l.endsWith('(no User-Agent: ignored, as Koala does)'))).toBe(true)
    expect(out[out.length - 1]).toBe('exit 0')
  })

  test.each(['delete', 'status', 'collector'])('%s --help prints that command\'s usage and exits 0, with nothing sent or started', async (command) => {
    for (const argv of [[command, '--help'], [command, '-h'], ['help', command]]) {
      const { code, out, err } = await run(argv)
      expect({ argv, code, err }).toEqual({ argv, code: EXIT.ok, err: '' })
      expect(out).toMatch(new RegExp(`^Usage:\\n  koala-tracker ${command} `))
      expect(out).toContain(command === 'collector' ? '--quiet' : '--secret-key-file FILE')
    }
  })

  test('help and version', async () => {
    const help = await run(['help'])
    expect(help.code).toBe(EXIT.ok)
    expect(help.out).toContain('koala-tracker delete --emails-file FILE [--wait] [options]')
    expect(help.out).toContain('never taken as an argument')
    expect((await run([])).code).toBe(EXIT.usage)
    expect(await run(['--version'])).toEqual({ code: EXIT.ok, out: VERSION, err: '' })
  })
})
