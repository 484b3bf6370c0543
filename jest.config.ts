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
  // Coverage is part of `npm test`, so the gate below is enforced wherever the tests run.
  // Code that only runs in child processes (the default logger, the CLI's process wiring)
  // is tested there but not counted here.
  collectCoverage: true,
  coverageReporters: ['text-summary'],
  coverageThreshold: {
    global: { lines: 95, statements: 94, branches: 88, functions: 90 }
  },
  // Entry points that only re-export are left out: their getters are not code paths.
  collectCoverageFrom: ['lib/**/*.ts', '!lib/generated/**', '!lib/**/index.ts']
}

export default config
