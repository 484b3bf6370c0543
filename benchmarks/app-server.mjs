// The app of benchmarks/app.mjs: an Express app whose one route makes 3 tracker calls, driven over IPC.
//   node app-server.mjs '<config JSON>'     config: { variant: 'none' | 'tracker' | 'pool', dist, sinkPort }
// none: the same handler with a req.koala that does nothing (the app's own cost).
// tracker: koalaMiddleware + a tracker with default options, sending to the sink.
// pool: the floor for a new visitor per request: the handler's 3 items POSTed to the sink
// as one body through a raw undici Pool, one request per request, as the tracker sends one per person.
// middleware, nohttp (app.mjs --breakdown): koalaMiddleware over a tracker whose calls do nothing; the
// tracker with a transport that answers 200 at once (no HTTP, nothing reaches the sink).
// Messages: mark (start the measured window), measure (its CPU and requests), close (deliver, report, exit).
import { randomUUID } from 'node:crypto'
import express from 'express'
import { loadBuild } from './load-build.mjs'

const { variant, dist, sinkPort } = JSON.parse(process.argv[2])
const sinkUrl = `http://127.0.0.1:${sinkPort}`
let seq = 0
let requests = 0

const app = express()
let close = async () => ({})
const nothing = { page () {}, track () {}, identify () {} }
if (variant === 'none') {
  app.use((req, res, next) => { req.koala = nothing; next() })
} else if (variant === 'middleware') {
  app.use(loadBuild(dist).express().koalaMiddleware({ tracker: nothing }))
} else if (variant === 'tracker' || variant === 'nohttp') {
  const build = loadBuild(dist)
  const { createTracker } = build.tracker()
  const { koalaMiddleware } = build.express()
  const transport = variant === 'tracker'
    ? undefined
    : { send: async () => ({ status: 200, headers: {}, body: '' }), close: async () => {}, destroy: async () => {} }
  const tracker = createTracker({ publicKey: 'pk_bench', baseUrl: sinkUrl, transport })
  app.use(koalaMiddleware({ tracker }))
  close = async () => {
    const closed = await tracker.close({ timeoutMs: 300_000 })
    const s = tracker.stats()
    return { accepted: s.accepted, refused: s.dropped, sent: s.sent, failed: s.failed, requests: s.requests.sent, closed }
  }
} else if (variant === 'pool') {
  ({ close } = poolVisitors(app))
} else {
  throw new Error(`unknown variant ${variant}`)
}

app.get('/pricing', (req, res) => {
  const k = req.koala
  k.page('Pricing', { title: 'Pricing', seq: seq++ })
  k.track('Viewed Pricing', { plan: 'pro', seats: 12, trial: true, seq: seq++ })
  k.track('Clicked Upgrade', { plan: 'pro', seq: seq++ })
  requests++
  res.json({ ok: true })
})

/** req.koala collects the request's calls and POSTs them as one body once the handler is done (a microtask later). */
function poolVisitors (app) {
  const { Pool } = loadBuild(dist).require('undici')
  // 10 connections: the limit on requests in flight the tracker starts with; its default keep-alive.
  const pool = new Pool(sinkUrl, { connections: 10, pipelining: 1, keepAliveTimeout: 4_000 })
  const headers = { 'content-type': 'application/json', 'user-agent': 'bench-pool' }
  let inFlight = 0
  let failed = 0
  let drained
  const post = (body) => {
    inFlight++
    pool.dispatch({ path: '/web/projects/pk_bench/batch', method: 'POST', headers, body }, {
      onRequestStart () {},
      onResponseStart (_c, status) { if (status !== 200) failed++ },
      onResponseData () {},
      onResponseEnd () { if (--inFlight === 0) drained?.() },
      onResponseError () { failed++; if (--inFlight === 0) drained?.() }
    })
  }
  class Visitor {
    constructor (path) {
      this.profileId = randomUUID()
      this.path = path
      this.events = []
      this.pages = []
    }

    page (name, properties) {
      if (this.events.length + this.pages.length === 0) queueMicrotask(() => this.send())
      this.pages.push({ message_id: randomUUID(), type: 'page', name, properties: { path: this.path, ...properties }, sent_at: new Date().toISOString() })
    }

    track (event, properties) {
      if (this.events.length + this.pages.length === 0) queueMicrotask(() => this.send())
      this.events.push({ message_id: randomUUID(), type: 'track', event, properties, sent_at: new Date().toISOString() })
    }

    identify () {}

    send () {
      post(JSON.stringify({ profile_id: this.profileId, events: this.events, page_views: this.pages }))
    }
  }
  app.use((req, res, next) => { req.koala = new Visitor(req.path); next() })
  return {
    close: async () => {
      if (inFlight > 0) await new Promise((resolve) => { drained = resolve })
      await pool.close()
      return { accepted: seq, refused: 0, failed }
    }
  }
}

let cpu0
let requests0
const server = app.listen(0, '127.0.0.1', () => process.send({ type: 'ready', port: server.address().port }))
process.on('message', async (m) => {
  if (m.type === 'mark') {
    // Everything before this (start-up, warm-up) is left out; the load generator and the sink are other processes.
    cpu0 = process.cpuUsage()
    requests0 = requests
    process.send({ type: 'mark' })
  } else if (m.type === 'measure') {
    const cpu = process.cpuUsage(cpu0)
    process.send({ type: 'measure', cpuMicros: cpu.user + cpu.system, cpuSystemMicros: cpu.system, requests: requests - requests0 })
  } else if (m.type === 'close') {
    server.close()
    server.closeAllConnections?.()
    const counts = await close()
    process.send({ type: 'close', calls: seq, allRequests: requests, ...counts })
    process.disconnect()
  }
})
