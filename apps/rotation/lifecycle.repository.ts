import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { returnedRows } from '@keyward/messaging';
import { ConnectionEntity, CredentialEntity, LifecycleStatus, LOCKS, NamedLock, pipelinedIn, PipelinedStatement, revocationOf, SubmissionEntity, ValidationEntity } from '@keyward/persistence';
import { splitSituationRow, VERDICT_AND_SITUATION } from './credential-situation.sql';
import { CredentialSituation } from './lifecycle-decisions';

export interface NewCredential {
  submission: SubmissionEntity;
  status: 'active' | 'rejected';
  companyId?: string | null;
  subjectType?: string | null;
  subjectId?: string | null;
  scopes?: string[];
  rejectionReason?: string | null;
  rejectionDetail?: Record<string, unknown> | null;
  validatedAt: Date;
  activatedAt?: Date | null;
}

export interface ConnectionChange {
  status: LifecycleStatus;
  activeCredentialId?: string | null;
  companyId?: string | null;
  subjectType?: 'company' | 'organization' | null;
  subjectId?: string | null;
  errorCode?: string | null;
  errorDetail?: Record<string, unknown> | null;
  activatedAt?: Date | null;
  lastValidatedAt?: Date | null;
}

/** A verdict event's record (null: its owner has none) and the situation of its credential. */
export interface VerdictAndSituation {
  verdict: ValidationEntity | null;
  situation: CredentialSituation;
  /**
   * The connection's active key has a `compromised` revocation: the customer reported it and
   * rotation has not handled `key.compromised` yet (once it has, the key is no longer active).
   */
  activeCompromised: boolean;
}

/**
 * Queries behind rotation's decisions: reads of every lifecycle table, writes only to the two
 * rotation owns (`connections`, `credentials`). Every method runs in the caller's transaction.
 */
@Injectable()
export class LifecycleRepository {
  /**
   * The lock held through each event's transaction (taken with its inbox claim). It serialises
   * rotation's work on one tenant across replicas until the transaction ends, so a
   * decision and the secret step it leads to see no concurrent change by another handler — nor
   * by intake's compromise and uninstall requests, which take the same lock.
   */
  tenantLock(tenantId: string): NamedLock {
    return LOCKS.currentKey(tenantId);
  }

  /**
   * The validator's record of a verdict event and the credential's situation, in one statement
   * (`credential-situation.sql.ts`). Run it after the tenant's lock was taken, never with it.
   */
  /** The verdict and situation in one statement, to send with the inbox claim (`RunOnceOptions.read`); its rows go to `verdictAndSituationOf`. */
  verdictAndSituationRead(eventId: string, tenantId: string, credentialId: string): PipelinedStatement {
    return { name: 'rotation_verdict_and_situation', text: VERDICT_AND_SITUATION, values: [tenantId, credentialId, eventId] };
  }

  connection(tx: EntityManager, tenantId: string): Promise<ConnectionEntity | null> {
    return tx.getRepository(ConnectionEntity).findOne({ where: { tenantId } });
  }

  credential(tx: EntityManager, tenantId: string, credentialId: string): Promise<CredentialEntity | null> {
    return tx.getRepository(CredentialEntity).findOne({ where: { id: credentialId, tenantId } });
  }

  /** Revoked, and (when a tenant is named) revoked for that tenant. */
  async isRevoked(tx: EntityManager, credentialId: string, tenantId?: string): Promise<boolean> {
    const revocation = await revocationOf(tx, credentialId);
    return revocation !== undefined && (tenantId === undefined || revocation.tenantId === tenantId);
  }

  /** The submission behind a secret version of this tenant (version id = credential id). */
  submissionOfVersion(tx: EntityManager, tenantId: string, versionId: string): Promise<SubmissionEntity | null> {
    return tx.getRepository(SubmissionEntity).findOne({ where: { tenantId, secretVersionId: versionId } });
  }

  /** Submissions revoked by an uninstall that rotation never decided on (their keys were pending). */
  async revokedPendingCredentialIds(tx: EntityManager, tenantId: string): Promise<string[]> {
    const rows = await tx.query<{ credential_id: string }[]>(
      `SELECT s.credential_id FROM submissions s
         JOIN revocations r ON r.credential_id = s.credential_id
         LEFT JOIN credentials c ON c.id = s.credential_id
        WHERE s.tenant_id = $1 AND c.id IS NULL`,
      [tenantId],
    );
    return rows.map((r) => r.credential_id);
  }

  /**
   * A credential rotation has not decided on before (the decisions check that): an insert, no
   * look first, as a statement to send with the transaction's effects (`InboxEffects.write`).
   */
  credentialInsert(c: NewCredential): PipelinedStatement {
    const { submission } = c;
    return {
      name: 'rotation_credential_insert',
      text: CREDENTIAL_INSERT,
      values: [
        submission.credentialId,
        submission.tenantId,
        submission.id,
        submission.secretVersionId,
        submission.last4,
        submission.fingerprint,
        c.status,
        c.companyId ?? null,
        c.subjectType ?? null,
        c.subjectId ?? null,
        c.scopes ?? [],
        c.rejectionReason ?? null,
        jsonOrNull(c.rejectionDetail),
        c.validatedAt,
        c.activatedAt ?? null,
      ],
    };
  }

  /** Marks a credential invalidated; returns its last four (for the audit entry), or null if it is not this tenant's. */
  async invalidateCredential(tx: EntityManager, tenantId: string, credentialId: string, reason: 'replaced' | 'compromised' | 'uninstalled'): Promise<Pick<CredentialEntity, 'last4'> | null> {
    const rows = returnedRows<Pick<CredentialEntity, 'last4'>>(
      await tx.query(
        `UPDATE credentials SET status = 'invalidated', invalidated_reason = $3, invalidated_at = COALESCE(invalidated_at, now())
          WHERE id = $1 AND tenant_id = $2 RETURNING last4`,
        [credentialId, tenantId, reason],
      ),
    );
    return rows[0] ?? null;
  }

  /**
   * Creates or updates the tenant's connection row; `status_since` moves only with the status.
   * `existing` is the row (or its absence) as the caller read it under the tenant's lock, in this
   * transaction, with no write to it since: it is not read again.
   */
  async saveConnection(tx: EntityManager, tenantId: string, existing: ConnectionEntity | null, change: ConnectionChange): Promise<void> {
    await pipelinedIn(tx, [this.connectionWrite(tenantId, existing, change)]);
  }

  /** `saveConnection`'s statement, to send with the transaction's effects (`InboxEffects.write`). */
  connectionWrite(tenantId: string, existing: ConnectionEntity | null, change: ConnectionChange): PipelinedStatement {
    const now = new Date();
    // One statement, not save()'s look-then-write: `existing` was read under the tenant's lock.
    return {
      name: 'rotation_connection_upsert',
      text: CONNECTION_UPSERT,
      values: [
        tenantId,
        change.status,
        pick(change.companyId, existing?.companyId),
        pick(change.subjectType, existing?.subjectType),
        pick(change.subjectId, existing?.subjectId),
        pick(change.activeCredentialId, existing?.activeCredentialId),
        pick(change.errorCode, existing?.errorCode),
        jsonOrNull(pick(change.errorDetail, existing?.errorDetail)),
        pick(change.activatedAt, existing?.activatedAt),
        pick(change.lastValidatedAt, existing?.lastValidatedAt),
        existing && existing.status === change.status ? existing.statusSince : now,
        existing?.createdAt ?? now,
        now,
      ],
    };
  }
}

/** $1…$15: the new credential's columns, in `credentialInsert`'s order; never invalidated yet. */
const CREDENTIAL_INSERT = `INSERT INTO credentials (id, tenant_id, submission_id, secret_version_id, last4, fingerprint, status,
    company_id, subject_type, subject_id, scopes, rejection_reason, rejection_detail, invalidated_reason, validated_at, activated_at, invalidated_at)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::text[], $12, $13::jsonb, NULL, $14, $15, NULL)`;

/** Every column of a connection row after `tenant_id`, in `connectionWrite`'s order ($2…$13). */
const CONNECTION_COLUMNS = [
  'status',
  'company_id',
  'subject_type',
  'subject_id',
  'active_credential_id',
  'error_code',
  'error_detail',
  'activated_at',
  'last_validated_at',
  'status_since',
  'created_at',
  'updated_at',
];

/** $1 the tenant, $2…$13 `CONNECTION_COLUMNS`: the row written whole. */
const CONNECTION_UPSERT = `INSERT INTO connections (tenant_id, ${CONNECTION_COLUMNS.join(', ')})
  VALUES ($1, ${CONNECTION_COLUMNS.map((column, i) => (column === 'error_detail' ? `$${i + 2}::jsonb` : `$${i + 2}`)).join(', ')})
  ON CONFLICT (tenant_id) DO UPDATE SET ${CONNECTION_COLUMNS.map((column) => `${column} = EXCLUDED.${column}`).join(', ')}`;

/** A jsonb parameter: its JSON text (a bare object would be sent as pg's own rendering), or null. */
function jsonOrNull(value: Record<string, unknown> | null | undefined): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value);
}

/** The rows of `verdictAndSituationRead`: exactly one. */
export function verdictAndSituationOf(rows: unknown[]): VerdictAndSituation {
  const { verdict, connection, submission, credential, revoked, newestPending, uninstalledKeys, activeCompromised } = splitSituationRow(rows[0] as Record<string, unknown>);
  // An uninstall's revoked keys make the tenant uninstalled until a key is in service again (active, or disabled after one was).
  const uninstalled = connection?.status === 'uninstalled' || (connection?.status !== 'active' && connection?.status !== 'disabled' && uninstalledKeys);
  return { verdict, situation: { connection, submission, credential, revoked, newestPending, uninstalled }, activeCompromised };
}

/** `undefined` keeps the current value; `null` clears it. */
function pick<T>(change: T | undefined, current: T | undefined): T | null {
  return change !== undefined ? change : (current ?? null);
}
