import { randomUUID } from 'node:crypto';
import type { LifecycleStatus } from '@keyward/persistence';
import type { TestDatabase } from './test-env';

/** A database or a client inside a transaction: anything that runs one statement. */
interface Sql {
  query(sql: string, params?: unknown[]): Promise<unknown>;
}

/**
 * The rows a test stands in for another service with, each written once, in the shape its owner
 * (docs/architecture.md, "owns") writes it. A harness that needs "a connection rotation
 * activated" or "a key intake revoked" calls these instead of writing the SQL again, so a schema
 * change is mended in one place. Rows that come with an event live in owner-records.ts.
 */

// --- intake: submissions, install_sessions, revocations -------------------------------------

export interface SubmissionRow {
  id?: string;
  tenantId: string;
  credentialId?: string;
  last4?: string;
  fingerprint?: string;
  /** Computed as intake does (an active connection exists) when left out. */
  replacing?: boolean;
  submittedBy?: string;
  correlationId?: string;
  /** Backdates the row, for sweeps that look for old submissions. */
  minutesAgo?: number;
}

/**
 * A key submission as intake commits it: the secret's version id is the credential id, and an
 * older submission still waiting for its verdict is superseded.
 */
export async function submissionAsIntake(db: Sql, row: SubmissionRow): Promise<{ submissionId: string; credentialId: string }> {
  const submissionId = row.id ?? randomUUID();
  const credentialId = row.credentialId ?? randomUUID();
  await db.query(
    `WITH superseded AS (
       UPDATE submissions p SET superseded_at = now(), superseded_by = $1
        WHERE p.tenant_id = $2 AND p.superseded_at IS NULL AND NOT EXISTS (SELECT 1 FROM credentials c WHERE c.id = p.credential_id))
     INSERT INTO submissions (id, tenant_id, credential_id, secret_version_id, last4, fingerprint, replacing, submitted_by, correlation_id, created_at)
     VALUES ($1, $2, $3::uuid, $3::text, $4, $5,
             COALESCE($6, EXISTS (SELECT 1 FROM connections WHERE tenant_id = $2 AND status = 'active')),
             $7, $8, now() - make_interval(mins => $9))`,
    [
      submissionId,
      row.tenantId,
      credentialId,
      row.last4 ?? 'ab12',
      row.fingerprint ?? '0'.repeat(64),
      row.replacing ?? null,
      row.submittedBy ?? 'token:dev',
      row.correlationId ?? `corr-${submissionId}`,
      row.minutesAgo ?? 0,
    ],
  );
  return { submissionId, credentialId };
}

/** An install session as intake mints it; a negative lifetime makes an expired one. */
export async function installSessionAsIntake(db: Sql, row: { tokenHash: string; tenantId: string; lifetimeMinutes?: number }): Promise<void> {
  await db.query(`INSERT INTO install_sessions (token_hash, tenant_id, created_by, expires_at) VALUES ($1, $2, 'token:dev', now() + make_interval(mins => $3))`, [
    row.tokenHash,
    row.tenantId,
    row.lifetimeMinutes ?? 10,
  ]);
}

/** What intake commits before it answers a compromise report or an uninstall, for one key. */
export async function revocationAsIntake(
  db: Sql,
  row: { credentialId: string; tenantId: string; reason: 'compromised' | 'uninstalled'; reportedBy?: string; correlationId?: string },
): Promise<string> {
  const correlationId = row.correlationId ?? `corr-${randomUUID()}`;
  await db.query(
    `INSERT INTO revocations (credential_id, tenant_id, reason, reported_by, correlation_id) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (credential_id) DO UPDATE SET reason = CASE WHEN EXCLUDED.reason = 'compromised' THEN 'compromised' ELSE revocations.reason END`,
    [row.credentialId, row.tenantId, row.reason, row.reportedBy ?? 'token:dev', correlationId],
  );
  return correlationId;
}

/** What intake commits before it answers an uninstall: the active key and every pending one revoked. */
export async function uninstallRevocationsAsIntake(db: Sql, tenantId: string, correlationId: string): Promise<void> {
  await db.query(
    `INSERT INTO revocations (credential_id, tenant_id, reason, reported_by, correlation_id)
     SELECT c.active_credential_id, c.tenant_id, 'uninstalled', 'token:dev', $2 FROM connections c
      WHERE c.tenant_id = $1 AND c.active_credential_id IS NOT NULL
     UNION
     SELECT s.credential_id, s.tenant_id, 'uninstalled', 'token:dev', $2 FROM submissions s
      WHERE s.tenant_id = $1 AND s.superseded_at IS NULL AND NOT EXISTS (SELECT 1 FROM credentials c WHERE c.id = s.credential_id)
     ON CONFLICT (credential_id) DO NOTHING`,
    [tenantId, correlationId],
  );
}

// --- rotation: credentials, connections ------------------------------------------------------

export interface Binding {
  companyId: string;
  scopes?: string[];
}

/**
 * The credential rotation writes for a submission's verdict: `active` (validated and in use) or
 * `rejected` with its reason. An activation retires the tenant's previous active credential, as
 * a replacement does.
 */
export async function credentialAsRotation(
  db: Sql,
  submissionId: string,
  verdict: ({ status: 'active'; activatedMinutesAgo?: number } & Binding) | { status: 'rejected'; reason: string; missingScopes?: string[] },
): Promise<void> {
  if (verdict.status === 'active') {
    await db.query(
      `UPDATE credentials SET status = 'invalidated', invalidated_reason = 'replaced', invalidated_at = now()
        WHERE status = 'active' AND tenant_id = (SELECT tenant_id FROM submissions WHERE id = $1)`,
      [submissionId],
    );
    await db.query(
      `INSERT INTO credentials (id, tenant_id, submission_id, secret_version_id, last4, fingerprint, status, company_id, subject_type, subject_id, scopes, validated_at, activated_at)
       SELECT credential_id, tenant_id, id, secret_version_id, last4, fingerprint, 'active', $2, 'company', $2, $3,
              now() - make_interval(mins => $4), now() - make_interval(mins => $4) FROM submissions WHERE id = $1`,
      [submissionId, verdict.companyId, verdict.scopes ?? [], verdict.activatedMinutesAgo ?? 0],
    );
    return;
  }
  await db.query(
    `INSERT INTO credentials (id, tenant_id, submission_id, secret_version_id, last4, fingerprint, status, rejection_reason, rejection_detail)
     SELECT credential_id, tenant_id, id, secret_version_id, last4, fingerprint, 'rejected', $2, $3::jsonb FROM submissions WHERE id = $1`,
    [submissionId, verdict.reason, JSON.stringify(verdict.missingScopes ? { missingScopes: verdict.missingScopes } : {})],
  );
}

export interface ConnectionRow {
  tenantId: string;
  status: LifecycleStatus;
  /** The company the tenant is bound to; none for a connection never bound. */
  companyId?: string;
  activeCredentialId?: string;
  /** Backdates the activation (and the status) by this many minutes. */
  activatedMinutesAgo?: number;
}

/** The tenant's connection row as rotation keeps it (one per tenant; a second call updates it). */
export async function connectionAsRotation(db: Sql, row: ConnectionRow): Promise<void> {
  await db.query(
    `INSERT INTO connections (tenant_id, status, company_id, subject_type, subject_id, active_credential_id, activated_at, last_validated_at, updated_at)
     VALUES ($1, $2, $3, CASE WHEN $3::text IS NULL THEN NULL ELSE 'company' END, $3, $4, now() - make_interval(mins => $5), now() - make_interval(mins => $5), now())
     ON CONFLICT (tenant_id) DO UPDATE SET status = EXCLUDED.status, company_id = EXCLUDED.company_id, subject_type = EXCLUDED.subject_type,
       subject_id = EXCLUDED.subject_id, active_credential_id = EXCLUDED.active_credential_id, error_code = NULL, error_detail = NULL,
       activated_at = EXCLUDED.activated_at, last_validated_at = EXCLUDED.last_validated_at, status_since = EXCLUDED.activated_at, updated_at = now()`,
    [row.tenantId, row.status, row.companyId ?? null, row.activeCredentialId ?? null, row.activatedMinutesAgo ?? 0],
  );
}

/** What rotation does on `connection.uninstalled`: the active credential is retired, the connection uninstalled. */
export async function uninstallAsRotation(db: Sql, tenantId: string): Promise<void> {
  await db.query(`UPDATE credentials SET status = 'invalidated', invalidated_reason = 'uninstalled', invalidated_at = now() WHERE tenant_id = $1 AND status = 'active'`, [tenantId]);
  await db.query(`UPDATE connections SET status = 'uninstalled', active_credential_id = NULL, status_since = now(), updated_at = now() WHERE tenant_id = $1`, [tenantId]);
}

/** What rotation does on `key.compromised` for the active key: retired, the connection disabled and why. */
export async function compromiseAsRotation(db: Sql, row: { tenantId: string; credentialId: string; reportedBy?: string }): Promise<void> {
  await db.query(`UPDATE credentials SET status = 'invalidated', invalidated_reason = 'compromised', invalidated_at = now() WHERE id = $1`, [row.credentialId]);
  await db.query(
    `UPDATE connections SET status = 'disabled', active_credential_id = NULL, error_code = 'key_compromised', error_detail = $2::jsonb, status_since = now(), updated_at = now()
      WHERE tenant_id = $1`,
    [row.tenantId, JSON.stringify({ credentialId: row.credentialId, reportedBy: row.reportedBy ?? 'token:ops' })],
  );
}

/** The connection's record of when its active key was last found valid (`connections.last_validated_at`). */
export async function lastValidatedAsRotation(db: Sql, tenantId: string, secondsAgo: number): Promise<void> {
  await db.query(`UPDATE connections SET last_validated_at = now() - make_interval(secs => $2), updated_at = now() WHERE tenant_id = $1`, [tenantId, secondsAgo]);
}

/** What rotation does when a replacement is activated: the tenant's active credential retired as replaced. */
export async function replaceAsRotation(db: Sql, credentialId: string): Promise<void> {
  await db.query(`UPDATE credentials SET status = 'invalidated', invalidated_reason = 'replaced', invalidated_at = now() WHERE id = $1`, [credentialId]);
}

/** A credential from an intake submission, activated by rotation: what a tenant in service has. */
export async function activeConnection(db: TestDatabase, submissionId: string, binding: Binding): Promise<string> {
  await credentialAsRotation(db, submissionId, { status: 'active', ...binding });
  const [row] = await db.query<{ tenant_id: string; credential_id: string }>(`SELECT tenant_id, credential_id FROM submissions WHERE id = $1`, [submissionId]);
  await connectionAsRotation(db, { tenantId: row.tenant_id, status: 'active', companyId: binding.companyId, activeCredentialId: row.credential_id });
  return row.credential_id;
}

// --- monitor: connection_health ---------------------------------------------------------------

export interface HealthRow {
  tenantId: string;
  credentialId: string;
  state: 'healthy' | 'degraded' | 'reconnect_required';
  reason?: string;
  missingScopes?: string[];
  authFailures?: number;
}

/** The monitor's health row of a tenant's active key (one per tenant; a second call replaces it). */
export async function healthAsMonitor(db: Sql, row: HealthRow): Promise<void> {
  await db.query(
    `INSERT INTO connection_health (tenant_id, credential_id, state, reason, missing_scopes, auth_failures, last_auth_failure_at, since, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $6 > 0 THEN now() END, now(), now())
     ON CONFLICT (tenant_id) DO UPDATE SET credential_id = EXCLUDED.credential_id, state = EXCLUDED.state, reason = EXCLUDED.reason,
       missing_scopes = EXCLUDED.missing_scopes, auth_failures = EXCLUDED.auth_failures, last_auth_failure_at = EXCLUDED.last_auth_failure_at,
       since = now(), updated_at = now()`,
    [row.tenantId, row.credentialId, row.state, row.reason ?? null, row.missingScopes ?? null, row.authFailures ?? 0],
  );
}

// --- validator: validation_attempts -------------------------------------------------------------

/** The validator's record of failed tries to reach Pleo for a submitted key; `parked` once it gave up. */
export async function attemptsAsValidator(db: Sql, row: { credentialId: string; tenantId: string; attempts: number; lastErrorCode?: string; parked?: boolean }): Promise<void> {
  await db.query(
    `INSERT INTO validation_attempts (credential_id, tenant_id, attempts, first_failure_at, last_error_code, parked_at)
     VALUES ($1, $2, $3, now(), $4, CASE WHEN $5 THEN now() END)`,
    [row.credentialId, row.tenantId, row.attempts, row.lastErrorCode ?? null, row.parked ?? false],
  );
}
