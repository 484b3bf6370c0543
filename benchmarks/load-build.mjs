// Loads a tracker build through its public entry points only, as an installed
// package would be: the build is a dist directory, and its package.json (one
// level up) says which files "main" and the "./express" export are. Read at
// run time, not hard-coded, so that moving files inside lib/ changes nothing here.
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const DEFAULT_DIST = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist')

/** The CommonJS file of an "exports" entry: a string, or conditions of which `require` (or `node`, `default`) applies. */
function cjsTarget (entry) {
  if (typeof entry === 'string') return entry
  for (const condition of ['require', 'node', 'default']) {
    if (entry?.[condition] !== undefined) return cjsTarget(entry[condition])
  }
  return undefined
}

/**
 * `dist` defaults to KOALA_DIST, then this repository's dist. `require` resolves
 * from the build's package root, so the build loads its own dependencies
 * (undici, lru-cache), and preloading one of them loads the copy it will use.
 */
export function loadBuild (dist = process.env.KOALA_DIST ?? DEFAULT_DIST) {
  const root = dirname(resolve(dist))
  const pkgFile = join(root, 'package.json')
  if (!existsSync(pkgFile)) throw new Error(`${dist}: no package.json next to it (${pkgFile}); pass a package's dist directory`)
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8'))
  const require = createRequire(pkgFile)
  const entry = (sub) => {
    const file = sub === '.' ? pkg.main : cjsTarget(pkg.exports?.[sub])
    if (file === undefined) throw new Error(`${pkgFile} names no CommonJS file for ${sub === '.' ? '"main"' : `the "${sub}" export`}`)
    return require(join(root, file))
  }
  return { root, dist: resolve(dist), require, tracker: () => entry('.'), express: () => entry('./express') }
}
