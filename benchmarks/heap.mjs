// Heap held, measured the same way for the tracker (producer.mjs) and the peers (peer-producer.mjs),
// and the same starting state for every measured process.
import { readFileSync, writeFileSync } from 'node:fs'
import { buildBodies } from './scenarios.mjs'

/**
 * Starts the peak RSS over from the RSS now (Linux: /proc/self/clear_refs), so
 * that the peak read at the end covers the measured span, not the set-up
 * before it (building the floor's bodies alone reached most of the old figure).
 */
export function resetPeakRss () {
  try { writeFileSync('/proc/self/clear_refs', '5') } catch {}
}

/** The peak RSS since the last resetPeakRss(), in bytes (the process's lifetime peak where /proc is missing). */
export function peakRssBytes () {
  try {
    const kb = /VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))
    if (kb !== null) return Number(kb[1]) * 1024
  } catch {}
  return process.resourceUsage().maxRSS * 1024
}

/** A port nothing listens on: sends to it fail and wait to be retried, so a heap run holds everything. */
export async function closedPort () {
  const { createServer } = await import('node:net')
  const server = createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

/**
 * What a client holds on the JS heap and in ArrayBuffers (a client may keep request bodies as bytes),
 * once full GCs stop shrinking it: sweeping goes on after gc() returns.
 */
export async function settledHeap () {
  let used = Infinity
  for (let i = 0; i < 10; i++) {
    globalThis.gc()
    await new Promise((resolve) => setTimeout(resolve, 20))
    const m = process.memoryUsage()
    const now = m.heapUsed + m.arrayBuffers
    if (now >= used - 1024) return now
    used = now
  }
  return used
}

/**
 * Bytes of heap per item that `add(i)` holds for i = 1..n, after `setUp()` has
 * made the client and `add(0)` has warmed it up: a client's fixed costs (its
 * modules, its first queue or cache) are in the baseline, not in the items.
 * Returns the client so that it stays alive until after the measurement.
 */
export async function heapPerItem (n, setUp, add) {
  const client = setUp()
  add(client, 0)
  const h0 = await settledHeap()
  for (let i = 1; i <= n; i++) add(client, i)
  const h1 = await settledHeap()
  return { bytesPerItem: (h1 - h0) / n, client }
}

/**
 * Every variant starts its clock after the same work. The floor has to build
 * its bodies before its clock starts, which grows its young generation to
 * full size; growing it later, inside the measurement, costs a page fault per
 * 4 KB touched. So the tracker's and the peers' processes build the same bodies
 * too, drop them (keep: false), and every variant runs a full GC before its
 * clock starts. The floor keeps its bodies (keep: true) and sends them.
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
