import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { COOKIE_DEFAULTS } from '../lib/cookie'
import { DEFAULTS } from '../lib/options'
import { SHUTDOWN_DEFAULTS } from '../lib/shutdown'
import { ROOT } from './helpers/child'

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')

test('the README options table states every default as DEFAULTS has it', () => {
  const rows = new Map<string, string>()
  for (const m of readme.matchAll(/^\| `(\w+)` \| ([^|]+) \|/gm)) rows.set(m[1], m[2].trim())
  for (const [name, value] of Object.entries(DEFAULTS)) {
    expect([name, rows.get(name)]).toEqual([name, typeof value === 'string' ? `\`${value}\`` : String(value)])
  }
})

test('the quick start is two commands and names the test command', () => {
  expect(readme).toContain('npm install && npm run demo')
  expect(readme).toMatch(/^npm test\b/m)
})

test('every docs/ link in the README points at a file', () => {
  for (const m of readme.matchAll(/\]\((docs\/[^)]+)\)/g)) expect([m[1], existsSync(join(ROOT, m[1]))]).toEqual([m[1], true])
})

test('docs/express.md states the cookie and shutdown defaults as the code has them', () => {
  const guide = readFileSync(join(ROOT, 'docs/express.md'), 'utf8')
  const rows = new Map<string, string>()
  for (const m of guide.matchAll(/^\| `(\w+)` \| ([^|]+) \|/gm)) rows.set(m[1], m[2].trim())
  expect(rows.get('maxAgeMs')).toBe(`${COOKIE_DEFAULTS.maxAgeMs / 86_400_000} days`)
  expect(rows.get('sameSite')).toBe(`\`${COOKIE_DEFAULTS.sameSite}\``)
  expect(rows.get('secure')).toBe(`\`${COOKIE_DEFAULTS.secure}\``)
  expect(rows.get('path')).toBe(`\`${COOKIE_DEFAULTS.path}\``)
  expect(rows.get('drainTimeoutMs')).toBe(String(SHUTDOWN_DEFAULTS.drainTimeoutMs))
  expect(rows.get('signals')).toBe(`\`${JSON.stringify(SHUTDOWN_DEFAULTS.signals).replace(/"/g, "'").replace(',', ', ')}\``)
})
