import { createTracker } from '../lib'
test('loads', () => { expect(typeof createTracker).toBe('function') })
