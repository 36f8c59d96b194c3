import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import type { EventEnvelope } from '@keyward/contracts';
import { newestPendingSubmission } from '@keyward/persistence';

export interface SubmissionRow {
  id: string;
  tenantId: string;
  credentialId: string;
  last4: string;
  supersededAt: Date | null;
}

export interface ConnectionRow {
  status: 'not_connected' | 'active' | 'disabled' | 'uninstalled';
  companyId: string | null;
  activeCredentialId: string | null;
}

export interface AttemptRow {
  attempts: number;
  firstFailureAt: Date;
}

/**
 * The validator's queries. It reads other services' tables (submissions, connections,
 * credentials, revocations) and writes only `validation_attempts` and `validations` (and, through
 * Inbox/Outbox/AuditLog, its inbox rows, events and audit entries).
 */
@Injectable()
export class ValidationRepository {
  async submission(db: EntityManager, submissionId: string): Promise<SubmissionRow | undefined> {
    const rows = await db.query<{ id: string; tenant_id: string; credential_id: string; last4: string; superseded_at: Date | null }[]>(
      `SELECT id, tenant_id, credential_id, last4, superseded_at FROM submissions WHERE id = $1`,
      [submissionId],
    );
    const row = rows[0];
    return row && { id: row.id, tenantId: row.tenant_id, credentialId: row.credential_id, last4: row.last4, supersededAt: row.superseded_at };
  }

  /**
   * "Newest pending": the tenant's newest submission (max seq), not superseded, and nothing
   * decided about its credential yet. Anything else is stale and its result changes nothing.
   */
  async isNewestPending(db: EntityManager, tenantId: string, submissionId: string): Promise<boolean> {
    return (await newestPendingSubmission(db, tenantId))?.id === submissionId;
  }

  async connection(db: EntityManager, tenantId: string): Promise<ConnectionRow | undefined> {
    const rows = await db.query<{ status: ConnectionRow['status']; company_id: string | null; active_credential_id: string | null }[]>(
      `SELECT status, company_id, active_credential_id FROM connections WHERE tenant_id = $1`,
      [tenantId],
    );
    const row = rows[0];
    return row && { status: row.status, companyId: row.company_id, activeCredentialId: row.active_credential_id };
  }

  /** One more transient failure for a pending credential; returns the running totals. */
  async recordTransientFailure(tx: EntityManager, tenantId: string, credentialId: string, errorCode: string): Promise<AttemptRow> {
    const rows = await tx.query<{ attempts: number; first_failure_at: Date }[]>(
      `INSERT INTO validation_attempts (credential_id, tenant_id, attempts, first_failure_at, last_attempt_at, last_error_code)
       VALUES ($1, $2, 1, now(), now(), $3)
       ON CONFLICT (credential_id) DO UPDATE
         SET attempts = validation_attempts.attempts + 1,
             first_failure_at = COALESCE(validation_attempts.first_failure_at, now()),
             last_attempt_at = now(),
             last_error_code = EXCLUDED.last_error_code
       RETURNING attempts, first_failure_at`,
      [credentialId, tenantId, errorCode],
    );
    return { attempts: Number(rows[0].attempts), firstFailureAt: new Date(rows[0].first_failure_at) };
  }

  async markParked(tx: EntityManager, credentialId: string): Promise<void> {
    await tx.query(`UPDATE validation_attempts SET parked_at = now() WHERE credential_id = $1`, [credentialId]);
  }

  /** Pleo answered: the submission no longer shows "Pleo could not be reached". */
  async clearTransientFailure(tx: EntityManager, credentialId: string): Promise<void> {
    await tx.query(`UPDATE validation_attempts SET last_error_code = NULL, parked_at = NULL, last_attempt_at = now() WHERE credential_id = $1`, [credentialId]);
  }

  /**
   * The verdict behind an event the validator is staging, in the same transaction: consumers
   * act on this row (found by the event's id), not on what a message claims (ADR 0015).
   */
  async recordVerdict(tx: EntityManager, event: EventEnvelope<'key.validated'> | EventEnvelope<'key.rejected'> | EventEnvelope<'key.revalidated'>): Promise<void> {
    const base = [event.id, event.type, event.tenantId, event.data.credentialId];
    switch (event.type) {
      case 'key.validated':
        await tx.query(
          `INSERT INTO validations (event_id, event_type, tenant_id, credential_id, submission_id, outcome, company_id, subject_type, scopes)
           VALUES ($1, $2, $3, $4, $5, 'validated', $6, $7, $8)`,
          [...base, event.data.submissionId, event.data.companyId, event.data.subjectType, event.data.scopes],
        );
        return;
      case 'key.rejected':
        await tx.query(
          `INSERT INTO validations (event_id, event_type, tenant_id, credential_id, submission_id, outcome, missing_scopes, reason, message)
           VALUES ($1, $2, $3, $4, $5, 'rejected', $6, $7, $8)`,
          [...base, event.data.submissionId, event.data.missingScopes ?? null, event.data.reason, event.data.message],
        );
        return;
      case 'key.revalidated':
        await tx.query(
          `INSERT INTO validations (event_id, event_type, tenant_id, credential_id, outcome, scopes, missing_scopes)
           VALUES ($1, $2, $3, $4, $5, $6, $7)`,
          [...base, event.data.outcome, event.data.scopes, event.data.missingScopes ?? null],
        );
        return;
    }
  }
}
