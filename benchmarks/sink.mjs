// The benchmark sink: a Koala-shaped endpoint in its own process, so its CPU
// is not charged to the producer. It answers 200 to every POST and records
// what arrived: each item's `seq` (every benchmark item carries one, so a
// missing or repeated item shows up) and each message_id (a retried batch
// would repeat them). The parent drives it over IPC: reset, report.
import { createServer } from 'node:http'

let seqCounts = new Uint8Array(0)
let messageIds = new Set()
let requests = 0
let items = 0
let repeatedIds = 0
let badSeq = 0
let cpuAtReset = process.cpuUsage()

const SEQ = '"seq":'
const MID = '"message_id":"'

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

const server = createServer((req, res) => {
  const chunks = []
  req.on('data', (c) => chunks.push(c))
  req.on('end', () => {
    requests++
    record(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks))
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' })
    res.end('{}')
  })
})
server.keepAliveTimeout = 60_000

process.on('message', (m) => {
  if (m.type === 'reset') {
    seqCounts = new Uint8Array(m.expected)
    messageIds = new Set()
    requests = items = repeatedIds = badSeq = 0
    cpuAtReset = process.cpuUsage()
    process.send({ type: 'reset' })
  } else if (m.type === 'report') {
    let missing = 0
    let duplicated = 0
    for (let i = 0; i < seqCounts.length; i++) {
      if (seqCounts[i] === 0) missing++
      else if (seqCounts[i] > 1) duplicated++
    }
    process.send({ type: 'report', requests, items, missing, duplicated, badSeq, messageIds: messageIds.size, repeatedIds, cpuMicros: (({ user, system }) => user + system)(process.cpuUsage(cpuAtReset)) })
  } else if (m.type === 'stop') {
    server.close()
    process.disconnect()
  }
})

server.listen(0, '127.0.0.1', () => process.send({ type: 'ready', port: server.address().port }))
