import type { AnyEvent } from '@keyward/contracts';
import type { TestDatabase } from './test-env';

/**
 * For tests that stand in for an event's owner: writes the record the owner commits with the
 * event (ADR 0015) — the validator's verdict row, intake's uninstall request — so consumers
 * confirm it. An event published without this is what a forger would send.
 */
export async function recordAsOwner(db: TestDatabase, event: AnyEvent): Promise<void> {
  switch (event.type) {
    case 'key.validated':
      await db.query(
        `INSERT INTO validations (event_id, event_type, tenant_id, credential_id, submission_id, outcome, company_id, subject_type, scopes, decided_at)
         VALUES ($1, $2, $3, $4, $5, 'validated', $6, $7, $8, $9)`,
        [event.id, event.type, event.tenantId, event.data.credentialId, event.data.submissionId, event.data.companyId, event.data.subjectType, event.data.scopes, event.occurredAt],
      );
      return;
    case 'key.rejected':
      await db.query(
        `INSERT INTO validations (event_id, event_type, tenant_id, credential_id, submission_id, outcome, missing_scopes, reason, message, decided_at)
         VALUES ($1, $2, $3, $4, $5, 'rejected', $6, $7, $8, $9)`,
        [event.id, event.type, event.tenantId, event.data.credentialId, event.data.submissionId, event.data.missingScopes ?? null, event.data.reason, event.data.message, event.occurredAt],
      );
      return;
    case 'key.revalidated':
      await db.query(
        `INSERT INTO validations (event_id, event_type, tenant_id, credential_id, outcome, scopes, missing_scopes, decided_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [event.id, event.type, event.tenantId, event.data.credentialId, event.data.outcome, event.data.scopes, event.data.missingScopes ?? null, event.occurredAt],
      );
      return;
    case 'connection.uninstalled':
      await db.query(`INSERT INTO uninstalls (event_id, tenant_id, requested_by, correlation_id) VALUES ($1, $2, 'token:test', $3)`, [event.id, event.tenantId, event.correlationId]);
      return;
    default:
      throw new Error(`${event.type} has no owner record`);
  }
}
