import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { migrate } from '@keyward/persistence';

/** Benchmarks run only against services on this machine. */
const BENCH_ADMIN_DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const BENCH_AMQP_URL = process.env.BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

for (const url of [BENCH_ADMIN_DATABASE_URL, BENCH_AMQP_URL]) {
  const host = new URL(url).hostname;
  if (!['127.0.0.1', 'localhost', '::1'].includes(host)) throw new Error(`benchmarks run against local services only, not ${host}`);
}

/** A migrated database of the benchmark's own, dropped afterwards whatever happens. */
export async function withBenchDatabase<T>(name: string, run: (url: string) => Promise<T>): Promise<T> {
  const dbName = `keyward_bench_${name}_${randomBytes(4).toString('hex')}`;
  const url = new URL(BENCH_ADMIN_DATABASE_URL);
  url.pathname = `/${dbName}`;
  try {
    await migrate(url.toString());
    return await run(url.toString());
  } finally {
    const admin = new Client({ connectionString: BENCH_ADMIN_DATABASE_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    await admin.end();
  }
}

/** Runs a benchmark's main and exits: 0 when it finished, 1 with the error otherwise. */
export function runBenchmark(name: string, main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`bench:${name} failed: ${String((error as Error)?.stack ?? error)}\n`);
      process.exit(1);
    },
  );
}
