import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { EXIT, main } from '../lib/cli/cli'
import { DELETION_DEFAULTS } from '../lib/deletion/options'
import { COOKIE_DEFAULTS } from '../lib/express/cookie'
import { DEFAULTS } from '../lib/tracker/options'
import { SHUTDOWN_DEFAULTS } from '../lib/shutdown'
import { ROOT } from './helpers/child'

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')

/** Checks that an options table (`| \`name\` | default |`) in `doc` states each default as `defaults` has it. */
function expectDefaultsStated (doc: string, defaults: Record<string, unknown>): void {
  const rows = new Map<string, string>()
  for (const m of doc.matchAll(/^\| `(\w+)` \| ([^|]+) \|/gm)) rows.set(m[1], m[2].trim())
  for (const [name, value] of Object.entries(defaults)) {
    expect([name, rows.get(name)]).toEqual([name, typeof value === 'string' ? `\`${value}\`` : String(value)])
  }
}

test('the README options table states every default as DEFAULTS has it', () => {
  expectDefaultsStated(readme, DEFAULTS)
})

test('the quick start is two commands and names the test command', () => {
  expect(readme).toContain('npm install && npm run demo')
  expect(readme).toMatch(/^npm test\b/m)
})

test('every docs/ link in the README points at a file, and at a heading of it when it names one', () => {
  const slug = (heading: string): string => heading.trim().toLowerCase().replace(/[^\w\s-]/g, '').replace(/\s+/g, '-')
  for (const m of readme.matchAll(/\]\((docs\/[^)#]+)(?:#([^)]+))?\)/g)) {
    expect([m[1], existsSync(join(ROOT, m[1]))]).toEqual([m[1], true])
    if (m[2] === undefined) continue
    const headings = [...readFileSync(join(ROOT, m[1]), 'utf8').matchAll(/^#+ (.*)$/gm)].map(h => slug(h[1]))
    expect([m[0], headings.includes(m[2])]).toEqual([m[0], true])
  }
})

describe('docs/deletion.md', () => {
  const doc = readFileSync(join(ROOT, 'docs/deletion.md'), 'utf8')

  test('the options table states every default as DELETION_DEFAULTS has it', () => {
    expectDefaultsStated(doc, DELETION_DEFAULTS)
  })

  test('the exit code table lists exactly the CLI\'s codes', () => {
    const codes = [...doc.matchAll(/^\| (\d+) \| /gm)].map(m => Number(m[1]))
    expect(codes).toEqual([...Object.values(EXIT), 70].sort((a, b) => a - b))
  })

  test('the CLI help names the same options as the guides (relay: docs/durability.md)', async () => {
    const out: string[] = []
    await main(['help'], { env: {}, out: l => out.push(l), err: () => {}, readFile: () => '', stopRequested: async () => {} })
    const guides = doc + readFileSync(join(ROOT, 'docs/durability.md'), 'utf8')
    for (const flag of out.join('\n').match(/--[a-z-]+/g) ?? []) expect([flag, guides.includes(flag) || flag === '--help' || flag === '--version']).toEqual([flag, true])
  })
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
