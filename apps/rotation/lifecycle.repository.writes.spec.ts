import { randomUUID } from 'node:crypto';
import { DataSource, EntityManager } from 'typeorm';
import { ConnectionEntity, CredentialEntity, pipelinedIn } from '@keyward/persistence';
import { activeConnection, databaseOfTheBlock, submissionAsIntake, TestDatabase } from '@keyward/testing';
import { LifecycleRepository, verdictAndSituationOf } from './lifecycle.repository';

/** The writes after a decision: what they change, and what they keep. */
describe('LifecycleRepository: invalidating a credential and saving the connection', () => {
  const repository = new LifecycleRepository();
  /** The statement rotation sends with its claim, as it sends it. */
  const situationOf = async (tx: EntityManager, eventId: string, tenantId: string, credentialId: string) =>
    verdictAndSituationOf((await pipelinedIn(tx, [repository.verdictAndSituationRead(eventId, tenantId, credentialId)]))[0]);
  let db: TestDatabase;
  let dataSource: DataSource;
  const block = databaseOfTheBlock();
  beforeAll(() => ({ db, dataSource } = block));

  const credentialRow = (id: string) => dataSource.getRepository(CredentialEntity).findOneByOrFail({ id });
  const connectionRow = (tenantId: string) => dataSource.getRepository(ConnectionEntity).findOneByOrFail({ tenantId });

  it("invalidates this tenant's credential and gives its last four; another tenant's is left alone (null)", async () => {
    const tenantId = `tenant-${randomUUID()}`;
    const a = await submissionAsIntake(db, { tenantId, last4: 'wxyz' });
    await activeConnection(db, a.submissionId, { companyId: 'company-1' });

    expect(await dataSource.transaction((tx) => repository.invalidateCredential(tx, `tenant-${randomUUID()}`, a.credentialId, 'replaced'))).toBeNull();
    expect(await credentialRow(a.credentialId)).toMatchObject({ status: 'active', invalidatedAt: null });

    expect(await dataSource.transaction((tx) => repository.invalidateCredential(tx, tenantId, a.credentialId, 'replaced'))).toEqual({ last4: 'wxyz' });
    const invalidated = await credentialRow(a.credentialId);
    expect(invalidated).toMatchObject({ status: 'invalidated', invalidatedReason: 'replaced' });
    // A later invalidation (a compromise of the replaced key) changes the reason, not when it went out of use.
    expect(await dataSource.transaction((tx) => repository.invalidateCredential(tx, tenantId, a.credentialId, 'compromised'))).toEqual({ last4: 'wxyz' });
    expect(await credentialRow(a.credentialId)).toMatchObject({ invalidatedReason: 'compromised', invalidatedAt: invalidated.invalidatedAt });
  });

  it('saves the connection from the row the situation read: unchanged fields and status_since kept, a new status moves it', async () => {
    const tenantId = `tenant-${randomUUID()}`;
    const a = await submissionAsIntake(db, { tenantId });
    await activeConnection(db, a.submissionId, { companyId: 'company-1' });
    const before = await connectionRow(tenantId);
    const b = await submissionAsIntake(db, { tenantId });
    const save = (status: ConnectionEntity['status'], activeCredentialId: string | null) =>
      dataSource.transaction(async (tx) => {
        const { situation } = await situationOf(tx, randomUUID(), tenantId, b.credentialId);
        await repository.saveConnection(tx, tenantId, situation.connection, { status, activeCredentialId });
      });

    await save('active', b.credentialId);
    expect(await connectionRow(tenantId)).toEqual({ ...before, activeCredentialId: b.credentialId, updatedAt: expect.any(Date) });

    await save('disabled', null);
    const disabled = await connectionRow(tenantId);
    expect(disabled).toMatchObject({ status: 'disabled', activeCredentialId: null, companyId: 'company-1', createdAt: before.createdAt, activatedAt: before.activatedAt });
    expect(disabled.statusSince.getTime()).toBeGreaterThan(before.statusSince.getTime());
  });

  it('creates the connection when the situation found none', async () => {
    const tenantId = `tenant-${randomUUID()}`;
    const a = await submissionAsIntake(db, { tenantId });
    await dataSource.transaction(async (tx) => {
      const { situation } = await situationOf(tx, randomUUID(), tenantId, a.credentialId);
      expect(situation.connection).toBeNull();
      await repository.saveConnection(tx, tenantId, situation.connection, { status: 'not_connected', activeCredentialId: null, errorCode: 'invalid_key' });
    });
    expect(await connectionRow(tenantId)).toMatchObject({ status: 'not_connected', companyId: null, activeCredentialId: null, errorCode: 'invalid_key' });
  });
});
