import type { ConnectionEntity, CredentialEntity, SubmissionEntity, ValidationEntity } from '@keyward/persistence';

/**
 * What rotation decides a verdict (`key.validated`, `key.rejected`) from, in one statement: the
 * validator's record of the event and the credential's situation. It was seven reads one after
 * another (the verdict, connection, submission, credential, revocation, newest pending submission,
 * uninstalled keys) on the path a customer waits on with `Prefer: wait` (issue 16, aim 1).
 *
 * It runs after the statement that took the tenant's lock (the inbox claim), never in it: a
 * statement that waits for a lock keeps the snapshot it started with. Run as a named prepared
 * statement by `LifecycleRepository` only. Each part's columns are aliased `<part>.<property>`
 * with TypeORM's property names, so `splitSituationRow` gives the rows TypeORM's `findOne` gives
 * (pg parses the types the same way; `lifecycle.repository.spec.ts` compares them). Each part is
 * joined on a key, so there is always exactly one row; a missing part has a null key column.
 *
 * $1 tenant, $2 credential, $3 event id.
 */
export const VERDICT_AND_SITUATION = `
  SELECT
    v.event_id AS "verdict.eventId", v.event_type AS "verdict.eventType", v.tenant_id AS "verdict.tenantId",
    v.credential_id AS "verdict.credentialId", v.submission_id AS "verdict.submissionId", v.outcome AS "verdict.outcome",
    v.company_id AS "verdict.companyId", v.subject_type AS "verdict.subjectType", v.scopes AS "verdict.scopes",
    v.missing_scopes AS "verdict.missingScopes", v.reason AS "verdict.reason", v.message AS "verdict.message",
    v.decided_at AS "verdict.decidedAt",

    c.tenant_id AS "connection.tenantId", c.status AS "connection.status", c.company_id AS "connection.companyId",
    c.subject_type AS "connection.subjectType", c.subject_id AS "connection.subjectId",
    c.active_credential_id AS "connection.activeCredentialId", c.error_code AS "connection.errorCode",
    c.error_detail AS "connection.errorDetail", c.activated_at AS "connection.activatedAt",
    c.last_validated_at AS "connection.lastValidatedAt", c.status_since AS "connection.statusSince",
    c.created_at AS "connection.createdAt", c.updated_at AS "connection.updatedAt",

    s.id AS "submission.id", s.seq AS "submission.seq", s.tenant_id AS "submission.tenantId",
    s.credential_id AS "submission.credentialId", s.secret_version_id AS "submission.secretVersionId",
    s.last4 AS "submission.last4", s.fingerprint AS "submission.fingerprint", s.replacing AS "submission.replacing",
    s.submitted_by AS "submission.submittedBy", s.correlation_id AS "submission.correlationId",
    s.created_at AS "submission.createdAt", s.superseded_at AS "submission.supersededAt",
    s.superseded_by AS "submission.supersededBy",

    cr.id AS "credential.id", cr.tenant_id AS "credential.tenantId", cr.submission_id AS "credential.submissionId",
    cr.secret_version_id AS "credential.secretVersionId", cr.last4 AS "credential.last4",
    cr.fingerprint AS "credential.fingerprint", cr.status AS "credential.status", cr.company_id AS "credential.companyId",
    cr.subject_type AS "credential.subjectType", cr.subject_id AS "credential.subjectId", cr.scopes AS "credential.scopes",
    cr.rejection_reason AS "credential.rejectionReason", cr.rejection_detail AS "credential.rejectionDetail",
    cr.invalidated_reason AS "credential.invalidatedReason", cr.created_at AS "credential.createdAt",
    cr.validated_at AS "credential.validatedAt", cr.activated_at AS "credential.activatedAt",
    cr.invalidated_at AS "credential.invalidatedAt",

    -- revocationOf(): any revocation of the credential.
    EXISTS (SELECT 1 FROM revocations r WHERE r.credential_id = k.credential_id) AS revoked,
    -- newestPendingSubmission() is this credential's (the view has at most one row per tenant).
    EXISTS (SELECT 1 FROM newest_pending_submissions n WHERE n.tenant_id = k.tenant_id AND n.credential_id = k.credential_id) AS "newestPending",
    -- Keys of the tenant an uninstall revoked (their versions are still in its secret).
    EXISTS (SELECT 1 FROM revocations r WHERE r.tenant_id = k.tenant_id AND r.reason = 'uninstalled') AS "uninstalledKeys",
    -- The active key was reported compromised (intake's revocation) and rotation has not yet taken it out of service.
    EXISTS (SELECT 1 FROM revocations r WHERE r.credential_id = c.active_credential_id AND r.reason = 'compromised') AS "activeCompromised"
  FROM (SELECT $1::text AS tenant_id, $2::uuid AS credential_id, $3::uuid AS event_id) k
  LEFT JOIN validations v ON v.event_id = k.event_id
  LEFT JOIN connections c ON c.tenant_id = k.tenant_id
  LEFT JOIN submissions s ON s.tenant_id = k.tenant_id AND s.credential_id = k.credential_id
  LEFT JOIN credentials cr ON cr.id = k.credential_id AND cr.tenant_id = k.tenant_id`;

export interface SituationRow {
  verdict: ValidationEntity | null;
  connection: ConnectionEntity | null;
  submission: SubmissionEntity | null;
  credential: CredentialEntity | null;
  revoked: boolean;
  newestPending: boolean;
  uninstalledKeys: boolean;
  activeCompromised: boolean;
}

/** The statement's one row as its parts; a part whose key column is null is absent (null). */
export function splitSituationRow(row: Record<string, unknown>): SituationRow {
  return {
    verdict: part<ValidationEntity>(row, 'verdict', 'eventId'),
    connection: part<ConnectionEntity>(row, 'connection', 'tenantId'),
    submission: part<SubmissionEntity>(row, 'submission', 'id'),
    credential: part<CredentialEntity>(row, 'credential', 'id'),
    revoked: row.revoked === true,
    newestPending: row.newestPending === true,
    uninstalledKeys: row.uninstalledKeys === true,
    activeCompromised: row.activeCompromised === true,
  };
}

function part<T>(row: Record<string, unknown>, name: string, key: keyof T & string): T | null {
  const prefix = `${name}.`;
  if (row[prefix + key] === null || row[prefix + key] === undefined) return null;
  const entity: Record<string, unknown> = {};
  for (const [column, value] of Object.entries(row)) if (column.startsWith(prefix)) entity[column.slice(prefix.length)] = value;
  return entity as T;
}
