import { ConcurrencyLimit } from '../lib/tracker/concurrency'

// The adaptive limit's rule as a decision table; how the sender uses it is in adaptive.test.ts.
describe('ConcurrencyLimit (the rule, as pure bookkeeping)', () => {
  test('grows by one per answered request that filled it, while answers come as fast as the fastest seen, up to its ceiling', () => {
    const limit = new ConcurrencyLimit(12, 10)
    expect(limit.allowed).toBe(10)
    for (let i = 0; i < 5; i++) limit.onSuccess(limit.start(limit.allowed - 1), 50)
    expect(limit.allowed).toBe(12)
    // One that did not fill the limit says nothing about needing more.
    const light = new ConcurrencyLimit(100, 10)
    limit.onSuccess(light.start(0), 50)
    expect(light.allowed).toBe(10)
  })

  test('answers much slower than the fastest (queueing) take it back toward the floor, never below it', () => {
    const limit = new ConcurrencyLimit(100, 10)
    for (let i = 0; i < 10; i++) limit.onSuccess(limit.start(limit.allowed - 1), 1)
    expect(limit.allowed).toBe(20)
    for (let i = 0; i < 30; i++) limit.onSuccess(limit.start(limit.allowed - 1), 5)
    expect(limit.allowed).toBe(10)
  })

  test('a failure cuts a tenth once per window: attempts started before the cut do not cut again', () => {
    const limit = new ConcurrencyLimit(100, 10)
    const wave = Array.from({ length: 10 }, (_, i) => limit.start(i))
    for (const ticket of wave) limit.onFailure(ticket)
    expect(limit.allowed).toBe(9)
    limit.onFailure(limit.start(0))
    expect(limit.allowed).toBe(8)
    // Never below one, and below the floor any success raises it, however slow.
    for (let i = 0; i < 50; i++) limit.onFailure(limit.start(0))
    expect(limit.allowed).toBe(1)
    limit.onSuccess(limit.start(limit.allowed - 1), 1)
    limit.onSuccess(limit.start(limit.allowed - 1), 1_000)
    expect(limit.allowed).toBe(3)
  })
})
