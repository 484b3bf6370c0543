import { join } from 'node:path'
import { FIXTURES, startNode } from './helpers/child'

// Run in a child process: what matters here is what reaches stderr, and that nothing throws.
async function run (env: Record<string, string>): Promise<{ out: Record<string, unknown>, lines: Array<Record<string, unknown>> }> {
  const { code, stdout, stderr } = await startNode(['--unhandled-rejections=strict', join(FIXTURES, 'unconfigured.cjs')],
    { env: { KOALA_PUBLIC_KEY: '', KOALA_BASE_URL: '', ...env } }).exited
  expect({ code, stderr: stderr.length > 0 }).toEqual({ code: 0, stderr: true })
  return { out: JSON.parse(stdout) as Record<string, unknown>, lines: stderr.trim().split('\n').map(l => JSON.parse(l) as Record<string, unknown>) }
}

test('calls before configuration are refused as unconfigured, counted and logged once; init() then makes them work', async () => {
  const { out, lines } = await run({})
  expect(out).toEqual({
    startup: { code: 'KOALA_ERR_INVALID_OPTION', option: 'KOALA_PUBLIC_KEY' },
    dropped: 101,
    first: ['profiles', 'track', 'unconfigured', 'KOALA_ERR_REFUSED'],
    last: ['accounts', 'identifyAccount', 'unconfigured', 'KOALA_ERR_REFUSED'],
    before: { state: 'unconfigured', accepted: 0, sent: 0, dropped: 101, unconfigured: 101, profiles: 100, accounts: 1 },
    after: { state: 'closed', accepted: 1, sent: 1, dropped: 101, unconfigured: 101, profiles: 100, accounts: 1 },
    received: 1
  })
  // One line for 101 refusals, saying what to do, with no personal data.
  expect(lines).toEqual([expect.objectContaining({ level: 40, kind: 'unconfigured', msg: expect.stringContaining('call init({ publicKey }) at start-up or set KOALA_PUBLIC_KEY') })])
  expect(JSON.stringify(lines)).not.toContain('example.com')
})

test('an invalid KOALA_* variable is reported once, naming it, and calls are refused until init() fixes it', async () => {
  const { out, lines } = await run({ KOALA_PUBLIC_KEY: 'pk_env', KOALA_FLUSH_AT: 'thirty' })
  expect(out).toMatchObject({ startup: { code: 'KOALA_ERR_INVALID_OPTION', option: 'KOALA_FLUSH_AT' }, dropped: 101, received: 1 })
  expect(lines).toEqual([
    expect.objectContaining({ level: 50, kind: 'env', msg: 'koala-tracker: KOALA_FLUSH_AT must be an integer, got "thirty"' }),
    expect.objectContaining({ level: 40, kind: 'unconfigured', msg: expect.stringContaining('(KOALA_FLUSH_AT must be an integer') })
  ])
})

test('a misspelt KOALA_BASEURL configures nothing: it is reported with the name it was meant to be, and no call goes to production', async () => {
  const { out, lines } = await run({ KOALA_PUBLIC_KEY: 'pk_env', KOALA_BASEURL: 'http://localhost:4010' })
  expect(out).toMatchObject({ startup: { code: 'KOALA_ERR_INVALID_OPTION', option: 'KOALA_BASEURL' }, dropped: 101, before: { accepted: 0 }, received: 1 })
  expect(lines[0]).toMatchObject({ level: 50, kind: 'env', msg: expect.stringContaining('KOALA_BASEURL is not a koala-tracker variable (did you mean KOALA_BASE_URL?)') })
})
