import { join } from 'node:path'
import { request } from 'undici'
import { ROOT, startNode } from './helpers/child'
import { UUID_V4 } from './helpers/setup'

// `npm run example:express` runs this file after building; npm test builds first.
test('the Express example serves visitors, identifies on sign-up, and delivers everything to the embedded collector on SIGTERM', async () => {
  const child = startNode([join(ROOT, 'dist/cjs/examples/express/server.js')], { env: { PORT: '0', KOALA_BASE_URL: '', KOALA_PUBLIC_KEY: '' } })
  await child.waitForOutput('(Ctrl-C to stop)')
  const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(child.output())?.[1] ?? ''

  const home = await request(url + '/')
  const id = /^ko_id=([^;]+)/.exec(String(home.headers['set-cookie']))?.[1] ?? ''
  expect(id).toMatch(UUID_V4)
  expect(await home.body.text()).toBe(`Hello visitor ${id} (new: ko_id cookie set)\n`)
  const cookie = `ko_id=${id}`
  const signup = await request(url + '/signup?email=ada@example.com', { method: 'POST', headers: { cookie } })
  expect([signup.statusCode, await signup.body.text()]).toEqual([201, 'Welcome ada@example.com\n'])
  await (await request(url + '/pricing?user=ada@example.com', { headers: { cookie } })).body.text()

  child.process.kill('SIGTERM')
  const { code, signal, stdout, stderr } = await child.exited
  expect({ code, signal, stderr }).toEqual({ code: null, signal: 'SIGTERM', stderr: '' })
  expect(stdout.split('\n').filter(l => l.startsWith('[collector]'))).toEqual([
    `[collector] 200 ${id} ada@example.com: 2 events, 1 identifies, 2 page_views`
  ])
})

// The README's quick start runs this (`npm run demo`); CI runs only the tests, so they run it too.
test('the demo exits 0: every valid call received exactly once, the invalid one refused with its reason', async () => {
  const { code, signal, stdout, stderr } = await startNode([join(ROOT, 'dist/cjs/examples/demo.js')]).exited
  expect({ code, signal }).toEqual({ code: 0, signal: null })
  // The default logger's one warning (to stderr, never stdout) is for the invalid call.
  expect(stderr.trim().split('\n').map(l => JSON.parse(l) as Record<string, unknown>)).toEqual([
    expect.objectContaining({ level: 40, name: 'koala-tracker', call: 'track', field: 'profile_id' })
  ])
  const calls = Number(/^koala-tracker demo: (\d+) valid calls/m.exec(stdout)?.[1])
  expect(calls).toBeGreaterThan(1000)
  expect(stdout).toContain(`tracker:   accepted ${calls}, sent ${calls}, failed 0, refused 1 (track(): profile_id must be a UUID`)
  expect(stdout).toContain('duplicate message_ids: 0')
  expect(stdout).toMatch(new RegExp(`^OK: all ${calls} items sent were received exactly once\\.$`, 'm'))
})
