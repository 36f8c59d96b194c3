import { randomUUID } from 'node:crypto';
import { cpus } from 'node:os';
import { Client } from 'pg';
import { KEPT_WINDOW, RECORD_FAILURES } from '../apps/monitor/failure-window.sql';
import { runBenchmark, withBenchDatabase } from './bench-database';
import { positiveInteger, seedHealthyTenants } from './bench-tenants';

/**
 * npm run bench:window [-- BATCHES TENANTS]
 * The monitor's record statement (`RECORD_FAILURES`) on batches of 500 auth failures, one tenant
 * each, committed one after the other: as kept (ADR 0059: the failures before the batch are the
 * window the row kept, while every failure in it is still in the window), beside the same statement
 * with the kept window never used (every tenant's window counted again from `auth_failures`, as
 * before ADR 0059), alternating batch by batch on two sets of tenants of the same size in one
 * database. Medians after a warm-up of 8 batches each. Local Postgres only; its own database,
 * removed afterwards.
 */
const BATCHES = positiveInteger(process.argv[2], 60, 10_000);
const TENANTS = positiveInteger(process.argv[3], 2_000, 200_000);
const BATCH = 500;
const WINDOW_SECONDS = 300;

const COUNTED_AGAIN = RECORD_FAILURES.replace(KEPT_WINDOW, 'false');
if (COUNTED_AGAIN === RECORD_FAILURES) throw new Error('the kept-window test was not found in RECORD_FAILURES');

/** The statement's parameters for the batch of tenants `first` … `first + 499` of a set, in the tenants' lock order. */
function batchOf(set: string, first: number, credentials: Map<string, string>): unknown[] {
  const rows = Array.from({ length: BATCH }, (_, i) => {
    const tenantId = `${set}-${(first + i) % TENANTS}`;
    return [randomUUID(), tenantId, credentials.get(tenantId), 401, 'bench', '/v1/expenses', new Date().toISOString()] as const;
  }).sort((a, b) => (Buffer.compare(Buffer.from(a[1]), Buffer.from(b[1])) < 0 ? -1 : 1));
  return [...Array.from({ length: 7 }, (_, k) => rows.map((r) => r[k])), WINDOW_SECONDS];
}

async function timed(db: Client, name: string, text: string, values: unknown[]): Promise<number> {
  await db.query('BEGIN');
  const started = process.hrtime.bigint();
  const { rows } = await db.query<{ stale: boolean }>({ name, text, values });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  await db.query('COMMIT');
  if (rows.length !== BATCH || rows[0].stale) throw new Error(`expected ${BATCH} recorded failures, got ${rows.length}`);
  return ms;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function main(): Promise<void> {
  await withBenchDatabase('window', async (url) => {
    process.stdout.write(`bench:window — ${BATCHES} batches of ${BATCH} auth failures per variant, ${TENANTS} tenants each, ${cpus().length} cores, Node ${process.version}\n`);
    const db = new Client({ connectionString: url });
    await db.connect();
    try {
      const credentials = await seedHealthyTenants(db, TENANTS, ['kept', 'again']);
      const times = { kept: [] as number[], again: [] as number[] };
      for (let k = 0; k < BATCHES + 8; k++) {
        const first = (k * BATCH) % TENANTS;
        // Alternating which runs first, so a drift of the shared machine meets both alike.
        for (const variant of k % 2 === 0 ? (['kept', 'again'] as const) : (['again', 'kept'] as const)) {
          const ms = await timed(db, `bench_window_${variant}`, variant === 'kept' ? RECORD_FAILURES : COUNTED_AGAIN, batchOf(variant, first, credentials));
          if (k >= 8) times[variant].push(ms);
        }
      }
      const [{ failures }] = (await db.query<{ failures: number }>(`SELECT max(auth_failures)::int AS failures FROM connection_health`)).rows;
      const [kept, again] = [median(times.kept), median(times.again)];
      process.stdout.write(`  up to ${failures} failures a tenant in the window at the end\n`);
      process.stdout.write(`record statement, the window kept (ADR 0059)       : ${kept.toFixed(2)} ms a batch of ${BATCH} (${((kept * 1000) / BATCH).toFixed(1)} µs a failure)\n`);
      process.stdout.write(`record statement, every window counted again       : ${again.toFixed(2)} ms a batch of ${BATCH} (${((again * 1000) / BATCH).toFixed(1)} µs a failure)\n`);
      process.stdout.write(`ratio kept/counted again                           : ${(kept / again).toFixed(3)}\n`);
    } finally {
      await db.end();
    }
  });
}

runBenchmark('window', main);
