import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { databaseOfTheBlock, TestDatabase, testConfig, testPrefix } from '@keyward/testing';
import { ConnectionHealthRepository } from './connection-health.repository';
import { FailureRecord } from './failure-report-scrub';
import { countsAgainstActive } from './health-decisions';
import { DEFAULT_MONITOR_TIMINGS } from './monitor-options';
import { seedActiveConnection, SeededConnection } from './test/monitor-harness';

/** A migrated database of the describe block's own and the repository on it; dropped after the block. */
function repositoryOnItsOwnDatabase(env: Record<string, string> = {}): () => { db: TestDatabase; dataSource: DataSource; repository: ConnectionHealthRepository } {
  const block = databaseOfTheBlock();
  return () => ({ ...block, repository: new ConnectionHealthRepository(testConfig('monitor', { databaseUrl: block.db.url, prefix: testPrefix(), ...env }), DEFAULT_MONITOR_TIMINGS) });
}

/**
 * The hot-path statement transcribes two rules into SQL (ADR 0029): which failures count against
 * the active key, and where the failure window starts. Run against a real Postgres, it must agree
 * with `countsAgainstActive` and keep the window's boundaries.
 */
describe('ConnectionHealthRepository: the one-statement failure count', () => {
  const WINDOW_SECONDS = 300;
  const setup = repositoryOnItsOwnDatabase({ KEYWARD_AUTH_FAILURE_WINDOW_SECONDS: String(WINDOW_SECONDS) });
  let db: TestDatabase;
  let dataSource: DataSource;
  let repository: ConnectionHealthRepository;
  beforeAll(() => ({ db, dataSource, repository } = setup()));

  /** An active connection with the health row the monitor starts for its key. */
  async function monitored(): Promise<SeededConnection> {
    const connection = await seedActiveConnection(db);
    await dataSource.transaction((tx) => repository.startMonitoringActive(tx, { tenantId: connection.tenantId }));
    return connection;
  }

  const failure = (tenantId: string, over: Partial<FailureRecord> = {}): FailureRecord => ({
    eventId: randomUUID(),
    tenantId,
    credentialId: null,
    status: 401,
    source: 'erp',
    endpoint: null,
    observedAt: new Date().toISOString(),
    ...over,
  });
  const record = (f: FailureRecord) => dataSource.transaction((tx) => repository.recordFailure(tx, f));
  const recorded = async (eventId: string) =>
    (await db.query<{ counts_against_active: boolean; observed_at: Date }>(`SELECT counts_against_active, observed_at FROM auth_failures WHERE event_id = $1`, [eventId]))[0];
  const ago = (seconds: number) => new Date(Date.now() - seconds * 1000).toISOString();

  it.each<[string, (c: SeededConnection) => Promise<void>, (c: SeededConnection) => string | null]>([
    ['a failure naming the active key', async () => undefined, (c) => c.credentialId],
    ['a failure naming no key', async () => undefined, () => null],
    ['the old key failing after a rotation', async () => undefined, () => randomUUID()],
    ['a disabled connection', (c) => db.query(`UPDATE connections SET status = 'disabled', active_credential_id = NULL WHERE tenant_id = $1`, [c.tenantId]).then(() => undefined), () => null],
    [
      'an uninstalled connection',
      (c) => db.query(`UPDATE connections SET status = 'uninstalled', active_credential_id = NULL WHERE tenant_id = $1`, [c.tenantId]).then(() => undefined),
      (c) => c.credentialId,
    ],
  ])('records %s as countsAgainstActive decides', async (_name, arrange, reported) => {
    const connection = await monitored();
    await arrange(connection);
    const f = failure(connection.tenantId, { credentialId: reported(connection) });
    const counted = await record(f);
    expect(counted).toBeDefined();
    expect((await recorded(f.eventId)).counts_against_active).toBe(countsAgainstActive(counted!, f.credentialId));
  });

  it('records nothing for a tenant without a row, or with a row for an old key: the caller repairs it first', async () => {
    const unmonitored = await seedActiveConnection(db);
    const none = failure(unmonitored.tenantId);
    expect(await record(none)).toBeUndefined();
    const rotated = await monitored();
    await db.query(`UPDATE connections SET active_credential_id = $2 WHERE tenant_id = $1`, [rotated.tenantId, randomUUID()]);
    const outdated = failure(rotated.tenantId);
    expect(await record(outdated)).toBeUndefined();
    expect(await recorded(none.eventId)).toBeUndefined();
    expect(await recorded(outdated.eventId)).toBeUndefined();
  });

  it("counts the active key's failures within the window, and neither those before it nor the old key's", async () => {
    const connection = await monitored();
    await record(failure(connection.tenantId, { observedAt: ago(WINDOW_SECONDS + 60) }));
    await record(failure(connection.tenantId, { observedAt: ago(60), credentialId: randomUUID() }));
    await record(failure(connection.tenantId, { observedAt: ago(60), status: 403 }));
    expect(await record(failure(connection.tenantId, { credentialId: connection.credentialId }))).toMatchObject({ failures: 2, forbidden: 1 });
  });

  it('starts the window at the activation and at the last validation, whichever is later', async () => {
    const activated = await monitored();
    await db.query(`UPDATE connections SET activated_at = now() - interval '30 seconds' WHERE tenant_id = $1`, [activated.tenantId]);
    await record(failure(activated.tenantId, { observedAt: ago(60) }));
    expect(await record(failure(activated.tenantId))).toMatchObject({ failures: 1, recentlyValidated: false });

    const validated = await seedActiveConnection(db);
    await db.query(`UPDATE connections SET last_validated_at = now() - interval '30 seconds' WHERE tenant_id = $1`, [validated.tenantId]);
    await dataSource.transaction((tx) => repository.startMonitoringActive(tx, { tenantId: validated.tenantId }));
    await record(failure(validated.tenantId, { observedAt: ago(60), status: 403 }));
    expect(await record(failure(validated.tenantId, { status: 403 }))).toMatchObject({ failures: 1, forbidden: 1, recentlyValidated: true });
  });

  it('clamps a producer clock ahead of ours to now, so a failure cannot stay in the window', async () => {
    const connection = await monitored();
    const f = failure(connection.tenantId, { observedAt: new Date(Date.now() + 86_400_000).toISOString() });
    await record(f);
    expect((await recorded(f.eventId)).observed_at.getTime()).toBeLessThanOrEqual(Date.now() + 1_000);
  });

  describe('the batch statement (ADR 0035)', () => {
    /** Twin tenants: the same situations, one recorded failure by failure, the other in one batch. */
    async function twins(arrange: (c: SeededConnection) => Promise<void>): Promise<[SeededConnection, SeededConnection]> {
      const pair: SeededConnection[] = [];
      for (let i = 0; i < 2; i++) {
        const c = await monitored();
        await arrange(c);
        pair.push(c);
      }
      return [pair[0], pair[1]];
    }
    const row = async (tenantId: string) =>
      (await db.query<{ auth_failures: number; last_auth_failure_at: Date | null }>(`SELECT auth_failures, last_auth_failure_at FROM connection_health WHERE tenant_id = $1`, [tenantId]))[0];
    const flags = async (tenantId: string) =>
      (await db.query<{ counts_against_active: boolean }>(`SELECT counts_against_active FROM auth_failures WHERE tenant_id = $1 ORDER BY observed_at, status`, [tenantId])).map(
        (r) => r.counts_against_active,
      );

    it('gives every failure the window it would have had recorded alone, in order of observation, and leaves the same rows', async () => {
      const none = async () => undefined;
      const scenarios: [string, (c: SeededConnection) => Promise<void>, (c: SeededConnection) => Partial<FailureRecord>[]][] = [
        ['401s crossing the threshold', none, () => [{ observedAt: ago(50) }, { observedAt: ago(40) }, { observedAt: ago(30) }, { observedAt: ago(20) }]],
        ['a 403 among 401s, some naming the key', none, (c) => [{ observedAt: ago(50) }, { observedAt: ago(40), status: 403, credentialId: c.credentialId }, { observedAt: ago(30) }]],
        ["the old key among the active key's", none, () => [{ observedAt: ago(50), credentialId: randomUUID() }, { observedAt: ago(40) }, { observedAt: ago(30), credentialId: randomUUID() }]],
        ['one before the window', none, () => [{ observedAt: ago(WINDOW_SECONDS + 60) }, { observedAt: ago(40) }, { observedAt: ago(30) }]],
        ['a producer clock ahead', none, () => [{ observedAt: ago(40) }, { observedAt: new Date(Date.now() + 3_600_000).toISOString() }]],
        ['failures before the batch', (c) => record(failure(c.tenantId, { observedAt: ago(100), status: 403 })).then(() => undefined), () => [{ observedAt: ago(40) }, { observedAt: ago(30) }]],
        [
          'a disabled connection',
          (c) => db.query(`UPDATE connections SET status = 'disabled', active_credential_id = NULL WHERE tenant_id = $1`, [c.tenantId]).then(() => undefined),
          () => [{ observedAt: ago(40) }, { observedAt: ago(30) }],
        ],
      ];
      for (const [name, arrange, reports] of scenarios) {
        const [alone, batched] = await twins(arrange);
        const sequence = (c: SeededConnection) => reports(c).map((over) => failure(c.tenantId, over));
        const one = [];
        for (const f of sequence(alone)) one.push(await record(f));
        // The batch arrives out of order: it is counted in order of observation all the same.
        const batch = sequence(batched);
        const recorded = await dataSource.transaction((tx) => repository.recordFailures(tx, [...batch].reverse()));
        expect({ name, windows: batch.map((f) => recorded.find((r) => r.eventId === f.eventId)).map((r) => r && { failures: r.failures, forbidden: r.forbidden }) }).toEqual({
          name,
          windows: one.map((r) => r && { failures: r.failures, forbidden: r.forbidden }),
        });
        expect({ name, flags: await flags(batched.tenantId) }).toEqual({ name, flags: await flags(alone.tenantId) });
        const [a, b] = [await row(alone.tenantId), await row(batched.tenantId)];
        expect({ name, failures: b.auth_failures, last: b.last_auth_failure_at === null }).toEqual({ name, failures: a.auth_failures, last: a.last_auth_failure_at === null });
      }
    });

    it('locks and records many tenants at once, leaving out those without a row for their active key', async () => {
      const tenants = [await monitored(), await monitored(), await seedActiveConnection(db)];
      const batch = tenants.flatMap((c) => [failure(c.tenantId, { observedAt: ago(30) }), failure(c.tenantId, { observedAt: ago(20) })]);
      const rows = await dataSource.transaction((tx) => repository.recordFailures(tx, batch));
      expect(rows.map((r) => [r.tenantId, r.failures])).toEqual(
        [...tenants.slice(0, 2).map((c) => c.tenantId)].sort().flatMap((t) => [
          [t, 1],
          [t, 2],
        ]),
      );
      expect(await recorded(batch[4].eventId)).toBeUndefined();
    });

    /** The window as counted from \`auth_failures\` itself, for the statement's kept window to be checked against. */
    const countedFromScratch = async (tenantId: string, windowSeconds = WINDOW_SECONDS) =>
      (
        await db.query<{ failures: number; forbidden: number }>(
          `SELECT count(*)::int AS failures, (count(*) FILTER (WHERE f.status = 403))::int AS forbidden
           FROM auth_failures f JOIN connections c USING (tenant_id) JOIN connection_health h USING (tenant_id)
           WHERE f.tenant_id = $1 AND f.counts_against_active AND (f.credential_id = c.active_credential_id OR f.credential_id IS NULL)
             AND f.observed_at > greatest(now() - make_interval(secs => $2), c.activated_at, h.last_validated_at)`,
          [tenantId, windowSeconds],
        )
      )[0];
    const lastWindow = (rows: { tenantId: string; failures: number; forbidden: number }[], tenantId: string) => {
      const mine = rows.filter((r) => r.tenantId === tenantId);
      return mine.length === 0 ? undefined : { failures: Math.max(...mine.map((r) => r.failures)), forbidden: Math.max(...mine.map((r) => r.forbidden)) };
    };

    it('keeps the window it counted while every failure in it stays, and counts again once one has left (ADR 0059)', async () => {
      // Seconds ago far from every window start below, so the seconds this test takes cannot move a failure across one.
      const observed = [10, 40, 70, 130, 190, 260, 360, 500];
      const validatedAgo = [230, 160, 100, 55, 25];
      let seed = 59;
      const random = (n: number) => (seed = (seed * 16807) % 2147483647) % n;
      const connection = await monitored();
      let validations = 0;
      for (let step = 0; step < 40; step++) {
        if (random(5) === 0 && validations < validatedAgo.length) {
          // A validation moves the window's start past some failures already counted.
          await db.query(`UPDATE connection_health SET last_validated_at = now() - make_interval(secs => $2) WHERE tenant_id = $1`, [connection.tenantId, validatedAgo[validations++]]);
          continue;
        }
        const batch = Array.from({ length: 1 + random(4) }, () =>
          failure(connection.tenantId, {
            observedAt: ago(observed[random(observed.length)]),
            status: random(4) === 0 ? 403 : 401,
            credentialId: [connection.credentialId, null, randomUUID()][random(3)],
          }),
        );
        const rows = await dataSource.transaction((tx) => repository.recordFailures(tx, batch));
        // A batch none of whose failures counts answers 0 for each: nothing to compare.
        if (batch.some((f) => f.credentialId === null || f.credentialId === connection.credentialId)) {
          expect({ step, window: lastWindow(rows, connection.tenantId) }).toEqual({ step, window: await countedFromScratch(connection.tenantId) });
        }
      }
      expect(validations).toBeGreaterThan(1);
    });

    it('counts again when the window grew (a longer KEYWARD_AUTH_FAILURE_WINDOW_SECONDS)', async () => {
      const connection = await monitored();
      await record(failure(connection.tenantId, { observedAt: ago(WINDOW_SECONDS + 100) }));
      expect(await record(failure(connection.tenantId, { observedAt: ago(30) }))).toMatchObject({ failures: 1 });
      const longer = new ConnectionHealthRepository(
        testConfig('monitor', { databaseUrl: db.url, prefix: testPrefix(), KEYWARD_AUTH_FAILURE_WINDOW_SECONDS: String(WINDOW_SECONDS * 2) }),
        DEFAULT_MONITOR_TIMINGS,
      );
      const rows = await dataSource.transaction((tx) => longer.recordFailures(tx, [failure(connection.tenantId, { observedAt: ago(20) })]));
      expect(lastWindow(rows, connection.tenantId)).toEqual({ failures: 3, forbidden: 0 });
      expect(await countedFromScratch(connection.tenantId, WINDOW_SECONDS * 2)).toEqual({ failures: 3, forbidden: 0 });
    });

    it('records a failure recorded before (an inbox row pruned, then a redelivery) once, counting it as the single statement does', async () => {
      const [alone, batched] = await twins(async () => undefined);
      const first = (c: SeededConnection) => failure(c.tenantId, { eventId: randomUUID(), observedAt: ago(30) });
      const [a, b] = [first(alone), first(batched)];
      await record(a);
      await record(b);
      const again = await record(a);
      const [batchAgain] = await dataSource.transaction((tx) => repository.recordFailures(tx, [b]));
      expect({ failures: batchAgain.failures, forbidden: batchAgain.forbidden }).toEqual({ failures: again!.failures, forbidden: again!.forbidden });
      expect((await db.query(`SELECT 1 FROM auth_failures WHERE event_id = $1`, [b.eventId])).length).toBe(1);
    });
  });
});

/** The scheduler's repair round between full ones looks only at connections changed lately (ADR 0034). */
describe('ConnectionHealthRepository: the repair round of changed connections', () => {
  const setup = repositoryOnItsOwnDatabase();
  let db: TestDatabase;
  let dataSource: DataSource;
  let repository: ConnectionHealthRepository;
  beforeAll(() => ({ db, dataSource, repository } = setup()));

  it('starts monitoring a connection changed since the moment given, and leaves an older one to the full round', async () => {
    const older = await seedActiveConnection(db);
    await db.query(`UPDATE connections SET updated_at = now() - interval '2 hours' WHERE tenant_id = $1`, [older.tenantId]);
    const recent = await seedActiveConnection(db);

    const partial = await repository.startMonitoringActive(dataSource.manager, { changedSince: new Date(Date.now() - 3600_000) });
    expect(partial).toEqual([recent.tenantId]);

    const full = await repository.startMonitoringActive(dataSource.manager);
    expect(full).toEqual([older.tenantId]);
    const rows = await db.query<{ tenant_id: string; credential_id: string }>(`SELECT tenant_id, credential_id FROM connection_health ORDER BY tenant_id`);
    expect(rows).toHaveLength(2);
  });
});
