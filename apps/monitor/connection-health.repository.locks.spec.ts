import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { createDataSource } from '@keyward/persistence';
import { createTestDatabase, eventually, TestDatabase, testConfig, testPrefix } from '@keyward/testing';
import { ConnectionHealthRepository } from './connection-health.repository';
import { FailureRecord } from './failure-report-scrub';
import { DEFAULT_MONITOR_TIMINGS } from './monitor-options';
import { seedActiveConnection, SeededConnection } from './test/monitor-harness';

/**
 * The batch statement locks its tenants' rows itself (ADR 0041). A statement that waited for a
 * row counts with the snapshot it started with, which misses what the holder of the lock
 * committed meanwhile: it must notice, and count again once it holds the lock. Concurrent batches
 * of one tenant (two consumers, two replicas) keep every window exact.
 */
describe('ConnectionHealthRepository: batches of one tenant recorded at the same time', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let repository: ConnectionHealthRepository;

  beforeAll(async () => {
    db = await createTestDatabase();
    dataSource = await createDataSource({ url: db.url, poolSize: 4 }).initialize();
    repository = new ConnectionHealthRepository(testConfig('monitor', { databaseUrl: db.url, prefix: testPrefix(), KEYWARD_AUTH_FAILURE_WINDOW_SECONDS: '300' }), DEFAULT_MONITOR_TIMINGS);
  });
  afterAll(async () => {
    await dataSource?.destroy();
    await db?.drop();
  });

  async function monitored(): Promise<SeededConnection> {
    const connection = await seedActiveConnection(db);
    await dataSource.transaction((tx) => repository.startMonitoringActive(tx, { tenantId: connection.tenantId }));
    return connection;
  }
  const failure = (tenantId: string, secondsAgo: number, status: 401 | 403 = 401): FailureRecord => ({
    eventId: randomUUID(),
    tenantId,
    credentialId: null,
    status,
    source: 'erp',
    endpoint: null,
    observedAt: new Date(Date.now() - secondsAgo * 1000).toISOString(),
  });
  /** Sessions waiting for a row lock in this test's database. */
  const waiting = async () =>
    Number((await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE NOT l.granted AND a.datname = current_database()`))[0].n);

  it('a batch that waited for the lock counts the failures its holder committed, and the row ends with every one', async () => {
    const tenant = await monitored();
    const other = await monitored();
    // The first batch: two failures of the tenant (one a 403), its transaction still open.
    const holder = dataSource.createQueryRunner();
    await holder.startTransaction();
    const first = await repository.recordFailures(holder.manager, [failure(tenant.tenantId, 50), failure(tenant.tenantId, 40, 403)]);
    expect(first.map((r) => [r.failures, r.forbidden])).toEqual([
      [1, 0],
      [2, 1],
    ]);

    // The second batch, the same tenant and another one, waits for the tenant's row.
    const second = dataSource.transaction((tx) => repository.recordFailures(tx, [failure(tenant.tenantId, 30), failure(other.tenantId, 30), failure(tenant.tenantId, 20)]));
    await eventually(async () => (await waiting()) > 0, 10_000, 'the second batch waiting for the row lock');
    await holder.commitTransaction();
    await holder.release();

    const rows = await second;
    expect(rows.map((r) => [r.tenantId, r.failures, r.forbidden])).toEqual(
      [
        [tenant.tenantId, 3, 1],
        [tenant.tenantId, 4, 1],
        [other.tenantId, 1, 0],
      ].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)),
    );
    const health = await db.query<{ tenant_id: string; auth_failures: number }>(`SELECT tenant_id, auth_failures FROM connection_health WHERE tenant_id = ANY ($1)`, [
      [tenant.tenantId, other.tenantId],
    ]);
    expect(Object.fromEntries(health.map((h) => [h.tenant_id, h.auth_failures]))).toEqual({ [tenant.tenantId]: 4, [other.tenantId]: 1 });
    expect((await db.query(`SELECT 1 FROM auth_failures WHERE tenant_id = $1`, [tenant.tenantId])).length).toBe(4);
  });

  it('many concurrent batches of a few tenants: each failure a distinct window position, each row the count of its failures', async () => {
    const tenants = [await monitored(), await monitored(), await monitored()];
    const batches = Array.from({ length: 8 }, (_, b) => tenants.flatMap((t, i) => (b % 3 === i ? [] : [failure(t.tenantId, 60 - b), failure(t.tenantId, 60 - b)])));
    const results = await Promise.all(batches.map((batch) => dataSource.transaction((tx) => repository.recordFailures(tx, batch))));
    for (const t of tenants) {
      const positions = results
        .flat()
        .filter((r) => r.tenantId === t.tenantId)
        .map((r) => r.failures)
        .sort((a, b) => a - b);
      // Recorded one after the other, whatever the interleaving: 1, 2, …, n.
      expect(positions).toEqual(positions.map((_, i) => i + 1));
      const [row] = await db.query<{ auth_failures: number }>(`SELECT auth_failures FROM connection_health WHERE tenant_id = $1`, [t.tenantId]);
      expect(row.auth_failures).toBe(positions.length);
    }
  });
});
