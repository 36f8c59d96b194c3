import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import {
  activeConnection,
  attemptsAsValidator,
  compromiseAsRotation,
  connectionAsRotation,
  databaseOfTheBlock,
  credentialAsRotation,
  healthAsMonitor,
  revocationAsIntake,
  submissionAsIntake,
  TestDatabase,
} from '@keyward/testing';
import { pipelinedOnce } from '@keyward/persistence';
import { situationOf, SubmissionRepository } from './submission.repository';

/**
 * `situationRead` against a real Postgres, sent as the service sends it (a pipeline): in one
 * statement, what the three reads it replaced said (the active credential, whether the fingerprint
 * was compromised, the newest submission and whether its credential is revoked). The service
 * decides from it; this says what it reads.
 */
describe('SubmissionRepository.situationRead', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  const repository = new SubmissionRepository();

  const block = databaseOfTheBlock();
  beforeAll(() => ({ db, dataSource } = block));

  const newTenant = () => `t-${randomUUID()}`;
  const fingerprintOf = (c: string) => c.repeat(64);
  const A = fingerprintOf('a');
  const B = fingerprintOf('b');
  const look = async (tenantId: string, fingerprint: string) => situationOf((await pipelinedOnce(dataSource, [repository.situationRead(tenantId, fingerprint)]))[0]);

  /** A tenant whose key with fingerprint A is active (submitted, activated, the connection active). */
  async function activeTenant() {
    const tenantId = newTenant();
    const { submissionId, credentialId } = await submissionAsIntake(db, { tenantId, fingerprint: A, last4: 'ac71' });
    await activeConnection(db, submissionId, { companyId: 'company-1' });
    return { tenantId, submissionId, credentialId };
  }

  it('reads nothing for a tenant with no connection and no submission', async () => {
    expect(await look(newTenant(), A)).toEqual({ active: null, compromised: false, newest: null, newestRevoked: false });
  });

  describe('the active credential', () => {
    it('is the active connection’s active credential, reconnect not required', async () => {
      const { tenantId, submissionId, credentialId } = await activeTenant();
      await healthAsMonitor(db, { tenantId, credentialId, state: 'healthy' });
      const situation = await look(tenantId, A);
      expect(situation.active).toEqual({ credentialId, submissionId, fingerprint: A, last4: 'ac71', reconnectRequired: false });
      // Its own submission is the newest: decided, so never a pending duplicate.
      expect(situation.newest).toMatchObject({ id: submissionId, credentialStatus: 'active', fingerprint: A });
      expect(situation.compromised).toBe(false);
    });

    it('says reconnect required when the monitor says so for that credential, and only for it', async () => {
      const { tenantId, credentialId } = await activeTenant();
      await healthAsMonitor(db, { tenantId, credentialId, state: 'reconnect_required', reason: 'auth_failed' });
      expect((await look(tenantId, A)).active?.reconnectRequired).toBe(true);

      await healthAsMonitor(db, { tenantId, credentialId: randomUUID(), state: 'reconnect_required' });
      expect((await look(tenantId, A)).active?.reconnectRequired).toBe(false);
    });

    it('is read whatever key is submitted: the service compares the fingerprints', async () => {
      const { tenantId, credentialId } = await activeTenant();
      expect(await look(tenantId, B)).toMatchObject({ active: { credentialId, fingerprint: A }, compromised: false });
    });

    it('is none when the connection is not active or the credential is revoked', async () => {
      const disabled = await activeTenant();
      await connectionAsRotation(db, { tenantId: disabled.tenantId, status: 'disabled', activeCredentialId: disabled.credentialId });
      expect((await look(disabled.tenantId, A)).active).toBeNull();

      const revoked = await activeTenant();
      await revocationAsIntake(db, { tenantId: revoked.tenantId, credentialId: revoked.credentialId, reason: 'uninstalled' });
      expect((await look(revoked.tenantId, A)).active).toBeNull();
    });
  });

  describe('a compromised fingerprint', () => {
    it('is one whose submission’s credential was revoked as compromised, for this tenant only', async () => {
      const tenantId = newTenant();
      const { credentialId } = await submissionAsIntake(db, { tenantId, fingerprint: A });
      await revocationAsIntake(db, { tenantId, credentialId, reason: 'compromised' });
      expect((await look(tenantId, A)).compromised).toBe(true);
      expect((await look(tenantId, B)).compromised).toBe(false);
      expect((await look(newTenant(), A)).compromised).toBe(false);
    });

    it('is one whose credential rotation retired as compromised', async () => {
      const { tenantId, credentialId } = await activeTenant();
      await compromiseAsRotation(db, { tenantId, credentialId });
      expect(await look(tenantId, A)).toMatchObject({ active: null, compromised: true });
    });

    it('is not one revoked by an uninstall', async () => {
      const tenantId = newTenant();
      const { credentialId } = await submissionAsIntake(db, { tenantId, fingerprint: A });
      await revocationAsIntake(db, { tenantId, credentialId, reason: 'uninstalled' });
      expect(await look(tenantId, A)).toMatchObject({ compromised: false, newestRevoked: true });
    });
  });

  describe('the newest submission', () => {
    it('is the pending one with its fingerprint, not parked, not revoked', async () => {
      const tenantId = newTenant();
      const { submissionId, credentialId } = await submissionAsIntake(db, { tenantId, fingerprint: A, last4: 'pq34' });
      const situation = await look(tenantId, A);
      expect(situation).toEqual({
        active: null,
        compromised: false,
        newest: {
          id: submissionId,
          tenantId,
          credentialId,
          last4: 'pq34',
          fingerprint: A,
          createdAt: expect.any(Date),
          supersededAt: null,
          credentialStatus: null,
          rejectionReason: null,
          rejectionDetail: null,
          lastErrorCode: null,
          parkedAt: null,
        },
        newestRevoked: false,
      });
    });

    it('carries why it is still pending, and when the validator parked it', async () => {
      const tenantId = newTenant();
      const retrying = await submissionAsIntake(db, { tenantId, fingerprint: A });
      await attemptsAsValidator(db, { tenantId, credentialId: retrying.credentialId, attempts: 2, lastErrorCode: 'pleo_unreachable' });
      expect((await look(tenantId, A)).newest).toMatchObject({ id: retrying.submissionId, lastErrorCode: 'pleo_unreachable', parkedAt: null });

      const other = newTenant();
      const parked = await submissionAsIntake(db, { tenantId: other, fingerprint: A });
      await attemptsAsValidator(db, { tenantId: other, credentialId: parked.credentialId, attempts: 9, lastErrorCode: 'pleo_unreachable', parked: true });
      expect((await look(other, A)).newest).toMatchObject({ id: parked.submissionId, parkedAt: expect.any(Date) });
    });

    it('says whether its credential is revoked, whatever the reason', async () => {
      const tenantId = newTenant();
      const { credentialId } = await submissionAsIntake(db, { tenantId, fingerprint: A });
      expect((await look(tenantId, A)).newestRevoked).toBe(false);
      await revocationAsIntake(db, { tenantId, credentialId, reason: 'compromised' });
      expect(await look(tenantId, A)).toMatchObject({ compromised: true, newestRevoked: true });
    });

    it('is the latest by seq: an older submission of the same key, superseded, is not it', async () => {
      const tenantId = newTenant();
      const older = await submissionAsIntake(db, { tenantId, fingerprint: A });
      const newer = await submissionAsIntake(db, { tenantId, fingerprint: B, last4: 'nw99' });
      await revocationAsIntake(db, { tenantId, credentialId: older.credentialId, reason: 'uninstalled' });
      const situation = await look(tenantId, A);
      expect(situation.newest).toMatchObject({ id: newer.submissionId, fingerprint: B, supersededAt: null });
      // The revocation of the older one is not the newest's.
      expect(situation.newestRevoked).toBe(false);
      const [row] = await db.query<{ superseded_at: Date | null }>(`SELECT superseded_at FROM submissions WHERE id = $1`, [older.submissionId]);
      expect(row.superseded_at).not.toBeNull();
    });

    it('shows a superseded newest as superseded, and a decided one with its decision', async () => {
      const tenantId = newTenant();
      const { submissionId } = await submissionAsIntake(db, { tenantId, fingerprint: A });
      await db.query(`UPDATE submissions SET superseded_at = now() WHERE id = $1`, [submissionId]);
      expect((await look(tenantId, A)).newest).toMatchObject({ id: submissionId, supersededAt: expect.any(Date) });

      const rejected = newTenant();
      const decided = await submissionAsIntake(db, { tenantId: rejected, fingerprint: A });
      await credentialAsRotation(db, decided.submissionId, { status: 'rejected', reason: 'insufficient_scopes', missingScopes: ['accounts:read'] });
      expect((await look(rejected, A)).newest).toMatchObject({
        id: decided.submissionId,
        credentialStatus: 'rejected',
        rejectionReason: 'insufficient_scopes',
        rejectionDetail: { missingScopes: ['accounts:read'] },
      });
    });
  });
});
