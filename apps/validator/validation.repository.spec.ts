import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { createEvent } from '@keyward/contracts';
import { Inbox } from '@keyward/messaging';
import { pipelinedIn } from '@keyward/persistence';
import { attemptsAsValidator, connectionAsRotation, databaseOfTheBlock, credentialAsRotation, submissionAsIntake, TestDatabase } from '@keyward/testing';
import { ValidationRepository, verdictContextOf } from './validation.repository';
import { VALIDATOR } from './validator-identity';

/**
 * The validator's combined statements against a real Postgres: each must say what the separate
 * statements it replaced said (Inbox.seen, the submission row, isNewestPending, the connection,
 * the verdict insert and the attempts row's clearing).
 */
describe('ValidationRepository', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  const repository = new ValidationRepository();

  const block = databaseOfTheBlock();
  beforeAll(() => ({ db, dataSource } = block));

  const newTenant = () => `t-${randomUUID()}`;
  const claim = (consumer: string, eventId: string) => db.query(`INSERT INTO inbox (consumer, event_id, event_type) VALUES ($1, $2, 'key.submitted')`, [consumer, eventId]);

  /** The combined look, and what the three statements it replaced say for the same event. */
  async function lookBothWays(event: { eventId: string; tenantId: string; submissionId: string }) {
    const look = await repository.beforeValidating(dataSource.manager, event);
    const rows = await db.query<{ tenant_id: string; credential_id: string }>(`SELECT tenant_id, credential_id FROM submissions WHERE id = $1`, [event.submissionId]);
    const separately = {
      seen: await Inbox.seen(dataSource, VALIDATOR.consumer, event.eventId),
      submission: rows[0] && { tenantId: rows[0].tenant_id, credentialId: rows[0].credential_id },
      newestPending: await repository.isNewestPending(dataSource.manager, event.tenantId, event.submissionId),
    };
    return { look, separately };
  }

  describe('beforeValidating: the look before Pleo, in one statement', () => {
    it("sees the tenant's newest pending submission: not seen, the row, newest", async () => {
      const tenantId = newTenant();
      const { submissionId, credentialId } = await submissionAsIntake(db, { tenantId, last4: 'wx12' });
      const { look, separately } = await lookBothWays({ eventId: randomUUID(), tenantId, submissionId });
      expect(look).toEqual({
        seen: false,
        submission: { id: submissionId, tenantId, credentialId, last4: 'wx12', supersededAt: null },
        newestPending: true,
      });
      expect(separately).toEqual({ seen: false, submission: { tenantId, credentialId }, newestPending: true });
    });

    it("sees an event the validator's inbox already holds, and only the validator's", async () => {
      const tenantId = newTenant();
      const { submissionId } = await submissionAsIntake(db, { tenantId });
      const handled = randomUUID();
      await claim(VALIDATOR.consumer, handled);
      const elsewhere = randomUUID();
      await claim('rotation', elsewhere);

      const duplicate = await lookBothWays({ eventId: handled, tenantId, submissionId });
      expect(duplicate.look).toMatchObject({ seen: true, newestPending: true });
      expect(duplicate.separately.seen).toBe(true);
      const otherConsumer = await lookBothWays({ eventId: elsewhere, tenantId, submissionId });
      expect(otherConsumer.look.seen).toBe(false);
      expect(otherConsumer.separately.seen).toBe(false);
    });

    it('still answers for a handled event whose submission is gone: the service puts the duplicate first', async () => {
      const handled = randomUUID();
      await claim(VALIDATOR.consumer, handled);
      const { look } = await lookBothWays({ eventId: handled, tenantId: newTenant(), submissionId: randomUUID() });
      expect(look).toEqual({ seen: true, submission: undefined, newestPending: false });
    });

    it('finds no submission for an id intake never stored', async () => {
      const tenantId = newTenant();
      await submissionAsIntake(db, { tenantId });
      const { look, separately } = await lookBothWays({ eventId: randomUUID(), tenantId, submissionId: randomUUID() });
      expect(look).toEqual({ seen: false, submission: undefined, newestPending: false });
      expect(separately).toEqual({ seen: false, submission: undefined, newestPending: false });
    });

    it("returns another tenant's submission as stored (its own tenant), and it is not the event tenant's newest", async () => {
      const owner = newTenant();
      const { submissionId, credentialId } = await submissionAsIntake(db, { tenantId: owner });
      const stranger = newTenant();
      const { look, separately } = await lookBothWays({ eventId: randomUUID(), tenantId: stranger, submissionId });
      expect(look).toMatchObject({ seen: false, submission: { id: submissionId, tenantId: owner, credentialId }, newestPending: false });
      expect(separately).toEqual({ seen: false, submission: { tenantId: owner, credentialId }, newestPending: false });
    });

    it('is not newest once a newer submission superseded it, and the newer one is', async () => {
      const tenantId = newTenant();
      const older = await submissionAsIntake(db, { tenantId });
      const newer = await submissionAsIntake(db, { tenantId });

      const stale = await lookBothWays({ eventId: randomUUID(), tenantId, submissionId: older.submissionId });
      expect(stale.look).toMatchObject({ seen: false, submission: { id: older.submissionId, supersededAt: expect.any(Date) }, newestPending: false });
      expect(stale.separately.newestPending).toBe(false);
      const fresh = await lookBothWays({ eventId: randomUUID(), tenantId, submissionId: newer.submissionId });
      expect(fresh.look).toMatchObject({ submission: { id: newer.submissionId, supersededAt: null }, newestPending: true });
      expect(fresh.separately.newestPending).toBe(true);
    });

    it('is not newest once its credential was decided (a verdict rotation already acted on)', async () => {
      const tenantId = newTenant();
      const { submissionId } = await submissionAsIntake(db, { tenantId });
      await credentialAsRotation(db, submissionId, { status: 'rejected', reason: 'invalid_key' });
      const { look, separately } = await lookBothWays({ eventId: randomUUID(), tenantId, submissionId });
      expect(look).toMatchObject({ seen: false, submission: { id: submissionId }, newestPending: false });
      expect(separately.newestPending).toBe(false);
    });
  });

  describe('verdictContextRead: newest pending and the connection, in one statement', () => {
    const context = (tenantId: string, submissionId: string) =>
      dataSource.transaction(async (tx) => verdictContextOf((await pipelinedIn(tx, [repository.verdictContextRead(tenantId, submissionId)]))[0]));

    it('reads the connection with "newest pending", and none when the tenant has none', async () => {
      const tenantId = newTenant();
      const { submissionId } = await submissionAsIntake(db, { tenantId });
      expect(await context(tenantId, submissionId)).toEqual({ newestPending: true, connection: undefined });

      const companyId = randomUUID();
      await connectionAsRotation(db, { tenantId, status: 'disabled', companyId });
      expect(await context(tenantId, submissionId)).toEqual({ newestPending: true, connection: { status: 'disabled', companyId, activeCredentialId: null } });
    });

    it('says not newest for a superseded submission, and still reads the connection', async () => {
      const tenantId = newTenant();
      const companyId = randomUUID();
      await connectionAsRotation(db, { tenantId, status: 'active', companyId });
      const older = await submissionAsIntake(db, { tenantId });
      await submissionAsIntake(db, { tenantId });
      expect(await context(tenantId, older.submissionId)).toEqual({ newestPending: false, connection: expect.objectContaining({ status: 'active', companyId }) });
      expect(await repository.isNewestPending(dataSource.manager, tenantId, older.submissionId)).toBe(false);
    });
  });

  describe('submissionVerdictWrite: the verdict and the cleared outage, in one statement', () => {
    const attempts = (credentialId: string) =>
      db.query<{ attempts: number; last_error_code: string | null; parked_at: Date | null }>(`SELECT attempts, last_error_code, parked_at FROM validation_attempts WHERE credential_id = $1`, [
        credentialId,
      ]);
    const verdicts = (credentialId: string) => db.query(`SELECT event_type, outcome, submission_id, company_id, reason FROM validations WHERE credential_id = $1`, [credentialId]);

    it('records a validation and clears "Pleo could not be reached" (and a park) from the attempts row', async () => {
      const tenantId = newTenant();
      const { submissionId, credentialId } = await submissionAsIntake(db, { tenantId });
      await attemptsAsValidator(db, { credentialId, tenantId, attempts: 4, lastErrorCode: 'pleo_unreachable', parked: true });
      const companyId = randomUUID();
      const validated = createEvent(
        'key.validated',
        { tenantId, correlationId: 'corr', producer: 'validator' },
        { submissionId, credentialId, companyId, subjectType: 'company', scopes: ['accounts:read'] },
      );
      await dataSource.transaction((tx) => pipelinedIn(tx, [repository.submissionVerdictWrite(validated)]));
      expect(await verdicts(credentialId)).toEqual([{ event_type: 'key.validated', outcome: 'validated', submission_id: submissionId, company_id: companyId, reason: null }]);
      expect(await attempts(credentialId)).toEqual([{ attempts: 4, last_error_code: null, parked_at: null }]);
    });

    it('records a rejection when Pleo answered at the first try (no attempts row to clear)', async () => {
      const tenantId = newTenant();
      const { submissionId, credentialId } = await submissionAsIntake(db, { tenantId });
      const rejected = createEvent('key.rejected', { tenantId, correlationId: 'corr', producer: 'validator' }, { submissionId, credentialId, reason: 'invalid_key', message: 'No.' });
      await dataSource.transaction((tx) => pipelinedIn(tx, [repository.submissionVerdictWrite(rejected)]));
      expect(await verdicts(credentialId)).toEqual([{ event_type: 'key.rejected', outcome: 'rejected', submission_id: submissionId, company_id: null, reason: 'invalid_key' }]);
      expect(await attempts(credentialId)).toEqual([]);
    });

    it("leaves other credentials' attempts rows alone", async () => {
      const tenantId = newTenant();
      const { submissionId, credentialId } = await submissionAsIntake(db, { tenantId });
      const other = randomUUID();
      await attemptsAsValidator(db, { credentialId: other, tenantId, attempts: 2, lastErrorCode: 'pleo_unreachable' });
      const rejected = createEvent('key.rejected', { tenantId, correlationId: 'corr', producer: 'validator' }, { submissionId, credentialId, reason: 'invalid_key', message: 'No.' });
      await dataSource.transaction((tx) => pipelinedIn(tx, [repository.submissionVerdictWrite(rejected)]));
      expect(await attempts(other)).toEqual([{ attempts: 2, last_error_code: 'pleo_unreachable', parked_at: null }]);
    });
  });
});
