// Request bodies of the shape the tracker sends, built without the tracker:
// the raw-Pool baseline sends these, pre-built, to find the machine's floor.
import { randomUUID } from 'node:crypto'
import { resetPeakRss } from './heap.mjs'
import { IDENTIFY, PAGE, TRACK } from './scenarios.mjs'

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
 * Groups a plan's items per person the way the tracker does with default
 * options (a body is cut when one of its arrays reaches 30; the rest at the
 * end) and returns the bodies.
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

/**
 * Every variant starts its clock after the same work. The floor has to build
 * its bodies before its clock starts, which grows its young generation to
 * full size; growing it later, inside the measurement, costs a page fault per
 * 4 KB touched (~15 µs each on the VMs this ran on). So the tracker's and the
 * peers' processes build the same bodies too, drop them (keep: false), and
 * every variant runs a full GC before its clock starts. The dropped bodies'
 * old-space pages are given back by V8 (the floor's heap stays twice as large),
 * so the tracker still grows its old space inside the measurement, as a fresh
 * process would. The floor keeps its bodies (keep: true) and sends them.
 * The peak RSS starts over here: it is the measured span's.
 */
export function sameStart (p, { keep }) {
  if (typeof globalThis.gc !== 'function') throw new Error('run this benchmark with node --expose-gc')
  let bodies = buildBodies(p)
  if (!keep) bodies = undefined
  globalThis.gc()
  resetPeakRss()
  return bodies
}
