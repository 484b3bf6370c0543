/**
 * npm run example:express: a small Express app using koala-tracker's three
 * pieces: the singleton (init), the ko_id middleware (req.koala) and the
 * graceful-shutdown hook. Unless KOALA_BASE_URL is set, it starts the embedded
 * collector and sends there, printing what the collector receives.
 *
 *   curl -i http://127.0.0.1:3000/                          # mints ko_id, records a page view
 *   curl -b 'ko_id=<id>' -X POST 'http://127.0.0.1:3000/signup?email=ada@example.com'
 *   curl -b 'ko_id=<id>' 'http://127.0.0.1:3000/pricing?user=ada@example.com'
 *   Ctrl-C: the server drains, the tracker delivers what is buffered, the process exits.
 */
import express from 'express'
import { startCollector } from 'koala-tracker/collector'
import { gracefulShutdown, koalaMiddleware } from 'koala-tracker/express'
import { init, optionsFromEnv } from 'koala-tracker/singleton'

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request { user?: { email: string } }
  }
}

async function collectorUrl (): Promise<string> {
  if (process.env.KOALA_BASE_URL !== undefined && process.env.KOALA_BASE_URL !== '') return process.env.KOALA_BASE_URL
  const collector = await startCollector()
  collector.on('request', (req, answer) => {
    const body = JSON.parse(req.body) as Record<string, unknown[] | string | undefined>
    const counts = ['events', 'identifies', 'page_views'].map(k => `${k}=${body[k]?.length ?? 0}`).join(' ')
    process.stdout.write(`[collector] ${answer.status} ${String(body.profile_id ?? '-')} ${String(body.email ?? '-')} ${counts}\n`)
  })
  return collector.url
}

async function main (): Promise<void> {
  // Explicit options win over the environment; the environment wins over these example defaults.
  init({ publicKey: 'pk_example', flushIntervalMs: 2_000, ...optionsFromEnv(process.env), baseUrl: await collectorUrl() })

  const app = express()
  // Stand-in for real authentication: ?user=<email> logs the request in.
  app.use((req, _res, next) => {
    if (typeof req.query.user === 'string') req.user = { email: req.query.user }
    next()
  })
  app.use(koalaMiddleware({ resolveEmail: (req) => req.user?.email }))

  app.get('/', (req, res) => {
    req.koala.page('Home')
    res.type('text').send(`Hello visitor ${req.koala.profileId}${req.koala.isNew ? ' (new: ko_id cookie set)' : ''}\n`)
  })
  app.get('/pricing', (req, res) => {
    req.koala.page('Pricing')
    req.koala.track('Viewed Pricing', { plans: 3 })
    res.type('text').send('Pricing\n')
  })
  // Identify on login/sign-up: link the anonymous ko_id to the email once it is known.
  app.post('/signup', (req, res) => {
    const email = String(req.query.email ?? '')
    req.koala.identify({ email, traits: { plan: 'free' } })
    req.koala.track('Signed Up', { plan: 'free' })
    res.status(201).type('text').send(`Welcome ${email}\n`)
  })

  const port = Number(process.env.PORT ?? 3000)
  const server = app.listen(port, '127.0.0.1', () => {
    const address = server.address()
    const actual = typeof address === 'object' && address !== null ? address.port : port
    process.stdout.write(`koala-tracker Express example listening on http://127.0.0.1:${actual} (Ctrl-C to stop)\n`)
  })
  // Opt-in: on SIGTERM/SIGINT drain the server, close the tracker, then exit with the signal.
  gracefulShutdown({ server })
}

main().catch((err: unknown) => {
  process.stderr.write(`example failed: ${String(err)}\n`)
  process.exitCode = 1
})
