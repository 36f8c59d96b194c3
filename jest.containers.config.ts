import type { Config } from 'jest';
import base from './jest.config';

/**
 * Suites that drive the built image with a container engine (`npm run test:compose`): not part of
 * `npm test`, which must run where no engine is; `.ci/run` runs both.
 */
const config: Config = {
  ...base,
  testMatch: ['<rootDir>/test/containers/**/*.smoke.ts'],
  globalSetup: undefined,
  globalTeardown: undefined,
  maxWorkers: 1,
  testTimeout: 240_000,
  // fetch keeps sockets to the published ports alive after compose is down.
  forceExit: true,
};

export default config;
