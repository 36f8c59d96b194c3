import type { Config } from 'jest';

const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2022',
    },
    module: { type: 'commonjs' },
    sourceMaps: 'inline',
  },
];

const config: Config = {
  rootDir: '.',
  testEnvironment: 'node',
  testMatch: [
    '<rootDir>/apps/**/*.spec.ts',
    '<rootDir>/libs/**/*.spec.ts',
    '<rootDir>/apps/**/test/**/*.test.ts',
    '<rootDir>/deploy/**/*.spec.ts',
    '<rootDir>/test/**/*.test.ts',
    '<rootDir>/lint/**/*.spec.ts',
  ],
  transform: { '^.+\\.ts$': swc as never },
  moduleNameMapper: {
    '^@keyward/(.*)$': '<rootDir>/libs/$1/src',
  },
  globalSetup: '<rootDir>/libs/testing/src/global-setup.ts',
  globalTeardown: '<rootDir>/libs/testing/src/global-teardown.ts',
  // Real Postgres and RabbitMQ; two cores: two workers.
  maxWorkers: 2,
  testTimeout: 60_000,
  verbose: false,
};

export default config;
