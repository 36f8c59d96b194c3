import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { createDataSource } from '@keyward/persistence';
import { createTestDatabase, TestDatabase } from '@keyward/testing';
import { CoalescedRevocationCheck } from './revocation-check';

describe('CoalescedRevocationCheck', () => {
  let db: TestDatabase;
  let dataSource: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase();
    dataSource = await createDataSource({ url: db.url, poolSize: 4 }).initialize();
  });

  afterAll(async () => {
    await dataSource?.destroy();
    await db?.drop();
  });

  const revoke = (credentialId: string) =>
    db.query(`INSERT INTO revocations (credential_id, tenant_id, reason, reported_by, correlation_id) VALUES ($1, 't', 'compromised', 'test', 'c')`, [credentialId]);

  it('a read that starts after a revocation committed sees it, even while other reads keep a query in flight', async () => {
    const check = new CoalescedRevocationCheck(dataSource);
    const busy = randomUUID();
    let stop = false;
    let background = 0;
    // Keeps a query out almost all the time, so later reads would be tempted to join it.
    const load = (async () => {
      while (!stop) {
        await Promise.all(Array.from({ length: 20 }, () => check.find(busy)));
        background += 20;
      }
    })();
    try {
      for (let i = 0; i < 30; i++) {
        const credentialId = randomUUID();
        await expect(check.find(credentialId)).resolves.toBeUndefined();
        await revoke(credentialId);
        await expect(check.find(credentialId)).resolves.toEqual({ reason: 'compromised' });
      }
    } finally {
      stop = true;
      await load;
    }
    expect(background).toBeGreaterThan(0);
  });

  it('answers many reads with few queries', async () => {
    const check = new CoalescedRevocationCheck(dataSource);
    const revoked = randomUUID();
    await revoke(revoked);
    const pool = (dataSource.driver as unknown as { master: { query: (...args: unknown[]) => unknown } }).master;
    const queries = jest.spyOn(pool, 'query');
    const answers = await Promise.all(Array.from({ length: 500 }, (_, i) => check.find(i % 2 === 0 ? revoked : randomUUID())));
    expect(answers.filter((a) => a?.reason === 'compromised')).toHaveLength(250);
    expect(answers.filter((a) => a === undefined)).toHaveLength(250);
    expect(queries.mock.calls.length).toBeLessThanOrEqual(5);
    queries.mockRestore();
  });

  it('fails closed: when Postgres cannot answer, every waiting read fails as unavailable', async () => {
    const broken = await createDataSource({ url: db.url, poolSize: 1 }).initialize();
    const check = new CoalescedRevocationCheck(broken);
    await broken.destroy();
    await expect(check.find(randomUUID())).rejects.toMatchObject({ code: 'unavailable', transient: true });
  });
});
