import { randomBytes, randomUUID } from 'node:crypto';
import * as pg from 'pg';
import { DataSource } from 'typeorm';
import { ApiKey } from '@keyward/key-material';
import { createDataSource, pgPool } from '@keyward/persistence';
import { canaryKey, captureLogs, createTestDatabase, TestDatabase } from '@keyward/testing';
import { MasterKeyring } from './envelope';
import { LocalSecretStore } from './local-secret-store';
import { QueryRevocationCheck } from './revocation-check';
import { SecretReader } from './secret-reader';

/**
 * The local store's part of a key submission's path, in round trips to Postgres (each a wait of
 * its own): intake's putPending, the validator's read for use, rotation's promote. A label move is
 * one round trip: the tenant's lock, the write and the commit (one implicit transaction, since the
 * write refuses in SQL); so is putPending, its sealed value as parameters (what it refuses wrote
 * nothing).
 */
describe('LocalSecretStore: round trips to Postgres', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let client: pg.PoolClient;
  let query: jest.SpyInstance;
  let store: LocalSecretStore;
  const tenant = () => `tenant-${randomBytes(5).toString('hex')}`;
  const key = () => ApiKey.fromTrusted(canaryKey());

  beforeAll(async () => {
    db = await createTestDatabase();
    // Before the pool's one connection exists: keyward's client sends through the prototype's query as it was then.
    query = jest.spyOn(pg.Client.prototype, 'query');
    dataSource = await createDataSource({ url: db.url, poolSize: 1 }).initialize();
    client = await pgPool(dataSource)!.connect();
    client.release();
    store = new LocalSecretStore(dataSource, new MasterKeyring({ id: 'mk-rt', key: randomBytes(32) }), { namePrefix: 'keyward', envName: 'test' });
  });
  afterAll(async () => {
    query?.mockRestore();
    await dataSource?.destroy();
    await db?.drop();
  });

  /** What `work` sent to Postgres on the pool's connection: one query() is one round trip. */
  async function roundTrips(work: () => Promise<unknown>): Promise<number> {
    const sent = () => query.mock.contexts.filter((context) => context === client).length;
    const before = sent();
    await work();
    return sent() - before;
  }

  it("intake's putPending: one (the lock, the write and the commit), for a new tenant, a next key, a retry and a refusal alike", async () => {
    const t = tenant();
    const [v1, v2] = [randomUUID(), randomUUID()];
    const first = key();
    expect(await roundTrips(() => store.putPending(t, v1, first))).toBe(1);
    expect(await roundTrips(() => store.putPending(t, v2, key()))).toBe(1);
    expect(await roundTrips(() => store.putPending(t, v1, first))).toBe(1);
    expect(await roundTrips(() => store.putPending(t, v1, key()).catch(() => undefined))).toBe(1);
  });

  it("the validator's read for use: two, the revocation check and the read; a cached key costs the check alone", async () => {
    const t = tenant();
    const v = randomUUID();
    await store.putPending(t, v, key());
    const reader = new SecretReader(store, dataSource, captureLogs('round-trips').logger, 60_000);
    expect(await roundTrips(() => reader.readForUse(t, v))).toBe(2);
    expect(await roundTrips(() => reader.readForUse(t, v))).toBe(1);
  });

  it('a reader keeping at most two keys reads the oldest again once two newer ones were read; the others stay cached', async () => {
    const [a, b, c] = [tenant(), tenant(), tenant()];
    const v = randomUUID();
    for (const t of [a, b, c]) await store.putPending(t, v, key());
    const logger = captureLogs('round-trips').logger;
    const reader = new SecretReader(store, dataSource, logger, 60_000, Date.now, new QueryRevocationCheck(dataSource), 2);
    expect(await roundTrips(() => reader.readForUse(a, v))).toBe(2);
    expect(await roundTrips(() => reader.readForUse(b, v))).toBe(2);
    expect(await roundTrips(() => reader.readForUse(a, v))).toBe(1); // cached
    expect(await roundTrips(() => reader.readForUse(c, v))).toBe(2); // the third: a, the oldest, leaves
    expect(reader.cachedCount).toBe(2);
    expect(await roundTrips(() => reader.readForUse(b, v))).toBe(1);
    expect(await roundTrips(() => reader.readForUse(a, v))).toBe(2);
  });

  it("rotation's label moves: one each, refusals included", async () => {
    const t = tenant();
    const [v1, v2, v3] = [randomUUID(), randomUUID(), randomUUID()];
    await store.putPending(t, v1, key());
    expect(await roundTrips(() => store.promote(t, v1, null))).toBe(1);
    await store.putPending(t, v2, key());
    expect(await roundTrips(() => store.promote(t, v2, v1))).toBe(1);
    expect(await roundTrips(() => store.promote(t, v2, v1))).toBe(1); // already current
    await store.putPending(t, v3, key());
    expect(await roundTrips(() => store.promote(t, v3, v1).catch(() => undefined))).toBe(1); // a conflict
    expect(await roundTrips(() => store.retire(t, v3))).toBe(1);
    expect(await roundTrips(() => store.disable(t, v3))).toBe(1);
    expect(await roundTrips(() => store.scheduleDeletion(t, 7))).toBe(1);
    expect(await roundTrips(() => store.restore(t))).toBe(1);
  });
});
