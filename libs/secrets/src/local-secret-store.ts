import { escapeLiteral } from 'pg';
import { DataSource, EntityManager } from 'typeorm';
import { inTransactionStartedWith } from '@keyward/persistence';
import { ApiKey } from '@keyward/key-material';
import { MasterKeyring, openSealed, rewrapDataKey, SealContext, SealedValue, sealedValueMatches, sealValue } from './envelope';
import { assertRecoveryWindow, assertValueSize, assertVersionId, SecretNaming, secretNameFor } from './secret-name';
import { SecretDescription, SecretStore, SecretStoreError, VersionSelector } from './secret-store';

interface VersionRow {
  version_id: string;
  tenant_id: string;
  secret_name: string;
  stages: string[];
  ciphertext: Buffer;
  iv: Buffer;
  auth_tag: Buffer;
  wrapped_data_key: Buffer;
  master_key_id: string;
  value_digest: string;
  created_at: Date;
  disabled_at: Date | null;
}

interface SecretRow {
  name: string;
  tenant_id: string;
  deletion_scheduled_for: Date | null;
}

const VERSION_COLUMNS = 'version_id, tenant_id, secret_name, stages, ciphertext, iv, auth_tag, wrapped_data_key, master_key_id, value_digest, created_at, disabled_at';
const JOINED_VERSION_COLUMNS = VERSION_COLUMNS.split(', ')
  .map((column) => `v.${column}`)
  .join(', ');

/**
 * Sealed rows in Postgres (`secrets`, `secret_versions`) with Secrets Manager's label semantics:
 * a label sits on at most one version, a version without labels is deprecated. Every write locks
 * the tenant's `secrets` row, so concurrent promotions serialise and the compare-and-swap holds.
 */
export class LocalSecretStore implements SecretStore {
  readonly backend = 'local' as const;

  constructor(
    private readonly dataSource: DataSource,
    private readonly keyring: MasterKeyring,
    private readonly naming: SecretNaming,
  ) {}

  async putPending(tenantId: string, versionId: string, key: ApiKey): Promise<void> {
    const name = secretNameFor(this.naming, tenantId);
    assertVersionId(versionId);
    assertValueSize(tenantId, key.reveal());
    const ctx: SealContext = { tenantId, versionId, secretName: name };
    // Creates the secret or locks it (ON CONFLICT DO UPDATE locks the row even where its WHERE is
    // false); a new submission after an uninstall is a reinstall: it cancels the scheduled deletion.
    const createOrLock = `INSERT INTO secrets (name, tenant_id) VALUES (${escapeLiteral(name)}, ${escapeLiteral(tenantId)})
      ON CONFLICT (name) DO UPDATE SET deletion_scheduled_for = NULL WHERE secrets.deletion_scheduled_for IS NOT NULL`;
    await this.inTransactionStartedWith('store the pending version', tenantId, createOrLock, async (tx) => {
      const existing = await this.findVersion(tx, name, { versionId });
      if (existing) {
        if (existing.disabled_at) throw new SecretStoreError('disabled', `Version ${versionId} of tenant ${tenantId} is disabled`);
        if (!sealedValueMatches(this.keyring, ctx, sealedOf(existing), key)) {
          throw new SecretStoreError('already_exists', `Version ${versionId} of tenant ${tenantId} already exists with a different value`);
        }
        return; // Same id, same value: the retry of a write that already happened.
      }
      const sealed = sealValue(this.keyring, ctx, key);
      // AWSPENDING moves to the new version in one statement (the new row is not the old one's).
      await tx.query(
        `WITH unlabelled AS (
           UPDATE secret_versions SET stages = array_remove(stages, 'AWSPENDING') WHERE secret_name = $1 AND 'AWSPENDING' = ANY(stages))
         INSERT INTO secret_versions (secret_name, version_id, tenant_id, stages, ciphertext, iv, auth_tag, wrapped_data_key, master_key_id, value_digest)
         VALUES ($1, $2, $3, ARRAY['AWSPENDING'], $4, $5, $6, $7, $8, $9)`,
        [name, versionId, tenantId, sealed.ciphertext, sealed.iv, sealed.authTag, sealed.wrappedDataKey, sealed.masterKeyId, sealed.valueDigest],
      );
    });
  }

  async getValue(tenantId: string, selector: VersionSelector): Promise<{ versionId: string; key: ApiKey }> {
    const name = secretNameFor(this.naming, tenantId);
    if ('versionId' in selector) assertVersionId(selector.versionId);
    // The secret and its version in one read (one snapshot, one round trip): the validator's path.
    const [found] = await this.guard('read a version', tenantId, () =>
      this.dataSource.query<(Partial<VersionRow> & { secret_deletion_scheduled_for: Date | null })[]>(
        `SELECT s.deletion_scheduled_for AS secret_deletion_scheduled_for, ${JOINED_VERSION_COLUMNS}
           FROM secrets s LEFT JOIN secret_versions v ON v.secret_name = s.name AND ${'versionId' in selector ? 'v.version_id = $2' : '$2 = ANY(v.stages)'}
          WHERE s.name = $1`,
        [name, 'versionId' in selector ? selector.versionId : selector.stage],
      ),
    );
    const secret = found && { deletion_scheduled_for: found.secret_deletion_scheduled_for };
    const row = found?.version_id ? (found as VersionRow) : undefined;
    if (!secret) throw new SecretStoreError('not_found', `Tenant ${tenantId} has no secret`);
    if (secret.deletion_scheduled_for) throw scheduledForDeletion(tenantId);
    if (!row) throw new SecretStoreError('not_found', `Tenant ${tenantId} has no version ${describeSelector(selector)}`);
    if (row.disabled_at) throw new SecretStoreError('disabled', `Version ${row.version_id} of tenant ${tenantId} is disabled`);
    if (row.tenant_id !== tenantId) throw new SecretStoreError('crypto_failure', `Version ${row.version_id} is not sealed for tenant ${tenantId}`);
    return { versionId: row.version_id, key: openSealed(this.keyring, { tenantId, versionId: row.version_id, secretName: name }, sealedOf(row)) };
  }

  async promote(tenantId: string, versionId: string, expectedCurrentVersionId: string | null): Promise<void> {
    const name = secretNameFor(this.naming, tenantId);
    assertVersionId(versionId);
    await this.inLockedTransaction('promote a version', tenantId, name, async (tx, secret) => {
      if (secret.deletion_scheduled_for) throw scheduledForDeletion(tenantId);
      // Both versions in one read, after the lock (read before it, they could be stale).
      const both = await tx.query<Pick<VersionRow, 'version_id' | 'stages' | 'disabled_at'>[]>(
        `SELECT version_id, stages, disabled_at FROM secret_versions WHERE secret_name = $1 AND (version_id = $2 OR 'AWSCURRENT' = ANY(stages))`,
        [name, versionId],
      );
      const target = both.find((v) => v.version_id === versionId);
      if (!target) throw new SecretStoreError('not_found', `Tenant ${tenantId} has no version ${versionId}`);
      if (target.disabled_at) throw new SecretStoreError('disabled', `Version ${versionId} of tenant ${tenantId} is disabled`);
      const current = both.find((v) => v.stages.includes('AWSCURRENT'));
      if (current?.version_id === versionId) {
        // Already current (a retried promotion): only finish the clean-up.
        await tx.query(`UPDATE secret_versions SET stages = array_remove(stages, 'AWSPENDING') WHERE secret_name = $1 AND version_id = $2`, [name, versionId]);
        return;
      }
      if ((current?.version_id ?? null) !== expectedCurrentVersionId) {
        throw new SecretStoreError('conflict', `AWSCURRENT of tenant ${tenantId} is on ${current?.version_id ?? 'no version'}, not on ${expectedCurrentVersionId ?? 'no version'}`);
      }
      // The superseded version keeps no label (deprecated); the promoted one keeps only AWSCURRENT.
      await tx.query(
        `UPDATE secret_versions SET stages = CASE WHEN version_id = $2 THEN ARRAY['AWSCURRENT'] ELSE '{}'::text[] END
          WHERE secret_name = $1 AND version_id = ANY($3::text[])`,
        [name, versionId, current ? [versionId, current.version_id] : [versionId]],
      );
    });
  }

  async retire(tenantId: string, versionId: string): Promise<void> {
    const name = secretNameFor(this.naming, tenantId);
    assertVersionId(versionId);
    await this.inLockedTransaction('retire a version', tenantId, name, async (tx) => {
      const found = await this.findVersion(tx, name, { versionId });
      if (!found) throw new SecretStoreError('not_found', `Tenant ${tenantId} has no version ${versionId}`);
      await tx.query(`UPDATE secret_versions SET stages = '{}' WHERE secret_name = $1 AND version_id = $2`, [name, versionId]);
    });
  }

  async disable(tenantId: string, versionId: string): Promise<void> {
    const name = secretNameFor(this.naming, tenantId);
    assertVersionId(versionId);
    await this.inLockedTransaction('disable a version', tenantId, name, async (tx) => {
      const found = await this.findVersion(tx, name, { versionId });
      if (!found) throw new SecretStoreError('not_found', `Tenant ${tenantId} has no version ${versionId}`);
      // Crypto-shredding: the sealed value and its wrapped data key are erased, so not even a
      // database backup taken from now on holds a recoverable copy of a compromised key.
      await tx.query(
        `UPDATE secret_versions
            SET stages = '{}', ciphertext = '\\x', iv = '\\x', auth_tag = '\\x', wrapped_data_key = '\\x',
                disabled_at = COALESCE(disabled_at, now())
          WHERE secret_name = $1 AND version_id = $2`,
        [name, versionId],
      );
    });
  }

  async scheduleDeletion(tenantId: string, recoveryWindowDays: number): Promise<void> {
    const name = secretNameFor(this.naming, tenantId);
    assertRecoveryWindow(recoveryWindowDays);
    await this.inLockedTransaction('schedule deletion', tenantId, name, async (tx) => {
      // Already scheduled: keep the first date, as AWS does.
      await tx.query(`UPDATE secrets SET deletion_scheduled_for = COALESCE(deletion_scheduled_for, now() + make_interval(days => $2)) WHERE name = $1`, [name, recoveryWindowDays]);
    });
  }

  async restore(tenantId: string): Promise<void> {
    const name = secretNameFor(this.naming, tenantId);
    await this.inLockedTransaction('restore', tenantId, name, async (tx) => {
      await tx.query(`UPDATE secrets SET deletion_scheduled_for = NULL WHERE name = $1`, [name]);
    });
  }

  /**
   * Deletes for good every secret whose recovery window has passed — what Secrets Manager does by
   * itself after a DeleteSecret. Returns the tenants whose secret is gone.
   */
  async purgeExpired(record?: (tx: EntityManager, tenantIds: string[]) => Promise<void>): Promise<string[]> {
    return this.guard('purge', '(all)', () =>
      this.dataSource.transaction(async (tx) => {
        const due = await tx.query<{ name: string; tenant_id: string }[]>(`SELECT name, tenant_id FROM secrets WHERE deletion_scheduled_for <= now() ORDER BY name FOR UPDATE SKIP LOCKED LIMIT 500`);
        if (due.length === 0) return [];
        const names = due.map((d) => d.name);
        await tx.query(`DELETE FROM secret_versions WHERE secret_name = ANY($1::text[])`, [names]);
        await tx.query(`DELETE FROM secrets WHERE name = ANY($1::text[])`, [names]);
        const tenants = due.map((d) => d.tenant_id);
        await record?.(tx, tenants);
        return tenants;
      }),
    );
  }

  async describe(tenantId: string): Promise<SecretDescription | null> {
    const name = secretNameFor(this.naming, tenantId);
    return this.guard('describe', tenantId, async () => {
      const [secret] = await this.dataSource.query<SecretRow[]>(`SELECT name, tenant_id, deletion_scheduled_for FROM secrets WHERE name = $1`, [name]);
      if (!secret) return null;
      const versions = await this.dataSource.query<Pick<VersionRow, 'version_id' | 'stages' | 'created_at' | 'disabled_at'>[]>(
        `SELECT version_id, stages, created_at, disabled_at FROM secret_versions WHERE secret_name = $1 ORDER BY created_at, version_id`,
        [name],
      );
      return {
        name,
        tenantId,
        deletionScheduledFor: secret.deletion_scheduled_for,
        versions: versions.map((v) => ({ versionId: v.version_id, stages: v.stages, createdAt: v.created_at, disabled: v.disabled_at !== null })),
      };
    });
  }

  async ping(): Promise<void> {
    await this.guard('answer a ping', '-', () => this.dataSource.query('SELECT 1 FROM secrets LIMIT 1'));
  }

  /**
   * Master-key rotation: re-wraps the data key of every version not yet under the current
   * master key, in batches, leaving the ciphertexts of the keys untouched. Safe to re-run and
   * to run while services are up (each row is updated only if still under the key it was read with).
   */
  async rewrapDataKeys(options: { batchSize?: number } = {}): Promise<{ rewrapped: number; remainingByMasterKey: Record<string, number> }> {
    const batchSize = options.batchSize ?? 200;
    const currentId = this.keyring.current.id;
    let rewrapped = 0;
    for (;;) {
      const done = await this.inTransaction('re-wrap data keys', '-', async (tx) => {
        const rows = await tx.query<Pick<VersionRow, 'secret_name' | 'version_id' | 'tenant_id' | 'wrapped_data_key' | 'master_key_id'>[]>(
          `SELECT secret_name, version_id, tenant_id, wrapped_data_key, master_key_id FROM secret_versions
            WHERE master_key_id <> $1 AND disabled_at IS NULL
            ORDER BY secret_name, version_id LIMIT $2 FOR UPDATE SKIP LOCKED`,
          [currentId, batchSize],
        );
        for (const row of rows) {
          const next = rewrapDataKey(
            this.keyring,
            { tenantId: row.tenant_id, versionId: row.version_id, secretName: row.secret_name },
            {
              wrappedDataKey: row.wrapped_data_key,
              masterKeyId: row.master_key_id,
            },
          );
          await tx.query(`UPDATE secret_versions SET wrapped_data_key = $3, master_key_id = $4 WHERE secret_name = $1 AND version_id = $2 AND master_key_id = $5`, [
            row.secret_name,
            row.version_id,
            next.wrappedDataKey,
            next.masterKeyId,
            row.master_key_id,
          ]);
        }
        rewrapped += rows.length;
        return rows.length < batchSize;
      });
      if (done) break;
    }
    // Disabled rows have nothing left to wrap; move their key id too so the old key can be dropped.
    await this.dataSource.query(`UPDATE secret_versions SET master_key_id = $1 WHERE master_key_id <> $1 AND disabled_at IS NOT NULL`, [currentId]);
    const remaining = await this.dataSource.query<{ master_key_id: string; n: number }[]>(`SELECT master_key_id, count(*)::int AS n FROM secret_versions GROUP BY master_key_id`);
    return { rewrapped, remainingByMasterKey: Object.fromEntries(remaining.map((r) => [r.master_key_id, r.n])) };
  }

  private async findVersion(db: EntityManager, name: string, selector: VersionSelector): Promise<VersionRow | undefined> {
    const [row] =
      'versionId' in selector
        ? await db.query<VersionRow[]>(`SELECT ${VERSION_COLUMNS} FROM secret_versions WHERE secret_name = $1 AND version_id = $2`, [name, selector.versionId])
        : await db.query<VersionRow[]>(`SELECT ${VERSION_COLUMNS} FROM secret_versions WHERE secret_name = $1 AND $2 = ANY(stages)`, [name, selector.stage]);
    return row;
  }

  private inTransaction<T>(what: string, tenantId: string, work: (tx: EntityManager) => Promise<T>): Promise<T> {
    return this.guard(what, tenantId, () => this.dataSource.transaction((tx) => work(tx)));
  }

  /** A write under the tenant's lock: its `secrets` row, locked in the transaction's first round trip. */
  private inLockedTransaction<T>(what: string, tenantId: string, name: string, work: (tx: EntityManager, secret: SecretRow) => Promise<T>): Promise<T> {
    const lock = `SELECT name, tenant_id, deletion_scheduled_for FROM secrets WHERE name = ${escapeLiteral(name)} FOR UPDATE`;
    return this.inTransactionStartedWith<SecretRow, T>(what, tenantId, lock, (tx, [secret]) => {
      if (!secret) throw new SecretStoreError('not_found', `Tenant ${tenantId} has no secret`);
      return work(tx, secret);
    });
  }

  /**
   * A transaction whose first statement (values as literals) rides with its START TRANSACTION:
   * one round trip fewer on every write, the submission's and the activation's included.
   */
  private inTransactionStartedWith<R, T>(what: string, tenantId: string, first: string, work: (tx: EntityManager, rows: R[]) => Promise<T>): Promise<T> {
    return this.guard(what, tenantId, async () => {
      const outcome = await inTransactionStartedWith<R, T>(this.dataSource, first, async (tx, rows) => ({ result: await work(tx, rows) }));
      return outcome!.result;
    });
  }

  /** Database errors become SecretStoreError without a cause: driver errors may quote parameters. */
  private async guard<T>(what: string, tenantId: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof SecretStoreError) throw error;
      const code = typeof (error as { code?: unknown })?.code === 'string' ? (error as { code: string }).code : 'unknown';
      throw new SecretStoreError('unavailable', `Local secret store could not ${what} for tenant ${tenantId} (database error ${code})`, true);
    }
  }
}

function sealedOf(row: VersionRow): SealedValue {
  return {
    ciphertext: row.ciphertext,
    iv: row.iv,
    authTag: row.auth_tag,
    wrappedDataKey: row.wrapped_data_key,
    masterKeyId: row.master_key_id,
    valueDigest: row.value_digest,
  };
}

function scheduledForDeletion(tenantId: string): SecretStoreError {
  return new SecretStoreError('scheduled_for_deletion', `The secret of tenant ${tenantId} is scheduled for deletion; restore it first`);
}

export function describeSelector(selector: VersionSelector): string {
  return 'versionId' in selector ? selector.versionId : `labelled ${selector.stage}`;
}
