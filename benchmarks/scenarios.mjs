// The three scenarios, the calls they make, and the request bodies of the same
// items built without the tracker (what the raw-Pool floor sends). Every call is
// built the way a server builds it (a fresh object per call) and carries a unique
// `seq`, which the sink uses to check that every item arrived exactly once.
import { randomUUID } from 'node:crypto'
import { prng } from './util.mjs'

/**
 * BENCH_SCALE (default 1) shrinks every scenario for a smoke run (`run.mjs --smoke` sets 0.01 unless
 * given another): the same mix and shape, fewer calls and people.
 */
const SCALE = Number(process.env.BENCH_SCALE ?? 1)
if (!(SCALE > 0 && SCALE <= 1)) throw new Error(`BENCH_SCALE must be a number in (0, 1], got ${process.env.BENCH_SCALE}`)
const scaled = (n) => Math.max(1, Math.round(n * SCALE))
const titled = (title) => SCALE === 1 ? title : `${title}, scaled ×${SCALE}`

export const SCENARIOS = {
  S1: { calls: scaled(200_000), people: 1, mix: [1, 0, 0], title: titled('200k tracks, one person') },
  S2: { calls: scaled(100_000), people: scaled(100_000), mix: [1, 0, 0], title: titled('100k tracks, 100k people (one each)') },
  S3: { calls: scaled(200_000), people: scaled(1_000), mix: [0.7, 0.2, 0.1], title: titled('200k calls, 1k people, 70% track / 20% page / 10% identify') }
}


export const TRACK = 0
export const PAGE = 1
export const IDENTIFY = 2

/**
 * The plan of a scenario: for call i, who (plan.person[i]) and what kind
 * (plan.kind[i]). Profile ids are UUIDs, made up front (as a server has them
 * in a cookie).
 */
export function plan (name, calls = SCENARIOS[name].calls) {
  const s = SCENARIOS[name]
  // Flat strings, as a server gets them from a cookie header: node's randomUUID()
  // returns a rope, and flattening 100k of them inside a measurement frees tens of MB.
  const ids = Array.from({ length: s.people }, () => JSON.parse(JSON.stringify(randomUUID())))
  const person = new Uint32Array(calls)
  const kind = new Uint8Array(calls)
  const rand = prng(42)
  for (let i = 0; i < calls; i++) {
    person[i] = s.people === calls ? i : i % s.people
    const r = rand()
    kind[i] = r < s.mix[0] ? TRACK : r < s.mix[0] + s.mix[1] ? PAGE : IDENTIFY
  }
  return { ids, person, kind, calls }
}

/** A track with 4 properties (one of them the seq), as the issue specifies. */
export const trackCall = (profileId, seq) =>
  ({ profile_id: profileId, event: 'Viewed Pricing', properties: { plan: 'pro', seats: 12, trial: true, seq } })
export const pageCall = (profileId, seq) =>
  ({ profile_id: profileId, name: 'Pricing', properties: { path: '/pricing', title: 'Pricing', referrer: 'https://example.com/', seq } })
export const identifyCall = (profileId, seq) =>
  ({ profile_id: profileId, traits: { plan: 'pro', company: 'Acme', role: 'admin', seq } })

/** Makes call i of a plan on a tracker-like object. */
export function call (t, p, i) {
  const id = p.ids[p.person[i]]
  switch (p.kind[i]) {
    case TRACK: t.track(trackCall(id, i)); break
    case PAGE: t.page(pageCall(id, i)); break
    default: t.identify(identifyCall(id, i))
  }
}

const LISTS = ['events', 'identifies', 'page_views']
const LIST_OF = { [TRACK]: 0, [IDENTIFY]: 1, [PAGE]: 2 }

/** The JSON of item i, as the tracker captures it. */
export function itemJson (p, i, sentAt) {
  switch (p.kind[i]) {
    case TRACK:
      return `{"message_id":"${randomUUID()}","type":"track","event":"Viewed Pricing","properties":{"plan":"pro","seats":12,"trial":true,"seq":${i}},"sent_at":"${sentAt}"}`
    case PAGE:
      return `{"message_id":"${randomUUID()}","type":"page","name":"Pricing","properties":{"path":"/pricing","title":"Pricing","referrer":"https://example.com/","seq":${i}},"sent_at":"${sentAt}"}`
    default:
      return `{"type":"identify","traits":{"plan":"pro","company":"Acme","role":"admin","seq":${i}},"sent_at":"${sentAt}"}`
  }
}

/**
 * The floor's request bodies: a plan's items grouped per person the way the tracker
 * does with default options (a body is cut when one of its arrays reaches 30; the rest at the end).
 */
export function buildBodies (p, flushAt = 30) {
  const sentAt = new Date().toISOString()
  const open = new Map()
  const bodies = []
  // One join, so that a body is a flat string, as the tracker's are: a body built with `+` is a
  // cons string, which V8 flattens (copies) the first time it is sent, inside the floor's clock.
  const body = (id, lists) => ['{"profile_id":"', id, '"', ...lists.map((l, k) => l.length > 0 ? `,"${LISTS[k]}":[${l.join(',')}]` : ''), '}'].join('')
  for (let i = 0; i < p.calls; i++) {
    const person = p.person[i]
    let lists = open.get(person)
    if (lists === undefined) open.set(person, (lists = [[], [], []]))
    const list = lists[LIST_OF[p.kind[i]]]
    list.push(itemJson(p, i, sentAt))
    if (list.length >= flushAt) {
      bodies.push(body(p.ids[person], lists))
      open.delete(person)
    }
  }
  for (const [person, lists] of open) bodies.push(body(p.ids[person], lists))
  return bodies
}
