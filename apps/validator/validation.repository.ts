import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import type { EventEnvelope } from '@keyward/contracts';
import { newestPendingSubmission, PipelinedStatement, preparedQuery } from '@keyward/persistence';
import { VALIDATOR } from './validator-identity';

interface SubmissionRow {
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

/** What `beforeValidating` saw, each as of the same moment. */
export interface SubmissionLook {
  /** The validator's inbox already holds the event: a redelivery of one handled. */
  seen: boolean;
  submission: SubmissionRow | undefined;
  /** The submission is the tenant's newest pending one (see `isNewestPending`). */
  newestPending: boolean;
}

export interface AttemptRow {
  attempts: number;
  firstFailureAt: Date;
}

/**
 * The validator's queries. It reads other services' tables (submissions, connections,
 * credentials, revocations) and its own inbox rows, and writes only `validation_attempts` and
 * `validations` (and, through Inbox/Outbox/AuditLog, its inbox rows, events and audit entries).
 */
@Injectable()
export class ValidationRepository {
  /**
   * The look before the slow work (the secret store, Pleo), in one statement: whether the
   * validator's inbox already holds the event (as `Inbox.seen` asks, for VALIDATOR.consumer), the
   * submission the event names, and whether it is the tenant's newest pending one (as
   * `isNewestPending` asks, with the event's tenant). Only a look: `Inbox.runOnce` still decides
   * whether the event is new, and the verdict transaction asks "newest pending" again.
   */
  async beforeValidating(db: EntityManager, event: { eventId: string; tenantId: string; submissionId: string }): Promise<SubmissionLook> {
    const rows = await preparedQuery<{ seen: boolean; newest_pending: boolean } & Nullable<RawSubmission>>(
      db,
      'validator_before_validating',
      `SELECT EXISTS (SELECT 1 FROM inbox WHERE consumer = $1 AND event_id = $2) AS seen,
              s.id, s.tenant_id, s.credential_id, s.last4, s.superseded_at,
              EXISTS (SELECT 1 FROM newest_pending_submissions n WHERE n.tenant_id = $3 AND n.id = $4) AS newest_pending
         FROM (VALUES (1)) AS one -- one row, with or without a submission
         LEFT JOIN submissions s ON s.id = $4`,
      [VALIDATOR.consumer, event.eventId, event.tenantId, event.submissionId],
    );
    const row = rows[0];
    return { seen: row.seen, submission: row.id === null ? undefined : toSubmission(row as RawSubmission), newestPending: row.newest_pending };
  }

  /**
   * "Newest pending": the tenant's newest submission (max seq), not superseded, and nothing
   * decided about its credential yet. Anything else is stale and its result changes nothing.
   */
  async isNewestPending(db: EntityManager, tenantId: string, submissionId: string): Promise<boolean> {
    return (await newestPendingSubmission(db, tenantId))?.id === submissionId;
  }

  /**
   * What the verdict transaction needs, in one statement: "newest pending" as `isNewestPending`
   * asks it, and the tenant's connection (the company a key must belong to). The claim before it
   * takes no lock for the validator, so in READ COMMITTED two statements would each see their own
   * fresh snapshot anyway; one statement sees both facts as of one moment, which is no weaker.
   * Sent with the inbox claim (`RunOnceOptions.read`); its rows go to `verdictContextOf`.
   */
  verdictContextRead(tenantId: string, submissionId: string): PipelinedStatement {
    return {
      name: 'validator_verdict_context',
      text: `SELECT EXISTS (SELECT 1 FROM newest_pending_submissions n WHERE n.tenant_id = $1 AND n.id = $2) AS newest_pending,
              c.status, c.company_id, c.active_credential_id
         FROM (VALUES (1)) AS one -- one row, with or without a connection
         LEFT JOIN connections c ON c.tenant_id = $1`,
      values: [tenantId, submissionId],
    };
  }

  async connection(db: EntityManager, tenantId: string): Promise<ConnectionRow | undefined> {
    const rows = await db.query<RawConnection[]>(`SELECT status, company_id, active_credential_id FROM connections WHERE tenant_id = $1`, [tenantId]);
    return rows[0] && toConnection(rows[0]);
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

  /**
   * The verdict behind an event the validator is staging, in the same transaction: consumers
   * act on this row (found by the event's id), not on what a message claims (ADR 0015).
   */
  async recordVerdict(tx: EntityManager, event: VerdictEvent): Promise<void> {
    const [sql, parameters] = verdictInsert(event);
    await tx.query(sql, parameters);
  }

  /**
   * A submission's verdict (as `recordVerdict`), and Pleo answered, so the submission no longer
   * shows "Pleo could not be reached": one statement, the attempts row cleared in a CTE. Sent with
   * the transaction's effects (`InboxEffects.write`).
   */
  submissionVerdictWrite(event: EventEnvelope<'key.validated'> | EventEnvelope<'key.rejected'>): PipelinedStatement {
    const [sql, parameters] = verdictInsert(event);
    // $4 is the verdict's credential id in every insert verdictInsert builds.
    return {
      name: `validator_submission_verdict_${event.type === 'key.validated' ? 'validated' : 'rejected'}`,
      text: `WITH cleared AS (UPDATE validation_attempts SET last_error_code = NULL, parked_at = NULL, last_attempt_at = now() WHERE credential_id = $4)
       ${sql}`,
      values: parameters,
    };
  }
}

type VerdictEvent = EventEnvelope<'key.validated'> | EventEnvelope<'key.rejected'> | EventEnvelope<'key.revalidated'>;

/** The insert of a verdict into `validations`; its parameters start with event id, type, tenant and credential. */
function verdictInsert(event: VerdictEvent): [string, unknown[]] {
  const base = [event.id, event.type, event.tenantId, event.data.credentialId];
  switch (event.type) {
    case 'key.validated':
      return [
        `INSERT INTO validations (event_id, event_type, tenant_id, credential_id, submission_id, outcome, company_id, subject_type, scopes)
         VALUES ($1, $2, $3, $4, $5, 'validated', $6, $7, $8)`,
        [...base, event.data.submissionId, event.data.companyId, event.data.subjectType, event.data.scopes],
      ];
    case 'key.rejected':
      return [
        `INSERT INTO validations (event_id, event_type, tenant_id, credential_id, submission_id, outcome, missing_scopes, reason, message)
         VALUES ($1, $2, $3, $4, $5, 'rejected', $6, $7, $8)`,
        [...base, event.data.submissionId, event.data.missingScopes ?? null, event.data.reason, event.data.message],
      ];
    case 'key.revalidated':
      return [
        `INSERT INTO validations (event_id, event_type, tenant_id, credential_id, outcome, scopes, missing_scopes)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [...base, event.data.outcome, event.data.scopes, event.data.missingScopes ?? null],
      ];
  }
}

interface RawSubmission {
  id: string;
  tenant_id: string;
  credential_id: string;
  last4: string;
  superseded_at: Date | null;
}

interface RawConnection {
  status: ConnectionRow['status'];
  company_id: string | null;
  active_credential_id: string | null;
}

/** A row of a LEFT JOIN: the joined table's columns are all null when nothing matched. */
type Nullable<T> = { [K in keyof T]: T[K] | null };

function toSubmission(row: RawSubmission): SubmissionRow {
  return { id: row.id, tenantId: row.tenant_id, credentialId: row.credential_id, last4: row.last4, supersededAt: row.superseded_at };
}

function toConnection(row: RawConnection): ConnectionRow {
  return { status: row.status, companyId: row.company_id, activeCredentialId: row.active_credential_id };
}

export interface VerdictContext {
  newestPending: boolean;
  connection: ConnectionRow | undefined;
}

/** The rows of `verdictContextRead`: exactly one. */
export function verdictContextOf(rows: unknown[]): VerdictContext {
  const row = rows[0] as { newest_pending: boolean } & Nullable<RawConnection>;
  return { newestPending: row.newest_pending, connection: row.status === null ? undefined : toConnection(row as RawConnection) };
}
