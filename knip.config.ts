import type { KnipConfig } from 'knip';

const config: KnipConfig = {
  entry: [
    // Each runs as `node dist/<path>.js` (package.json, Dockerfile, deploy/).
    'apps/*/main.ts',
    'scripts/*.ts',
    'scripts/chaos/chaos.ts',
    'bench/*.bench.ts',
    // Run by hand on a CPU profile (ADR 0028).
    'bench/cpu-profile-summary.ts',
    // Preloaded (`node -r`) into the services bench:submit starts.
    'bench/statement-counter.ts',
    // `npm run connect:screenshots` runs it through jest's --testMatch.
    'apps/intake/test/connect-screenshots.ts',
    // Served to the browser by intake's connect page.
    'apps/intake/connect/assets/*.js',
  ],
  project: ['apps/**/*.{ts,js}', 'libs/**/*.ts', 'scripts/**/*.ts', 'bench/**/*.ts', 'deploy/**/*.ts', 'test/**/*.ts', 'lint/**/*.{ts,cjs}', '*.{ts,mjs}'],
  jest: { config: ['jest.config.ts', 'jest.containers.config.ts'] },
  // Debian packages the tests call, installed by .ci/run.
  ignoreBinaries: ['docker-compose', 'kubectl', 'rabbitmqctl', 'pg_dump'],
};

export default config;
