import type { PipelinedStatement } from '@keyward/persistence';
import { SealedValue } from './envelope';
import { VERSION_COLUMNS } from './local-secret-rows';
import { SecretStoreError } from './secret-store';

/**
 * Where the local store moves Secrets Manager's labels. Each statement runs after the statement
 * that locks the tenant's `secrets` row, never inside it: in READ COMMITTED a statement keeps the
 * snapshot it started with while it waits for a lock, and a later statement takes a new one, so
 * these see whatever the lock's previous holder committed. Each is a prepared statement (parsed
 * and planned once per connection) with its values bound, never written into its text.
 */

/**
 * putPending, in the round trip after the lock: answers the version with this id if it already
 * exists, and then writes nothing; otherwise stores the sealed value as a new version and moves
 * AWSPENDING to it. Sealed values only ever travel as bind parameters: statement text shows in
 * pg_stat_activity and in Postgres's log of a failing statement, and a copy there would outlive
 * `disable`'s crypto-shredding. The text is fixed, so it can be a prepared statement.
 */
export const STORE_PENDING = `WITH existing AS (
      SELECT ${VERSION_COLUMNS} FROM secret_versions WHERE secret_name = $1::text AND version_id = $2::text
    ), unlabelled AS (
      UPDATE secret_versions SET stages = array_remove(stages, 'AWSPENDING')
       WHERE secret_name = $1::text AND 'AWSPENDING' = ANY(stages) AND NOT EXISTS (SELECT 1 FROM existing)
    ), stored AS (
      INSERT INTO secret_versions (secret_name, version_id, tenant_id, stages, ciphertext, iv, auth_tag, wrapped_data_key, master_key_id, value_digest)
      SELECT $1::text, $2::text, $3::text, ARRAY['AWSPENDING'], $4::bytea, $5::bytea, $6::bytea, $7::bytea, $8::text, $9::text
       WHERE NOT EXISTS (SELECT 1 FROM existing)
    )
    SELECT * FROM existing`;

/** STORE_PENDING's parameters. */
export function storePendingValues(name: string, versionId: string, tenantId: string, sealed: SealedValue): unknown[] {
  return [name, versionId, tenantId, sealed.ciphertext, sealed.iv, sealed.authTag, sealed.wrappedDataKey, sealed.masterKeyId, sealed.valueDigest];
}

/** What promote's statement found, in the order the checks are made; only the last two wrote. */
type PromoteOutcome = 'scheduled_for_deletion' | 'not_found' | 'disabled' | 'conflict' | 'already_current' | 'promoted';

export interface PromoteAnswer {
  outcome: PromoteOutcome;
  current_version_id: string | null;
}

/**
 * promote's compare-and-swap, decided and done in one statement (one row: `PromoteAnswer`).
 * AWSCURRENT moves to the target only if it sits on `expectedCurrentVersionId` (null: on no
 * version); the superseded version keeps no label (deprecated), the promoted one only
 * AWSCURRENT. Already current (a retried promotion): AWSPENDING comes off it, nothing else.
 */
export function promoteStatement(name: string, versionId: string, expectedCurrentVersionId: string | null): PipelinedStatement {
  return {
    name: 'local_secret_promote',
    text: `WITH secret AS (
      SELECT deletion_scheduled_for FROM secrets WHERE name = $1::text
    ), target AS (
      SELECT disabled_at FROM secret_versions WHERE secret_name = $1::text AND version_id = $2::text
    ), current AS (
      SELECT version_id FROM secret_versions WHERE secret_name = $1::text AND 'AWSCURRENT' = ANY(stages) LIMIT 1
    ), decision AS (
      SELECT CASE
               WHEN (SELECT deletion_scheduled_for FROM secret) IS NOT NULL THEN 'scheduled_for_deletion'
               WHEN NOT EXISTS (SELECT 1 FROM target) THEN 'not_found'
               WHEN (SELECT disabled_at FROM target) IS NOT NULL THEN 'disabled'
               WHEN (SELECT version_id FROM current) = $2::text THEN 'already_current'
               WHEN (SELECT version_id FROM current) IS DISTINCT FROM $3::text THEN 'conflict'
               ELSE 'promoted'
             END AS outcome,
             (SELECT version_id FROM current) AS current_version_id
    ), moved AS (
      UPDATE secret_versions v
         SET stages = CASE WHEN d.outcome = 'already_current' THEN array_remove(v.stages, 'AWSPENDING')
                           WHEN v.version_id = $2::text THEN ARRAY['AWSCURRENT'] ELSE '{}'::text[] END
        FROM decision d
       WHERE v.secret_name = $1::text
         AND ((d.outcome IN ('already_current', 'promoted') AND v.version_id = $2::text)
              OR (d.outcome = 'promoted' AND v.version_id = d.current_version_id))
    )
    SELECT outcome, current_version_id FROM decision`,
    values: [name, versionId, expectedCurrentVersionId],
  };
}

/** The error a promotion that wrote nothing raises; none when it moved the labels. */
export function promoteRefusal(answer: PromoteAnswer, tenantId: string, versionId: string, expectedCurrentVersionId: string | null): SecretStoreError | undefined {
  switch (answer.outcome) {
    case 'scheduled_for_deletion':
      return scheduledForDeletion(tenantId);
    case 'not_found':
      return new SecretStoreError('not_found', `Tenant ${tenantId} has no version ${versionId}`);
    case 'disabled':
      return new SecretStoreError('disabled', `Version ${versionId} of tenant ${tenantId} is disabled`);
    case 'conflict':
      return new SecretStoreError('conflict', `AWSCURRENT of tenant ${tenantId} is on ${answer.current_version_id ?? 'no version'}, not on ${expectedCurrentVersionId ?? 'no version'}`);
    case 'already_current':
    case 'promoted':
      return undefined;
  }
}

/** retire: every label off the version; answers its id, none when the tenant has no such version. */
export function retireStatement(name: string, versionId: string): PipelinedStatement {
  return { name: 'local_secret_retire', text: `UPDATE secret_versions SET stages = '{}' WHERE secret_name = $1 AND version_id = $2 RETURNING version_id`, values: [name, versionId] };
}

export function scheduledForDeletion(tenantId: string): SecretStoreError {
  return new SecretStoreError('scheduled_for_deletion', `The secret of tenant ${tenantId} is scheduled for deletion; restore it first`);
}
