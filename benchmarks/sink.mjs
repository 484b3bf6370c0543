// The benchmark sink: a Koala-shaped endpoint in its own process, so its CPU
// is not charged to the producer. It records what it stores: each item's `seq`
// (every benchmark item carries one, so a missing or repeated item shows up)
// and each message_id (a retried batch would repeat them). The parent drives it
// over IPC: reset (with the behaviour of the next run), report.
//
// By default it answers 200 at once. Reset options (benchmarks/delivery.mjs):
//   delayMs      answer after this long (a timer per request: the event loop stays free)
//   faultRate    this share of requests fail, chosen by a PRNG seeded with `seed`, in turn:
//                503, 429 without Retry-After, a connection reset (after the body arrived)
//   outageMs     503 to everything for this long from the first request after the reset
// A request that fails stores nothing, so an id seen twice is a duplicate the tracker sent.
import { createServer } from 'node:http'
import { performance } from 'node:perf_hooks'
import { prng } from './util.mjs'

let seqCounts = new Uint8Array(0)
let messageIds = new Set()
let requests = 0
let okRequests = 0
let items = 0
let repeatedIds = 0
let badSeq = 0
let cpuAtReset = process.cpuUsage()
let config = {}
let random = Math.random
let faults = { 503: 0, 429: 0, reset: 0, outage: 0 }
/** The outage: when it began (ms, epoch), and when each request during it arrived (ms from then). */
let outage

const SEQ = '"seq":'
const MID = '"message_id":"'
const now = () => performance.timeOrigin + performance.now()


function record (buf) {
  const body = buf.toString('latin1')
  // indexOf scans instead of JSON.parse: the sink should cost as little as
  // possible so that it does not bound the figures it is there to measure.
  for (let i = body.indexOf(SEQ); i !== -1; i = body.indexOf(SEQ, i + 6)) {
    const seq = parseInt(body.slice(i + 6, i + 18), 10)
    if (seq >= 0 && seq < seqCounts.length) {
      if (seqCounts[seq] < 255) seqCounts[seq]++
      items++
    } else {
      badSeq++
    }
  }
  for (let i = body.indexOf(MID); i !== -1; i = body.indexOf(MID, i + 14)) {
    // Read from the bytes (latin1: one character per byte, so the offsets agree): a slice of
    // `body` would be a view that keeps the whole body alive as long as the Set holds the id.
    const id = buf.toString('latin1', i + 14, i + 50)
    if (messageIds.has(id)) repeatedIds++
    else messageIds.add(id)
  }
}

/** What this request gets: 'ok', 'outage' (a 503), 503, 429 or 'reset'. */
function fate () {
  if (config.outageMs > 0) {
    const t = now()
    outage ??= { startedAt: t, times: [] }
    if (t - outage.startedAt < config.outageMs) {
      outage.times.push(t - outage.startedAt)
      return 'outage'
    }
  }
  if (config.faultRate > 0 && random() < config.faultRate) {
    const r = random()
    return r < 1 / 3 ? 503 : r < 2 / 3 ? 429 : 'reset'
  }
  return 'ok'
}

function answer (req, res, body) {
  const f = fate()
  if (f !== 'ok') faults[f]++
  if (f === 'reset') {
    req.socket.destroy()
    return
  }
  if (f !== 'ok') {
    res.writeHead(f === 'outage' ? 503 : f, { 'content-type': 'application/json', 'content-length': '2' })
    res.end('{}')
    return
  }
  okRequests++
  record(body)
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' })
  res.end('{}')
}

const server = createServer((req, res) => {
  const chunks = []
  req.on('data', (c) => chunks.push(c))
  req.on('end', () => {
    requests++
    const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)
    if (config.delayMs > 0) setTimeout(answer, config.delayMs, req, res, body)
    else answer(req, res, body)
  })
})
server.keepAliveTimeout = 60_000
// The latency benchmark holds hundreds of connections open at once.
server.maxConnections = 10_000

process.on('message', (m) => {
  if (m.type === 'reset') {
    seqCounts = new Uint8Array(m.expected)
    messageIds = new Set()
    requests = okRequests = items = repeatedIds = badSeq = 0
    config = m.config ?? {}
    random = prng(config.seed ?? 1)
    faults = { 503: 0, 429: 0, reset: 0, outage: 0 }
    outage = undefined
    cpuAtReset = process.cpuUsage()
    process.send({ type: 'reset' })
  } else if (m.type === 'report') {
    // upTo: the seqs actually used, when the run could not know its count at reset (benchmarks/app.mjs).
    const upTo = Math.min(m.upTo ?? seqCounts.length, seqCounts.length)
    let missing = 0
    let duplicated = 0
    for (let i = 0; i < upTo; i++) {
      if (seqCounts[i] === 0) missing++
      else if (seqCounts[i] > 1) duplicated++
    }
    process.send({
      type: 'report',
      requests,
      okRequests,
      items,
      missing,
      duplicated,
      badSeq,
      messageIds: messageIds.size,
      repeatedIds,
      faults,
      outage,
      cpuMicros: (({ user, system }) => user + system)(process.cpuUsage(cpuAtReset))
    })
  } else if (m.type === 'stop') {
    server.close()
    process.disconnect()
  }
})

server.listen(0, '127.0.0.1', () => process.send({ type: 'ready', port: server.address().port }))
