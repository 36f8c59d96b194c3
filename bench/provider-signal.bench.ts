import { cpus } from 'node:os';
import { Client } from 'pg';
import { loadConfig } from '@keyward/config';
import { ProviderIncidentRepository } from '../apps/monitor/provider-incident.repository';
import { ProviderSignal } from '../apps/monitor/health-decisions';
import { runBenchmark, withBenchDatabase } from './bench-database';
import { positiveInteger, seedHealthyTenants } from './bench-tenants';

/**
 * npm run bench:signal [-- TENANTS ROUNDS]
 * The provider signal (`ProviderIncidentRepository.signal`, ADR 0047) beside its upper bound
 * (`signalBound`, ADR 0060), which the monitor decides on first, on one database of TENANTS
 * healthy tenants (default 100,000) with 100, 1,000, 7,000 and 22,000 of them failing within the
 * window. For each: ROUNDS reads of each (default 20), alternating which goes first, after 4 of
 * each to warm up; medians. Local Postgres only; its own database, removed afterwards.
 */
const TENANTS = positiveInteger(process.argv[2], 100_000, 1_000_000);
const ROUNDS = positiveInteger(process.argv[3], 20, 10_000);
const WARMUP = 4;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function main(): Promise<void> {
  await withBenchDatabase('signal', async (url) => {
    process.stdout.write(`bench:signal — ${TENANTS} tenants, ${ROUNDS} reads of each statement per row, ${cpus().length} cores, Node ${process.version}\n`);
    const db = new Client({ connectionString: url });
    await db.connect();
    try {
      await seedHealthyTenants(db, TENANTS, ['bench']);
      const config = loadConfig('monitor', { NODE_ENV: 'test', DATABASE_URL: url, AMQP_URL: 'amqp://127.0.0.1', KEYWARD_SERVICE_TOKENS: 'bench=bench-service-token-000' });
      const signals = new ProviderIncidentRepository(config);
      // The repository takes a transaction's manager; its statements need only `query`.
      const tx = { query: async (text: string, values: unknown[]): Promise<unknown[]> => (await db.query<Record<string, unknown>>(text, values)).rows } as never;
      const reads = { signal: () => signals.signal(tx), bound: () => signals.signalBound(tx) };
      for (const failing of [100, 1_000, 7_000, 22_000].filter((n) => n <= TENANTS)) {
        await db.query(`UPDATE connection_health SET last_auth_failure_at = NULL WHERE last_auth_failure_at IS NOT NULL`);
        await db.query(
          `UPDATE connection_health SET last_auth_failure_at = now() - random() * interval '4 minutes'
           WHERE tenant_id IN (SELECT tenant_id FROM connection_health ORDER BY random() LIMIT $1)`,
          [failing],
        );
        await db.query('VACUUM ANALYZE connection_health');
        const times = { signal: [] as number[], bound: [] as number[] };
        const answers: Partial<Record<keyof typeof reads, ProviderSignal>> = {};
        for (let k = 0; k < ROUNDS + WARMUP; k++) {
          for (const which of k % 2 === 0 ? (['signal', 'bound'] as const) : (['bound', 'signal'] as const)) {
            const started = process.hrtime.bigint();
            answers[which] = await reads[which]();
            if (k >= WARMUP) times[which].push(Number(process.hrtime.bigint() - started) / 1e6);
          }
        }
        // Every row is an active tenant's active key here, so the bound is the signal.
        if (JSON.stringify(answers.signal) !== JSON.stringify(answers.bound)) throw new Error(`the bound ${JSON.stringify(answers.bound)} differs from the signal ${JSON.stringify(answers.signal)}`);
        const [signal, bound] = [median(times.signal), median(times.bound)];
        process.stdout.write(
          `${String(failing).padStart(6)} failing: signal ${signal.toFixed(2).padStart(6)} ms, upper bound ${bound.toFixed(2).padStart(6)} ms, ratio ${(bound / signal).toFixed(2)}` +
            ` (${JSON.stringify(answers.signal)})\n`,
        );
      }
    } finally {
      await db.end();
    }
  });
}

runBenchmark('signal', main);
