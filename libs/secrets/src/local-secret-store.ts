import { DataSource, EntityManager } from 'typeorm';
import { pipelinedOnce, type PipelinedStatement } from '@keyward/persistence';
import { ApiKey } from '@keyward/key-material';
import { MasterKeyring, openSealed, rewrapDataKey, SealContext, sealedValueMatches, sealValue } from './envelope';
import { PromoteAnswer, promoteRefusal, promoteStatement, retireStatement, scheduledForDeletion, STORE_PENDING, storePendingValues } from './local-secret-labels';
import { JOINED_VERSION_COLUMNS, sealedOf, SecretRow, VersionRow } from './local-secret-rows';
import { assertRecoveryWindow, assertValueSize, assertVersionId, SecretNaming, secretNameFor } from './secret-name';
import { SecretDescription, SecretStore, SecretStoreError, VersionSelector } from './secret-store';

/** A version as one read finds it: the secret's columns beside the version's (none when the secret has no such version). */
type FoundVersion = Partial<VersionRow> & { secret_deletion_scheduled_for: Date | null };

/**
 * Sealed rows in Postgres (`secrets`, `secret_versions`) with Secrets Manager's label semantics:
 * a label sits on at most one version, a version without labels is deprecated. Every write locks
 * the tenant's `secrets` row, so concurrent promotions serialise and the compare-and-swap holds.
 * A label move is two round trips: the transaction's start with the lock and the write, then the
 * commit. putPending is three: its sealed value travels as bind parameters, never in SQL text.
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
    // Sealed before the transaction, so the lock is not held while sealing (a retry of a stored
    // version leaves this seal unused).
    const sealed = sealValue(this.keyring, ctx, key);
    // Creates the secret or locks it (ON CONFLICT DO UPDATE locks the row even where its WHERE is
    // false); a new version after an uninstall is a reinstall: it cancels the scheduled deletion.
    // A version already there (a retry, or a refusal below) writes nothing at all.
    const createOrLock = {
      name: 'local_secret_create_or_lock',
      text: `INSERT INTO secrets (name, tenant_id) VALUES ($1, $2)
      ON CONFLICT (name) DO UPDATE SET deletion_scheduled_for = NULL
       WHERE secrets.deletion_scheduled_for IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM secret_versions v WHERE v.secret_name = $1 AND v.version_id = $3)`,
      values: [name, tenantId, versionId],
    };
    // The version's write goes after the lock, as the next statement of the same round trip (a
    // pipeline), which commits with it (one implicit transaction): nothing it refuses was written.
    // The sealed value travels only as bind parameters, never in a statement's text.
    const store = { name: 'local_secret_store_pending', text: STORE_PENDING, values: storePendingValues(name, versionId, tenantId, sealed) };
    const [, stored] = await this.guard('store the pending version', tenantId, () => pipelinedOnce(this.dataSource, [createOrLock, store]));
    const [existing] = stored as VersionRow[];
    if (!existing) return;
    // Nothing was written: the version was already there.
    if (existing.disabled_at) throw new SecretStoreError('disabled', `Version ${versionId} of tenant ${tenantId} is disabled`);
    if (!sealedValueMatches(this.keyring, ctx, sealedOf(existing), key)) {
      throw new SecretStoreError('already_exists', `Version ${versionId} of tenant ${tenantId} already exists with a different value`);
    }
    // Same id, same value: the retry of a write that already happened.
  }

  async getValue(tenantId: string, selector: VersionSelector): Promise<{ versionId: string; key: ApiKey }> {
    const name = secretNameFor(this.naming, tenantId);
    if ('versionId' in selector) assertVersionId(selector.versionId);
    // The secret and its version in one read (one snapshot, one round trip): the validator's path.
    const byId = 'versionId' in selector;
    const [[found]] = await this.guard('read a version', tenantId, () =>
      pipelinedOnce(this.dataSource, [
        {
          name: byId ? 'local_secret_read_version' : 'local_secret_read_stage',
          text: `SELECT s.deletion_scheduled_for AS secret_deletion_scheduled_for, ${JOINED_VERSION_COLUMNS}
           FROM secrets s LEFT JOIN secret_versions v ON v.secret_name = s.name AND ${byId ? 'v.version_id = $2' : '$2 = ANY(v.stages)'}
          WHERE s.name = $1`,
          values: [name, byId ? selector.versionId : selector.stage],
        },
      ]),
    );
    return this.opened(tenantId, name, selector, found as FoundVersion | undefined);
  }

  async promote(tenantId: string, versionId: string, expectedCurrentVersionId: string | null): Promise<void> {
    const name = secretNameFor(this.naming, tenantId);
    assertVersionId(versionId);
    await this.inLockedTransaction('promote a version', tenantId, name, promoteStatement(name, versionId, expectedCurrentVersionId), async ([answer]) => {
      const refusal = promoteRefusal(answer as PromoteAnswer, tenantId, versionId, expectedCurrentVersionId);
      if (refusal) throw refusal;
    });
  }

  async retire(tenantId: string, versionId: string): Promise<void> {
    const name = secretNameFor(this.naming, tenantId);
    assertVersionId(versionId);
    await this.inLockedTransaction('retire a version', tenantId, name, retireStatement(name, versionId), async (retired) => {
      if (retired.length === 0) throw new SecretStoreError('not_found', `Tenant ${tenantId} has no version ${versionId}`);
    });
  }

  async disable(tenantId: string, versionId: string): Promise<void> {
    const name = secretNameFor(this.naming, tenantId);
    assertVersionId(versionId);
    // Crypto-shredding: the sealed value and its wrapped data key are erased, so not even a
    // database backup taken from now on holds a recoverable copy of a compromised key.
    const shred = {
      name: 'local_secret_disable',
      text: `UPDATE secret_versions
        SET stages = '{}', ciphertext = '\\x', iv = '\\x', auth_tag = '\\x', wrapped_data_key = '\\x', disabled_at = COALESCE(disabled_at, now())
      WHERE secret_name = $1 AND version_id = $2 RETURNING version_id`,
      values: [name, versionId],
    };
    await this.inLockedTransaction('disable a version', tenantId, name, shred, async (disabled) => {
      if (disabled.length === 0) throw new SecretStoreError('not_found', `Tenant ${tenantId} has no version ${versionId}`);
    });
  }

  async scheduleDeletion(tenantId: string, recoveryWindowDays: number): Promise<void> {
    const name = secretNameFor(this.naming, tenantId);
    assertRecoveryWindow(recoveryWindowDays);
    // Already scheduled: keep the first date, as AWS does.
    const schedule = {
      name: 'local_secret_schedule_deletion',
      text: `UPDATE secrets SET deletion_scheduled_for = COALESCE(deletion_scheduled_for, now() + make_interval(days => $2::int)) WHERE name = $1`,
      values: [name, recoveryWindowDays],
    };
    await this.inLockedTransaction('schedule deletion', tenantId, name, schedule, async () => undefined);
  }

  async restore(tenantId: string): Promise<void> {
    const name = secretNameFor(this.naming, tenantId);
    const restore = { name: 'local_secret_restore', text: `UPDATE secrets SET deletion_scheduled_for = NULL WHERE name = $1`, values: [name] };
    await this.inLockedTransaction('restore', tenantId, name, restore, async () => undefined);
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

  /** A found version opened, or the error its read answers (`found` undefined: the tenant has no secret). */
  private opened(tenantId: string, name: string, selector: VersionSelector, found: FoundVersion | undefined): { versionId: string; key: ApiKey } {
    const row = found?.version_id ? (found as VersionRow) : undefined;
    if (!found) throw new SecretStoreError('not_found', `Tenant ${tenantId} has no secret`);
    if (found.secret_deletion_scheduled_for) throw scheduledForDeletion(tenantId);
    if (!row) throw new SecretStoreError('not_found', `Tenant ${tenantId} has no version ${describeSelector(selector)}`);
    if (row.disabled_at) throw new SecretStoreError('disabled', `Version ${row.version_id} of tenant ${tenantId} is disabled`);
    if (row.tenant_id !== tenantId) throw new SecretStoreError('crypto_failure', `Version ${row.version_id} is not sealed for tenant ${tenantId}`);
    return { versionId: row.version_id, key: openSealed(this.keyring, { tenantId, versionId: row.version_id, secretName: name }, sealedOf(row)) };
  }

  private inTransaction<T>(what: string, tenantId: string, work: (tx: EntityManager) => Promise<T>): Promise<T> {
    return this.guard(what, tenantId, () => this.dataSource.transaction((tx) => work(tx)));
  }

  /**
   * A write under the tenant's lock, in one round trip: its `secrets` row locked, then `write`
   * (prepared, its values bound) as the next statement — after the lock, never in the locking statement (see
   * local-secret-labels.ts) — as one implicit transaction that commits at the round trip's end.
   * Every `write` decides in SQL and writes nothing when it refuses (no secret, no such version,
   * a promotion that conflicts), so `check`, which gets `write`'s rows, only reports: there is
   * nothing for it to roll back.
   */
  private inLockedTransaction(what: string, tenantId: string, name: string, write: PipelinedStatement, check: (rows: unknown[]) => Promise<void>): Promise<void> {
    const lock = { name: 'local_secret_lock', text: 'SELECT name, tenant_id, deletion_scheduled_for FROM secrets WHERE name = $1 FOR UPDATE', values: [name] };
    return this.guard(what, tenantId, async () => {
      const [[secret], rows] = await pipelinedOnce(this.dataSource, [lock, write]);
      if (!secret) throw new SecretStoreError('not_found', `Tenant ${tenantId} has no secret`);
      await check(rows);
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

export function describeSelector(selector: VersionSelector): string {
  return 'versionId' in selector ? selector.versionId : `labelled ${selector.stage}`;
}
