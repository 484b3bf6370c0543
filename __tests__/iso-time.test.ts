import { isoTime } from '../lib/iso-time'

const expected = (ms: number): string => new Date(ms).toISOString()

test.each([
  ['the epoch', 0],
  ['a leap day', Date.UTC(2024, 1, 29, 23, 59, 59, 999)],
  ['the day after one', Date.UTC(2024, 2, 1)],
  ['2000-02-29 (a leap year divisible by 400)', Date.UTC(2000, 1, 29, 12)],
  ['2100-03-01 (2100 is not a leap year)', Date.UTC(2100, 2, 1)],
  ['the last millisecond of a year', Date.UTC(2026, 11, 31, 23, 59, 59, 999)],
  ['before the epoch', Date.UTC(1969, 11, 31, 23, 59, 59, 1)],
  ['the first instant of year 0000', -62_167_219_200_000],
  ['the last representable 4-digit year', 253_402_300_799_999]
])('formats %s as toISOString does', (_name, ms) => {
  expect(isoTime(ms)).toBe(expected(ms))
})

test('agrees with toISOString over 50,000 random instants between 1900 and 2200', () => {
  const from = Date.UTC(1900, 0, 1)
  const to = Date.UTC(2200, 0, 1)
  let seed = 42
  const random = (): number => { seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31; return seed / 2 ** 31 }
  for (let i = 0; i < 50_000; i++) {
    const ms = Math.floor(from + random() * (to - from))
    if (isoTime(ms) !== expected(ms)) expect(isoTime(ms)).toBe(expected(ms))
  }
})

test('years outside 0000-9999 are left to Date (expanded years)', () => {
  for (const ms of [253_402_300_800_000, -62_167_219_200_001, 8.64e15]) expect(isoTime(ms)).toBe(expected(ms))
})
