// ESM + decorators through @swc/jest. One PostgreSQL server per run, one database per suite
// (test/support/global-setup.mjs, test/support/test-database.ts), so suites run in parallel.
// TEST_WORKERS overrides the number of parallel suites (default: one per core, at least 2).
import { availableParallelism } from 'node:os';

const swc = {
  jsc: {
    parser: { syntax: 'typescript', decorators: true },
    transform: { legacyDecorator: true, decoratorMetadata: true },
    target: 'es2022',
    keepClassNames: true,
  },
  module: { type: 'es6' },
  sourceMaps: 'inline',
};

export default {
  testEnvironment: 'node',
  rootDir: '.',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.spec.ts', '**/*.e2e-spec.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
    // CommonJS that requires the ESM-only @nestjs/common: loaded by a shim (see the file).
    '^@nestjs/throttler$': '<rootDir>/test/support/nestjs-throttler.ts',
  },
  transform: { '^.+\\.ts$': ['@swc/jest', swc] },
  globalSetup: '<rootDir>/test/support/global-setup.mjs',
  globalTeardown: '<rootDir>/test/support/global-teardown.mjs',
  maxWorkers: Number(process.env.TEST_WORKERS) || Math.max(2, availableParallelism()),
  testTimeout: 30000,
};
