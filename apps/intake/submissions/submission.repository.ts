import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { revocationOf } from '@keyward/persistence';
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
    const rows = await db.query<RecordRow[]>(`${RECORD_SELECT} WHERE s.tenant_id = $1 AND s.id = $2`, [tenantId, submissionId]);
    return rows[0] ? toRecord(rows[0]) : null;
  }

  /** The tenant's newest submission (max seq): the one that wins. */
  async newest(db: EntityManager, tenantId: string): Promise<SubmissionRecord | null> {
    const rows = await db.query<RecordRow[]>(`${RECORD_SELECT} WHERE s.tenant_id = $1 ORDER BY s.seq DESC LIMIT 1`, [tenantId]);
    return rows[0] ? toRecord(rows[0]) : null;
  }

  /** The credential in use: an active connection's active, unrevoked credential. */
  async activeCredential(db: EntityManager, tenantId: string): Promise<ActiveCredential | null> {
    const rows = await db.query<{ id: string; submission_id: string; fingerprint: string; last4: string; reconnect_required: boolean }[]>(
      `SELECT c.id, c.submission_id, c.fingerprint, c.last4, coalesce(h.state = 'reconnect_required', false) AS reconnect_required
         FROM connections k
         JOIN credentials c ON c.id = k.active_credential_id AND c.status = 'active'
         LEFT JOIN connection_health h ON h.tenant_id = k.tenant_id AND h.credential_id = c.id
        WHERE k.tenant_id = $1 AND k.status = 'active'
          AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.credential_id = c.id)`,
      [tenantId],
    );
    const row = rows[0];
    return row ? { credentialId: row.id, submissionId: row.submission_id, fingerprint: row.fingerprint, last4: row.last4, reconnectRequired: row.reconnect_required } : null;
  }

  /** Whether a key with this fingerprint was reported compromised for the tenant. */
  async wasCompromised(db: EntityManager, tenantId: string, fingerprint: string): Promise<boolean> {
    const rows = await db.query<unknown[]>(
      `SELECT 1 FROM submissions s JOIN revocations r ON r.credential_id = s.credential_id AND r.reason = 'compromised'
        WHERE s.tenant_id = $1 AND s.fingerprint = $2
       UNION ALL
       SELECT 1 FROM credentials c WHERE c.tenant_id = $1 AND c.fingerprint = $2 AND c.invalidated_reason = 'compromised'
       LIMIT 1`,
      [tenantId, fingerprint],
    );
    return rows.length > 0;
  }

  /** Whether the credential has a revocation row (then it can never become active). */
  async isRevoked(db: EntityManager, credentialId: string): Promise<boolean> {
    return (await revocationOf(db, credentialId)) !== undefined;
  }

  /**
   * Records the submission and supersedes the tenant's older undecided ones, inside `tx`, which
   * holds the tenant's submission lock (`LOCKS.submission`, taken with the transaction's start). Returns when it was recorded
   * and the ids superseded.
   */
  async insertNewest(tx: EntityManager, submission: NewSubmission): Promise<{ createdAt: Date; superseded: string[] }> {
    // One statement (it starts after the lock, so it sees every older submission); the supersede
    // cannot touch the new row, which is not in its snapshot and is excluded by id anyway.
    const [row] = await tx.query<{ created_at: Date; superseded: string[] }[]>(
      `WITH inserted AS (
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
      [
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
    );
    return { createdAt: row.created_at, superseded: row.superseded };
  }
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
