/**
 * The known name a mistyped one most likely meant, for a "did you mean …?" hint: the same
 * letters in another case, or else the one that shares the longest start with it, four letters
 * at least (`flushInterval` → `flushIntervalMs`, `maxBufferItems` → `maxBufferedItems`).
 */
export function nearestName (name: string, known: Iterable<string>): string | undefined {
  const lower = name.toLowerCase()
  let best: string | undefined
  let bestShared = 3
  for (const k of known) {
    const candidate = k.toLowerCase()
    if (candidate === lower) return k
    let shared = 0
    while (shared < candidate.length && shared < lower.length && candidate.charCodeAt(shared) === lower.charCodeAt(shared)) shared++
    if (shared > bestShared) {
      best = k
      bestShared = shared
    }
  }
  return best
}
