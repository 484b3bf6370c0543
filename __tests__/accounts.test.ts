import { InputError } from '../lib/shared/errors'
import { harness, nextEvent, person, tick, UUID_V4, type Harness } from './helpers/setup'

let h: Harness
afterEach(async () => { await h.done() })

const START_ISO = '2026-11-26T12:00:00.000Z'

test('account traits and events go to /accounts/batch in one exact body per account', async () => {
  h = await harness()
  h.tracker.identifyAccount({ domain: 'acme.com', traits: { plan: 'enterprise', headcount: 120 } })
  h.tracker.identifyAccount({ domain: 'acme.com', traits: { group_id: 'engineering', seats: 40 } })
  h.tracker.trackAccount({ domain: 'acme.com', event: 'Workspace Created', properties: { workspace_id: 'w1' } })
  expect(await h.tracker.flush()).toEqual({ delivered: 3, failed: 0, pending: 0, timedOut: false })
  expect(h.collector.received).toHaveLength(1)
  const [got] = h.collector.received
  expect(got.route).toBe('accounts')
  expect(got.body).toEqual({
    domain: 'acme.com',
    events: [{ message_id: expect.stringMatching(UUID_V4), type: 'track', event: 'Workspace Created', properties: { workspace_id: 'w1' }, sent_at: START_ISO }],
    identifies: [
      { type: 'identify', traits: { plan: 'enterprise', headcount: 120 }, sent_at: START_ISO },
      { type: 'identify', traits: { group_id: 'engineering', seats: 40 }, sent_at: START_ISO }
    ]
  })
})

test('domains are normalised: case, scheme, path, port and trailing dot all land in one bucket', async () => {
  h = await harness()
  for (const domain of ['Acme.io', 'https://acme.io/pricing', 'http://ACME.IO:8080/', 'acme.io.', ' acme.io ']) {
    h.tracker.trackAccount({ domain, event: 'Seen' })
  }
  h.tracker.trackAccount({ domain: 'www.acme.io', event: 'Seen' })
  await h.tracker.flush()
  const bodies = h.collector.received.map(r => r.body as { domain: string, events: unknown[] })
  expect(bodies.map(b => [b.domain, b.events.length]).sort()).toEqual([['acme.io', 5], ['www.acme.io', 1]])
})

test.each([
  ['localhost', 'domain', 'must be a domain name like example.com'],
  ['acme', 'domain', 'must be a domain name like example.com'],
  ['not a domain.com', 'domain', 'must be a domain name like example.com'],
  ['acme..com', 'domain', 'must be a domain name like example.com'],
  ['10.0.0.1', 'domain', 'must be a domain name like example.com'],
  ['https://', 'domain', 'must not be empty'],
  ['', 'domain', 'must not be empty']
])('an invalid domain %j is refused naming %s, and the other calls are delivered', async (domain, field, reason) => {
  h = await harness()
  h.tracker.trackAccount({ domain: 'good.example', event: 'Before' })
  h.tracker.identifyAccount({ domain, traits: { plan: 'x' } })
  h.tracker.trackAccount({ domain: 'good.example', event: 'After' })
  await h.tracker.flush()
  expect(h.errors).toHaveLength(1)
  expect(h.errors[0]).toBeInstanceOf(InputError)
  expect(h.errors[0]).toMatchObject({ call: 'identifyAccount', field, reason: expect.stringContaining(reason) })
  expect(h.collector.stats().accounts.events).toBe(2)
  expect(h.tracker.stats().accounts).toMatchObject({ accepted: 2, sent: 2, droppedBy: { invalid: 1 } })
})

test.each([
  ['no id at all', { event: 'x' }, 'domain or account_id', 'is required'],
  ['a blank account_id', { account_id: '  ', event: 'x' }, 'account_id', 'must not be blank'],
  ['no event', { domain: 'acme.com' }, 'event', 'is required'],
  ['a group_id that is not a string', { domain: 'acme.com', traits: { group_id: 7 } }, 'traits.group_id', 'must be a string, got a number']
])('%s is refused with its field', async (_name, call, field, reason) => {
  h = await harness()
  if ('traits' in call) h.tracker.identifyAccount(call as never)
  else h.tracker.trackAccount(call as never)
  expect(h.errors[0]).toMatchObject({ field, reason: expect.stringContaining(reason) })
})

test('account_id alone keys its own bucket; with a domain it rides along, and a different one starts a new request', async () => {
  h = await harness()
  h.tracker.trackAccount({ account_id: 'acct_1', event: 'a' })
  h.tracker.trackAccount({ domain: 'acme.com', account_id: 'acct_2', event: 'b' })
  h.tracker.trackAccount({ domain: 'acme.com', event: 'c' })
  h.tracker.trackAccount({ domain: 'acme.com', account_id: 'acct_3', event: 'd' })
  await h.tracker.flush()
  const bodies = h.collector.received.map(r => r.body as { domain?: string, account_id?: string, events: Array<{ event: string }> })
  expect(bodies.map(b => [b.domain, b.account_id, b.events.map(e => e.event).join('')]).sort((x, y) => String(x[2]).localeCompare(String(y[2])))).toEqual([
    [undefined, 'acct_1', 'a'],
    ['acme.com', 'acct_2', 'bc'],
    ['acme.com', 'acct_3', 'd']
  ])
})

test('account_ids are matched exactly (an app\'s own ids, where case can matter); emails ignore case', async () => {
  h = await harness()
  h.tracker.trackAccount({ account_id: '0015g00000AbCdE', event: 'a' })
  h.tracker.trackAccount({ account_id: '0015g00000abcde', event: 'b' })
  h.tracker.trackAccount({ domain: 'acme.com', account_id: 'Acct-1', event: 'c' })
  h.tracker.trackAccount({ domain: 'acme.com', account_id: 'acct-1', event: 'd' })
  h.tracker.track({ email: 'Ada@Example.com', event: 'e' })
  h.tracker.track({ email: 'ada@example.com', event: 'f' })
  await h.tracker.flush()
  const bodies = h.collector.received.map(r => r.body as { domain?: string, account_id?: string, email?: string, events: Array<{ event: string }> })
  expect(bodies.map(b => [b.domain, b.account_id ?? b.email, b.events.map(e => e.event).join('')]).sort((x, y) => String(x[2]).localeCompare(String(y[2])))).toEqual([
    [undefined, '0015g00000AbCdE', 'a'],
    [undefined, '0015g00000abcde', 'b'],
    ['acme.com', 'Acct-1', 'c'],
    ['acme.com', 'acct-1', 'd'],
    [undefined, 'Ada@Example.com', 'ef']
  ])
})

test('account traits typed by Koala\'s schema are checked: headcount must be an integer', async () => {
  h = await harness()
  h.tracker.identifyAccount({ domain: 'acme.com', traits: { headcount: 12.5 } })
  h.tracker.identifyAccount({ domain: 'acme.com', traits: { headcount: 120, billing_plan: 'pro', vip: true } })
  await h.tracker.flush()
  expect(h.errors).toEqual([expect.objectContaining({ field: 'traits.headcount', reason: 'must be an integer, got 12.5' })])
  expect(h.collector.received.map(r => r.body.identifies)).toEqual([[expect.objectContaining({ traits: { headcount: 120, billing_plan: 'pro', vip: true } })]])
})

test('the 30th account event sends at once; the timer sends the rest; no timer is left', async () => {
  h = await harness({ flushIntervalMs: 5_000 })
  const sent = nextEvent(h.tracker, 'sent')
  for (let i = 0; i < 30; i++) h.tracker.trackAccount({ domain: 'acme.com', event: `e${i}` })
  expect(await sent).toMatchObject({ route: 'accounts', items: 30 })
  h.tracker.identifyAccount({ domain: 'acme.com', traits: { plan: 'pro' } })
  await tick()
  expect(h.tracker.stats().requests.sent).toBe(1)
  const second = nextEvent(h.tracker, 'sent')
  h.clock.advance(5_000)
  expect(await second).toMatchObject({ route: 'accounts', items: 1 })
  expect(h.clock.pending()).toEqual([])
})

test('profiles and accounts are counted apart, and never share a request even with look-alike ids', async () => {
  h = await harness()
  const pid = person()
  h.tracker.track({ profile_id: pid, event: 'p' })
  h.tracker.track({ email: 'ops@acme.com', event: 'p' })
  h.tracker.trackAccount({ account_id: pid, event: 'a' })
  h.tracker.trackAccount({ account_id: 'ops@acme.com', event: 'a' })
  h.tracker.identifyAccount({ domain: 'acme.com' })
  await h.tracker.flush()
  const s = h.tracker.stats()
  expect(s.profiles).toMatchObject({ accepted: 2, sent: 2 })
  expect(s.accounts).toMatchObject({ accepted: 3, sent: 3 })
  expect(s).toMatchObject({ accepted: 5, sent: 5 })
  expect(h.collector.received.map(r => r.route).sort()).toEqual(['accounts', 'accounts', 'accounts', 'profiles', 'profiles'])
  expect(h.collector.stats()).toMatchObject({ profiles: { events: 2 }, accounts: { events: 2, identifies: 1 } })
})

test('account calls share the retry, pause and shutdown machinery', async () => {
  let first = true
  h = await harness({ random: () => 0.5 }, { fault: (req) => { if (req.route === 'accounts' && first) { first = false; return { status: 503 } } return undefined } })
  const retry = nextEvent(h.tracker, 'retry')
  h.tracker.trackAccount({ domain: 'acme.com', event: 'x', message_id: 'acct-m1' })
  const closing = h.tracker.close({ timeoutMs: 60_000 })
  expect(await retry).toMatchObject({ route: 'accounts', delayMs: 375 })
  h.clock.advance(375)
  expect(await closing).toEqual({ delivered: 1, failed: 0, abandoned: 0, unknown: 0, spooled: 0, timedOut: false })
  expect(h.collector.messageIds().get('acct-m1')).toBe(1)
})
