import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { databaseOfTheBlock, submissionAsIntake, TestDatabase } from '@keyward/testing';
import { LifecycleFactsRepository } from './lifecycle-facts.repository';
import { seedActiveConnection } from './test/monitor-harness';

/** What alerts and audit entries show of a key: its last four characters, for many keys in one statement. */
describe('LifecycleFactsRepository: last4', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  const facts = new LifecycleFactsRepository();
  const block = databaseOfTheBlock();
  beforeAll(() => {
    ({ db, dataSource } = block);
  });

  it("answers each credential's last4 from the credential, else from its submission still being decided, else ????", async () => {
    const active = await seedActiveConnection(db, { last4: 'ac7e' });
    const pending = randomUUID();
    await submissionAsIntake(db, { tenantId: `t-${randomUUID()}`, credentialId: pending, last4: 'pe4d' });
    const unknown = randomUUID();
    const many = await facts.last4Many(dataSource.manager, [unknown, active.credentialId, pending, active.credentialId]);
    expect([...many]).toEqual([
      [unknown, '????'],
      [active.credentialId, 'ac7e'],
      [pending, 'pe4d'],
    ]);
    expect(await facts.last4(dataSource.manager, pending)).toBe('pe4d');
    expect(await facts.last4(dataSource.manager, unknown)).toBe('????');
    expect((await facts.last4Many(dataSource.manager, [])).size).toBe(0);
  });
});
