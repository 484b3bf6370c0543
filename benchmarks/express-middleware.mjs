// Cost of koalaMiddleware, as ratios against a baseline measured in the same run.
//   node benchmarks/express-middleware.mjs      (after npm run build)
// 1. In process: the middleware function alone, per request, against a middleware that only calls next().
// 2. Over 127.0.0.1: an Express 5 app's requests/s with the middleware (+ one req.koala.track) against the same
//    app without it. The tracker sends through a transport that answers at once, so Koala's latency is not measured.
import { createServer } from 'node:http'
import { randomUUID } from 'node:crypto'
import express from 'express'
import { Pool } from 'undici'
import { createTracker } from 'koala-tracker'
import { koalaMiddleware } from 'koala-tracker/express'

const transport = { async send () { return { status: 200, headers: {}, body: '' } }, async close () {}, async destroy () {} }
const tracker = createTracker({ publicKey: 'pk_bench', transport, flushIntervalMs: 50 })
const noop = { track () {}, identify () {}, page () {} }

function fakeRes () {
  const headers = new Map()
  return { headersSent: false, getHeader: (k) => headers.get(k), setHeader: (k, v) => headers.set(k, v) }
}
// Yields every 10 000 calls so the tracker's sender can drain, as it does between requests.
async function perCall (fn, n) {
  const t0 = process.hrtime.bigint()
  let paused = 0n
  for (let i = 0; i < n; i++) {
    fn(i)
    if (i % 10_000 === 9_999) {
      const p0 = process.hrtime.bigint()
      await new Promise(resolve => setImmediate(resolve))
      paused += process.hrtime.bigint() - p0
    }
  }
  return Number(process.hrtime.bigint() - t0 - paused) / n
}
async function best (fn, n) {
  let min = Infinity
  for (let k = 0; k < 3; k++) min = Math.min(min, await perCall(fn, n))
  return min
}
function report (rows) {
  const base = rows[0][1]
  for (const [name, ns] of rows) process.stdout.write(`  ${name.padEnd(40)} ${ns.toFixed(0).padStart(6)} ns  ${(ns / base).toFixed(2)}x\n`)
}
async function micro () {
  const ids = Array.from({ length: 1000 }, () => randomUUID())
  const cookies = ids.map(id => `_ga=GA1.2.3.4; _gid=GA1.2.5.6; ko_id=${id}; theme=dark`)
  const next = () => {}
  const baseline = (req, res, nx) => { req.x = 1; nx() }
  const plain = koalaMiddleware({ tracker: noop })
  const tracked = koalaMiddleware({ tracker })
  const req = (cookie) => ({ headers: { cookie }, url: '/p?q=1', socket: {} })
  const middleware = {
    'a middleware that only calls next()': (i) => baseline(req(cookies[i % 1000]), fakeRes(), next),
    'koalaMiddleware, ko_id present': (i) => plain(req(cookies[i % 1000]), fakeRes(), next),
    'koalaMiddleware, ko_id absent (mint, set)': (i) => plain(req(undefined), fakeRes(), next)
  }
  const calls = {
    'tracker.track() called directly': (i) => tracker.track({ profile_id: ids[i % 1000], event: 'Viewed', properties: { i } }),
    'koalaMiddleware + req.koala.track()': (i) => {
      const r = req(cookies[i % 1000])
      tracked(r, fakeRes(), next)
      r.koala.track('Viewed', { i })
    }
  }
  for (const fn of [...Object.values(middleware), ...Object.values(calls)]) await perCall(fn, 30_000) // warm up
  process.stdout.write('the middleware per request, in process (best of 3):\n')
  const m = []
  for (const [name, fn] of Object.entries(middleware)) m.push([name, await best(fn, 200_000)])
  report(m)
  process.stdout.write('one track() per request, against calling the tracker directly:\n')
  const c = []
  for (const [name, fn] of Object.entries(calls)) c.push([name, await best(fn, 100_000)])
  report(c)
}

async function throughput (useKoala, requests) {
  const app = express()
  if (useKoala) app.use(koalaMiddleware({ tracker }))
  app.get('/', (req, res) => { if (useKoala) req.koala.track('Viewed'); res.end('ok') })
  const server = createServer(app)
  await new Promise(resolve => server.listen(0, '127.0.0.1', resolve))
  const pool = new Pool(`http://127.0.0.1:${server.address().port}`, { connections: 16 })
  const ids = Array.from({ length: 200 }, () => randomUUID())
  let next = 0
  const t0 = process.hrtime.bigint()
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < requests) {
      const i = next++
      const r = await pool.request({ path: '/', method: 'GET', headers: { cookie: `ko_id=${ids[i % 200]}` } })
      await r.body.dump()
    }
  }))
  const s = Number(process.hrtime.bigint() - t0) / 1e9
  await pool.close()
  await new Promise(resolve => server.close(resolve))
  return requests / s
}

await micro()
process.stdout.write('Express 5 over 127.0.0.1, 16 connections (rounds alternate to share the noise):\n')
await throughput(false, 2000)
await throughput(true, 2000)
const plain = []
const withKoala = []
for (let round = 0; round < 4; round++) {
  plain.push(await throughput(false, 8000))
  withKoala.push(await throughput(true, 8000))
}
const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]
process.stdout.write(`  without koala: ${median(plain).toFixed(0)} req/s; with koalaMiddleware + track(): ${median(withKoala).toFixed(0)} req/s ` +
  `(${(median(withKoala) / median(plain)).toFixed(3)}x)\n`)
await tracker.close()
