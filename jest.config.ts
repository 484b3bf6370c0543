import type { Config } from 'jest'

const config: Config = {
  testEnvironment: 'node',
  roots: ['<rootDir>/__tests__'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }]
  },
  clearMocks: true,
  // Child-process tests start real Node processes; give a slow CI machine room.
  testTimeout: 30_000,
  coverageThreshold: {
    global: { lines: 90, branches: 80, functions: 90 }
  },
  collectCoverageFrom: ['lib/**/*.ts', '!lib/generated/**']
}

export default config
