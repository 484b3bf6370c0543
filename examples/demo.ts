/**
 * npm run demo: starts the embedded collector, sends a realistic mix of
 * calls for many visitors through a tracker, closes it, and checks that what
 * the tracker sent is exactly what the collector received.
 */
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { createTracker } from '../lib'
import { startCollector } from '../lib/collector'

const VISITORS = 400
const ROUNDS = 8
const PAGES = ['/', '/pricing', '/docs', '/blog/launch', '/signup']

const out = process.stdout

/** A logger for a reader of the demo: each problem as a line of the story, rather than the default JSON on stderr. */
const readableLogger = {
  debug () {},
  warn (_fields: object, msg?: string) { out.write(`  koala-tracker warns: ${msg ?? ''}\n`) },
  error (_fields: object, msg?: string) { out.write(`  koala-tracker error: ${msg ?? ''}\n`) }
}

async function main (): Promise<void> {
  const collector = await startCollector({ projects: ['pk_demo'] })
  const tracker = createTracker({ publicKey: 'pk_demo', baseUrl: collector.url, flushIntervalMs: 250, logger: readableLogger })
  out.write(`koala-tracker demo: page views, events and identifies for ${VISITORS} visitors and 40 accounts, ` +
    `through a tracker to an embedded collector at ${collector.url}\n\n`)
  const visitors = Array.from({ length: VISITORS }, (_, i) => ({
    profile_id: randomUUID(),
    email: `visitor${i}@example.com`,
    company: `company${i % 40}.example`
  }))
  let calls = 0

  // Each round is a burst of page traffic, like requests arriving at a server.
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, v] of visitors.entries()) {
      if ((i + round) % 3 !== 0) continue
      tracker.page({ profile_id: v.profile_id, name: PAGES[(i + round) % PAGES.length], properties: { path: PAGES[(i + round) % PAGES.length], round } })
      calls++
      if ((i + round) % 7 === 0) {
        tracker.track({ profile_id: v.profile_id, event: 'Viewed Pricing', properties: { plan: 'pro', seats: 1 + (i % 9), source: 'web' } })
        calls++
      }
      if (round === 3 && i % 5 === 0) {
        // A login: links the anonymous cookie to the email.
        tracker.identify({ profile_id: v.profile_id, email: v.email, traits: { email: v.email, plan: i % 2 === 0 ? 'pro' : 'free' } })
        tracker.track({ email: v.email, event: 'Logged In' })
        calls += 2
      }
    }
    if (round === 5) {
      for (let n = 0; n < 40; n++) {
        tracker.identifyAccount({ domain: `https://Company${n}.example/about`, traits: { plan: n % 2 === 0 ? 'enterprise' : 'team', headcount: 10 * n } })
        tracker.trackAccount({ domain: `company${n}.example`, event: 'Workspace Created', properties: { workspace: `ws-${n}` } })
        calls += 2
      }
    }
    // One visitor hammers the pricing page: their bucket fills and is sent at once.
    for (let n = 0; n < 35; n++) tracker.track({ profile_id: visitors[0].profile_id, event: 'Clicked Plan', properties: { n } })
    calls += 35
    await sleep(100)
  }
  // A bad call is refused with a reason, and nothing else is lost.
  out.write('One invalid call, on purpose (a profile_id that is not a UUID); the tracker refuses it on the spot:\n')
  tracker.track({ profile_id: 'not-a-uuid', event: 'Broken' })

  const closed = await tracker.close()
  const s = tracker.stats()
  const r = collector.stats()
  const received = r.profiles.events + r.profiles.identifies + r.profiles.page_views + r.accounts.events + r.accounts.identifies

  out.write(`\n${calls} valid calls made, then close().\n\n`)
  out.write(`tracker:   accepted ${s.accepted}, sent ${s.sent}, failed ${s.failed}, refused ${s.dropped} (${s.droppedBy.invalid} invalid)\n`)
  out.write(`           ${s.requests.sent} requests, ${s.requests.retried} retried; close(): ${JSON.stringify(closed)}\n`)
  out.write(`${collector.summary()}\n\n`)
  const match = s.sent === calls && received === calls && r.duplicates === 0 && r.rejected === 0
  out.write(match
    ? `OK: all ${calls} items sent were received exactly once.\n`
    : `MISMATCH: sent ${s.sent}, received ${received}, duplicates ${r.duplicates}, rejected ${r.rejected}\n`)
  await collector.close()
  process.exitCode = match ? 0 : 1
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${String(err)}\n`)
  process.exitCode = 1
})
