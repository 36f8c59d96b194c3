import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { createEvent, EventEnvelope } from '@keyward/contracts';
import { PermanentEventError } from '@keyward/messaging';
import { Metrics } from '@keyward/observability';
import { PleoClient } from '@keyward/pleo';
import { SecretReader, SecretStoreError } from '@keyward/secrets';
import { captureLogs, databaseOfTheBlock, submissionAsIntake, TestDatabase, testConfig, testPrefix } from '@keyward/testing';
import { SubmissionValidationService } from './submission-validation.service';
import { ValidationRepository } from './validation.repository';
import { VALIDATOR } from './validator-identity';

/**
 * What the validator decides from its one look before the slow work, on a real Postgres, and in
 * which order: a handled event is a duplicate whatever else is true; an event naming no matching
 * submission is kept for a person; a stale submission is dropped; only the tenant's newest
 * pending one goes on to its key (here a key the store reports revoked, so Pleo is never asked).
 */
describe('SubmissionValidationService: before the Pleo call', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let service: SubmissionValidationService;
  /** Tenants whose pending key the service went on to read. */
  const keyReads: string[] = [];

  const block = databaseOfTheBlock();
  beforeAll(async () => {
    ({ db, dataSource } = block);
    const secrets = {
      readForUse: async (tenantId: string) => {
        keyReads.push(tenantId);
        throw new SecretStoreError('revoked', 'revoked in this test');
      },
    } as unknown as SecretReader;
    const pleo = {
      introspect: () => {
        throw new Error('Pleo must not be called before the checks pass and the key is read');
      },
    } as unknown as PleoClient;
    const config = testConfig('validator', { databaseUrl: db.url, prefix: testPrefix() });
    service = new SubmissionValidationService(config, dataSource, new ValidationRepository(), secrets, pleo, captureLogs('validator').logger, new Metrics('validator'));
  });

  const newTenant = () => `t-${randomUUID()}`;
  const delivery = { attempt: 1, redelivered: false };
  const submitted = (tenantId: string, submissionId: string, credentialId: string): EventEnvelope<'key.submitted'> =>
    createEvent(
      'key.submitted',
      { tenantId, correlationId: `corr-${submissionId}`, producer: 'intake' },
      { submissionId, credentialId, secretVersionId: credentialId, last4: 'ab12', replacing: false },
    );
  const handled = (event: EventEnvelope) => db.query(`INSERT INTO inbox (consumer, event_id, event_type) VALUES ($1, $2, $3)`, [VALIDATOR.consumer, event.id, event.type]);
  const unknownSubmission = expect.objectContaining({ name: 'PermanentEventError', code: 'unknown_submission' }) as PermanentEventError;

  it("goes on to read the key of the tenant's newest pending submission", async () => {
    const tenantId = newTenant();
    const { submissionId, credentialId } = await submissionAsIntake(db, { tenantId });
    expect(await service.validate(submitted(tenantId, submissionId, credentialId), delivery)).toBe('revoked');
    expect(keyReads).toContain(tenantId);
  });

  it('answers duplicate for an event its inbox holds, before anything about the submission', async () => {
    const tenantId = newTenant();
    const { submissionId, credentialId } = await submissionAsIntake(db, { tenantId });
    const event = submitted(tenantId, submissionId, credentialId);
    await handled(event);
    expect(await service.validate(event, delivery)).toBe('duplicate');

    const orphan = submitted(tenantId, randomUUID(), randomUUID());
    await handled(orphan);
    expect(await service.validate(orphan, delivery)).toBe('duplicate');
    expect(keyReads).not.toContain(tenantId);
  });

  it('parks an event naming no submission, or one of another tenant or credential, before asking whether it is newest', async () => {
    const tenantId = newTenant();
    const { submissionId, credentialId } = await submissionAsIntake(db, { tenantId });
    await expect(service.validate(submitted(tenantId, randomUUID(), credentialId), delivery)).rejects.toEqual(unknownSubmission);
    await expect(service.validate(submitted(newTenant(), submissionId, credentialId), delivery)).rejects.toEqual(unknownSubmission);
    await expect(service.validate(submitted(tenantId, submissionId, randomUUID()), delivery)).rejects.toEqual(unknownSubmission);

    // Superseded, so not newest either: the mismatch still comes first.
    await submissionAsIntake(db, { tenantId });
    await expect(service.validate(submitted(tenantId, submissionId, randomUUID()), delivery)).rejects.toEqual(unknownSubmission);
    expect(keyReads).not.toContain(tenantId);
  });

  it('drops a submission a newer one superseded, without reading its key', async () => {
    const tenantId = newTenant();
    const older = await submissionAsIntake(db, { tenantId });
    await submissionAsIntake(db, { tenantId });
    expect(await service.validate(submitted(tenantId, older.submissionId, older.credentialId), delivery)).toBe('not_newest');
    expect(keyReads).not.toContain(tenantId);
  });
});
