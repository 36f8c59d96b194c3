import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { preparedQuery, type PipelinedStatement } from '@keyward/persistence';
import { SubmissionRecord } from './submission-status';

const RECORD_SELECT = `
  SELECT s.id, s.tenant_id, s.credential_id, s.last4, s.fingerprint, s.created_at, s.superseded_at,
         c.status AS credential_status, c.rejection_reason, c.rejection_detail,
         v.last_error_code, v.parked_at
    FROM submissions s
    LEFT JOIN credentials c ON c.id = s.credential_id
    LEFT JOIN validation_attempts v ON v.credential_id = s.credential_id`;

interface RecordRow {
  id: string;
  tenant_id: string;
  credential_id: string;
  last4: string;
  fingerprint: string;
  created_at: Date;
  superseded_at: Date | null;
  credential_status: SubmissionRecord['credentialStatus'];
  rejection_reason: string | null;
  rejection_detail: Record<string, unknown> | null;
  last_error_code: string | null;
  parked_at: Date | null;
}

export interface ActiveCredential {
  credentialId: string;
  submissionId: string;
  fingerprint: string;
  last4: string;
  /** The monitor found this key no longer accepted by Pleo (it asks the customer to reconnect). */
  reconnectRequired: boolean;
}

/** What `situationRead` reads; the service decides from it in a fixed order. */
export interface SubmissionSituation {
  active: ActiveCredential | null;
  /** A key with this fingerprint was reported compromised for the tenant (a revocation or a retired credential says so). */
  compromised: boolean;
  /** The tenant's newest submission (max seq): the one that wins. */
  newest: SubmissionRecord | null;
  /** The newest submission's credential has a revocation row; false when there is no newest submission. */
  newestRevoked: boolean;
}

/** One row always (the tenant), its parts null where there is nothing. */
type SituationRow = Nullable<RecordRow> & {
  active_id: string | null;
  active_submission_id: string | null;
  active_fingerprint: string | null;
  active_last4: string | null;
  active_reconnect_required: boolean | null;
  compromised: boolean;
  newest_revoked: boolean;
};

type Nullable<T> = { [K in keyof T]: T[K] | null };

export interface NewSubmission {
  id: string;
  tenantId: string;
  credentialId: string;
  last4: string;
  fingerprint: string;
  replacing: boolean;
  submittedBy: string;
  correlationId: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Queries about submissions and the decisions on their credentials; intake writes only `submissions`. */
@Injectable()
export class SubmissionRepository {
  async find(db: EntityManager, tenantId: string, submissionId: string): Promise<SubmissionRecord | null> {
    if (!UUID.test(submissionId)) return null;
    // A waiter's read when its submission is decided: prepared, planned once per connection.
    const rows = await preparedQuery<RecordRow>(db, 'intake_submission_record', `${RECORD_SELECT} WHERE s.tenant_id = $1 AND s.id = $2`, [tenantId, submissionId]);
    return rows[0] ? toRecord(rows[0]) : null;
  }

  /** The tenant's newest submission (max seq): the one that wins. */
  async newest(db: EntityManager, tenantId: string): Promise<SubmissionRecord | null> {
    const rows = await db.query<RecordRow[]>(`${RECORD_SELECT} WHERE s.tenant_id = $1 ORDER BY s.seq DESC LIMIT 1`, [tenantId]);
    return rows[0] ? toRecord(rows[0]) : null;
  }

  /**
   * What a submitted key is checked against before anything is stored, in one statement (one
   * snapshot) to send with the attempt's rate-limit count: the credential in use (an active
   * connection's active, unrevoked credential), whether a key with this fingerprint was reported
   * compromised for the tenant, and the tenant's newest submission (max seq) with whether its
   * credential has a revocation row (then it can never become active). Read before the submission
   * lock. Its rows go to `situationOf`.
   */
  situationRead(tenantId: string, fingerprint: string): PipelinedStatement {
    return {
      name: 'intake_submission_situation',
      text: `SELECT a.id AS active_id, a.submission_id AS active_submission_id, a.fingerprint AS active_fingerprint, a.last4 AS active_last4,
              a.reconnect_required AS active_reconnect_required,
              EXISTS (SELECT 1 FROM submissions s JOIN revocations r ON r.credential_id = s.credential_id AND r.reason = 'compromised'
                       WHERE s.tenant_id = t.tenant_id AND s.fingerprint = $2
                      UNION ALL
                      SELECT 1 FROM credentials c WHERE c.tenant_id = t.tenant_id AND c.fingerprint = $2 AND c.invalidated_reason = 'compromised') AS compromised,
              n.*,
              EXISTS (SELECT 1 FROM revocations r WHERE r.credential_id = n.credential_id) AS newest_revoked
         FROM (SELECT $1::text AS tenant_id) t
         LEFT JOIN LATERAL (
           SELECT c.id, c.submission_id, c.fingerprint, c.last4, coalesce(h.state = 'reconnect_required', false) AS reconnect_required
             FROM connections k
             JOIN credentials c ON c.id = k.active_credential_id AND c.status = 'active'
             LEFT JOIN connection_health h ON h.tenant_id = k.tenant_id AND h.credential_id = c.id
            WHERE k.tenant_id = t.tenant_id AND k.status = 'active'
              AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.credential_id = c.id)) a ON true
         LEFT JOIN LATERAL (${RECORD_SELECT} WHERE s.tenant_id = t.tenant_id ORDER BY s.seq DESC LIMIT 1) n ON true`,
      values: [tenantId, fingerprint],
    };
  }

  /**
   * Records the submission and supersedes the tenant's older undecided ones: a statement to send
   * after the tenant's submission lock (`LOCKS.submission`) in the transaction's first round trip;
   * its rows (when it was recorded, the ids superseded) go to `insertedNewest`. One statement (it starts after the lock, so
   * it sees every older submission); the supersede cannot touch the new row, which is not in its
   * snapshot and is excluded by id anyway.
   */
  newestInsert(submission: NewSubmission): PipelinedStatement {
    return {
      name: 'intake_submission_insert_newest',
      text: `WITH inserted AS (
         INSERT INTO submissions (id, tenant_id, credential_id, secret_version_id, last4, fingerprint, replacing, submitted_by, correlation_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         RETURNING created_at),
       superseded AS (
         UPDATE submissions s SET superseded_at = now(), superseded_by = $1
          WHERE s.tenant_id = $2 AND s.id <> $1 AND s.superseded_at IS NULL
            AND NOT EXISTS (SELECT 1 FROM credentials c WHERE c.id = s.credential_id)
          RETURNING s.id)
       SELECT (SELECT created_at FROM inserted) AS created_at, ARRAY(SELECT id FROM superseded) AS superseded`,
      // The secret version id IS the credential id.
      values: [
        submission.id,
        submission.tenantId,
        submission.credentialId,
        submission.credentialId,
        submission.last4,
        submission.fingerprint,
        submission.replacing,
        submission.submittedBy,
        submission.correlationId,
      ],
    };
  }
}

/** The rows of `situationRead`: exactly one (the tenant), its parts null where there is nothing. */
export function situationOf(rows: unknown[]): SubmissionSituation {
  const [row] = rows as SituationRow[];
  return {
    active: row.active_id
      ? { credentialId: row.active_id, submissionId: row.active_submission_id!, fingerprint: row.active_fingerprint!, last4: row.active_last4!, reconnectRequired: row.active_reconnect_required! }
      : null,
    compromised: row.compromised,
    newest: row.id ? toRecord(row as RecordRow) : null,
    newestRevoked: row.newest_revoked,
  };
}

/** The rows of `newestInsert`: exactly one. */
export function insertedNewest(rows: unknown[]): { createdAt: Date; superseded: string[] } {
  const [row] = rows as { created_at: Date; superseded: string[] }[];
  return { createdAt: row.created_at, superseded: row.superseded };
}

function toRecord(row: RecordRow): SubmissionRecord {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    credentialId: row.credential_id,
    last4: row.last4,
    fingerprint: row.fingerprint.trim(),
    createdAt: row.created_at,
    supersededAt: row.superseded_at,
    credentialStatus: row.credential_status,
    rejectionReason: row.rejection_reason,
    rejectionDetail: row.rejection_detail,
    lastErrorCode: row.last_error_code,
    parkedAt: row.parked_at,
  };
}
