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
    `[collector] 200 ${id} ada@example.com events=2 identifies=1 page_views=2`
  ])
})

// The README's quick start runs this (`npm run demo`); CI runs only the tests, so they run it too.
test('the demo exits 0 and reads as a story: every valid call received exactly once, the invalid one refused and logged as a readable line', async () => {
  const { code, signal, stdout, stderr } = await startNode([join(ROOT, 'dist/cjs/examples/demo.js')]).exited
  expect({ code, signal, stderr }).toEqual({ code: 0, signal: null, stderr: '' })
  const lines = stdout.split('\n')
  expect(lines[0]).toMatch(/^koala-tracker demo: page views, events and identifies for 400 visitors and 40 accounts, through a tracker to an embedded collector at http:/)
  // The tracker's one warning, for the invalid call, as a sentence rather than JSON.
  expect(lines.filter(l => l.includes('koala-tracker warns') || l.startsWith('{'))).toEqual([
    '  koala-tracker warns: track(): profile_id must be a UUID like 3e6a2c18-3b02-40c4-b8d2-1842c193d3ba (the ko_id cookie value)'
  ])
  const calls = Number(/^(\d+) valid calls made, then close\(\)\.$/m.exec(stdout)?.[1])
  expect(calls).toBeGreaterThan(1000)
  expect(stdout).toContain(`tracker:   accepted ${calls}, sent ${calls}, failed 0, refused 1 (1 invalid)`)
  expect(stdout).toContain('duplicate message_ids: 0')
  expect(stdout).toMatch(new RegExp(`^OK: all ${calls} items sent were received exactly once\\.$`, 'm'))
})
