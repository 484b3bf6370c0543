import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { DEFAULTS } from '../lib/options'
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
