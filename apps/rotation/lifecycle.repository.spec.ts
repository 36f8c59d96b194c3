import { randomUUID } from 'node:crypto';
import { DataSource, EntityManager } from 'typeorm';
import { createEvent, EventEnvelope } from '@keyward/contracts';
import { ConnectionEntity, CredentialEntity, newestPendingSubmission, pipelinedIn, revocationOf, SubmissionEntity, ValidationEntity } from '@keyward/persistence';
import {
  activeConnection,
  compromiseAsRotation,
  connectionAsRotation,
  databaseOfTheBlock,
  credentialAsRotation,
  recordAsOwner,
  revocationAsIntake,
  submissionAsIntake,
  TestDatabase,
  uninstallAsRotation,
  uninstallRevocationsAsIntake,
} from '@keyward/testing';
import { LifecycleRepository, VerdictAndSituation, verdictAndSituationOf } from './lifecycle.repository';

/** What a verdict event is read for: its id, its tenant, its credential. */
interface Read {
  eventId: string;
  tenantId: string;
  credentialId: string;
}

/** The situation's facts a decision turns on, as a case expects them. */
interface Expected {
  verdict: boolean;
  connection: ConnectionEntity['status'] | null;
  submission: boolean;
  credential: CredentialEntity['status'] | null;
  revoked: boolean;
  newestPending: boolean;
  uninstalled: boolean;
}

/**
 * The verdict and the credential's situation come from one statement (`credential-situation.sql.ts`)
 * instead of seven reads. It must give what those reads gave — TypeORM's entities field by field
 * (names, Dates, nulls, arrays, jsonb), `revocationOf`, `newestPendingSubmission`, and the same
 * `uninstalled` rule — in every situation rotation decides from.
 */
describe('LifecycleRepository.verdictAndSituationRead: the verdict and situation in one statement', () => {
  const repository = new LifecycleRepository();
  /** The statement rotation sends with its claim, as it sends it. */
  const situationOf = async (tx: EntityManager, eventId: string, tenantId: string, credentialId: string) =>
    verdictAndSituationOf((await pipelinedIn(tx, [repository.verdictAndSituationRead(eventId, tenantId, credentialId)]))[0]);
  let db: TestDatabase;
  let dataSource: DataSource;
  const block = databaseOfTheBlock();
  beforeAll(() => ({ db, dataSource } = block));

  const tenant = () => `tenant-${randomUUID()}`;
  const submit = (tenantId: string) => submissionAsIntake(db, { tenantId });

  /** The validator's verdict on a submission, recorded as the validator commits it. */
  async function validated(tenantId: string, s: { submissionId: string; credentialId: string }): Promise<EventEnvelope<'key.validated'>> {
    const event = createEvent(
      'key.validated',
      { tenantId, correlationId: `corr-${randomUUID()}`, producer: 'validator' },
      { submissionId: s.submissionId, credentialId: s.credentialId, companyId: 'company-1', subjectType: 'company', scopes: ['accounts:read', 'export-jobs:write'] },
    );
    await recordAsOwner(db, event);
    return event;
  }

  async function rejected(tenantId: string, s: { submissionId: string; credentialId: string }): Promise<EventEnvelope<'key.rejected'>> {
    const event = createEvent(
      'key.rejected',
      { tenantId, correlationId: `corr-${randomUUID()}`, producer: 'validator' },
      { submissionId: s.submissionId, credentialId: s.credentialId, reason: 'insufficient_scopes', missingScopes: ['export-jobs:write'], message: 'Missing scopes' },
    );
    await recordAsOwner(db, event);
    return event;
  }

  /** The combined read, in a transaction as rotation runs it (a named prepared statement on its connection). */
  const combined = (r: Read) => dataSource.transaction((tx) => situationOf(tx, r.eventId, r.tenantId, r.credentialId));

  /** The same facts read the way rotation read them before: one statement each. */
  async function readOneByOne(tx: EntityManager, r: Read): Promise<VerdictAndSituation> {
    const verdict = await tx.getRepository(ValidationEntity).findOne({ where: { eventId: r.eventId } });
    const connection = await tx.getRepository(ConnectionEntity).findOne({ where: { tenantId: r.tenantId } });
    const submission = await tx.getRepository(SubmissionEntity).findOne({ where: { tenantId: r.tenantId, credentialId: r.credentialId } });
    const credential = await tx.getRepository(CredentialEntity).findOne({ where: { id: r.credentialId, tenantId: r.tenantId } });
    const revoked = (await revocationOf(tx, r.credentialId)) !== undefined;
    const newestPending = (await newestPendingSubmission(tx, r.tenantId))?.credentialId === r.credentialId;
    const uninstalledKeys = (await tx.query<unknown[]>(`SELECT 1 FROM revocations WHERE tenant_id = $1 AND reason = 'uninstalled' LIMIT 1`, [r.tenantId])).length > 0;
    const uninstalled = connection?.status === 'uninstalled' || (connection?.status !== 'active' && connection?.status !== 'disabled' && uninstalledKeys);
    const activeCompromised = connection?.activeCredentialId ? (await revocationOf(tx, connection.activeCredentialId))?.reason === 'compromised' : false;
    return { verdict, situation: { connection, submission, credential, revoked, newestPending, uninstalled }, activeCompromised };
  }

  async function expectSituation(r: Read, expected: Expected): Promise<VerdictAndSituation> {
    const read = await combined(r);
    const { verdict, situation: s } = read;
    expect({
      verdict: verdict !== null,
      connection: s.connection?.status ?? null,
      submission: s.submission !== null,
      credential: s.credential?.status ?? null,
      revoked: s.revoked,
      newestPending: s.newestPending,
      uninstalled: s.uninstalled,
    }).toEqual(expected);
    // Field by field what TypeORM and the single reads give (a column left out would be missing here).
    expect(read).toEqual(await dataSource.transaction((tx) => readOneByOne(tx, r)));
    return read;
  }

  const none = { verdict: true, connection: null, submission: true, credential: null, revoked: false, newestPending: true, uninstalled: false } as const;

  it('a first key, no connection yet: the submission, newest pending; the verdict as the validator recorded it', async () => {
    const tenantId = tenant();
    const a = await submit(tenantId);
    const event = await validated(tenantId, a);
    const { verdict, situation } = await expectSituation({ eventId: event.id, tenantId, credentialId: a.credentialId }, none);

    expect(verdict).toMatchObject({ eventId: event.id, eventType: 'key.validated', outcome: 'validated', scopes: ['accounts:read', 'export-jobs:write'], missingScopes: null, reason: null });
    expect(verdict!.decidedAt).toBeInstanceOf(Date);
    expect(situation.submission).toMatchObject({ id: a.submissionId, credentialId: a.credentialId, tenantId, supersededAt: null, replacing: false });
    // bigint arrives as a string, as TypeORM gives it (moveCurrentLabel compares it with BigInt).
    expect(typeof situation.submission!.seq).toBe('string');
    expect(situation.submission!.createdAt).toBeInstanceOf(Date);
  });

  it('an event the validator has no record of: no verdict, the situation all the same', async () => {
    const tenantId = tenant();
    const a = await submit(tenantId);
    await expectSituation({ eventId: randomUUID(), tenantId, credentialId: a.credentialId }, { ...none, verdict: false });
  });

  it("another tenant's credential: no submission, no credential (a revocation of it still counts)", async () => {
    const owner = tenant();
    const a = await submit(owner);
    await activeConnection(db, a.submissionId, { companyId: 'company-1' });
    await revocationAsIntake(db, { credentialId: a.credentialId, tenantId: owner, reason: 'compromised' });
    const event = await validated(owner, a);
    await expectSituation(
      { eventId: event.id, tenantId: tenant(), credentialId: a.credentialId },
      { verdict: true, connection: null, submission: false, credential: null, revoked: true, newestPending: false, uninstalled: false },
    );
  });

  /** A tenant with an active key `a` and a validated replacement `b`. */
  async function replacementOfActive(tenantId: string) {
    const a = await submit(tenantId);
    await activeConnection(db, a.submissionId, { companyId: 'company-1', scopes: ['accounts:read'] });
    const b = await submit(tenantId);
    return { a, b, event: await validated(tenantId, b) };
  }

  it('an active connection with another key: the replacement is newest pending; the active key is decided', async () => {
    const tenantId = tenant();
    const { a, b, event } = await replacementOfActive(tenantId);
    const replacement = await expectSituation({ eventId: event.id, tenantId, credentialId: b.credentialId }, { ...none, connection: 'active' });
    expect(replacement.situation.connection).toMatchObject({ activeCredentialId: a.credentialId, companyId: 'company-1', subjectType: 'company', errorDetail: null });
    expect(replacement.situation.connection!.activatedAt).toBeInstanceOf(Date);
    expect(replacement.situation.submission!.replacing).toBe(true);

    const active = await expectSituation({ eventId: event.id, tenantId, credentialId: a.credentialId }, { ...none, connection: 'active', credential: 'active', newestPending: false });
    expect(active.situation.credential).toMatchObject({ scopes: ['accounts:read'], companyId: 'company-1', invalidatedAt: null });
    expect(active.situation.credential!.activatedAt).toBeInstanceOf(Date);
  });

  it('an active key reported compromised, the report not yet handled by rotation: the replacement reads it as such', async () => {
    const tenantId = tenant();
    const { a, b, event } = await replacementOfActive(tenantId);
    const read = { eventId: event.id, tenantId, credentialId: b.credentialId };
    expect((await expectSituation(read, { ...none, connection: 'active' })).activeCompromised).toBe(false);
    await revocationAsIntake(db, { credentialId: a.credentialId, tenantId, reason: 'compromised', reportedBy: 'token:ops', correlationId: `corr-${randomUUID()}` });
    expect((await expectSituation(read, { ...none, connection: 'active' })).activeCompromised).toBe(true);
  });

  it('a superseded submission is not newest pending; the newer one is', async () => {
    const tenantId = tenant();
    const b = await submit(tenantId);
    const c = await submit(tenantId);
    const event = await validated(tenantId, b);
    const older = await expectSituation({ eventId: event.id, tenantId, credentialId: b.credentialId }, { ...none, newestPending: false });
    expect(older.situation.submission).toMatchObject({ supersededBy: c.submissionId });
    expect(older.situation.submission!.supersededAt).toBeInstanceOf(Date);
    await expectSituation({ eventId: event.id, tenantId, credentialId: c.credentialId }, none);
  });

  it('a rejected credential: decided (its jsonb detail as an object), no longer newest pending; the connection shows the rejection', async () => {
    const tenantId = tenant();
    const a = await submit(tenantId);
    const event = await rejected(tenantId, a);
    await credentialAsRotation(db, a.submissionId, { status: 'rejected', reason: 'insufficient_scopes', missingScopes: ['export-jobs:write'] });
    await connectionAsRotation(db, { tenantId, status: 'not_connected' });
    const { verdict, situation } = await expectSituation(
      { eventId: event.id, tenantId, credentialId: a.credentialId },
      { ...none, connection: 'not_connected', credential: 'rejected', newestPending: false },
    );
    expect(verdict).toMatchObject({ eventType: 'key.rejected', outcome: 'rejected', scopes: [], missingScopes: ['export-jobs:write'], reason: 'insufficient_scopes' });
    expect(situation.credential).toMatchObject({ rejectionReason: 'insufficient_scopes', rejectionDetail: { missingScopes: ['export-jobs:write'] }, scopes: [] });
  });

  it('a revoked pending credential: revoked, still the newest pending submission', async () => {
    const tenantId = tenant();
    const a = await submit(tenantId);
    await activeConnection(db, a.submissionId, { companyId: 'company-1' });
    const b = await submit(tenantId);
    await revocationAsIntake(db, { credentialId: b.credentialId, tenantId, reason: 'compromised' });
    const event = await validated(tenantId, b);
    await expectSituation({ eventId: event.id, tenantId, credentialId: b.credentialId }, { ...none, connection: 'active', revoked: true });
  });

  it('an uninstalled tenant reinstalling: uninstalled; a later rejection (not_connected) keeps it so, an activation ends it', async () => {
    const tenantId = tenant();
    const a = await submit(tenantId);
    await activeConnection(db, a.submissionId, { companyId: 'company-1' });
    await uninstallRevocationsAsIntake(db, tenantId, `corr-${randomUUID()}`);
    await uninstallAsRotation(db, tenantId);
    const b = await submit(tenantId);
    const event = await validated(tenantId, b);
    await expectSituation({ eventId: event.id, tenantId, credentialId: b.credentialId }, { ...none, connection: 'uninstalled', uninstalled: true });
    // The uninstalled key itself: revoked, decided (invalidated as uninstalled).
    await expectSituation(
      { eventId: event.id, tenantId, credentialId: a.credentialId },
      { ...none, connection: 'uninstalled', credential: 'invalidated', revoked: true, newestPending: false, uninstalled: true },
    );

    // The reinstall attempt rejected: not_connected, and the uninstalled keys are still in the secret.
    await credentialAsRotation(db, b.submissionId, { status: 'rejected', reason: 'insufficient_scopes' });
    await connectionAsRotation(db, { tenantId, status: 'not_connected' });
    const c = await submit(tenantId);
    await expectSituation({ eventId: event.id, tenantId, credentialId: c.credentialId }, { ...none, connection: 'not_connected', uninstalled: true });

    // Reinstalled: an active key (whatever revocations remain from the uninstall) is not uninstalled…
    await activeConnection(db, c.submissionId, { companyId: 'company-1' });
    const d = await submit(tenantId);
    await expectSituation({ eventId: event.id, tenantId, credentialId: d.credentialId }, { ...none, connection: 'active' });
    // …nor is the connection its compromise disabled (its error detail as an object).
    await compromiseAsRotation(db, { tenantId, credentialId: c.credentialId });
    const disabled = await expectSituation({ eventId: event.id, tenantId, credentialId: d.credentialId }, { ...none, connection: 'disabled' });
    expect(disabled.situation.connection).toMatchObject({ activeCredentialId: null, errorCode: 'key_compromised', errorDetail: { credentialId: c.credentialId, reportedBy: 'token:ops' } });
  });

  it('a not_connected tenant that never uninstalled is not uninstalled', async () => {
    const tenantId = tenant();
    const a = await submit(tenantId);
    await credentialAsRotation(db, a.submissionId, { status: 'rejected', reason: 'invalid_key' });
    await connectionAsRotation(db, { tenantId, status: 'not_connected' });
    const b = await submit(tenantId);
    const event = await validated(tenantId, b);
    await expectSituation({ eventId: event.id, tenantId, credentialId: b.credentialId }, { ...none, connection: 'not_connected' });
  });
});
