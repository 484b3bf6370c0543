/**
 * `new Date(ms).toISOString()` for the stamps the tracker generates. The
 * first toISOString() in a process costs ~1 ms (V8 sets up its date
 * formatting lazily), all of it on the first call of a cold start; this is
 * plain arithmetic. Years outside 0000–9999 fall back to Date.
 */
export function isoTime (ms: number): string {
  if (!(ms >= MIN_MS && ms <= MAX_MS)) return new Date(ms).toISOString()
  const days = Math.floor(ms / DAY_MS)
  let rest = ms - days * DAY_MS
  const milli = rest % 1000
  rest = (rest - milli) / 1000
  const sec = rest % 60
  rest = (rest - sec) / 60
  const min = rest % 60
  const hour = (rest - min) / 60
  // Civil date from days since 1970-01-01, counted in 400-year eras from 0000-03-01
  // (so that the leap day ends a year).
  const z = days + 719_468
  const era = Math.floor(z / 146_097)
  const dayOfEra = z - era * 146_097
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1_460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365)
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100))
  const monthFromMarch = Math.floor((5 * dayOfYear + 2) / 153)
  const day = dayOfYear - Math.floor((153 * monthFromMarch + 2) / 5) + 1
  const month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
  return `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}T${pad(hour, 2)}:${pad(min, 2)}:${pad(sec, 2)}.${pad(milli, 3)}Z`
}

const DAY_MS = 86_400_000
/** 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z. */
const MIN_MS = -62_167_219_200_000
const MAX_MS = 253_402_300_799_999

const pad = (n: number, width: number): string => String(n).padStart(width, '0')
